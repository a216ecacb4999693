#!/bin/bash
# Runs rsyslogd, dnsmasq and a real pure-ftpd for tests/ftplab.py, isolated from the host.
#
# tests/ftplab.py starts this as PID 1 of private mount and PID namespaces inside the lab's
# server network namespace:
#   ip netns exec SERVER unshare --mount --propagation private --pid --fork --kill-child \
#       --mount-proc /bin/bash tests/ftplab-launch.sh WORKDIR
# so /dev/log, the lab's /etc/resolv.conf, /etc/nsswitch.conf and /etc/hosts, /run and every
# daemon started here exist only in this namespace, and all of them die when unshare (and
# with it this PID 1) dies. WORKDIR holds what ftplab.py wrote: rsyslog.conf, the three /etc
# files, the pure-ftpd user database, and each daemon's argv as NUL-separated words
# (dnsmasq.argv, pure-ftpd.argv), read here into arrays so no word is ever split or expanded.
# The steps shared with tests/sshlab-launch.sh are in tests/lab-launch-common.sh.
set -euo pipefail
# shellcheck source=lab-launch-common.sh source-path=SCRIPTDIR
source "$(dirname "$(readlink -f "$0")")/lab-launch-common.sh"

work=${1:?usage: ftplab-launch.sh ABSOLUTE_WORKDIR}
check_launch_args ftplab-launch "$work"

make_private_dev "$work" ftplab

# A private /run: pure-ftpd's run files, the FTP user's home, and no way to reach the host's
# nscd (glibc looks for /run/nscd/socket), so every lookup goes through our resolv.conf.
make_private_run ftplab /run/pure-ftpd
ftp_home=$(<"$work/ftp-home")
ftp_owner=$(<"$work/ftp-owner")
install -d -m 0755 -o "${ftp_owner%:*}" -g "${ftp_owner#*:}" "$ftp_home"

# The lab's name service: our own files over /etc's, seen by this namespace only. A
# symlinked /etc file is covered at its target, which must then lie in our private /run.
for name in resolv.conf nsswitch.conf hosts; do
    target=$(readlink -f "/etc/$name")
    if [[ ! -e $target ]]; then
        if [[ $target != /run/* ]]; then
            echo "ftplab-launch: /etc/$name points at missing $target outside /run" >&2
            exit 1
        fi
        mkdir -p "$(dirname "$target")"
        touch "$target"
    fi
    mount --bind "$work/etc/$name" "$target"
done

mapfile -d '' -t dnsmasq_argv <"$work/dnsmasq.argv"
mapfile -d '' -t ftpd_argv <"$work/pure-ftpd.argv"

start_rsyslogd ftplab-launch "$work"
start_daemon "${dnsmasq_argv[@]}"
start_daemon "${ftpd_argv[@]}"
echo "ftplab-launch: started" >&2

# Any daemon exiting on its own is a failure of the lab: say so, stop the others.
supervise_daemons ftplab-launch
