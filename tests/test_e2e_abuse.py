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

Replies that say nothing against the contact (issue 17) go the other way: Postfix's bounce
for our relay on a DNS blocklist, its delayed-mail warning and the final failure after it,
and a TMDA challenge block no network and write to no postmaster; the admin, notified by
mail through the relay (apprise), hears once, of the refusal.
"""

from __future__ import annotations

import contextlib
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

from abusekit import (
    UNREACHABLE_WHOIS,
    bootstrap,
    free_port,
    postfix_bounce,
    postfix_delay_warning,
    rdap_network,
    tmda_challenge,
)
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


@contextlib.contextmanager
def _registry(
    lab: Lab, tmp_path: Path, networks: dict[str, tuple[str, str, str]]
) -> Iterator[Path]:
    """RDAP and SMTP in the server namespace (its loopback), serving what the test wrote:
    ``networks`` maps a client's name to the (CIDR, name, abuse contact) RDAP gives for it."""
    directory = tmp_path / "abuse"
    directory.mkdir()
    rdap_port, smtp_port = free_port(), free_port()
    (directory / "rdap.port").write_text(str(rdap_port))
    (directory / "smtp.port").write_text(str(smtp_port))
    routes = {
        path: json.loads(body)
        for path, body in bootstrap(f"http://127.0.0.1:{rdap_port}/rdap/", ["192.0.2.0/24"]).items()
    }
    for client, (cidr, name, contact) in networks.items():
        network = rdap_network(cidr, name, "NL", contact, "+31 20 555 0199")
        routes[f"/rdap/ip/{lab.clients[client].ipv4}"] = network
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


@contextlib.contextmanager
def _daemon(
    lab: Lab,
    registry: Path,
    tmp_path: Path,
    bruteguard_exe: Path,
    make_config: Any,
    **settings: Any,
) -> Iterator[tuple[Bruteguard, Path]]:
    """``bruteguard run`` with the desk in send mode, reading the Maildir in ``tmp_path``
    every second; ``settings`` add top-level tables (``notify``)."""
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
        **settings,
    )
    mailbox.Maildir(tmp_path / "Maildir", create=True)
    bruteguard = Bruteguard(bruteguard_exe, config, lab.server, tmp_path / "bruteguard.log")
    bruteguard.start()
    try:
        yield bruteguard, log
    finally:
        bruteguard.terminate()


@pytest.fixture
def registry(lab: Lab, tmp_path: Path) -> Iterator[Path]:
    networks = {name: (NETWORK, "LAB-NET", CONTACT) for name in lab.clients}
    with _registry(lab, tmp_path, networks) as directory:
        yield directory


@pytest.fixture
def daemon(
    lab: Lab, registry: Path, tmp_path: Path, bruteguard_exe: Path, make_config: Any
) -> Iterator[tuple[Bruteguard, Path]]:
    with _daemon(lab, registry, tmp_path, bruteguard_exe, make_config) as running:
        yield running


def _fail(log: Path, *addresses: str) -> None:
    """One sshd authentication failure per address, appended to the watched log."""
    stamp = time.strftime("%b %e %H:%M:%S")
    with log.open("a") as handle:
        for n, address in enumerate(addresses):
            handle.write(
                f"{stamp} lab sshd[{41 + n}]: Failed password for root from {address}"
                f" port {40411 + n} ssh2\n"
            )


def _delivered(directory: Path) -> list[tuple[list[str], email.message.Message]]:
    """Every mail the relay accepted, with its envelope recipients (who really got it)."""
    return [
        (
            json.loads(path.with_suffix(".rcpt").read_text()),
            email.message_from_bytes(path.read_bytes(), policy=default),
        )
        for path in sorted((directory / "smtp").glob("*.eml"))
    ]


def _mails(directory: Path) -> list[email.message.Message]:
    return [message for _, message in _delivered(directory)]


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


# Three networks, each with a bystander that never fails, each with its own abuse contact.
REPLIES = {
    "refusing": ("192.0.2.10/31", "REFUSING-NET", "abuse@refusing.example.net"),
    "slow": ("192.0.2.12/31", "SLOW-NET", "abuse@slow.example.net"),
    "tmda": ("192.0.2.14/31", "TMDA-NET", "abuse@tmda.example.net"),
}
ADMIN = "admin@example.org"
# Our relay's public address is on a blocklist: Postfix's words for the recipient's refusal.
SPAMHAUS = (
    "554 5.7.1 Service unavailable; Client host [203.0.113.25] blocked using zen.spamhaus.org;"
    " https://www.spamhaus.org/query/ip/203.0.113.25"
)
TIMED_OUT = "connect to mx.slow.example.net[198.51.100.30]:25: Connection timed out"


@pytest.fixture
def replies_lab(netns_root: None) -> Iterator[Lab]:
    names = [n for attacker in REPLIES for n in (attacker, f"{attacker}-peer")]
    with Lab(names) as lab:
        lab.server.listen_tcp(PORT)
        yield lab


@pytest.fixture
def replies_daemon(
    replies_lab: Lab, tmp_path: Path, bruteguard_exe: Path, make_config: Any
) -> Iterator[tuple[Bruteguard, Path, Path]]:
    """The daemon whose admin is told by mail through the same relay (apprise's mailto)."""
    with _registry(replies_lab, tmp_path, REPLIES) as registry:
        port = (registry / "smtp.port").read_text()
        url = f"mailto://127.0.0.1:{port}/{ADMIN}?from=bruteguard@example.org"
        with _daemon(
            replies_lab, registry, tmp_path, bruteguard_exe, make_config, notify={"urls": [url]}
        ) as (bruteguard, log):
            yield bruteguard, log, registry


def _case(bruteguard: Bruteguard, case_id: str) -> dict[str, Any]:
    return json.loads(bruteguard.cli("abuse", "show", case_id, "--json").stdout)


def _kinds(bruteguard: Bruteguard, case_id: str) -> list[str]:
    return [event["kind"] for event in _case(bruteguard, case_id)["events"]]


def test_a_blocklisted_relay_a_delay_and_a_challenge_block_nothing_and_tell_the_admin_once(
    replies_lab: Lab, replies_daemon: tuple[Bruteguard, Path, Path], tmp_path: Path
) -> None:
    """Issue 17: three replies that say nothing about the contact's mailbox: Postfix's
    bounce for our relay on Spamhaus's blocklist, Postfix's delayed-mail warning (and, later,
    the same message's final failure after the retries), and a TMDA challenge. No network is
    blocked, no postmaster is written to, and the admin hears exactly once: of the refusal."""
    bruteguard, log, registry = replies_daemon
    lab, server = replies_lab, replies_lab.server.ipv4
    attackers = {name: lab.clients[name] for name in REPLIES}
    peers = {name: lab.clients[f"{name}-peer"] for name in REPLIES}
    assert all(host.tcp_connect(server, PORT) for host in lab.clients.values())

    _fail(log, *(host.ipv4 for host in attackers.values()))
    for host in attackers.values():
        poll_until(lambda h=host: bruteguard.ban_of(h.ipv4), 30, "the bans", bruteguard.log)

    contacts = {contact: name for name, (_, _, contact) in REPLIES.items()}

    def complaints() -> dict[str, tuple[str, bytes]] | None:
        found = {}
        for path in sorted((registry / "smtp").glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=default)
            if message["To"] in contacts:
                found[contacts[message["To"]]] = (message["X-Bruteguard-Case"], path.read_bytes())
        return found if len(found) == len(REPLIES) else None

    sent = poll_until(complaints, 90, "the three complaints", bruteguard.log)
    cases = {name: case_id for name, (case_id, _) in sent.items()}
    assert len(set(cases.values())) == 3, cases

    def to_admin() -> list[email.message.Message]:
        return [m for rcpts, m in _delivered(registry) if rcpts == [ADMIN]]

    def banned() -> list[str]:
        return sorted(str(m["Subject"]) for m in to_admin() if "banned" in str(m["Subject"]))

    # The admin hears of each ban (with its lookup); those are not what this test counts.
    poll_until(lambda: len(banned()) == 3, 60, "the three ban notices", bruteguard.log)

    maildir = mailbox.Maildir(tmp_path / "Maildir")
    refusing, slow = REPLIES["refusing"][2], REPLIES["slow"][2]
    maildir.add(
        postfix_bounce(
            sent["refusing"][1],
            refusing,
            "5.7.1",
            SPAMHAUS,
            problem=f"host mx.refusing.example.net[198.51.100.25] said: {SPAMHAUS}"
            " (in reply to RCPT TO command)",
        )
    )
    maildir.add(postfix_delay_warning(sent["slow"][1], slow, TIMED_OUT))
    maildir.add(tmda_challenge(sent["tmda"][1]))

    def read_all() -> bool:
        return (
            "refused" in _case(bruteguard, cases["refusing"])["flags"]
            and "transient" in _kinds(bruteguard, cases["slow"])
            and "auto_reply" in _kinds(bruteguard, cases["tmda"])
        )

    poll_until(read_all, 60, "the desk to read the three replies", bruteguard.log)
    # Five days on, Postfix gives the delayed message up: the same message's final failure.
    maildir.add(
        postfix_bounce(
            sent["slow"][1],
            slow,
            "4.4.1",
            f"delivery temporarily suspended: {TIMED_OUT}",
            action="failed",
            diagnostic_type="X-Postfix",
            problem=f"delivery temporarily suspended: {TIMED_OUT}",
        )
    )
    poll_until(
        lambda: _kinds(bruteguard, cases["slow"]).count("transient") == 2,
        60,
        "the desk to read the final failure",
        bruteguard.log,
    )

    # No network block: every bystander still connects; only the attackers' own bans.
    for name, peer in peers.items():
        assert peer.tcp_connect(server, PORT), f"{name}'s network must not be blocked"
    bans = bruteguard.bans()
    assert sorted(ban["ip"] for ban in bans) == sorted(h.ipv4 for h in attackers.values())
    assert {ban["jail"] for ban in bans} == {"sshd"}
    ruleset = lab.server.run(["nft", "list", "ruleset"]).stdout
    for cidr, _, _ in REPLIES.values():
        assert cidr not in ruleset, ruleset

    # No mail to any postmaster@, none even waiting in the desk's queue.
    delivered = _delivered(registry)
    assert [r for rcpts, _ in delivered for r in rcpts if r.startswith("postmaster@")] == []
    assert sorted(r for rcpts, _ in delivered for r in rcpts if r != ADMIN) == sorted(contacts)
    listed = json.loads(bruteguard.cli("abuse", "cases", "--json").stdout)
    assert [c for c in listed if c["kind"] != "complaint"] == [], listed

    # Exactly one admin notice besides the ban notices: the refusal of our mail.
    (notice,) = [m for m in to_admin() if "banned" not in str(m["Subject"])]
    assert cases["refusing"] in str(notice["Subject"])
    text = notice.get_content()
    assert "refused" in text and "zen.spamhaus.org" in text, text
    assert len(banned()) == 3

    # The to-do list names the refusal only; the other two cases wait, open.
    todo = json.loads(bruteguard.cli("abuse", "followups", "--json").stdout)
    assert [(item["case"], item["what"]) for item in todo] == [(cases["refusing"], "refused")]
    shown = {name: _case(bruteguard, case_id) for name, case_id in cases.items()}
    assert shown["refusing"]["state"] == "bounced"
    assert (shown["slow"]["state"], shown["tmda"]["state"]) == ("sent", "sent")
    assert shown["slow"]["flags"] == [] and shown["tmda"]["flags"] == []
    for name in REPLIES:
        assert "escalated" not in _kinds(bruteguard, cases[name])
        assert "dead_once" not in _kinds(bruteguard, cases[name])
