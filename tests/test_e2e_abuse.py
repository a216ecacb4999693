"""The abuse desk inside the real daemon, judged by the firewall and the mail that left.

The real ``bruteguard run`` runs in a lab's server namespace with nftables. Beside it, in
the same namespace, ``abusekit.py`` serves a registry (RDAP on loopback) and an SMTP relay
(aiosmtpd) that writes what it receives to files. An attacker's failure gets it banned;
the registry records the firewall's ruleset the moment the lookup arrives (the ban must be
in it already); the complaint reaches the relay; a Postfix bounce of it delivered into the
desk's Maildir is read as a first sign that the contact is unreachable (dead, or full and
so paused): the attacker stays banned, but a bystander in the attacker's network who never
failed still connects, and no postmaster@ is written to. A block needs a second bounce from
a later, separate complaint (tests/test_abuse_desk.py follows that through the days).
"""

from __future__ import annotations

import email
import json
import mailbox
import subprocess
import sys
import time
from collections.abc import Iterator
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from abusekit import UNREACHABLE_WHOIS, bootstrap, free_port, postfix_bounce, rdap_network
from bgdaemon import Bruteguard
from netns import Lab
from sshlab import poll_until

pytestmark = pytest.mark.netns

PORT = 22
NETWORK = "192.0.2.8/29"  # the clients (192.0.2.10, .11), not the server (192.0.2.1)
CONTACT = "abuse@example.net"


@pytest.fixture
def lab(netns_root: None) -> Iterator[Lab]:
    with Lab(("attacker", "bystander")) as lab:
        lab.server.listen_tcp(PORT)
        yield lab


@pytest.fixture
def registry(lab: Lab, tmp_path: Path) -> Iterator[Path]:
    """RDAP and SMTP in the server namespace (its loopback), serving what the test wrote."""
    directory = tmp_path / "abuse"
    directory.mkdir()
    rdap_port, smtp_port = free_port(), free_port()
    (directory / "rdap.port").write_text(str(rdap_port))
    (directory / "smtp.port").write_text(str(smtp_port))
    routes = {
        path: json.loads(body)
        for path, body in bootstrap(f"http://127.0.0.1:{rdap_port}/rdap/", ["192.0.2.0/24"]).items()
    }
    network = rdap_network(NETWORK, "LAB-NET", "NL", CONTACT, "+31 20 555 0199")
    for client in lab.clients.values():
        routes[f"/rdap/ip/{client.ipv4}"] = network
    (directory / "routes.json").write_text(json.dumps(routes))
    kit = Path(__file__).with_name("abusekit.py")
    process = lab.server.popen(
        [sys.executable, str(kit), str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=(directory / "servers.log").open("wb"),
        cwd=str(kit.parent),
    )
    try:
        poll_until(
            lambda: (directory / "ready").exists() or process.poll() is not None,
            20,
            "the registry and relay to start",
        )
        assert process.poll() is None, (directory / "servers.log").read_text()
        yield directory
    finally:
        (directory / "stop").touch()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def daemon(
    lab: Lab, registry: Path, tmp_path: Path, bruteguard_exe: Path, make_config: Any
) -> Iterator[tuple[Bruteguard, Path]]:
    log = tmp_path / "auth.log"
    log.touch()
    config = make_config(
        jails={
            "sshd": {
                "backend": "file",
                "logpath": [str(log)],
                "maxretry": 1,
                "bantime": "300s",
                "subnet_maxretry": 0,
            }
        },
        abuse={
            "enabled": True,
            "mode": "send",
            "sender": "bruteguard@example.org",
            "org": "Example Hosting",
            "hold": "0s",
            "poll_interval": "1s",
            "smtp": {
                "host": "127.0.0.1",
                "port": int((registry / "smtp.port").read_text()),
                "starttls": "off",
            },
            "lookup": {
                "bootstrap": f"http://127.0.0.1:{(registry / 'rdap.port').read_text()}/bootstrap/",
                "timeout": "3s",
                "deadline": "6s",
                "whois": UNREACHABLE_WHOIS,
            },
            "mailbox": {"kind": "maildir", "path": str(tmp_path / "Maildir")},
        },
    )
    mailbox.Maildir(tmp_path / "Maildir", create=True)
    bruteguard = Bruteguard(bruteguard_exe, config, lab.server, tmp_path / "bruteguard.log")
    bruteguard.start()
    yield bruteguard, log
    bruteguard.terminate()


def _mails(directory: Path) -> list[email.message.Message]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=default)
        for p in sorted((directory / "smtp").glob("*.eml"))
    ]


@pytest.mark.parametrize(
    ("status", "diagnostic", "sign"),
    [
        ("5.1.1", "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown", "dead_once"),
        ("5.2.2", "552 5.2.2 <{rcpt}>: Mailbox full, quota exceeded", "full_once"),
    ],
)
def test_complaint_then_one_dead_or_full_bounce_blocks_nothing(
    lab: Lab,
    registry: Path,
    daemon: tuple[Bruteguard, Path],
    tmp_path: Path,
    status: str,
    diagnostic: str,
    sign: str,
) -> None:
    bruteguard, log = daemon
    server = lab.server.ipv4
    attacker, bystander = lab.clients["attacker"], lab.clients["bystander"]
    assert attacker.tcp_connect(server, PORT) and bystander.tcp_connect(server, PORT)

    stamp = time.strftime("%b %e %H:%M:%S")
    with log.open("a") as handle:
        handle.write(
            f"{stamp} lab sshd[41]: Failed password for root from {attacker.ipv4} port 40411 ssh2\n"
        )
    poll_until(lambda: bruteguard.ban_of(attacker.ipv4), 15, "the ban", bruteguard.log)
    assert not attacker.tcp_connect(server, PORT)

    complaints = poll_until(lambda: _mails(registry), 30, "the complaint", bruteguard.log)
    (complaint,) = complaints
    assert complaint["To"] == CONTACT
    case_id = complaint["X-Bruteguard-Case"]
    assert attacker.ipv4 in complaint["Subject"] and case_id in complaint["Subject"]

    # The lookup began only once the firewall held the ban.
    at_lookup = (registry / "at-lookup-0.txt").read_text()
    assert attacker.ipv4 in at_lookup, at_lookup

    assert bystander.tcp_connect(server, PORT), "no network block before the contact failed"
    raw = (sorted((registry / "smtp").glob("*.eml"))[0]).read_bytes()
    mailbox.Maildir(tmp_path / "Maildir").add(postfix_bounce(raw, CONTACT, status, diagnostic))

    def first_sign() -> list[dict[str, Any]]:
        shown = json.loads(bruteguard.cli("abuse", "show", case_id, "--json").stdout)
        return [e for e in shown.get("events", []) if e["kind"] == sign]

    (event,) = poll_until(first_sign, 30, f"the first sign ({sign})", bruteguard.log)
    shown = json.loads(bruteguard.cli("abuse", "show", case_id, "--json").stdout)
    assert shown["state"] == "bounced"
    if sign == "full_once":  # the full mailbox gets no complaint for mailbox_full_pause
        assert "no complaint to it for 30 days" in event["detail"], event
    # One bounce, dead or full, is one sign: the network is not blocked, by connection.
    assert bruteguard.ban_of(NETWORK) is None
    assert bystander.tcp_connect(server, PORT), "no network block on one bounce"
    assert not attacker.tcp_connect(server, PORT), "the attacker's own ban stands"
    assert [m for m in _mails(registry) if m["To"] != CONTACT] == [], "no postmaster mail"
