# shellcheck shell=bash
# Shared by tests/sshlab-launch.sh and tests/ftplab-launch.sh; sourced, never run.
#
# Each launcher runs as PID 1 of private mount and PID namespaces inside a lab's server
# network namespace (see its header). These functions are the steps both take: check how
# they were started, give the namespace its own /dev and /run, start rsyslogd on a private
# /dev/log, start the daemons, and fail the lab when any of them exits. The caller has set
# `set -euo pipefail`; every word from outside (WORKDIR, argv files) stays quoted.

# The PIDs of the daemons started by start_rsyslogd and start_daemon, for supervise_daemons.
lab_pids=()

# check_launch_args NAME WORKDIR: exit 2 unless WORKDIR is an absolute directory and this
# shell is PID 1 of its own namespaces. NAME prefixes the messages.
check_launch_args() {
    local name=$1 work=$2
    if [[ $work != /* || ! -d $work ]]; then
        echo "$name: $work is not an absolute directory" >&2
        exit 2
    fi
    if [[ $$ != 1 ]]; then
        echo "$name: must run as PID 1 of its own namespaces (see the header)" >&2
        exit 2
    fi
}

# Device nodes a launcher borrows from the real /dev besides the standard ones (e.g.
# net/tun for OpenVPN), set before make_private_dev: each a path under /dev of a character
# device, checked here.
lab_extra_nodes=()

# make_private_dev WORKDIR TAG [--devpts]: a private /dev, built in WORKDIR/dev and moved
# over /dev: device nodes borrowed from the real /dev (the standard ones and
# lab_extra_nodes) and room for the /dev/log socket that rsyslogd creates (the host has
# none and gets none). --devpts adds an own devpts instance (for sshd's sessions). TAG names
# the mounts (TAG-dev, TAG-shm, TAG-devpts).
make_private_dev() {
    local work=$1 tag=$2 devpts=${3:-}
    local dev=$work/dev node
    mkdir -p "$dev"
    mount -t tmpfs -o mode=0755,nosuid,size=1m "$tag-dev" "$dev"
    for node in null zero full random urandom tty; do
        touch "$dev/$node"
        mount --bind "/dev/$node" "$dev/$node"
    done
    for node in "${lab_extra_nodes[@]}"; do
        if [[ ! $node =~ ^[a-z0-9]+(/[a-z0-9]+)?$ || ! -c /dev/$node ]]; then
            echo "make_private_dev: /dev/$node is not a character device to borrow" >&2
            exit 2
        fi
        mkdir -p "$(dirname "$dev/$node")"
        touch "$dev/$node"
        mount --bind "/dev/$node" "$dev/$node"
    done
    if [[ $devpts == --devpts ]]; then
        mkdir "$dev/pts"
        mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 "$tag-devpts" "$dev/pts"
        ln -s pts/ptmx "$dev/ptmx"
    elif [[ -n $devpts ]]; then
        echo "make_private_dev: unknown option $devpts" >&2
        exit 2
    fi
    mkdir "$dev/shm"
    mount -t tmpfs -o mode=1777,nosuid,nodev "$tag-shm" "$dev/shm"
    ln -s /proc/self/fd "$dev/fd"
    ln -s /proc/self/fd/0 "$dev/stdin"
    ln -s /proc/self/fd/1 "$dev/stdout"
    ln -s /proc/self/fd/2 "$dev/stderr"
    mount --move "$dev" /dev
}

# make_private_run TAG DIR...: an empty tmpfs over /run (mount TAG-run), then each DIR
# (a path under /run) made in it with mode 0755.
make_private_run() {
    local tag=$1
    shift
    mount -t tmpfs -o mode=0755,nosuid,nodev "$tag-run" /run
    if (($#)); then
        mkdir -m 0755 "$@"
    fi
}

# start_rsyslogd NAME WORKDIR: rsyslogd with WORKDIR/rsyslog.conf, in the background; return
# once it has made /dev/log, exit 1 if it has not within 10 s.
start_rsyslogd() {
    local name=$1 work=$2 tries
    /usr/sbin/rsyslogd -n -f "$work/rsyslog.conf" -i "$work/rsyslogd.pid" &
    lab_pids+=("$!")
    for ((tries = 0; tries < 100; tries++)); do
        [[ -S /dev/log ]] && break
        sleep 0.1
    done
    if [[ ! -S /dev/log ]]; then
        echo "$name: rsyslogd did not create /dev/log within 10s" >&2
        exit 1
    fi
}

# start_daemon ARGV...: run ARGV in the background (it must stay in the foreground itself).
start_daemon() {
    "$@" &
    lab_pids+=("$!")
}

# supervise_daemons NAME: wait; any daemon exiting on its own is a failure of the lab: say
# so, stop the others, exit 1. Never returns.
supervise_daemons() {
    local name=$1 status
    set +e
    wait -n
    status=$?
    echo "$name: a daemon exited unexpectedly (status $status)" >&2
    kill -TERM "${lab_pids[@]}" 2>/dev/null
    wait
    exit 1
}
