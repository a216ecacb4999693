#!/bin/bash
# A fresh journal-only Debian server for tests/test_e2e_install.py: systemd-journald and a real
# sshd, no syslog daemon and no auth.log; then README command 1 (install.sh) run by "the admin".
#
# tests/installlab.py starts this as PID 1 of private mount and PID namespaces inside the lab's
# server network namespace (as tests/sshlab-launch.sh):
#   ip netns exec SERVER unshare --mount --propagation private --pid --fork --kill-child \
#       --mount-proc /bin/bash tests/installlab-launch.sh WORKDIR
# WORKDIR holds what installlab.py wrote: sshd_config and host key, python-bin (the directory
# of the python3 that install.sh must find first on PATH), admin ("root", or the name of the
# lab's user, who runs install.sh with sudo rights from a clone in their home) and
# bruteguard/ (a copy of the repository with its .venv prepared). Everything install.sh
# writes outside WORKDIR lands in private layers: /etc and /var are overlays whose upper
# halves live in a tmpfs of this namespace, /var/log, /run and /home are empty tmpfs. The
# host's files are never changed.
set -euo pipefail
# shellcheck source=lab-launch-common.sh source-path=SCRIPTDIR
source "$(dirname "$(readlink -f "$0")")/lab-launch-common.sh"

work=${1:?usage: installlab-launch.sh ABSOLUTE_WORKDIR}
check_launch_args installlab-launch "$work"
python_bin=$(<"$work/python-bin")
if [[ $python_bin != /* || ! -x $python_bin/python3 ]]; then
    echo "installlab-launch: $python_bin has no python3" >&2
    exit 2
fi
admin=$(<"$work/admin")
if [[ ! $admin =~ ^[a-z][a-z0-9]{0,31}$ ]] || ! id -u "$admin" >/dev/null; then
    echo "installlab-launch: no user $admin" >&2
    exit 2
fi

make_private_dev "$work" installlab --devpts
make_private_run installlab /run/sshd

# /etc and /var: the host's as they are, with this namespace's writes kept in a tmpfs.
layers=$work/layers
mkdir -p "$layers"
mount -t tmpfs -o mode=0755 installlab-layers "$layers"
for dir in etc var; do
    mkdir "$layers/$dir-upper" "$layers/$dir-work"
    mount -t overlay "installlab-$dir" \
        -o "lowerdir=/$dir,upperdir=$layers/$dir-upper,workdir=$layers/$dir-work" "/$dir"
done
# Debian 12's stock server: no rsyslog, so no auth.log; the journal is all there is.
mount -t tmpfs -o mode=0755 installlab-log /var/log

# `ip netns exec` gave this namespace a fresh /sys without cgroups, which journald needs.
if ! mountpoint -q /sys/fs/cgroup; then
    mount -t cgroup2 installlab-cgroup /sys/fs/cgroup
fi

# journald, keeping its journal in /run/log/journal: WORKDIR/journal bound there, so the test
# can read it from outside. Its sockets (and /dev/log, linked to them) exist only here.
mkdir -p /run/log/journal /run/systemd/journald.conf.d "$work/journal"
mount --bind "$work/journal" /run/log/journal
printf '[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\nRateLimitBurst=0\n' \
    >/run/systemd/journald.conf.d/installlab.conf
SYSTEMD_LOG_TARGET=console start_daemon /lib/systemd/systemd-journald >"$work/journald.log" 2>&1
for ((tries = 0; tries < 100; tries++)); do
    [[ -S /run/systemd/journal/dev-log ]] && compgen -G "/run/log/journal/*/*.journal" >/dev/null && break
    sleep 0.1
done
if [[ ! -S /run/systemd/journal/dev-log ]]; then
    echo "installlab-launch: journald did not start within 10s" >&2
    exit 1
fi
ln -s /run/systemd/journal/dev-log /dev/log

start_daemon /usr/sbin/sshd -D -f "$work/sshd_config"

# The admin: root, or a user who may sudo (without a password, as on a cloud image) and
# whose clone of the repository is in their home.
mount -t tmpfs -o mode=0755 installlab-home /home
if [[ $admin == root ]]; then
    checkout=$work/bruteguard
    as_admin=()
    home=$work/home
else
    home=/home/$admin
    checkout=$home/bruteguard
    mkdir -p "$checkout"
    chown "$admin:" "$home"
    mount --bind "$work/bruteguard" "$checkout"
    printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$admin" >/etc/sudoers.d/installlab
    chmod 0440 /etc/sudoers.d/installlab
    as_admin=(setpriv "--reuid=$admin" "--regid=$admin" --init-groups)
fi
echo "$checkout" >"$work/checkout"

# README command 1 in a fresh login's environment. pip stays offline (no index; the venv
# already holds what `pip install .` would fetch, see installlab.py).
(
    cd "$checkout"
    exec "${as_admin[@]}" env -i PATH="$python_bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME="$home" \
        LANG=C.UTF-8 PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_NO_BUILD_ISOLATION=0 \
        PIP_DISABLE_PIP_VERSION_CHECK=1 ./install.sh
) >"$work/install.log" 2>&1 &
lab_pids+=("$!")

supervise_daemons installlab-launch
