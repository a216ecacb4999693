#!/bin/bash
# Puts a real vsftpd binary where tests/servicelab.py looks for it, without installing it.
#
# vsftpd and pure-ftpd conflict as Debian packages (both provide ftp-server), and the
# hostname tests need pure-ftpd installed. So the vsftpd package is only downloaded (apt
# checks it against the signed archive index) and unpacked into a private prefix:
#   tests/fetch-vsftpd.sh [PREFIX]      (default /var/cache/bruteguard-tests/vsftpd)
# giving PREFIX/usr/sbin/vsftpd. Nothing is configured, no service or user is created; the
# package's own dependencies (libpam0g, libwrap0, libssl3, libcap2) must be installed, and
# are checked with ldd. Idempotent: a present, loadable binary is left as it is. Needs the
# network only when the binary is missing (CI setup runs it before the tests).
set -euo pipefail

prefix=${1:-/var/cache/bruteguard-tests/vsftpd}
if [[ $prefix != /* ]]; then
    echo "fetch-vsftpd: $prefix is not an absolute path" >&2
    exit 2
fi
binary=$prefix/usr/sbin/vsftpd

# loadable BINARY: true if every shared library BINARY needs is found.
loadable() {
    local out
    out=$(ldd "$1" 2>&1) || return 1
    ! grep -q 'not found' <<<"$out"
}

if [[ -x $binary ]] && loadable "$binary"; then
    echo "fetch-vsftpd: $binary is present"
    exit 0
fi

parent=$(dirname "$prefix")
mkdir -p "$parent"
scratch=$(mktemp -d "$parent/.vsftpd-fetch.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# apt's download user (_apt) must be able to write the .deb into the directory.
chmod 0755 "$scratch"
mkdir "$scratch/deb"
if id _apt >/dev/null 2>&1; then
    chown _apt "$scratch/deb"
fi
(cd "$scratch/deb" && apt-get download vsftpd)
debs=("$scratch"/deb/vsftpd_*.deb)
if [[ ${#debs[@]} != 1 || ! -f ${debs[0]} ]]; then
    echo "fetch-vsftpd: apt-get download vsftpd gave no single .deb" >&2
    exit 1
fi
dpkg-deb -x "${debs[0]}" "$scratch/root"

if [[ ! -x $scratch/root/usr/sbin/vsftpd ]]; then
    echo "fetch-vsftpd: the package holds no usr/sbin/vsftpd" >&2
    exit 1
fi
if ! loadable "$scratch/root/usr/sbin/vsftpd"; then
    echo "fetch-vsftpd: vsftpd's libraries are missing; install them:" >&2
    ldd "$scratch/root/usr/sbin/vsftpd" | grep 'not found' >&2
    echo "(apt-get install libpam0g libwrap0 libssl3 libcap2)" >&2
    exit 1
fi

# Swap the new tree in whole, so a half-unpacked prefix is never seen.
rm -rf "$prefix"
mv "$scratch/root" "$prefix"
echo "fetch-vsftpd: unpacked $(basename "${debs[0]}") into $prefix"
