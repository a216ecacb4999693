"""The FTP lab itself: pure-ftpd logs the names the lab's DNS gives, and nothing leaks out.

These prove the ground the hostname-attribution end-to-end tests stand on: the name in the
log comes from the PTR record the test chose (not from the client's address), an A record
may point a name at an innocent host without that host pointing back, real logins work,
and closing the lab leaves no namespace, daemon or changed /etc file behind.
"""

from __future__ import annotations

import re
import secrets
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ftplab import FtpLab, process_alive
from netns import existing_namespaces, require_root_netns

pytestmark = pytest.mark.netns

# Program → the Debian package that provides it.
FTPLAB_TOOLS = {
    "pure-ftpd": "pure-ftpd",
    "pure-pw": "pure-ftpd",
    "dnsmasq": "dnsmasq-base",
    "openssl": "openssl",
    "rsyslogd": "rsyslog",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "ss": "iproute2",
}

# pure-ftpd's session prefix: ``(user@host)``, ``?`` before a login succeeded.
_FAILED = (
    r"^.* pure-ftpd\[\d+\]: \(\?@{host}\) \[WARNING\] Authentication failed for user \[{user}\]$"
)


def _require_tools() -> None:
    require_root_netns()
    missing = sorted(
        {
            package
            for tool, package in FTPLAB_TOOLS.items()
            if not (shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin"))
        }
    )
    if missing:
        pytest.fail(f"the FTP lab needs these Debian packages: {' '.join(missing)}")


def _mentions(lab: FtpLab, ip: str) -> list[str]:
    """Log lines naming ``ip`` as a whole address (192.0.2.1 is not in 192.0.2.10)."""
    return lab.find_lines(rf"^.*(?<![0-9A-Fa-f:.]){re.escape(ip)}(?![0-9A-Fa-f:.])")


def test_a_ptr_name_without_any_address_is_logged_instead_of_the_ip(tmp_path: Path) -> None:
    _require_tools()
    name = f"nx-{secrets.token_hex(4)}.attacker.test"
    lab = FtpLab(tmp_path)
    attacker = lab.clients["attacker"]
    lab.ptr[attacker.ipv4] = name  # only IPv4 gets a name; IPv6 stays anonymous
    with lab:
        assert lab.resolve_ptr(attacker.ipv4) == [name]
        assert lab.resolve_a(name) == []
        assert lab.resolve_aaaa(name) == []
        assert lab.resolve_ptr(attacker.ipv6) == []
        # What pure-ftpd's own resolver sees, inside its mount namespace.
        assert lab.libc_name(attacker.ipv4) == name

        with ThreadPoolExecutor(2) as pool:
            over_v4 = pool.submit(lab.ftp_fail_logins, attacker, 1)
            over_v6 = pool.submit(lab.ftp_fail_logins, attacker, 1, address=lab.server.ipv6)
            assert over_v4.result().outcomes == ["rejected"]
            assert over_v6.result().outcomes == ["rejected"]

        user = re.escape(lab.user)
        lab.wait_for_log(_FAILED.format(host=re.escape(name), user=user))
        # The address without a PTR is logged as itself: the lab names only what it was told.
        lab.wait_for_log(_FAILED.format(host=re.escape(attacker.ipv6), user=user))
        assert len(lab.find_lines(_FAILED.format(host=r"[^)]*", user=user))) == 2
        assert _mentions(lab, attacker.ipv4) == []


def test_a_name_can_point_at_an_innocent_host_that_does_not_point_back(
    tmp_path: Path,
) -> None:
    _require_tools()
    name = "mail.innocent.test"
    lab = FtpLab(tmp_path)
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    lab.ptr[attacker.ipv4] = name
    lab.a[name] = innocent.ipv4
    with lab:
        assert lab.resolve_ptr(attacker.ipv4) == [name]
        assert lab.resolve_a(name) == [innocent.ipv4]
        assert lab.resolve_aaaa(name) == []  # NODATA, not a made-up address
        assert lab.resolve_ptr(innocent.ipv4) == []  # the A record made no PTR
        assert lab.libc_name(innocent.ipv4) == ""

        assert lab.ftp_fail_logins(attacker, 1).outcomes == ["rejected"]
        lines = lab.wait_for_log(_FAILED.format(host=re.escape(name), user=re.escape(lab.user)))
        assert len(lines) == 1
        # The log names the innocent host's name; neither real address appears in it.
        assert _mentions(lab, attacker.ipv4) == []
        assert _mentions(lab, innocent.ipv4) == []


def test_a_ptr_that_spells_an_innocent_address_is_logged_as_that_address(
    tmp_path: Path,
) -> None:
    """pure-ftpd (through glibc) logs a PTR name verbatim, even one that reads as an IP."""
    _require_tools()
    lab = FtpLab(tmp_path)
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    lab.ptr[attacker.ipv4] = innocent.ipv4
    with lab:
        assert lab.libc_name(attacker.ipv4) == innocent.ipv4
        assert lab.ftp_fail_logins(attacker, 1).outcomes == ["rejected"]
        # The innocent host never connected, yet the failure carries its address.
        host = re.escape(innocent.ipv4)
        lab.wait_for_log(_FAILED.format(host=host, user=re.escape(lab.user)))
        assert _mentions(lab, attacker.ipv4) == []


def test_the_right_password_logs_in_and_the_lab_leaves_nothing_behind(tmp_path: Path) -> None:
    _require_tools()
    resolv_conf = Path("/etc/resolv.conf").read_bytes()
    lab = FtpLab(tmp_path, log_pid=False, timestamps="rfc3339", facility="auth")
    innocent = lab.clients["innocent"]
    with lab:
        names = set(lab.lab.namespaces)
        launcher_pid = lab.launcher_pid
        assert lab.ftp_connects(innocent)
        assert lab.ftp_connects(innocent, lab.server.ipv6)
        assert lab.ftp_login(innocent)
        assert lab.ftp_login(innocent, address=lab.server.ipv6)
        assert not lab.ftp_login(innocent, password=lab.password + "x")
        # Without -1 pure-ftpd logs no pid; no PTR, so the session is named by its address.
        for ip in (innocent.ipv4, innocent.ipv6):
            lab.wait_for_log(
                rf"^\d{{4}}-\d\d-\d\dT[0-9:.]+[+-]\d\d:\d\d \S+ pure-ftpd: "
                rf"\(\?@{re.escape(ip)}\) \[INFO\] {re.escape(lab.user)} is now logged in$"
            )
        # The lab's resolver lives only in the lab's mount namespace.
        assert Path("/etc/resolv.conf").read_bytes() == resolv_conf
    assert not names & existing_namespaces()
    assert launcher_pid is not None and not process_alive(launcher_pid)
    assert Path("/etc/resolv.conf").read_bytes() == resolv_conf


def test_records_that_would_bend_dnsmasq_options_are_refused(tmp_path: Path) -> None:
    bad_records = [
        {"ptr": {"192.0.2.10": "a/b.test"}},
        {"ptr": {"192.0.2.10": "x.test,2001:db8::9"}},
        {"a": {"x.test\n": "192.0.2.10"}},
        {"a": {"ok.test": "192.0.2.999"}},
        {"a": {"ok.test": []}},
    ]
    for records in bad_records:
        lab = FtpLab(tmp_path, **records)
        with pytest.raises(ValueError), lab:
            pass
        assert lab.lab.namespaces == []  # refused before any namespace was made
