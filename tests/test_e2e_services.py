"""One real daemon per family, end to end: vsftpd (FTP), Dovecot (IMAP, POP3, submission) and
Apache (HTTP basic authentication) failures become bans.

Each test builds a ``servicelab`` lab (the real service and rsyslogd in the server namespace,
an attacker and an innocent client in their own), starts the real ``bruteguard run`` in the
server namespace with the built-in jail of that service reading the service's real log, and
judges by behaviour: after ``maxretry`` wrong passwords the attacker's connections to the
service are refused or dropped, the right password included, while the innocent client still
logs in. Every lab is taken down afterwards, and the test checks that nothing of it is left.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bgdaemon import Bruteguard
from conftest import require_dovecot
from e2e_lab import FAMILIES, LabDaemons, address, banned, counted, service_jail
from labkit import poll_until
from servicelab import (
    APACHE,
    FETCH_VSFTPD,
    VSFTPD,
    ApacheLab,
    DovecotLab,
    LogTo,
    Protocol,
    ServiceLab,
    VsftpdLab,
)

pytestmark = pytest.mark.netns

MAXRETRY = 3


def _require_service(kind: type[ServiceLab]) -> None:
    """Fail (never skip) when the service's program is missing, saying how to get it."""
    if kind is VsftpdLab and not VSFTPD.is_file():
        pytest.fail(f"{VSFTPD} is missing: run `bash {FETCH_VSFTPD}` as root (CI does)")
    if kind is DovecotLab:
        require_dovecot()
    if kind is ApacheLab and not (Path(APACHE).is_file() and shutil.which("curl")):
        pytest.fail(f"{APACHE} or curl is missing: apt-get install apache2 curl (CI does)")


@pytest.fixture
def start_lab(
    lab_daemons: LabDaemons, tmp_path: Path
) -> Callable[..., tuple[ServiceLab, Bruteguard]]:
    """Start a service lab and bruteguard with the service's built-in jail on its log.

    Afterwards the lab (and with it bruteguard, which runs in its server namespace) stops,
    and no namespace or process of it may be left.
    """

    def start(kind: type[ServiceLab], log_to: LogTo) -> tuple[ServiceLab, Bruteguard]:
        _require_service(kind)
        lab = kind(tmp_path / f"{kind.__name__.lower()}-{log_to}", log_to=log_to)
        jail = {VsftpdLab: "vsftpd", DovecotLab: "dovecot", ApacheLab: "apache-auth"}[kind]
        jails = {"sshd": {"enabled": False}, jail: service_jail(lab.jail_log, MAXRETRY)}
        return lab_daemons.start(lab, jails, f"{jail}-bg.log")

    return start


def _failure_lines(lab: ServiceLab, family: str, protocol: Protocol | None = None) -> str:
    """An anchored pattern of the attacker's failure lines in the service's log."""
    attacker = re.escape(address(lab.clients["attacker"], family))
    user = re.escape(lab.user)
    if isinstance(lab, ApacheLab):
        # HTTP/2 requests run on mod_http2's secondary connections: "[remote …]".
        peer = "remote" if protocol == "h2c" else "client"
        return (
            rf"^\[[^]]+\] \[auth_basic:error\] \[pid \d+:tid \d+\] \[{peer} {attacker}:\d+\]"
            rf' AH01617: user {user}: authentication failure for "/private/": Password Mismatch$'
        )
    if isinstance(lab, VsftpdLab):
        # vsftpd's single dual-stack socket writes IPv4 peers IPv4-mapped.
        client = rf"(?:::ffff:)?{attacker}" if family == "ipv4" else attacker
        return rf'^.*\[{user}\] FAIL LOGIN: Client "{client}"$'
    return (
        rf"^.* imap-login: (?:Info: )?Disconnected: .*\(auth failed, (\d+) attempts in \d+ secs\): "
        rf"user=<{user}>, method=PLAIN, rip={attacker}, "
    )


def _refused_but_innocent_served(
    lab: ServiceLab, daemon: Bruteguard, family: str, ban: dict[str, Any]
) -> None:
    """The banned attacker cannot connect, not even with the right password; the innocent
    client, on the same network, still logs in."""
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    server = address(lab.server, family)
    assert ipaddress.ip_network(ban["ip"], strict=False).num_addresses == 1, ban
    poll_until(
        lambda: not lab.connects(attacker, server),
        10,
        f"the firewall to refuse {ban['ip']}",
        daemon.log,
    )
    right = lab.attempts(attacker, server, lab.user, lab.password, timeout=3)
    assert right == ["unreachable"], f"the banned attacker got {right}"
    assert lab.login(innocent, server), f"the innocent client was locked out\n{daemon.log()}"
    assert daemon.ban_of(address(innocent, family)) is None, daemon.log()


def _ban_is_proven(
    lab: ServiceLab, daemon: Bruteguard, family: str, jail: str, protocol: Protocol | None = None
) -> None:
    """MAXRETRY - 1 wrong passwords, each answered and logged by the real service, ban no
    one; the MAXRETRY-th does; then the attacker is refused and the innocent served."""
    attacker = lab.clients["attacker"]
    server, attacker_ip = address(lab.server, family), address(attacker, family)
    failed = _failure_lines(lab, family, protocol)

    outcomes = lab.fail_logins(attacker, server, MAXRETRY - 1, protocol=protocol)
    assert outcomes == ["rejected"] * (MAXRETRY - 1)
    lab.wait_for_jail_log(failed, count=MAXRETRY - 1)
    counted(daemon, jail, MAXRETRY - 1)
    assert daemon.ban_of(attacker_ip) is None, daemon.log()
    assert lab.connects(attacker, server), "banned before maxretry failures"

    assert lab.fail_logins(attacker, server, 1, protocol=protocol) == ["rejected"]
    lab.wait_for_jail_log(failed, count=MAXRETRY)
    ban = banned(lab, daemon, attacker_ip, jail)
    _refused_but_innocent_served(lab, daemon, family, ban)
    assert len(lab.jail_lines(failed)) == MAXRETRY, lab.diagnostics()
    counted(daemon, jail, MAXRETRY)


@pytest.mark.parametrize("log_to", ["file", "syslog"])
@pytest.mark.parametrize("family", FAMILIES)
def test_vsftpd_failed_logins_ban_the_attacker(start_lab, family: str, log_to: LogTo) -> None:
    """Debian's vsftpd.log, or syslog (where pam_unix adds a line per attempt)."""
    lab, daemon = start_lab(VsftpdLab, log_to)
    _ban_is_proven(lab, daemon, family, "vsftpd")


@pytest.mark.parametrize(
    ("family", "log_to"), [("ipv4", "syslog"), ("ipv6", "syslog"), ("ipv4", "file")]
)
def test_dovecot_failed_logins_ban_the_attacker(start_lab, family: str, log_to: LogTo) -> None:
    """Debian's mail.log (syslog), or Dovecot's own log_path file (the same text in
    another frame, so one family suffices: a Dovecot test takes ~20 s, its failure delays
    grow with every attempt and hold up the innocent neighbour's login too)."""
    lab, daemon = start_lab(DovecotLab, log_to)
    _ban_is_proven(lab, daemon, family, "dovecot")


def test_dovecot_counts_every_attempt_of_one_connection(start_lab) -> None:
    """A guesser trying MAXRETRY passwords on one IMAP connection gets one log line, which
    says how many attempts it made: that one line bans."""
    lab, daemon = start_lab(DovecotLab, "syslog")
    attacker = lab.clients["attacker"]
    server = lab.server.ipv4
    outcomes = lab.fail_logins(attacker, server, MAXRETRY, mode="session")
    assert outcomes == ["rejected"] * MAXRETRY
    (line,) = lab.wait_for_jail_log(_failure_lines(lab, "ipv4"))
    assert f"(auth failed, {MAXRETRY} attempts in " in line
    ban = banned(lab, daemon, attacker.ipv4, "dovecot")
    _refused_but_innocent_served(lab, daemon, "ipv4", ban)
    counted(daemon, "dovecot", MAXRETRY)


def test_dovecot_pop3_and_submission_failures_ban_the_attacker(start_lab) -> None:
    """POP3's and submission's login processes write their own lines (``pop3-login``,
    ``submission-login``): a wrong password over each, then one over IMAP, are MAXRETRY
    attempts of the one dovecot jail, which bans on every port it guards."""
    for protocol in DovecotLab.PORTS:
        if not DovecotLab.speaks(protocol):
            pytest.fail(f"the test needs dovecot-{protocol}d (apt-get install; CI installs it)")
    lab, daemon = start_lab(DovecotLab, "syslog")
    attacker = lab.clients["attacker"]
    server = lab.server.ipv4
    user, rip = re.escape(lab.user), re.escape(attacker.ipv4)
    for seen, protocol in enumerate(DovecotLab.PORTS, start=1):
        assert lab.fail_logins(attacker, server, 1, protocol=protocol) == ["rejected"]
        lab.wait_for_jail_log(
            rf"^.* dovecot: {protocol}-login: Disconnected: Aborted login by logging out"
            rf" \(auth failed, 1 attempts in \d+ secs\): user=<{user}>, method=PLAIN,"
            rf" rip={rip}, "
        )
        counted(daemon, "dovecot", seen)
    assert daemon.ban_of(attacker.ipv4) is None, daemon.log()
    assert lab.fail_logins(attacker, server, 1) == ["rejected"]
    ban = banned(lab, daemon, attacker.ipv4, "dovecot")
    _refused_but_innocent_served(lab, daemon, "ipv4", ban)
    for port in DovecotLab.PORTS.values():
        assert not attacker.tcp_connect(server, port, timeout=1.5), f"port {port} still open"
        assert lab.clients["innocent"].tcp_connect(server, port, timeout=1.5), port
    counted(daemon, "dovecot", MAXRETRY)


@pytest.mark.parametrize(
    ("family", "protocol"), [("ipv4", "h2c"), ("ipv6", "h2c"), ("ipv4", "http")]
)
def test_apache_failed_logins_ban_the_attacker(start_lab, family: str, protocol: Protocol) -> None:
    """Debian's Apache writes a wrong basic-auth password as AH01617 in error.log, with
    ``[client ADDR:PORT]`` over HTTP/1.1 and ``[remote ADDR:PORT]`` over HTTP/2: both ban,
    and the innocent client (HTTP/1.1) still gets in."""
    lab, daemon = start_lab(ApacheLab, "file")
    _ban_is_proven(lab, daemon, family, "apache-auth", protocol)
