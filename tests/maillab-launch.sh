#!/bin/bash
# Runs rsyslogd and one real server (Cyrus, Sendmail, OpenSMTPD, nginx, named, smbd) for
# tests/maillab.py, isolated from the host: tests/servicelab-launch.sh's steps, plus files
# copied into the private /run for servers that drop root before reading their
# configuration (the work directory, under pytest's private tmp, is root's alone).
#
# Started as PID 1 of private mount and PID namespaces inside the lab's server network
# namespace (see tests/servicelab-launch.sh); WORKDIR holds, as NUL-separated words:
#   covers      existing directories under /var/ hidden by an empty tmpfs in this mount
#               namespace (servers with compiled-in spool paths: OpenSMTPD's /var/spool/smtpd)
#   dirs        PATH MODE UID:GID triples: directories to make in the private /run or a cover
#   copies      SOURCE TARGET MODE UID:GID quadruples: WORKDIR files copied there
#   binds       SOURCE TARGET pairs: WORKDIR files bound over existing /etc files
#   daemon.argv the server's argv (it must stay in the foreground)
set -euo pipefail
# shellcheck source=lab-launch-common.sh source-path=SCRIPTDIR
source "$(dirname "$(readlink -f "$0")")/lab-launch-common.sh"

work=${1:?usage: maillab-launch.sh ABSOLUTE_WORKDIR}
check_launch_args maillab-launch "$work"

make_private_dev "$work" maillab
make_private_run maillab

mapfile -d '' -t covers <"$work/covers"
for cover in "${covers[@]}"; do
    if [[ $cover != /var/* || $cover == *..* || ! -d $cover ]]; then
        echo "maillab-launch: refusing to cover $cover" >&2
        exit 2
    fi
    mount -t tmpfs -o mode=0755,nosuid,nodev maillab-cover "$cover"
done

# in_run PATH: PATH is in the private /run or under a cover (both this namespace's own).
in_run() {
    [[ $1 != *..* ]] || return 1
    [[ $1 == /run/* ]] && return 0
    local cover
    for cover in "${covers[@]}"; do
        [[ $1 == "$cover"/* ]] && return 0
    done
    return 1
}

mapfile -d '' -t dirs <"$work/dirs"
if ((${#dirs[@]} % 3)); then
    echo "maillab-launch: $work/dirs does not hold PATH MODE UID:GID triples" >&2
    exit 2
fi
for ((i = 0; i < ${#dirs[@]}; i += 3)); do
    path=${dirs[i]} mode=${dirs[i + 1]} owner=${dirs[i + 2]}
    if ! in_run "$path"; then
        echo "maillab-launch: $path is not a path in /run" >&2
        exit 2
    fi
    install -d -m "$mode" -o "${owner%:*}" -g "${owner#*:}" "$path"
done

mapfile -d '' -t copies <"$work/copies"
if ((${#copies[@]} % 4)); then
    echo "maillab-launch: $work/copies does not hold SOURCE TARGET MODE UID:GID" >&2
    exit 2
fi
for ((i = 0; i < ${#copies[@]}; i += 4)); do
    source_path=${copies[i]} target=${copies[i + 1]} mode=${copies[i + 2]}
    owner=${copies[i + 3]}
    if [[ $source_path != "$work"/* ]] || ! in_run "$target"; then
        echo "maillab-launch: refusing to copy $source_path to $target" >&2
        exit 2
    fi
    install -m "$mode" -o "${owner%:*}" -g "${owner#*:}" "$source_path" "$target"
done

mapfile -d '' -t binds <"$work/binds"
if ((${#binds[@]} % 2)); then
    echo "maillab-launch: $work/binds does not hold SOURCE TARGET pairs" >&2
    exit 2
fi
for ((i = 0; i < ${#binds[@]}; i += 2)); do
    source_path=${binds[i]} target=${binds[i + 1]}
    if [[ $source_path != "$work"/* || $target != /etc/* || ! -e $target ]]; then
        echo "maillab-launch: refusing to bind $source_path over $target" >&2
        exit 2
    fi
    mount --bind "$source_path" "$target"
done

mapfile -d '' -t daemon_argv <"$work/daemon.argv"

start_rsyslogd maillab-launch "$work"
start_daemon "${daemon_argv[@]}"
echo "maillab-launch: started ${daemon_argv[0]}" >&2

# The server or rsyslogd exiting on its own is a failure of the lab: say so, stop the other.
supervise_daemons maillab-launch
