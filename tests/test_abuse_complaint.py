"""Complaints to abuse desks, delivered to a real SMTP server (aiosmtpd) on loopback.

The tests parse what the server received, as a desk's parser would, and check that nothing
from whois/RDAP or a log line can reach a header, and that each address gets only its own lines.
"""

from __future__ import annotations

import asyncio
import base64
import email
import hashlib
import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message
from email.policy import default
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from abusekit import LoopbackController
from bruteguard.abuse.complaint import (
    MAX_LINES,
    BadContact,
    Offence,
    Reporter,
    UnsafeHeader,
    render_complaint,
)
from bruteguard.abuse.smtp import Rejected, Relay, RelayUnavailable, StartTLS, send, send_async
from bruteguard.errors import ConfigError

A = "198.51.100.7"
B = "2001:db8::17"
OTHER = "203.0.113.99"  # in the same detector batch, but another network: must not leak
CONTACT = "abuse@example.net"
REPORTER = Reporter(
    sender="bruteguard@example.org",
    org="Example Hosting",
    contact="admin@example.org",
    phone="+1 555 0100",
    name="Pat Admin",
)
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


class Store:
    """aiosmtpd handler that keeps what it was given, or refuses with a fixed reply."""

    def __init__(self, rcpt_reply: str | None = None, data_reply: str | None = None) -> None:
        self.received: list[Any] = []
        self.sessions: list[tuple[bool, bool | None]] = []  # (TLS used, authenticated)
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.received.append(envelope)
        self.sessions.append((session.ssl is not None, session.authenticated))
        return "250 2.0.0 queued"


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    started: list[Controller] = []

    def start(handler: Store, **smtp_options: Any) -> Relay:
        controller = LoopbackController(handler, hostname="127.0.0.1", port=0, **smtp_options)
        controller.start()
        started.append(controller)
        return Relay(host="127.0.0.1", port=controller.port, starttls=StartTLS.OPTIONAL, timeout=5)

    yield start
    for controller in started:
        controller.stop()


def batch() -> list[tuple[str, str]]:
    """Detector output for one period: lines of A, B and an unrelated OTHER, interleaved."""
    lines: list[tuple[str, str]] = []
    for i in range(3):
        stamp = (T0 + timedelta(seconds=i)).strftime("%b %d %H:%M:%S")
        lines.append(
            (A, f"{stamp} host sshd[41{i}]: Failed password for root from {A} port 5{i}12 ssh2")
        )
        lines.append(
            (
                OTHER,
                f"{stamp} host sshd[51{i}]: Invalid user {A}-other-{i} from {OTHER} port 6000",
            )
        )
    lines.append((B.upper(), f"Nov 23 09:00:09 host sshd[777]: Failed password for b from {B}"))
    return lines


def offences() -> list[Offence]:
    return [
        Offence(A, T0, T0 + timedelta(seconds=2), 3, "sshd", port=22, source_port=5212),
        Offence(B, T0 + timedelta(seconds=9), T0 + timedelta(seconds=9), 1, "sshd", port=22),
    ]


def parts(msg: Message) -> tuple[str, list[dict[str, Any]]]:
    text = msg.get_body(preferencelist=("plain",))
    assert text is not None
    reports = [
        json.loads(part.get_content())
        for part in msg.iter_attachments()
        if part.get_content_type() == "application/json"
    ]
    return text.get_content(), reports


def test_complaint_arrives_with_headers_text_and_xarf(smtp_server: Any) -> None:
    handler = Store()
    relay = smtp_server(handler)
    msg = render_complaint(
        reporter=REPORTER,
        contact=CONTACT,
        offences=offences(),
        log_lines=batch(),
        case_id="2026-0042",
        network="EXAMPLE-NET-1",
        now=T0 + timedelta(hours=1),
        log_zone=UTC,
    )
    send(msg, relay, now=T0 + timedelta(days=2))

    assert len(handler.received) == 1
    envelope = handler.received[0]
    assert envelope.mail_from == REPORTER.sender
    assert envelope.rcpt_tos == [CONTACT]
    got = email.message_from_bytes(envelope.original_content, policy=default)

    assert got["From"].addresses[0].addr_spec == REPORTER.sender
    assert [a.addr_spec for a in got["To"].addresses] == [CONTACT]
    assert got["Reply-To"].addresses[0].addr_spec == "admin@example.org"
    assert got["Subject"] == (
        f"[bruteguard case 2026-0042] login attacks from {A} and 1 more (EXAMPLE-NET-1)"
    )
    assert parsedate_to_datetime(got["Date"]) == T0 + timedelta(days=2), "sent, not drafted"
    assert got["Message-ID"] == "<bg-2026-0042@example.org>"
    assert got["X-Bruteguard-Case"] == "2026-0042"
    assert got["Auto-Submitted"] == "auto-generated"
    assert got.get_content_type() == "multipart/report"
    assert got.get_param("report-type") == "feedback-report"
    (feedback,) = [p for p in got.iter_parts() if p.get_content_type() == "message/feedback-report"]
    assert feedback.get_payload(0)["Feedback-Type"] == "xarf"

    text, reports = parts(got)
    assert f"Address:   {A}" in text and "Address:   2001:db8::17" in text
    assert "Attempts:  3" in text
    assert "First:     2026-11-23 09:00:00 UTC+00:00 = 2026-11-23T09:00:00Z" in text
    assert "Last:      2026-11-23 09:00:02 UTC+00:00 = 2026-11-23T09:00:02Z" in text
    assert "The host behind each is probably compromised" in text
    assert "sshd, port 22/tcp" in text
    assert "admin@example.org" in text and "+1 555 0100" in text and "2026-0042" in text
    for i in range(3):
        assert f"Failed password for root from {A} port 5{i}12 ssh2" in text
    assert f"Failed password for b from {B}" in text
    # OTHER's lines mention A (attacker-chosen user name) but were matched to OTHER: left out.
    assert OTHER not in text and "-other-" not in text

    # B's only line carries no source port, which X-ARF v4 requires: no report, and the
    # text says why (its lines are in the text all the same).
    assert [r["source_identifier"] for r in reports] == [A]
    assert "No X-ARF report for 2001:db8::17: the log does not record the source port" in text
    (first,) = reports
    assert first["xarf_version"] == "4.2.0"
    assert first["category"] == "connection" and first["type"] == "login_attack"
    assert "class" not in first
    who = {"org": "Example Hosting", "contact": "admin@example.org", "domain": "example.org"}
    assert first["reporter"] == who and first["sender"] == who
    assert first["protocol"] == "tcp"
    assert first["destination_port"] == 22
    assert first["source_port"] == 5212
    assert first["first_seen"] == "2026-11-23T09:00:00Z"
    assert first["last_seen"] == "2026-11-23T09:00:02Z"
    assert first["timestamp"] == first["first_seen"]
    assert "3 failed login attempts on sshd" in first["description"]
    (evidence,) = first["evidence"]
    payload = base64.b64decode(evidence["payload"])
    assert evidence["content_type"] == "text/plain"
    assert evidence["size"] == len(payload)
    assert evidence["hash"] == "sha256:" + hashlib.sha256(payload).hexdigest()
    evidence_lines = payload.decode().splitlines()
    assert len(evidence_lines) == 3
    assert all(f"from {A} port" in line for line in evidence_lines)
    assert OTHER.encode() not in payload and b"-other-" not in payload


def test_lines_are_capped_keeping_the_latest_and_saying_how_many_were_left_out() -> None:
    lines = [(A, f"line {i:03d} from {A}") for i in range(MAX_LINES + 37)]
    msg = render_complaint(
        reporter=REPORTER,
        contact=CONTACT,
        offences=offences()[:1],
        log_lines=lines,
        case_id="c1",
    )
    text, (report,) = parts(msg)
    assert "[37 more lines left out]" in text
    assert "line 036 " not in text and "line 037 " in text and f"line {MAX_LINES + 36} " in text
    payload = base64.b64decode(report["evidence"][0]["payload"]).decode()
    assert len(payload.splitlines()) == MAX_LINES


def test_hostile_log_lines_stay_in_the_body_without_terminal_escapes(smtp_server: Any) -> None:
    handler = Store()
    relay = smtp_server(handler)
    hostile = [
        (A, f"sshd: Invalid user \x1b]0;owned\x07\x1b[2Jroot from {A}"),
        (A, f"sshd: Invalid user x\r\nBcc: victim@example.org\r\n\r\nforged from {A}"),
        (A, f"sshd: Invalid user \u202eevil from {A}"),
    ]
    msg = render_complaint(
        reporter=REPORTER, contact=CONTACT, offences=offences()[:1], log_lines=hostile, case_id="c2"
    )
    send(msg, relay)
    got = email.message_from_bytes(handler.received[0].original_content, policy=default)
    assert handler.received[0].rcpt_tos == [CONTACT]
    assert got["Bcc"] is None
    text, (report,) = parts(got)
    assert "\x1b" not in text and "owned" not in text and f"Invalid user root from {A}" in text
    assert "x\\r\\nBcc: victim@example.org\\r\\n\\r\\nforged" in text  # shown, not obeyed
    assert "\u202e" not in text and "\\u202eevil" in text
    evidence = base64.b64decode(report["evidence"][0]["payload"]).decode()
    assert "\x1b" not in evidence and "\r" not in evidence


@pytest.mark.parametrize(
    "contact",
    [
        "abuse@example.net\r\nBcc: victim@example.org",
        "abuse@example.net\nabuse@example.org",
        "abuse@example.net, noc@example.org",
        "abuse@example.net noc@example.org",
        "Abuse Desk <abuse@example.net>",
        "abuse@example.net (comment)",
        "abuse@example.net\x00",
        "abuse@example.net\u202e",
        '"a b"@example.net',
        "abuse@",
        "@example.net",
        "abuse@localhost",
        "abuse@exa_mple.net",
        "abuse@@example.net",
        "not an address",
        "",
    ],
)
def test_unsafe_contact_is_refused_before_anything_is_sent(smtp_server: Any, contact: str) -> None:
    handler = Store()
    relay = smtp_server(handler)
    with pytest.raises(BadContact):
        msg = render_complaint(
            reporter=REPORTER,
            contact=contact,
            offences=offences(),
            log_lines=batch(),
            case_id="c3",
        )
        send(msg, relay)
    assert handler.received == []


@pytest.mark.parametrize(
    "network", ["EXAMPLE-NET\r\nBcc: victim@example.org", "NET\x1b[2J", "N" * 201]
)
def test_unsafe_network_name_is_refused(network: str) -> None:
    with pytest.raises(UnsafeHeader):
        render_complaint(
            reporter=REPORTER,
            contact=CONTACT,
            offences=offences(),
            log_lines=batch(),
            case_id="c4",
            network=network,
        )


def test_send_refuses_a_message_with_more_than_one_recipient(smtp_server: Any) -> None:
    handler = Store()
    relay = smtp_server(handler)
    msg = EmailMessage()
    msg["From"] = REPORTER.sender
    msg["To"] = "abuse@example.net, noc@example.org"
    msg["Subject"] = "x"
    msg.set_content("x")
    with pytest.raises(BadContact):
        send(msg, relay)
    assert handler.received == []


def complaint() -> EmailMessage:
    return render_complaint(
        reporter=REPORTER, contact=CONTACT, offences=offences(), log_lines=batch(), case_id="c5"
    )


def test_relay_down_is_retryable() -> None:
    # A bound but not listening socket: connecting to its port is refused, and no other
    # process can take the port while the test runs.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        with pytest.raises(RelayUnavailable, match="unreachable"):
            send(complaint(), Relay(host="127.0.0.1", port=port, starttls="off", timeout=5))


def test_permanent_refusal_at_data_is_rejected(smtp_server: Any) -> None:
    handler = Store(data_reply="550 5.7.1 Message refused as spam")
    relay = smtp_server(handler)
    with pytest.raises(Rejected, match="refused as spam") as caught:
        send(complaint(), relay)
    assert caught.value.code == 550
    assert handler.received == []


def test_unknown_recipient_is_rejected(smtp_server: Any) -> None:
    handler = Store(rcpt_reply="550 5.1.1 <abuse@example.net>: user unknown")
    relay = smtp_server(handler)
    with pytest.raises(Rejected, match="user unknown") as caught:
        send(complaint(), relay)
    assert caught.value.code == 550


def test_temporary_refusal_is_retryable(smtp_server: Any) -> None:
    handler = Store(rcpt_reply="450 4.2.0 greylisted, try again later")
    relay = smtp_server(handler)
    with pytest.raises(RelayUnavailable, match="greylisted"):
        send(complaint(), relay)


def test_required_starttls_is_not_silently_dropped(smtp_server: Any) -> None:
    handler = Store()
    plain = smtp_server(handler)  # aiosmtpd without a TLS context offers no STARTTLS
    relay = Relay(host=plain.host, port=plain.port, starttls=StartTLS.REQUIRED, timeout=5)
    with pytest.raises(RelayUnavailable, match="STARTTLS"):
        send(complaint(), relay)
    assert handler.received == []


def test_send_async_runs_off_the_event_loop(smtp_server: Any) -> None:
    handler = Store()
    relay = smtp_server(handler)

    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await send_async(complaint(), relay)
        task.cancel()
        return ticks

    assert asyncio.run(main()) > 0  # the loop kept running while the thread talked SMTP
    assert len(handler.received) == 1


@pytest.mark.parametrize(
    "settings",
    [
        {"username": "u", "password": "p", "starttls": "off"},
        {"username": "u"},
        {"port": 0},
        {"timeout": 0},
        {"starttls": "sometimes"},
    ],
)
def test_bad_relay_settings_are_config_errors(settings: dict[str, Any]) -> None:
    with pytest.raises((ConfigError, ValueError)):
        Relay(**settings)


@pytest.fixture
def relay_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A throw-away self-signed certificate for 127.0.0.1, made by the openssl CLI."""
    cert, key = tmp_path / "relay.crt", tmp_path / "relay.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=relay.example.org",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def check_login(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"reporter", b"s3cret")
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


def tls_server(smtp_server: Any, handler: Store, cert: Path, key: Path) -> Relay:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return smtp_server(
        handler,
        tls_context=context,
        require_starttls=True,
        authenticator=check_login,
        auth_required=True,
        auth_require_tls=True,
    )


def test_starttls_and_login_then_delivery(smtp_server: Any, relay_cert: tuple[Path, Path]) -> None:
    handler = Store()
    plain = tls_server(smtp_server, handler, *relay_cert)
    trust = ssl.create_default_context(cafile=str(relay_cert[0]))
    relay = Relay(
        host=plain.host,
        port=plain.port,
        starttls=StartTLS.REQUIRED,
        username="reporter",
        password="s3cret",
        ssl_context=trust,
        timeout=5,
    )
    send(complaint(), relay)
    assert handler.sessions == [(True, True)]
    assert handler.received[0].rcpt_tos == [CONTACT]

    with pytest.raises(Rejected) as caught:
        send(complaint(), Relay(**{**relay.__dict__, "password": "wrong"}))
    assert caught.value.code == 535
    assert len(handler.received) == 1


def test_untrusted_relay_certificate_is_not_accepted(
    smtp_server: Any, relay_cert: tuple[Path, Path]
) -> None:
    handler = Store()
    plain = tls_server(smtp_server, handler, *relay_cert)
    # The system CAs do not know this certificate: the password must never be sent.
    relay = Relay(
        host=plain.host, port=plain.port, username="reporter", password="s3cret", timeout=5
    )
    with pytest.raises(RelayUnavailable, match="TLS"):
        send(complaint(), relay)
    assert handler.received == []
