"""``bruteguard abuse …`` against a real registry, relay and Maildir on loopback, with the
daemon not running (the commands work from the store alone)."""

from __future__ import annotations

import asyncio
import json
import mailbox
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from abusekit import UNREACHABLE_WHOIS, RdapServer, SmtpSink, bootstrap, postfix_bounce
from bruteguard.abuse.desk import AbuseDesk, desk_settings
from bruteguard.cli import main
from bruteguard.config import load_config
from bruteguard.model import Ban, Failure
from bruteguard.store.cases import CaseBook
from bruteguard.store.sqlite import SqliteStore
from conftest import toml_document

ATTACKER = "198.51.100.7"
CONTACT = "abuse@example.net"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, RdapServer, SmtpSink]]:
    with RdapServer() as rdap, SmtpSink() as relay:
        rdap.routes.update(bootstrap(f"{rdap.url}/rdap/", ["198.51.100.0/24"]))
        rdap.add_network(
            "198.51.100.0/24", [ATTACKER], name="EXAMPLE-NET", country="NL",
            email_address=CONTACT, phone="+31 20 555 0199",
        )  # fmt: skip
        config = tmp_path / "bruteguard.toml"
        config.write_text(
            toml_document(
                {
                    "store": str(tmp_path / "bg.db"),
                    "socket": str(tmp_path / "bg.sock"),
                    "enforcers": ["dry-run"],
                    "abuse": {
                        "enabled": True,
                        "sender": "bruteguard@example.org",
                        "org": "Example Hosting",
                        "hold": "0s",
                        "smtp": {"host": "127.0.0.1", "port": relay.port, "starttls": "off"},
                        "lookup": {
                            "bootstrap": f"{rdap.url}/bootstrap/",
                            "whois": UNREACHABLE_WHOIS,
                            "timeout": "2s",
                        },
                        "mailbox": {"kind": "maildir", "path": str(tmp_path / "Maildir")},
                    },
                }
            )
        )
        yield config, rdap, relay


def _draft(config: Path) -> str:
    """What the daemon would have done: a ban reported in draft mode."""
    settings = load_config(config)
    with SqliteStore(settings.store) as store:
        store.add_failures(
            [Failure(1000.0, ATTACKER, "sshd", "root", f"Failed password for root from {ATTACKER}")]
        )

        async def block(bans: list[Ban]) -> None:
            store.add_bans(bans)

        desk = AbuseDesk(desk_settings(settings), store, block)

        async def go() -> list[str]:
            ids = await desk.report(Ban(ATTACKER, "sshd", 1000.0, 4600.0, 5, "5 failures"))
            await desk.tick()
            return ids

        (case_id,) = asyncio.run(go())
    return case_id


def test_lookup_prints_the_network_and_its_contact(setup: Any, capsys: Any) -> None:
    config, rdap, _ = setup
    assert main(["abuse", "lookup", ATTACKER, "--json", "--config", str(config)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["network"] == "198.51.100.0/24" and found["abuse_email"] == CONTACT
    assert found["source"] == "rdap" and found["country"] == "NL"
    assert main(["abuse", "lookup", ATTACKER, "--config", str(config)]) == 0
    assert "abuse e-mail: abuse@example.net" in capsys.readouterr().out
    assert len([p for _, p in rdap.requests if p.startswith("/rdap/ip/")]) == 1, "cached"


def test_a_draft_is_listed_shown_sent_once_and_then_bounces(
    setup: Any, capsys: Any, tmp_path: Path
) -> None:
    config, _, relay = setup
    case_id = _draft(config)
    assert main(["abuse", "cases", "--open", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert case_id in listing and "draft" in listing and CONTACT in listing

    assert main(["abuse", "followups", "--json", "--config", str(config)]) == 0
    assert {"case": case_id, "what": "draft", "contact": CONTACT} in json.loads(
        capsys.readouterr().out
    )

    assert main(["abuse", "show", case_id, "--config", str(config)]) == 0
    shown = capsys.readouterr().out
    assert f"bruteguard abuse send {case_id}" in shown and ATTACKER in shown
    assert main(["abuse", "show", case_id, "--raw", "--config", str(config)]) == 0
    raw = capsys.readouterr().out
    assert f"X-Bruteguard-Case: {case_id}" in raw

    assert relay.received == []
    assert main(["abuse", "send", case_id, "--config", str(config)]) == 0
    assert main(["abuse", "send", case_id, "--config", str(config)]) == 1, "never twice"
    assert "nothing to send" in capsys.readouterr().err
    assert len(relay.received) == 1

    sent = load_config(config)
    with SqliteStore(sent.store) as store:
        message = CaseBook(store).get(case_id).message
    mailbox.Maildir(tmp_path / "Maildir", create=True).add(
        postfix_bounce(message, CONTACT, "5.1.2", "550 5.1.2 <{rcpt}>: Host not found")
    )
    assert main(["abuse", "poll", "--config", str(config)]) == 0
    polled = capsys.readouterr().out
    assert "read 1 new messages: 1 about our cases" in polled and "not running" in polled
    with SqliteStore(sent.store) as store:
        assert CaseBook(store).get(case_id).state == "bounced"
        blocks = [b.ip for b in store.active_bans(2000.0)]
        events = [e.kind for e in CaseBook(store).events(case_id)]
    assert blocks == [], "one dead-contact bounce is one signal: no block yet"
    assert "dead_once" in events


def test_unknown_case_and_disabled_desk_are_clear_errors(
    setup: Any, capsys: Any, tmp_path: Path
) -> None:
    config, _, _ = setup
    _draft(config)
    assert main(["abuse", "show", "20260101-nothere", "--config", str(config)]) == 1
    assert "no case '20260101-nothere'" in capsys.readouterr().err
    plain = tmp_path / "plain.toml"
    plain.write_text(f'store = "{tmp_path / "bg.db"}"\n')
    assert main(["abuse", "send", "x", "--config", str(plain)]) == 1
    assert "the abuse desk is not enabled" in capsys.readouterr().err


def test_a_killed_send_is_listed_in_followups_until_the_daemon_marks_it(
    setup: Any, capsys: Any, tmp_path: Path
) -> None:
    """`abuse send` killed while the relay has the mail: the case stays "sending", which the
    daemon only turns into "unsure" when it starts; followups shows it meanwhile."""
    config, _, _ = setup
    case_id = _draft(config)
    # A relay that takes the connection and never greets: the sender waits in the session.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        text = config.read_text()
        port = load_config(config).abuse.smtp.port  # type: ignore[union-attr]
        config.write_text(text.replace(f"port = {port}", f"port = {silent.getsockname()[1]}"))
        sender = subprocess.Popen(
            [str(Path(sys.executable).with_name("bruteguard")), "abuse", "send", case_id,
             "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            silent.settimeout(20)
            peer, _ = silent.accept()  # the claim (→ sending) is made before connecting
            with peer:
                sender.kill()
                assert sender.wait(timeout=20) == -signal.SIGKILL
        finally:
            if sender.poll() is None:
                sender.kill()
                sender.wait(timeout=20)

    with SqliteStore(load_config(config).store) as store:
        assert CaseBook(store).get(case_id).state == "sending"
    assert main(["abuse", "followups", "--json", "--config", str(config)]) == 0
    (item,) = [i for i in json.loads(capsys.readouterr().out) if i["case"] == case_id]
    assert item["what"] == "sending" and item["contact"] == CONTACT
    assert main(["abuse", "followups", "--config", str(config)]) == 0
    listed = capsys.readouterr().out
    assert f"case {case_id} has been handed to the relay for {CONTACT}" in listed
    assert "stopped mid-way" in listed
