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
set -euo pipefail

work=${1:?usage: ftplab-launch.sh ABSOLUTE_WORKDIR}
if [[ $work != /* || ! -d $work ]]; then
    echo "ftplab-launch: $work is not an absolute directory" >&2
    exit 2
fi
if [[ $$ != 1 ]]; then
    echo "ftplab-launch: must run as PID 1 of its own namespaces (see the header)" >&2
    exit 2
fi

# A private /dev: device nodes borrowed from the real /dev and room for the /dev/log socket
# that rsyslogd creates (the host has none and gets none).
dev=$work/dev
mkdir -p "$dev"
mount -t tmpfs -o mode=0755,nosuid,size=1m ftplab-dev "$dev"
for node in null zero full random urandom tty; do
    touch "$dev/$node"
    mount --bind "/dev/$node" "$dev/$node"
done
mkdir "$dev/shm"
mount -t tmpfs -o mode=1777,nosuid,nodev ftplab-shm "$dev/shm"
ln -s /proc/self/fd "$dev/fd"
ln -s /proc/self/fd/0 "$dev/stdin"
ln -s /proc/self/fd/1 "$dev/stdout"
ln -s /proc/self/fd/2 "$dev/stderr"
mount --move "$dev" /dev

# A private /run: pure-ftpd's run files, the FTP user's home, and no way to reach the host's
# nscd (glibc looks for /run/nscd/socket), so every lookup goes through our resolv.conf.
mount -t tmpfs -o mode=0755,nosuid,nodev ftplab-run /run
mkdir -m 0755 /run/pure-ftpd
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

pids=()
/usr/sbin/rsyslogd -n -f "$work/rsyslog.conf" -i "$work/rsyslogd.pid" &
pids+=($!)
for _ in $(seq 100); do
    [[ -S /dev/log ]] && break
    sleep 0.1
done
if [[ ! -S /dev/log ]]; then
    echo "ftplab-launch: rsyslogd did not create /dev/log within 10s" >&2
    exit 1
fi

"${dnsmasq_argv[@]}" &
pids+=($!)
"${ftpd_argv[@]}" &
pids+=($!)
echo "ftplab-launch: started" >&2

# Any daemon exiting on its own is a failure of the lab: say so, stop the others.
set +e
wait -n
status=$?
echo "ftplab-launch: a daemon exited unexpectedly (status $status)" >&2
kill -TERM "${pids[@]}" 2>/dev/null
wait
exit 1
