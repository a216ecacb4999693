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
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bgdaemon import Bruteguard
from conftest import require_dovecot
from labkit import poll_until
from netns import Host, existing_namespaces
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
SETTLE = 1.0  # seconds the daemon gets to read on before a count is taken as final
FAMILIES = ["ipv4", "ipv6"]


def _address(host: Host, family: str) -> str:
    return host.ipv4 if family == "ipv4" else host.ipv6


def _require_service(kind: type[ServiceLab]) -> None:
    """Fail (never skip) when the service's program is missing, saying how to get it."""
    if kind is VsftpdLab and not VSFTPD.is_file():
        pytest.fail(f"{VSFTPD} is missing: run `bash {FETCH_VSFTPD}` as root (CI does)")
    if kind is DovecotLab:
        require_dovecot()
    if kind is ApacheLab and not (Path(APACHE).is_file() and shutil.which("curl")):
        pytest.fail(f"{APACHE} or curl is missing: apt-get install apache2 curl (CI does)")


def _leftovers(lab: ServiceLab) -> list[str]:
    """What of a closed lab still exists: namespaces, or processes naming its directory."""
    left = sorted({host.name for host in lab.lab.hosts} & existing_namespaces())
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").replace("\0", " ")
        except OSError:
            continue
        if str(lab.workdir) in argv:
            left.append(argv)
    return left


@pytest.fixture
def start_lab(
    netns_root: None,
    tmp_path: Path,
    bruteguard_exe: Path,
    make_config: Callable[..., Path],
) -> Iterator[Callable[..., tuple[ServiceLab, Bruteguard]]]:
    """Start a service lab and bruteguard with the service's built-in jail on its log.

    Afterwards the lab (and with it bruteguard, which runs in its server namespace) stops,
    and no namespace or process of it may be left.
    """
    labs: list[ServiceLab] = []

    def start(kind: type[ServiceLab], log_to: LogTo) -> tuple[ServiceLab, Bruteguard]:
        _require_service(kind)
        lab = kind(tmp_path / f"{kind.__name__.lower()}-{log_to}", log_to=log_to)
        labs.append(lab)
        lab.__enter__()
        jail = {VsftpdLab: "vsftpd", DovecotLab: "dovecot", ApacheLab: "apache-auth"}[kind]
        config = make_config(
            jails={
                "sshd": {"enabled": False},
                jail: {
                    "enabled": True,
                    "logpath": [str(lab.jail_log)],
                    "maxretry": MAXRETRY,
                    "findtime": "10m",
                    "bantime": "300s",
                },
            }
        )
        daemon = Bruteguard(bruteguard_exe, config, lab.server, tmp_path / f"{jail}-bg.log")
        daemon.start()
        return lab, daemon

    yield start
    for lab in labs:
        lab.close()
    for lab in labs:
        assert not _leftovers(lab), f"the lab left these behind: {_leftovers(lab)}"


def _banned(lab: ServiceLab, daemon: Bruteguard, address: str, jail: str) -> dict[str, Any]:
    """Wait until ``address`` is banned in ``jail``; fail with both logs if not."""
    ban = poll_until(
        lambda: daemon.ban_of(address),
        30,
        f"a ban of {address}",
        lambda: f"{daemon.log()}\n--- lab:\n{lab.diagnostics()}",
    )
    assert ban["jail"] == jail, ban
    return ban


def _failures(daemon: Bruteguard, jail: str) -> int:
    """The failures the daemon has counted in ``jail`` (``status --json``)."""
    status = json.loads(daemon.cli("status", "--json").stdout)
    return next(j["failures"] for j in status["jails"] if j["name"] == jail)


def _counted(daemon: Bruteguard, jail: str, count: int) -> None:
    """Wait until ``jail`` has counted ``count`` failures; then, after the daemon had time
    to read on, it must still be exactly ``count`` (one attempt is counted once)."""
    poll_until(
        lambda: _failures(daemon, jail) >= count, 15, f"{count} failures counted", daemon.log
    )
    time.sleep(SETTLE)
    assert _failures(daemon, jail) == count, daemon.log()


def _failure_lines(lab: ServiceLab, family: str, protocol: Protocol | None = None) -> str:
    """An anchored pattern of the attacker's failure lines in the service's log."""
    attacker = re.escape(_address(lab.clients["attacker"], family))
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
    server = _address(lab.server, family)
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
    assert daemon.ban_of(_address(innocent, family)) is None, daemon.log()


def _ban_is_proven(
    lab: ServiceLab, daemon: Bruteguard, family: str, jail: str, protocol: Protocol | None = None
) -> None:
    """MAXRETRY - 1 wrong passwords, each answered and logged by the real service, ban no
    one; the MAXRETRY-th does; then the attacker is refused and the innocent served."""
    attacker = lab.clients["attacker"]
    server, attacker_ip = _address(lab.server, family), _address(attacker, family)
    failed = _failure_lines(lab, family, protocol)

    outcomes = lab.fail_logins(attacker, server, MAXRETRY - 1, protocol=protocol)
    assert outcomes == ["rejected"] * (MAXRETRY - 1)
    lab.wait_for_jail_log(failed, count=MAXRETRY - 1)
    _counted(daemon, jail, MAXRETRY - 1)
    assert daemon.ban_of(attacker_ip) is None, daemon.log()
    assert lab.connects(attacker, server), "banned before maxretry failures"

    assert lab.fail_logins(attacker, server, 1, protocol=protocol) == ["rejected"]
    lab.wait_for_jail_log(failed, count=MAXRETRY)
    ban = _banned(lab, daemon, attacker_ip, jail)
    _refused_but_innocent_served(lab, daemon, family, ban)
    assert len(lab.jail_lines(failed)) == MAXRETRY, lab.diagnostics()
    _counted(daemon, jail, MAXRETRY)


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
    ban = _banned(lab, daemon, attacker.ipv4, "dovecot")
    _refused_but_innocent_served(lab, daemon, "ipv4", ban)
    _counted(daemon, "dovecot", MAXRETRY)


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
    user, address = re.escape(lab.user), re.escape(attacker.ipv4)
    for counted, protocol in enumerate(DovecotLab.PORTS, start=1):
        assert lab.fail_logins(attacker, server, 1, protocol=protocol) == ["rejected"]
        lab.wait_for_jail_log(
            rf"^.* dovecot: {protocol}-login: Disconnected: Aborted login by logging out"
            rf" \(auth failed, 1 attempts in \d+ secs\): user=<{user}>, method=PLAIN,"
            rf" rip={address}, "
        )
        _counted(daemon, "dovecot", counted)
    assert daemon.ban_of(attacker.ipv4) is None, daemon.log()
    assert lab.fail_logins(attacker, server, 1) == ["rejected"]
    ban = _banned(lab, daemon, attacker.ipv4, "dovecot")
    _refused_but_innocent_served(lab, daemon, "ipv4", ban)
    for port in DovecotLab.PORTS.values():
        assert not attacker.tcp_connect(server, port, timeout=1.5), f"port {port} still open"
        assert lab.clients["innocent"].tcp_connect(server, port, timeout=1.5), port
    _counted(daemon, "dovecot", MAXRETRY)


@pytest.mark.parametrize(
    ("family", "protocol"), [("ipv4", "h2c"), ("ipv6", "h2c"), ("ipv4", "http")]
)
def test_apache_failed_logins_ban_the_attacker(start_lab, family: str, protocol: Protocol) -> None:
    """Debian's Apache writes a wrong basic-auth password as AH01617 in error.log, with
    ``[client ADDR:PORT]`` over HTTP/1.1 and ``[remote ADDR:PORT]`` over HTTP/2: both ban,
    and the innocent client (HTTP/1.1) still gets in."""
    lab, daemon = start_lab(ApacheLab, "file")
    _ban_is_proven(lab, daemon, family, "apache-auth", protocol)
