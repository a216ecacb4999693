#!/bin/bash
# Puts real server binaries where tests/maillab.py looks for them, without installing them.
#
# Some servers' Debian packages conflict with packages the tests need installed: Cyrus IMAP
# with Dovecot (both provide imap-server), Sendmail and OpenSMTPD with every other MTA. So
# their packages are only downloaded (apt checks them against the signed archive index) and
# unpacked into a private prefix each:
#   tests/fetch-unpacked.sh                  every lab's set (below)
#   tests/fetch-unpacked.sh NAME BINARIES PACKAGE...
#                                            PACKAGEs unpacked together into ROOT/NAME
# with ROOT /var/cache/bruteguard-tests (BRUTEGUARD_UNPACKED overrides it); BINARIES are the
# comma-separated paths (in the prefix) the labs run. Nothing is configured, no service or
# user is created; the libraries those binaries need must be installed (.ci/run's PACKAGES)
# and are checked with ldd. Idempotent: a prefix whose
# packages are all there in the wanted versions is left as it is. Needs the network only
# when something is missing or outdated.
set -euo pipefail

root=${BRUTEGUARD_UNPACKED:-/var/cache/bruteguard-tests}
if [[ $root != /* ]]; then
    echo "fetch-unpacked: $root is not an absolute path" >&2
    exit 2
fi

# loadable PREFIX BINARY: true if every shared library BINARY needs is found (the prefix's
# own library directory included).
loadable() {
    local out
    out=$(LD_LIBRARY_PATH=$1/usr/lib/x86_64-linux-gnu ldd "$2" 2>&1) || return 1
    ! grep -q 'not found' <<<"$out"
}

# unpack NAME BINARIES PACKAGE...: download the PACKAGEs and unpack them together into
# ROOT/NAME; every one of the comma-separated BINARIES must be there and loadable.
unpack() {
    local name=$1 binaries
    IFS=, read -r -a binaries <<<"$2"
    shift 2
    local prefix=$root/$name stamp want
    stamp=$prefix/.packages
    want=$(apt-cache policy "$@" | awk '/^[^ ]/ {p=$1} /Candidate:/ {print p, $2}')
    if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
        echo "fetch-unpacked: $prefix is present ($*)"
        return 0
    fi
    mkdir -p "$root"
    local scratch
    scratch=$(mktemp -d "$root/.fetch-$name.XXXXXX")
    # apt's download user (_apt) must be able to write the .debs into the directory.
    chmod 0755 "$scratch"
    mkdir "$scratch/deb" "$scratch/root"
    if id _apt >/dev/null 2>&1; then
        chown _apt "$scratch/deb"
    fi
    (cd "$scratch/deb" && apt-get download "$@")
    local deb
    for deb in "$scratch"/deb/*.deb; do
        dpkg-deb -x "$deb" "$scratch/root"
    done
    local binary bad=0
    for binary in "${binaries[@]}"; do
        binary=$scratch/root/${binary#/}
        if [[ ! -x $binary ]]; then
            echo "fetch-unpacked: the packages hold no ${binary#"$scratch/root"}" >&2
            bad=1
        elif ! loadable "$scratch/root" "$binary"; then
            echo "fetch-unpacked: $binary lacks libraries:" >&2
            LD_LIBRARY_PATH=$scratch/root/usr/lib/x86_64-linux-gnu ldd "$binary" |
                grep 'not found' >&2
            bad=1
        fi
    done
    if ((bad)); then
        rm -rf "$scratch"
        echo "fetch-unpacked: install the libraries above (.ci/run's PACKAGES lists them)" >&2
        return 1
    fi
    printf '%s' "$want" >"$scratch/root/.packages"
    # Swap the new tree in whole, so a half-unpacked prefix is never seen.
    rm -rf "$prefix"
    mv "$scratch/root" "$prefix"
    rm -rf "$scratch"
    echo "fetch-unpacked: unpacked $* into $prefix"
}

if (($#)); then
    unpack "$@"
else
    cyrus=usr/lib/cyrus/bin
    unpack cyrus-imapd "$cyrus/master,$cyrus/imapd,$cyrus/pop3d" \
        cyrus-common cyrus-imapd cyrus-pop3d
    unpack sendmail usr/libexec/sendmail/sendmail sendmail-bin sendmail-cf
    unpack opensmtpd usr/sbin/smtpd opensmtpd
fi
