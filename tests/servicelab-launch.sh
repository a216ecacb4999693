#!/bin/bash
# Runs rsyslogd and one real service daemon (vsftpd or dovecot) for tests/servicelab.py,
# isolated from the host.
#
# tests/servicelab.py starts this as PID 1 of private mount and PID namespaces inside the
# lab's server network namespace:
#   ip netns exec SERVER unshare --mount --propagation private --pid --fork --kill-child \
#       --mount-proc /bin/bash tests/servicelab-launch.sh WORKDIR
# so /dev/log, /run, the files bound over /etc and every daemon started here exist only in
# this namespace, and all of them die when unshare (and with it this PID 1) dies.
# WORKDIR holds what servicelab.py wrote, every list as NUL-separated words (read here into
# arrays, so no word is ever split or expanded):
#   dirs        PATH MODE UID:GID triples: directories to make in the private /run
#   binds       SOURCE TARGET pairs: WORKDIR files bound over /etc files (vsftpd's private
#               passwd, shadow, group and pam.d, seen by this namespace only)
#   files       SOURCE TARGET MODE triples: WORKDIR files copied into the private /run (for
#               a daemon's unprivileged processes: Apache's htpasswd and document root)
#   daemon.argv the service's argv (it must stay in the foreground)
#   devices     (optional) device nodes under /dev to borrow, e.g. net/tun (OpenVPN)
# The steps shared with the other labs are in tests/lab-launch-common.sh.
set -euo pipefail
# shellcheck source=lab-launch-common.sh source-path=SCRIPTDIR
source "$(dirname "$(readlink -f "$0")")/lab-launch-common.sh"

work=${1:?usage: servicelab-launch.sh ABSOLUTE_WORKDIR}
check_launch_args servicelab-launch "$work"

# devices (optional): NUL-separated paths under /dev to borrow besides the standard nodes
if [[ -e $work/devices ]]; then
    mapfile -d '' -t lab_extra_nodes <"$work/devices"
fi
make_private_dev "$work" servicelab
make_private_run servicelab

mapfile -d '' -t dirs <"$work/dirs"
if ((${#dirs[@]} % 3)); then
    echo "servicelab-launch: $work/dirs does not hold PATH MODE UID:GID triples" >&2
    exit 2
fi
for ((i = 0; i < ${#dirs[@]}; i += 3)); do
    path=${dirs[i]} mode=${dirs[i + 1]} owner=${dirs[i + 2]}
    if [[ $path != /run/* || $path == *..* ]]; then
        echo "servicelab-launch: $path is not a path in /run" >&2
        exit 2
    fi
    install -d -m "$mode" -o "${owner%:*}" -g "${owner#*:}" "$path"
done

mapfile -d '' -t binds <"$work/binds"
if ((${#binds[@]} % 2)); then
    echo "servicelab-launch: $work/binds does not hold SOURCE TARGET pairs" >&2
    exit 2
fi
for ((i = 0; i < ${#binds[@]}; i += 2)); do
    source_path=${binds[i]} target=${binds[i + 1]}
    if [[ $source_path != "$work"/* || $target != /etc/* || ! -e $target ]]; then
        echo "servicelab-launch: refusing to bind $source_path over $target" >&2
        exit 2
    fi
    mount --bind "$source_path" "$target"
done

files=()
if [[ -e $work/files ]]; then
    mapfile -d '' -t files <"$work/files"
fi
if ((${#files[@]} % 3)); then
    echo "servicelab-launch: $work/files does not hold SOURCE TARGET MODE triples" >&2
    exit 2
fi
for ((i = 0; i < ${#files[@]}; i += 3)); do
    source_path=${files[i]} target=${files[i + 1]} mode=${files[i + 2]}
    if [[ $source_path != "$work"/* || $target != /run/* || $target == *..* ]]; then
        echo "servicelab-launch: refusing to copy $source_path to $target" >&2
        exit 2
    fi
    install -m "$mode" -o root -g root "$source_path" "$target"
done

mapfile -d '' -t daemon_argv <"$work/daemon.argv"

start_rsyslogd servicelab-launch "$work"
start_daemon "${daemon_argv[@]}"
echo "servicelab-launch: started ${daemon_argv[0]}" >&2

# The daemon or rsyslogd exiting on its own is a failure of the lab: say so, stop the other.
supervise_daemons servicelab-launch
