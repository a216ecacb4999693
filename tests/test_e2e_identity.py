"""Hostnames in logs against the real thing: pure-ftpd resolving clients through a DNS server
whose records the attackers chose, and bruteguard banning only a real, fitting connection.

Each lab is an ``FtpLab`` (pure-ftpd with name resolution on, rsyslogd and dnsmasq in the
server namespace) with one innocent host and several attackers, each running one attack of
the threat model (docs/identity.md) at the same time: their names differ, so they cannot
help or hide each other. The real ``bruteguard run`` watches the log in the server
namespace (nftables, conntrack events, the lab's DNS). Verdicts are judged by behaviour: an
attacker's connection is refused, the innocent host still logs in. fail2ban's own
pure-ftpd filter, imported as the jail's filter, is held to the same rules.

* **company**: the innocent host is logged in the whole time, and its PTR and A records
  agree (``mail.innocent.test``). A *copier* takes that name for its own PTR; a *holder*
  idles past any "connected now" window, sends its password and resets before pure-ftpd
  logs; a *shaped* PTR reads like the innocent's address and has an A record to it; a
  *speller*'s PTR is the innocent's address itself; two *twins* share a PTR and attack one
  after the other. Then the innocent leaves, and the copier tries again.
* **forged**: the innocent host is offline. The copier forges a SYN from the innocent's
  address before each attempt; a holder resets as above, with a forged SYN before each
  password; a lone holder does it with nobody else around.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bgdaemon import Bruteguard
from bruteguard.match.signatures import pureftpd
from ftplab import FTP_PORT, FtpLab
from netns import Host
from sshlab import poll_until

pytestmark = pytest.mark.netns

MAXRETRY = 3
# Whoever is the only fitting real connection is banned within MAXRETRY + 3 failures.
EXTRA = 3
IDLE = 31.0  # past the 30 s "connected just before" window the old evidence used
# (family, filter): every attack in IPv4 through both filters, and in IPv6 through ours.
RUNS = [("ipv4", "pure-ftpd"), ("ipv6", "pure-ftpd"), ("ipv4", "fail2ban:pure-ftpd")]
RUN_IDS = ["ipv4", "ipv6", "ipv4-fail2ban"]
INNOCENT_NAME = "mail.innocent.test"


def _address(host: Host, family: str) -> str:
    return host.ipv4 if family == "ipv4" else host.ipv6


def _status(daemon: Bruteguard) -> dict:
    return json.loads(daemon.cli("status", "--json").stdout)


def _wait_for_complete_evidence(daemon: Bruteguard) -> None:
    """Until a failure written now may be about any connection since the daemon started
    (pure-ftpd writes one up to LOG_DELAY after its client left; before the daemon listened
    the kernel's table is the only record, and only of connections closed just before)."""
    evidence = _status(daemon)["identity"]
    assert evidence["evidence"] == "conntrack", evidence
    ready = evidence["complete_since"] + pureftpd.LOG_DELAY + 2
    time.sleep(max(0.0, ready - time.time()))


@pytest.fixture
def start_lab(
    netns_root: None,
    tmp_path: Path,
    bruteguard_exe: Path,
    make_config: Callable[..., Path],
) -> Iterator[Callable[[FtpLab, str], Bruteguard]]:
    """Start a prepared FtpLab and bruteguard watching its log; both stop afterwards."""
    labs: list[FtpLab] = []

    def start(lab: FtpLab, filter_name: str) -> Bruteguard:
        lab.__enter__()
        labs.append(lab)
        config = make_config(
            identity={"nameservers": [lab.dns_server], "dns_timeout": "2s"},
            jails={
                "sshd": {"enabled": False},
                "pure-ftpd": {
                    "filter": filter_name,
                    "backend": "file",
                    "logpath": [str(lab.log_path)],
                    "port": [FTP_PORT],
                    "maxretry": MAXRETRY,
                    "findtime": "10m",
                    "bantime": "600s",
                },
            },
        )
        daemon = Bruteguard(bruteguard_exe, config, lab.server, tmp_path / "bruteguard.log")
        daemon.start()
        _wait_for_complete_evidence(daemon)
        return daemon

    yield start
    for lab in labs:
        lab.close()  # kills bruteguard too: it runs in the lab's server namespace


class Attacks:
    """Runs each attacker's part in a thread of its own; collects failures for the end."""

    def __init__(self, lab: FtpLab, daemon: Bruteguard, family: str) -> None:
        self.lab, self.daemon, self.family = lab, daemon, family
        self.server = _address(lab.server, family)
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []

    def address(self, name: str) -> str:
        return _address(self.lab.clients[name], self.family)

    def fail(self, client: str, count: int) -> None:
        """``count`` wrong passwords, answered (each one logged line)."""
        result = self.lab.ftp_fail_logins(client, count, address=self.server)
        assert result.rejected == count, result.details

    def hold_and_reset(self, client: str, count: int, forge_from: str | None = None) -> None:
        if forge_from is not None:
            for _ in range(count):
                self.lab.forge_syn(client, self.address(forge_from), self.server)
        assert self.lab.ftp_hold_and_reset(client, count, IDLE, self.server) == count

    def start(self, part: Callable[[], None]) -> None:
        def run() -> None:
            try:
                part()
            except BaseException as error:  # reported by join()
                self._errors.append(error)

        thread = threading.Thread(target=run)
        thread.start()
        self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=IDLE + 180)
        assert not any(t.is_alive() for t in self._threads), "an attack did not finish"
        if self._errors:
            raise self._errors[0]

    def wait_for_failures(self, name: str, count: int) -> None:
        pattern = rf"^.*\(\?@{re.escape(name)}\) \[WARNING\] Authentication failed"
        self.lab.wait_for_log(pattern, timeout=60, count=count)

    def banned(self, client: str) -> None:
        """Wait until the client's address is banned and its connections refused."""
        address = self.address(client)
        poll_until(
            lambda: self.daemon.ban_of(address) is not None,
            30,
            f"a ban of {client} ({address})",
            lambda: f"{self.daemon.log()}\n--- lab:\n{self.lab.diagnostics()}",
        )
        assert not self.lab.ftp_connects(client, address=self.server), f"{client} connects"

    def not_banned(self, client: str) -> None:
        address = self.address(client)
        assert self.daemon.ban_of(address) is None, f"{client} banned:\n{self.daemon.log()}"


def _name(label: str) -> str:
    return f"{label}-{secrets.token_hex(3)}.attacker.test"


@pytest.mark.parametrize(("family", "filter_name"), RUNS, ids=RUN_IDS)
def test_with_the_innocent_connected_only_the_attackers_are_banned(
    start_lab: Callable[[FtpLab, str], Bruteguard], tmp_path: Path, family: str, filter_name: str
) -> None:
    roles = ("innocent", "copier", "holder", "shaped", "speller", "twin1", "twin2")
    lab = FtpLab(tmp_path / "ftplab", clients=roles)
    innocent = _address(lab.clients["innocent"], family)
    holder_name, twin_name = _name("nx-holder"), _name("twin")
    shaped_name = f"{lab.clients['innocent'].ipv4}.attacker.test"
    lab.ptr[innocent] = INNOCENT_NAME
    lab.a[INNOCENT_NAME] = innocent
    lab.a[shaped_name] = lab.clients["innocent"].ipv4
    names = {
        "copier": INNOCENT_NAME,
        "holder": holder_name,
        "shaped": shaped_name,
        "speller": lab.clients["innocent"].ipv4,  # no ":" in a host name the C library takes
        "twin1": twin_name,
        "twin2": twin_name,
    }
    for client, name in names.items():
        lab.ptr[_address(lab.clients[client], family)] = name
    daemon = start_lab(lab, filter_name)
    attacks = Attacks(lab, daemon, family)

    session = lab.ftp_attempts(
        "innocent", lab.user, lab.password, hold=True, address=attacks.server
    )
    assert session.outcomes == ["accepted"]  # logged in, and it stays connected
    try:
        attacks.start(lambda: attacks.hold_and_reset("holder", MAXRETRY))
        attacks.start(lambda: attacks.fail("copier", MAXRETRY + EXTRA))
        attacks.start(lambda: attacks.fail("shaped", MAXRETRY))
        attacks.start(lambda: attacks.fail("speller", MAXRETRY))

        def twins() -> None:
            # One PTR, two hosts: each is the only fitting connection while it attacks.
            attacks.fail("twin1", MAXRETRY)
            time.sleep(pureftpd.LOG_DELAY + 3)
            attacks.fail("twin2", MAXRETRY)

        attacks.start(twins)
        attacks.join()
        attacks.wait_for_failures(holder_name, MAXRETRY)
        for client in ("holder", "shaped", "speller", "twin1", "twin2"):
            attacks.banned(client)
        attacks.wait_for_failures(INNOCENT_NAME, MAXRETRY + EXTRA)
        attacks.not_banned("copier")  # it shares the innocent's name: nobody can tell
        attacks.not_banned("innocent")
        jail = next(j for j in _status(daemon)["jails"] if j["name"] == "pure-ftpd")
        assert jail["unattributed"] == MAXRETRY + EXTRA, "the copier's lines, shown as such"
        reasons = {
            u["reason"] for u in _status(daemon)["unattributed"] if u["name"] == INNOCENT_NAME
        }
        assert reasons == {"ambiguous: several real connections have that PTR"}
    finally:
        session.release()

    # The innocent has left: once its connection is out of pure-ftpd's logging delay, the
    # copier is the only fitting connection again.
    time.sleep(pureftpd.LOG_DELAY + 3)
    attacks.fail("copier", MAXRETRY)
    attacks.banned("copier")
    attacks.not_banned("innocent")
    assert lab.ftp_login("innocent", address=attacks.server), "the innocent was locked out"


@pytest.mark.parametrize(("family", "filter_name"), RUNS, ids=RUN_IDS)
def test_forged_syns_and_resets_never_frame_an_offline_innocent(
    start_lab: Callable[[FtpLab, str], Bruteguard], tmp_path: Path, family: str, filter_name: str
) -> None:
    lab = FtpLab(tmp_path / "ftplab", clients=("innocent", "copier", "holder", "alone"))
    innocent = _address(lab.clients["innocent"], family)
    holder_name, alone_name = _name("nx-holder"), _name("nx-alone")
    lab.ptr[innocent] = INNOCENT_NAME
    lab.a[INNOCENT_NAME] = innocent
    lab.ptr[_address(lab.clients["copier"], family)] = INNOCENT_NAME
    lab.ptr[_address(lab.clients["holder"], family)] = holder_name
    lab.ptr[_address(lab.clients["alone"], family)] = alone_name
    daemon = start_lab(lab, filter_name)
    attacks = Attacks(lab, daemon, family)
    lab.set_online("innocent", False)

    def copier() -> None:
        for _ in range(MAXRETRY):
            lab.forge_syn("copier", innocent, attacks.server)
            attacks.fail("copier", 1)

    attacks.start(copier)
    attacks.start(lambda: attacks.hold_and_reset("holder", MAXRETRY, forge_from="innocent"))
    attacks.start(lambda: attacks.hold_and_reset("alone", MAXRETRY))
    attacks.join()
    for client in ("copier", "holder", "alone"):
        attacks.banned(client)
    attacks.not_banned("innocent")
    lab.set_online("innocent", True, attacks.server)
    assert lab.ftp_login("innocent", address=attacks.server), "the innocent was locked out"
