#!/bin/sh
# README command 1: install bruteguard into ./.venv and protect sshd with the defaults.
#
# Runs as root, or as a user who may sudo (a root-only machine has no sudo, and needs none).
# Debian and Ubuntu: the packages the build needs come from apt, only those missing. Where
# systemd runs, `bruteguard install` writes and starts bruteguard.service (ExecStart: this
# venv's bruteguard) and /etc/bruteguard/bruteguard.toml; where it does not, the same files
# are written and the daemon runs here in the foreground (Ctrl-C stops it).
set -eu
cd "$(dirname "$0")"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "install.sh: $1 needs root: run this as root, or install sudo" >&2
        exit 1
    fi
}

# nftables: the firewall; the rest builds, in a venv, the compiled matcher (PCRE2) and the
# journal reader (systemd-python: a stock Debian 12 logs sshd to the journal only).
missing=
for package in nftables python3-venv python3-dev gcc libpcre2-dev libsystemd-dev pkg-config; do
    if ! dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -qx 'install ok installed'; then
        missing="$missing $package"
    fi
done
if [ -n "$missing" ]; then
    # A fresh cloud machine's first-boot apt may hold the locks for minutes: wait for them
    # (apt-get update ignores DPkg::Lock::Timeout; .ci/wait-unlocked watches its lock).
    .ci/wait-unlocked /var/lib/apt/lists/lock 600
    as_root apt-get -o DPkg::Lock::Timeout=600 update
    # shellcheck disable=SC2086 # one word per package
    as_root apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $missing
fi

python3 -m venv .venv
.venv/bin/pip install '.[journal]'

if [ -d /run/systemd/system ]; then
    as_root "$PWD/.venv/bin/bruteguard" install
else
    as_root "$PWD/.venv/bin/bruteguard" install --no-start
    echo "install.sh: systemd does not run here: bruteguard runs in the foreground (Ctrl-C stops it)"
    as_root "$PWD/.venv/bin/bruteguard" run
fi
