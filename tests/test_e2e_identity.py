"""Hostnames in logs against the real thing: pure-ftpd resolving clients through a DNS server
whose records the attacker chose, and bruteguard banning the address really connected.

Each test builds an ``FtpLab`` (pure-ftpd with name resolution on, rsyslogd and dnsmasq in
the server namespace; an attacker and an innocent client), starts the real
``bruteguard run`` in the server namespace (nftables enforcer, the firewall log of new
connections, the lab's DNS as resolver) and judges by behaviour: the attacker's connection
to port 21 is refused, the innocent host still connects, whatever the PTR records say.
fail2ban's own pure-ftpd filter, imported as a jail's filter, is held to the same rules.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bgdaemon import Bruteguard
from ftplab import FTP_PORT, FtpLab
from netns import Host
from sshlab import poll_until

pytestmark = pytest.mark.netns

MAXRETRY = 3
FAMILIES = ["ipv4", "ipv6"]
# Ours, and fail2ban's filter for the same service read from the installed fail2ban package.
FILTERS = ["pure-ftpd", "fail2ban:pure-ftpd"]


def _address(host: Host, family: str) -> str:
    return host.ipv4 if family == "ipv4" else host.ipv6


@pytest.fixture
def start_lab(
    netns_root: None,
    tmp_path: Path,
    bruteguard_exe: Path,
    make_config: Callable[..., Path],
) -> Iterator[Callable[[FtpLab], Bruteguard]]:
    """Start a prepared FtpLab and bruteguard watching its log; both stop afterwards."""
    labs: list[FtpLab] = []

    def start(lab: FtpLab, filter_name: str = "pure-ftpd") -> Bruteguard:
        lab.__enter__()
        labs.append(lab)
        config = make_config(
            identity={"nameservers": [lab.dns_server], "dns_timeout": "2s", "window": "30s"},
            jails={
                "sshd": {"enabled": False},
                "pure-ftpd": {
                    "filter": filter_name,
                    "backend": "file",
                    "logpath": [str(lab.log_path)],
                    "port": [FTP_PORT],
                    "maxretry": MAXRETRY,
                    "findtime": "10m",
                    "bantime": "300s",
                },
            },
        )
        daemon = Bruteguard(bruteguard_exe, config, lab.server, tmp_path / "bruteguard.log")
        daemon.start()
        return daemon

    yield start
    for lab in labs:
        lab.close()  # kills bruteguard too: it runs in the lab's server namespace


def _banned(daemon: Bruteguard, lab: FtpLab, address: str) -> None:
    """Wait until ``address`` is banned; fail with everything a reader needs if not."""
    poll_until(
        lambda: daemon.ban_of(address) is not None,
        30,
        f"a ban of {address}",
        lambda: f"{daemon.log()}\n--- lab:\n{lab.diagnostics()}",
    )


def _status(daemon: Bruteguard) -> dict:
    return json.loads(daemon.cli("status", "--json").stdout)


@pytest.mark.parametrize(
    ("family", "filter_name"), [(f, "pure-ftpd") for f in FAMILIES] + [("ipv4", FILTERS[1])]
)
def test_a_ptr_without_an_a_record_cannot_hide_the_attacker(
    start_lab: Callable[..., Bruteguard], tmp_path: Path, family: str, filter_name: str
) -> None:
    """fail2ban's default (usedns = warn) skips these lines for ever; bruteguard bans the
    peer that was connected, every time, by its real address."""
    lab = FtpLab(tmp_path / "ftplab")
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    name = f"nx-{secrets.token_hex(4)}.attacker.test"
    attacker_address = _address(attacker, family)
    server = _address(lab.server, family)
    lab.ptr[attacker_address] = name
    daemon = start_lab(lab, filter_name)
    assert lab.resolve_a(name) == [] and lab.resolve_aaaa(name) == []

    assert lab.ftp_fail_logins(attacker, MAXRETRY, address=server).rejected == MAXRETRY
    lines = lab.wait_for_log(rf"^.*\(\?@{re.escape(name)}\) \[WARNING\] Authentication failed")
    assert not any(attacker_address in line for line in lines)  # only the name is written
    _banned(daemon, lab, attacker_address)

    assert not lab.ftp_connects(attacker, address=server), "the attacker still connects"
    assert lab.ftp_login(innocent, address=server), "the innocent host was locked out"
    jail = next(j for j in _status(daemon)["jails"] if j["name"] == "pure-ftpd")
    assert jail["banned"] == [attacker_address]
    assert jail["unattributed"] == 0


@pytest.mark.parametrize(
    "ptr_of_attacker",
    ["mail.innocent.test", "the innocent's address"],
    ids=["name-pointing-at-innocent", "ptr-spelling-innocents-address"],
)
@pytest.mark.parametrize("filter_name", FILTERS)
def test_a_ptr_naming_a_connected_innocent_bans_the_attacker_only(
    start_lab: Callable[..., Bruteguard], tmp_path: Path, ptr_of_attacker: str, filter_name: str
) -> None:
    """The attacker's PTR names the innocent host (whose A record is real), or spells its
    address, while the innocent host is logged in: resolving the name, or trusting an
    address pure-ftpd wrote, would ban the victim."""
    lab = FtpLab(tmp_path / "ftplab")
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    name = innocent.ipv4 if ptr_of_attacker == "the innocent's address" else ptr_of_attacker
    lab.ptr[attacker.ipv4] = name
    if name == "mail.innocent.test":
        lab.a[name] = innocent.ipv4
    daemon = start_lab(lab, filter_name)

    session = lab.ftp_attempts(innocent, lab.user, lab.password, hold=True)
    assert session.outcomes == ["accepted"]  # the innocent is connected the whole time
    try:
        assert lab.ftp_fail_logins(attacker, MAXRETRY).rejected == MAXRETRY
        lab.wait_for_log(
            rf"^.*\(\?@{re.escape(name)}\) \[WARNING\] Authentication failed", count=MAXRETRY
        )
        _banned(daemon, lab, attacker.ipv4)
        assert not lab.ftp_connects(attacker), "the attacker still connects"
        assert daemon.ban_of(innocent.ipv4) is None, daemon.log()
        assert lab.ftp_login(innocent), "the innocent host was locked out"
    finally:
        session.release()
    assert "reverse-matched" in daemon.log()  # two peers were connected: DNS told them apart
