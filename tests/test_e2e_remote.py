"""Remote-access daemons end to end: dropbear, OpenVPN and cockpit-ws failures become bans.

Each test builds a ``remotelab`` lab (the real daemon and rsyslogd in the server namespace,
an attacker and an innocent client in their own), starts the real ``bruteguard run`` in the
server namespace with the service's built-in jail reading the log the daemon really writes,
and judges by behaviour: after ``maxretry`` failed logins (of the kinds the service logs
differently) the attacker's connections are refused, the right password included, while
the innocent client still logs in; and the daemon counted each attempt exactly once.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bgdaemon import Bruteguard
from bruteguard.match.signatures import cockpit
from e2e_lab import FAMILIES, LabDaemons, address, banned, counted, failures, service_jail
from labkit import poll_until
from remotelab import CockpitLab, DropbearLab, OpenvpnLab, RemoteLab
from servicelab import ServiceLab

pytestmark = pytest.mark.netns

MAXRETRY = 3


@pytest.fixture
def start_lab(
    lab_daemons: LabDaemons, tmp_path: Path
) -> Callable[..., tuple[RemoteLab, Bruteguard]]:
    """Start a lab and bruteguard with ``jail`` (built in) on the lab's syslog file.

    Afterwards the lab (and with it bruteguard, which runs in its server namespace) stops,
    and no namespace or process of it may be left.
    """

    def start(
        kind: type[RemoteLab], jail: str, lab_options: dict[str, Any] | None = None, **settings: Any
    ) -> tuple[RemoteLab, Bruteguard]:
        why = kind.missing()
        if why:
            pytest.fail(why)  # never skip: a skipped end-to-end test proves nothing
        lab = kind(tmp_path / kind.__name__.lower(), **(lab_options or {}))
        table = service_jail(lab.jail_log, MAXRETRY, port=[lab.PORT], **settings)
        return lab_daemons.start(lab, {"sshd": {"enabled": False}, jail: table}, f"{jail}-bg.log")

    return start


def _banned(lab: ServiceLab, daemon: Bruteguard, addr: str, jail: str) -> dict[str, Any]:
    """Wait until ``addr`` is banned in ``jail``, the address alone."""
    ban = banned(lab, daemon, addr, jail)
    assert ipaddress.ip_network(ban["ip"], strict=False).num_addresses == 1, ban
    return ban


def _enforced(lab: ServiceLab, address: str) -> bool:
    """Whether the server's nftables ruleset holds ``address`` (the ban is in the kernel).

    Asked before the attacker tries again: a connection that got through before the ban
    was enforced would write a line of its own (dropbear logs every connection's end)."""
    ruleset = lab.server.run(["nft", "list", "ruleset"]).stdout
    alone = rf"(?<![0-9A-Fa-f:.]){re.escape(address)}(?![0-9A-Fa-f:.])"
    return re.search(alone, ruleset) is not None


def _refused_but_innocent_served(lab: ServiceLab, daemon: Bruteguard, family: str) -> None:
    """The banned attacker cannot connect, not even with the right password; the innocent
    client, on the same network, still logs in."""
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    server = address(lab.server, family)
    attacker_ip = address(attacker, family)
    poll_until(lambda: _enforced(lab, attacker_ip), 10, "the ban in nftables", daemon.log)
    assert not lab.connects(attacker, server), "the banned attacker could still connect"
    right = lab.attempts(attacker, server, lab.user, lab.password, timeout=5)
    assert right == ["unreachable"], f"the banned attacker got {right}"
    assert lab.login(innocent, server), f"the innocent client was locked out\n{daemon.log()}"
    assert daemon.ban_of(address(innocent, family)) is None, daemon.log()


@pytest.mark.parametrize("family", FAMILIES)
def test_dropbear_failed_logins_ban_the_attacker(start_lab, family: str) -> None:
    """Wrong passwords of an existing account (``Bad password attempt``, then the exit line
    of the same connection, not counted again) and an unknown user (dropbear 2022.83 names
    the client only in ``Exit before auth``): each connection's attempt counts once."""
    lab, daemon = start_lab(DropbearLab, "dropbear")
    attacker = lab.clients["attacker"]
    server, attacker_ip = address(lab.server, family), address(attacker, family)
    client = re.escape(attacker_ip)
    bad = rf"^.* dropbear\[\d+\]: Bad password attempt for '{lab.user}' from {client}:\d+$"
    exits = rf"^.* dropbear\[\d+\]: Exit before auth from <{client}:\d+>: "

    assert lab.fail_logins(attacker, server, MAXRETRY - 1) == ["rejected"] * (MAXRETRY - 1)
    lab.wait_for_jail_log(bad, count=MAXRETRY - 1)
    lab.wait_for_jail_log(exits, count=MAXRETRY - 1)
    counted(daemon, "dropbear", MAXRETRY - 1)
    assert daemon.ban_of(attacker_ip) is None, daemon.log()

    assert lab.attempts(attacker, server, "nosuchuser", "wrong") == ["rejected"]
    (line,) = lab.wait_for_jail_log(rf"{exits}Exited normally$", count=1)
    assert "nosuchuser" not in line
    _banned(lab, daemon, attacker_ip, "dropbear")
    _refused_but_innocent_served(lab, daemon, family)
    assert len(lab.jail_lines(bad)) == MAXRETRY - 1, lab.diagnostics()
    counted(daemon, "dropbear", MAXRETRY)


@pytest.mark.parametrize("family", FAMILIES)
def test_openvpn_failed_logins_ban_the_attacker(start_lab, family: str) -> None:
    """A real OpenVPN TCP server: refused passwords (``TLS Auth Error``) and a certificate
    of an unknown CA (``TLS handshake failed``, after ``VERIFY ERROR``) count one each."""
    lab, daemon = start_lab(OpenvpnLab, "openvpn", protocol="tcp")
    assert isinstance(lab, OpenvpnLab)
    attacker = lab.clients["attacker"]
    server, attacker_ip = address(lab.server, family), address(attacker, family)
    # mroute_addr_print: IPv4 with its port, IPv6 without
    prefix = rf"{re.escape(attacker_ip)}(?::\d+)?" if family == "ipv4" else re.escape(attacker_ip)
    refused = rf"^.* ovpn-server\[\d+\]: {prefix} TLS Auth Error: Auth Username/Password "
    handshake = rf"^.* ovpn-server\[\d+\]: {prefix} TLS Error: TLS handshake failed$"

    assert lab.fail_logins(attacker, server, MAXRETRY - 1) == ["rejected"] * (MAXRETRY - 1)
    lab.wait_for_jail_log(refused, count=MAXRETRY - 1)
    counted(daemon, "openvpn", MAXRETRY - 1)
    assert daemon.ban_of(attacker_ip) is None, daemon.log()

    outcome, said = lab.vpn_attempt(attacker, server, lab.user, lab.password, "rogue")
    assert outcome == "rejected", said
    lab.wait_for_jail_log(handshake, count=1)
    _banned(lab, daemon, attacker_ip, "openvpn")
    _refused_but_innocent_served(lab, daemon, family)
    assert len(lab.jail_lines(refused)) == MAXRETRY - 1, lab.diagnostics()
    counted(daemon, "openvpn", MAXRETRY)


def _status(daemon: Bruteguard) -> dict[str, Any]:
    return json.loads(daemon.cli("status", "--json").stdout)


def _wait_for_complete_evidence(daemon: Bruteguard) -> None:
    """Until a failure written now may be about any connection since the daemon started:
    cockpit's addresses are tied to real connections (conntrack), and a line's window
    reaches back ``cockpit.LOG_DELAY`` seconds and 1.5 s of slack from its stamp, which
    syslog cuts to the second."""
    evidence = _status(daemon)["identity"]
    assert evidence["evidence"] == "conntrack", evidence
    ready = evidence["complete_since"] + cockpit.LOG_DELAY + 3.5
    time.sleep(max(0.0, ready - time.time()))


@pytest.mark.parametrize("family", FAMILIES)
def test_cockpit_failed_logins_ban_the_attacker(start_lab, family: str) -> None:
    """cockpit-ws 287, logins through cockpit-session and PAM: pam_unix's line per refused
    password names the client, tied live to its real connection to 9090."""
    lab, daemon = start_lab(CockpitLab, "cockpit")
    attacker = lab.clients["attacker"]
    server, attacker_ip = address(lab.server, family), address(attacker, family)
    refused = (
        rf"^.* cockpit-session: pam_unix\(cockpit:auth\): authentication failure; .*"
        rf" rhost={re.escape(attacker_ip)}  user={lab.user}$"
    )
    _wait_for_complete_evidence(daemon)

    assert lab.fail_logins(attacker, server, MAXRETRY - 1) == ["rejected"] * (MAXRETRY - 1)
    lab.wait_for_jail_log(refused, count=MAXRETRY - 1)
    counted(daemon, "cockpit", MAXRETRY - 1)
    assert daemon.ban_of(attacker_ip) is None, daemon.log()

    assert lab.fail_logins(attacker, server, 1) == ["rejected"]
    _banned(lab, daemon, attacker_ip, "cockpit")
    _refused_but_innocent_served(lab, daemon, family)
    assert len(lab.jail_lines(refused)) == MAXRETRY, lab.diagnostics()
    counted(daemon, "cockpit", MAXRETRY)


def test_cockpit_forwarded_for_never_supplies_theaddress(start_lab) -> None:
    """cockpit-ws told to trust X-Forwarded-For (as behind a reverse proxy), reached
    directly: the attacker's header names the innocent, and cockpit writes the innocent's
    address as PAM's rhost. Nobody is banned for those lines (the innocent has no
    connection; the attacker is never taken instead); they are shown unattributed. Without
    the header the same attacker's failures name its own connection and ban it."""
    lab, daemon = start_lab(CockpitLab, "cockpit", lab_options={"forwarded_for": True})
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    server = lab.server.ipv4
    framed = (
        rf"^.* cockpit-session: pam_unix\(cockpit:auth\): authentication failure; .*"
        rf" rhost={re.escape(innocent.ipv4)}  user={lab.user}$"
    )
    _wait_for_complete_evidence(daemon)

    for _ in range(MAXRETRY + 1):
        outcome, said = lab.http_login(attacker, server, lab.user, "wrong", forwarded=innocent.ipv4)
        assert outcome == "rejected", said
    lab.wait_for_jail_log(framed, count=MAXRETRY + 1)
    poll_until(
        lambda: _status(daemon)["identity"]["unattributed"] >= MAXRETRY + 1,
        15,
        "the forged lines to be judged",
        daemon.log,
    )
    reasons = {u["reason"] for u in _status(daemon)["unattributed"] if u["name"] == innocent.ipv4}
    assert reasons == {"no real connection from that address (told by the client or a proxy?)"}
    assert daemon.bans() == [], daemon.log()
    assert failures(daemon, "cockpit") == 0, daemon.log()
    assert lab.login(innocent, server), "the innocent client was locked out"

    assert lab.fail_logins(attacker, server, MAXRETRY) == ["rejected"] * MAXRETRY
    _banned(lab, daemon, attacker.ipv4, "cockpit")
    _refused_but_innocent_served(lab, daemon, "ipv4")
    assert daemon.ban_of(innocent.ipv4) is None, daemon.log()
