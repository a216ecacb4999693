#!/bin/bash
# Runs rsyslogd and a real sshd for tests/sshlab.py, isolated from the host.
#
# tests/sshlab.py starts this as PID 1 of private mount and PID namespaces inside the lab's
# server network namespace:
#   ip netns exec SERVER unshare --mount --propagation private --pid --fork --kill-child \
#       --mount-proc /bin/bash tests/sshlab-launch.sh WORKDIR
# so /dev/log, /run/sshd and every daemon started here exist only in this namespace, and all
# of them die when unshare (and with it this PID 1) dies. WORKDIR holds the configs that
# sshlab.py wrote (rsyslog.conf, sshd_config, host keys); nothing else comes from outside.
set -euo pipefail

work=${1:?usage: sshlab-launch.sh ABSOLUTE_WORKDIR}
if [[ $work != /* || ! -d $work ]]; then
    echo "sshlab-launch: $work is not an absolute directory" >&2
    exit 2
fi
if [[ $$ != 1 ]]; then
    echo "sshlab-launch: must run as PID 1 of its own namespaces (see the header)" >&2
    exit 2
fi

# A private /dev: device nodes borrowed from the real /dev, an own devpts for sshd sessions,
# and room for the /dev/log socket that rsyslogd creates (the host has none and gets none).
dev=$work/dev
mkdir -p "$dev"
mount -t tmpfs -o mode=0755,nosuid,size=1m sshlab-dev "$dev"
for node in null zero full random urandom tty; do
    touch "$dev/$node"
    mount --bind "/dev/$node" "$dev/$node"
done
mkdir "$dev/pts" "$dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 sshlab-devpts "$dev/pts"
ln -s pts/ptmx "$dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev sshlab-shm "$dev/shm"
ln -s /proc/self/fd "$dev/fd"
ln -s /proc/self/fd/0 "$dev/stdin"
ln -s /proc/self/fd/1 "$dev/stdout"
ln -s /proc/self/fd/2 "$dev/stderr"
mount --move "$dev" /dev

# A private /run: sshd needs /run/sshd (its privilege-separation directory).
mount -t tmpfs -o mode=0755,nosuid,nodev sshlab-run /run
mkdir -m 0755 /run/sshd

pids=()
/usr/sbin/rsyslogd -n -f "$work/rsyslog.conf" -i "$work/rsyslogd.pid" &
pids+=($!)
for _ in $(seq 100); do
    [[ -S /dev/log ]] && break
    sleep 0.1
done
if [[ ! -S /dev/log ]]; then
    echo "sshlab-launch: rsyslogd did not create /dev/log within 10s" >&2
    exit 1
fi

/usr/sbin/sshd -D -f "$work/sshd_config" &
pids+=($!)

# Either daemon exiting on its own is a failure of the lab: say so, stop the other.
set +e
wait -n
status=$?
echo "sshlab-launch: a daemon exited unexpectedly (status $status)" >&2
kill -TERM "${pids[@]}" 2>/dev/null
wait
exit 1
