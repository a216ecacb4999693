"""The admin notifier, delivering through apprise to real servers on 127.0.0.1.

A webhook receiver (http.server in a thread) and an SMTP server (aiosmtpd) record what
apprise actually sent, so the tests check the words an administrator reads; a server that
answers 500 and one that never answers check that a broken target only costs a log line.
"""

from __future__ import annotations

import asyncio
import email
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from abusekit import LoopbackController
from bruteguard.abuse.contact import NetworkContact
from bruteguard.model import Ban
from bruteguard.notify import (
    Notifier,
    NotifyError,
    ban_message,
    escalation_message,
    redact_url,
)

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC).timestamp()
BAN = Ban(
    ip="198.51.100.7",
    jail="sshd",
    start=T0,
    until=T0 + 3600,
    failures=5,
    reason="5 failures in 10m",
    step=2,
)
CONTACT = NetworkContact(
    address="198.51.100.7",
    network="198.51.100.0/24",
    name="EXAMPLE-HOSTING-NET",
    country="NL",
    asn=64496,
    registry="RIPE",
    abuse_email="abuse@example.net",
    abuse_phone="+31 20 555 0100",
    source="rdap",
    looked_up=T0,
)
HOSTILE = "\r\nX-Injected: yes\x1b[2J\x1b]0;pwned\x07\u202eevil\x00"


def hostile_contact() -> NetworkContact:
    """A registry reply written by the attacker: controls in every field, a 10k-char name."""
    return NetworkContact(
        address="198.51.100.7",
        network="198.51.100.0/24\r\nBcc: victim@example.org",
        name=HOSTILE + "A" * 10_000 + " :smile: **bold** <b>x</b> \\n",
        country="N\x1bL",
        asn=64496,
        registry="R" * 10_000,
        abuse_email="abuse@example.net\r\nBcc: victim@example.org",
        abuse_phone="+31\x1b[31m 20 555 0100",
        source="whois",
        looked_up=T0,
    )


def assert_plain(text: str, limit: int) -> None:
    """Every line printable (no CR, ESC, bidi, NUL) and at most ``limit`` characters."""
    for line in text.split("\n"):
        assert line.isprintable(), repr(line)
        assert len(line) <= limit, len(line)


# --- a webhook receiver -----------------------------------------------------------------


class Webhook:
    """A real HTTP server on 127.0.0.1 that records every POST and answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                data = json.loads(self.rfile.read(min(length, 1_000_000)))
                owner.posts.append((self.path, data))
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.status = status
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def webhook() -> Iterator[Any]:
    started: list[Webhook] = []

    def start(status: int = 200) -> Webhook:
        server = Webhook(status)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose kernel backlog accepts the connection, but nobody ever answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


# --- building messages -------------------------------------------------------------------


def test_ban_message_reads_at_a_glance() -> None:
    title, body = ban_message(BAN, CONTACT, case_id="20261123-ab12", case_state="sent")
    assert title == "bruteguard: banned 198.51.100.7 (sshd)"
    lines = body.splitlines()
    assert lines[0] == "bruteguard banned 198.51.100.7 in jail sshd."
    expected = [
        "  until     2026-11-23T10:00:00Z (1h ban)",
        "  failures  5",
        "  reason    5 failures in 10m",
        "  step      2",
        "  network   198.51.100.0/24",
        "  name      EXAMPLE-HOSTING-NET",
        "  country   NL",
        "  ASN       AS64496",
        "  registry  RIPE",
        "  abuse     abuse@example.net (from RDAP)",
        "  phone     +31 20 555 0100",
        "  as of     2026-11-23T09:00:00Z",
        "  case      20261123-ab12 (sent)",
    ]
    for line in expected:
        assert line in lines, line
    assert "looked up" not in body  # the contact is for the banned address itself


def test_ban_message_without_lookup_or_usable_contact() -> None:
    _, body = ban_message(BAN, None)
    assert "Network owner: not looked up." in body
    assert "case" not in body

    dead = NetworkContact(
        address="198.51.100.7",
        network="198.51.100.0/24",
        name=None,
        country=None,
        asn=None,
        registry="ARIN",
        abuse_email=None,
        abuse_phone=None,
        source="none",
        looked_up=T0,
    )
    _, body = ban_message(BAN, dead, case_id="20261123-cd34")
    assert "  abuse     no usable abuse contact" in body.splitlines()
    assert "name" not in body and "ASN" not in body  # absent facts are left out, not "None"
    assert "  case      20261123-cd34" in body.splitlines()


@pytest.mark.parametrize(
    ("source", "shown"),
    [("whois", "(from whois)"), ("rfc2142", "(from RFC 2142 guess")],
)
def test_ban_message_says_where_the_contact_came_from(source: str, shown: str) -> None:
    contact = NetworkContact(**{**_fields(CONTACT), "source": source})
    _, body = ban_message(BAN, contact)
    assert shown in body


def test_ban_message_for_a_network_ban_looked_up_by_one_address() -> None:
    ban = Ban(ip="198.51.100.0/24", jail="recidive", start=T0, until=T0 + 7 * 86400, step=3)
    title, body = ban_message(ban, CONTACT)
    assert title == "bruteguard: banned 198.51.100.0/24 (recidive)"
    assert "  looked up 198.51.100.7" in body.splitlines()
    assert "2026-11-30T09:00:00Z (1w ban)" in body


def test_hostile_contact_values_come_out_printable_and_bounded() -> None:
    title, body = ban_message(BAN, hostile_contact(), case_id="x\r\ny" * 100, case_state="\x1b")
    assert title == "bruteguard: banned 198.51.100.7 (sshd)"
    assert_plain(body, 300)
    assert len(body) < 3000
    assert "\r" not in body and "\x1b" not in body and "\u202e" not in body
    # The injection is still visible to the admin, but as inert escaped text:
    assert "\\r\\nX-Injected: yes\\x1b[2J" in body
    assert "\\r\\nBcc: victim@example.org" in body
    for line in body.splitlines():
        assert not line.startswith(("X-Injected", "Bcc"))


def test_hostile_ban_fields_and_impossible_times() -> None:
    ban = Ban(
        ip="198.51.100.7\r\n\x1b[2J",
        jail="j" * 500,
        start=T0,
        until=float("inf"),
        reason="r\n" * 5000,
    )
    title, body = ban_message(ban, None)
    assert_plain(title, 200)
    assert_plain(body, 300)
    assert "  until     never" in body.splitlines()
    huge = Ban(ip="198.51.100.7", jail="sshd", start=T0, until=1e300)
    assert "  until     unknown" in ban_message(huge, None)[1].splitlines()


def test_escalation_message_has_the_same_hygiene() -> None:
    lines = ["abuse@example.net bounced: 550 5.1.1 user unknown", HOSTILE * 100]
    lines += [f"line {i}" for i in range(200)]
    title, body = escalation_message("no reachable contact\r\nfor AS64496" + "x" * 1000, lines)
    assert title.startswith("bruteguard: no reachable contact\\r\\nfor AS64496")
    assert_plain(title, 200)
    assert_plain(body, 300)
    body_lines = body.splitlines()
    assert body_lines[0] == "abuse@example.net bounced: 550 5.1.1 user unknown"
    assert body_lines[-1] == "... 142 more lines not shown"
    assert escalation_message("bruteguard: case 7 escalated", [])[0] == (
        "bruteguard: case 7 escalated"
    )


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "named", "secrets"),
    [
        (
            "nosuchservice://admin:hunter2pass@example.org/SeCrEt9Tok3n?token=tok3nV4lue",
            "nosuchservice://admin:****@example.org/S...?token=****",
            ["hunter2pass", "SeCrEt9Tok3n", "tok3nV4lue"],
        ),
        ("json://", "json://", []),
        ("mailto://", "mailto://", []),
        ("no scheme at all s3cr3tvalue", "n...", ["s3cr3tvalue"]),
    ],
)
def test_invalid_url_is_refused_at_construction(url: str, named: str, secrets: list[str]) -> None:
    with pytest.raises(NotifyError) as caught:
        Notifier(["json://127.0.0.1:9/ok", url])
    message = str(caught.value)
    assert "notify URL #2" in message
    assert named in message
    for secret in secrets:
        assert secret not in message


@pytest.mark.parametrize("urls", [[""], ["   "], [None]])
def test_empty_url_is_refused(urls: list[Any]) -> None:
    with pytest.raises(NotifyError, match="#1 is empty"):
        Notifier(urls)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), True, "10"])
def test_bad_timeout_is_refused(timeout: Any) -> None:
    with pytest.raises(NotifyError, match="timeout"):
        Notifier([], timeout=timeout)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("json://user:pa55word@example.org:8080/hook", "json://user:****@example.org:8080/hook"),
        (
            "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/12345",
            "tgram://123456789:A.../12345",
        ),
        ("json://[2001:db8::1]:8080/x?format=text", "json://[2001:db8::1]:8080/x?format=text"),
        (
            "mailto://relay.example.org/admin@example.org",
            "mailto://relay.example.org/admin@example.org",
        ),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "discord://4174216298/J..."),
        ("json://host/x?apikey=abc#frag", "json://host/x?apikey=****#..."),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_without_apprise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # what `import apprise` sees when absent
    with pytest.raises(NotifyError, match=r"pip install 'bruteguard\[notify\]'"):
        Notifier(["json://127.0.0.1:9/x"])
    idle = Notifier([])
    assert not idle.enabled
    assert asyncio.run(idle.send("t", "b")) is True  # nothing configured, nothing failed


# --- delivery -------------------------------------------------------------------------------


def test_webhook_receives_the_ban_and_lookup_summary(webhook: Any) -> None:
    server = webhook()
    notifier = Notifier([server.url("/bruteguard/events")], timeout=5, host="web1.example.org")
    assert notifier.enabled
    title, body = ban_message(BAN, CONTACT, case_id="20261123-ab12", case_state="sent")
    assert asyncio.run(notifier.send(title, body)) is True

    assert len(server.posts) == 1
    path, payload = server.posts[0]
    assert path == "/bruteguard/events"
    assert payload["title"] == "[web1.example.org] bruteguard: banned 198.51.100.7 (sshd)"
    assert payload["message"] == body  # plain text, passed through unchanged
    for fact in ("198.51.100.0/24", "EXAMPLE-HOSTING-NET", "AS64496", "abuse@example.net"):
        assert fact in payload["message"]


def test_webhook_text_is_not_interpreted(webhook: Any) -> None:
    """No Markdown, HTML, emoji or backslash-escape expansion of attacker text on the way."""
    server = webhook()
    name = ":smile: **bold** <b>x</b> &amp; \\n\\x41 [a](https://example.org)"
    contact = NetworkContact(**{**_fields(CONTACT), "name": name})
    title, body = ban_message(BAN, contact)
    assert f"  name      {name}" in body.splitlines()
    assert asyncio.run(Notifier([server.url()], timeout=5).send(title, body)) is True
    assert server.posts[0][1]["message"] == body
    assert server.posts[0][1]["title"] == title


def test_failing_target_returns_false_and_logs(
    webhook: Any, caplog: pytest.LogCaptureFixture
) -> None:
    good, broken = webhook(200), webhook(500)
    notifier = Notifier([good.url("/ok"), broken.url("/broken")], timeout=5)
    with caplog.at_level(logging.WARNING, logger="bruteguard.notify"):
        assert asyncio.run(notifier.send(*ban_message(BAN, CONTACT))) is False
    assert len(good.posts) == 1 and len(broken.posts) == 1  # both were tried
    warnings = [r.getMessage() for r in caplog.records if r.name == "bruteguard.notify"]
    assert len(warnings) == 1
    assert f"127.0.0.1:{broken.port}/broken" in warnings[0]
    assert f"127.0.0.1:{good.port}/ok" not in warnings[0]


def test_unreachable_target_returns_false(caplog: pytest.LogCaptureFixture) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connection refused
    with caplog.at_level(logging.WARNING, logger="bruteguard.notify"):
        assert asyncio.run(Notifier([f"json://127.0.0.1:{port}/x"], timeout=5).send("t", "b")) is (
            False
        )
    assert any(r.name == "bruteguard.notify" for r in caplog.records)


def test_silent_server_is_bounded_by_timeout_and_loop_keeps_running(
    silent_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier([f"json://127.0.0.1:{silent_port}/x"], timeout=1.0)

    async def main() -> tuple[bool, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.05)

        task = asyncio.create_task(ticker())
        ok = await notifier.send("t", "b")
        task.cancel()
        return ok, ticks

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bruteguard.notify"):
        ok, ticks = asyncio.run(main())
    elapsed = time.monotonic() - started
    assert ok is False
    assert 0.9 <= elapsed < 2.5, elapsed
    assert ticks >= 10  # the event loop was never blocked while apprise waited
    assert any(r.name == "bruteguard.notify" for r in caplog.records)


# --- mail ---------------------------------------------------------------------------------


class Mailbox:
    """aiosmtpd handler that keeps every message it was given."""

    def __init__(self) -> None:
        self.received: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope)
        return "250 2.0.0 queued"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = LoopbackController(box, hostname="127.0.0.1", port=0)
    controller.start()
    yield box, controller.port
    controller.stop()


def test_mail_reaches_a_plain_smtp_server(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    # mailto:// (not mailtos://) is apprise's no-TLS mode: right for a loopback relay only.
    url = f"mailto://127.0.0.1:{port}/admin@example.org?from=bruteguard@example.org"
    notifier = Notifier([url], timeout=5, host="web1")
    title, body = ban_message(BAN, hostile_contact(), case_id="20261123-ab12")
    assert asyncio.run(notifier.send(title, body)) is True

    assert len(box.received) == 1
    envelope = box.received[0]
    assert envelope.mail_from == "bruteguard@example.org"
    assert envelope.rcpt_tos == ["admin@example.org"]
    msg = email.message_from_bytes(envelope.content, policy=default)
    assert msg["Subject"] == "[web1] bruteguard: banned 198.51.100.7 (sshd)"
    assert msg.get_content_type() == "text/plain"
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    text = msg.get_content().replace("\r\n", "\n").rstrip("\n")
    assert text == body
    assert "198.51.100.0/24\\r\\nBcc: victim@example.org" in text


def _fields(contact: NetworkContact) -> dict[str, Any]:
    return {name: getattr(contact, name) for name in contact.__struct_fields__}
