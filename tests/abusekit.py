"""Real servers for the abuse-desk tests, on loopback: an RDAP registry whose answers a test
writes, an SMTP relay (aiosmtpd) that can be down and come back on the same port, and
bounces written the way Postfix writes them (RFC 3464).

Run as a script (``python abusekit.py DIR``) it serves the same RDAP and SMTP inside a lab's
network namespace for the end-to-end tests: see ``serve_in_namespace``.
"""

from __future__ import annotations

import email
import email.utils
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

__all__ = [
    "LoopbackController",
    "RdapServer",
    "SmtpSink",
    "bootstrap",
    "free_port",
    "postfix_bounce",
    "postfix_delay_warning",
    "rdap_network",
    "reply_to",
    "tmda_challenge",
]

UNREACHABLE_WHOIS = {r: "127.0.0.1:9" for r in ("ARIN", "RIPE", "APNIC", "LACNIC", "AFRINIC")}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rdap_network(
    cidr: str,
    name: str,
    country: str,
    email_address: str | None = None,
    phone: str | None = None,
    port43: str = "whois.ripe.net",
) -> dict[str, Any]:
    """An RDAP ``ip network`` as RIPE's server shapes it, with an abuse role if given."""
    prefix, _, length = cidr.partition("/")
    entities: list[dict[str, Any]] = [
        {"handle": f"{name}-MNT", "roles": ["registrant"], "objectClassName": "entity"}
    ]
    if phone and not email_address:  # no abuse role: the NOC's number is what there is
        card = [["version", {}, "text", "4.0"], ["fn", {}, "text", "NOC"]]
        card.append(["tel", {"type": "voice"}, "text", phone])
        entities.append(
            {
                "handle": f"{name}-NOC",
                "roles": ["technical"],
                "vcardArray": ["vcard", card],
                "objectClassName": "entity",
            }
        )
    if email_address:
        card = [["version", {}, "text", "4.0"], ["fn", {}, "text", "Abuse desk"]]
        card.append(["email", {"type": "abuse"}, "text", email_address])
        if phone:
            card.append(["tel", {"type": "voice"}, "text", phone])
        entities.append(
            {
                "handle": f"{name}-ABUSE",
                "roles": ["abuse"],
                "vcardArray": ["vcard", card],
                "objectClassName": "entity",
            }
        )
    version = "v6prefix" if ":" in prefix else "v4prefix"
    return {
        "objectClassName": "ip network",
        "handle": cidr,
        "name": name,
        "country": country,
        "cidr0_cidrs": [{version: prefix, "length": int(length)}],
        "entities": entities,
        "port43": port43,
    }


def bootstrap(base_url: str, v4: list[str], v6: list[str] | None = None) -> dict[str, bytes]:
    """IANA's ipv4.json/ipv6.json naming ``base_url`` for the given prefixes."""
    files = {}
    for name, prefixes in (("ipv4.json", v4), ("ipv6.json", v6 or [])):
        files[f"/bootstrap/{name}"] = json.dumps(
            {"version": "1.0", "services": [[prefixes, [base_url]]] if prefixes else []}
        ).encode()
    return files


class RdapServer:
    """A registry on 127.0.0.1: ``routes`` maps paths to bodies (404 otherwise); every
    request is recorded with its time, and ``on_request`` runs before it is answered."""

    def __init__(self, port: int = 0) -> None:
        self.routes: dict[str, bytes] = {}
        self.requests: list[tuple[float, str]] = []
        self.on_request: Callable[[str], None] | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append((time.time(), self.path))
                if outer.on_request is not None:
                    outer.on_request(self.path)
                body = outer.routes.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/rdap+json")
                data = body if body is not None else b'{"errorCode": 404}'
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add_network(self, cidr: str, address_paths: list[str], **network: Any) -> None:
        """Answer ``/rdap/ip/ADDR`` for each address with one network."""
        body = json.dumps(rdap_network(cidr, **network)).encode()
        for address in address_paths:
            self.routes[f"/rdap/ip/{address}"] = body

    def __enter__(self) -> RdapServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


class LoopbackController(Controller):
    """Controller on 127.0.0.1:0 that learns the port the kernel chose before it self-tests."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class _Keep:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=default)
        self.sink.received.append((list(envelope.rcpt_tos), message))
        if self.sink.directory is not None:
            stem = str(time.time_ns())
            # The envelope's recipients beside the message: who it really went to.
            (self.sink.directory / f"{stem}.rcpt").write_text(json.dumps(envelope.rcpt_tos))
            partial = self.sink.directory / f"{stem}.part"
            partial.write_bytes(envelope.content)
            partial.replace(self.sink.directory / f"{stem}.eml")  # whole, or not there
        return "250 2.0.0 queued"


class SmtpSink:
    """An SMTP relay on 127.0.0.1:``port`` that keeps what it is given (and writes each
    message to ``directory`` if set); ``start``/``stop`` make it come and go."""

    def __init__(self, port: int | None = None, directory: Path | None = None) -> None:
        self.port = port or free_port()
        self.directory = directory
        self.received: list[tuple[list[str], Message]] = []
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(_Keep(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


_POSTFIX_SORRY = (
    "I'm sorry to have to inform you that your message could not\n"
    "be delivered to one or more recipients. It's attached below.\n"
)
_POSTFIX_WARNING = (
    "####################################################################\n"
    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
    "####################################################################\n\n"
    "Your message could not be delivered for more than 4 hour(s).\n"
    "It will be retried until it is 5 day(s) old.\n"
)
_POSTFIX_HELP = (
    "For further assistance, please send mail to postmaster.\n\n"
    "If you do so, please include this problem report. You can\n"
    "delete your own text from the attached returned message.\n\n"
    "                   The mail system\n"
)


def postfix_bounce(
    original: bytes,
    recipient: str,
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
    reporting_mta: str = "mail.example.org",
    *,
    action: str | None = None,
    problem: str | None = None,
    diagnostic_type: str = "smtp",
) -> bytes:
    """A non-delivery report as Postfix's bounce(8) writes it: a multipart/report with the
    human text, the message/delivery-status part and the returned message's headers.

    ``action`` defaults to ``failed`` for a 5.x.x status and ``delayed`` otherwise;
    ``problem`` is the text after ``<recipient>:`` (default: the remote server's reply).
    """
    diagnostic = diagnostic.format(rcpt=recipient)
    action = action or ("failed" if status.startswith("5") else "delayed")
    return _postfix_report(
        original,
        recipient,
        reporting_mta,
        subject="Undelivered Mail Returned to Sender",
        notice=_POSTFIX_SORRY,
        problem=problem or f"host mx.example.net said: {diagnostic}",
        fields={
            "Action": action,
            "Status": status,
            "Remote-MTA": "dns; mx.example.net",
            "Diagnostic-Code": f"{diagnostic_type}; {diagnostic}",
        },
    )


def postfix_delay_warning(
    original: bytes,
    recipient: str,
    problem: str = "connect to mx.example.net[192.0.2.30]:25: Connection timed out",
    status: str = "4.4.1",
    reporting_mta: str = "mail.example.org",
) -> bytes:
    """Postfix's delayed-mail notice (``delay_warning_time``, RFC 3464 ``Action: delayed``):
    the message is still queued and will be retried; the sender need do nothing."""
    return _postfix_report(
        original,
        recipient,
        reporting_mta,
        subject="Delayed Mail (still being retried)",
        notice=_POSTFIX_WARNING,
        problem=problem,
        fields={
            "Action": "delayed",
            "Status": status,
            "Diagnostic-Code": f"X-Postfix; {problem}",
            "Will-Retry-Until": "Sat, 28 Nov 2026 09:00:00 +0000 (UTC)",
        },
    )


def _postfix_report(
    original: bytes,
    recipient: str,
    reporting_mta: str,
    *,
    subject: str,
    notice: str,
    problem: str,
    fields: dict[str, str],
) -> bytes:
    head = original.partition(b"\n\n")[0].decode("utf-8", "replace").replace("\r", "")
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = f"MAILER-DAEMON@{reporting_mta} (Mail Delivery System)"
    report["To"] = str(email.message_from_bytes(original, policy=default)["From"])
    report["Subject"] = subject
    report["Auto-Submitted"] = "auto-replied"
    report["Message-ID"] = f"<{time.time_ns()}.bounce@{reporting_mta}>"
    report.attach(
        MIMEText(
            f"This is the mail system at host {reporting_mta}.\n\n{notice}\n{_POSTFIX_HELP}\n"
            f"<{recipient}>: {problem}\n"
        )
    )
    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {reporting_mta}"
    per_message["X-Postfix-Queue-ID"] = "4ABCD1234"
    per_message["Arrival-Date"] = "Mon, 23 Nov 2026 09:00:00 +0000 (UTC)"
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Original-Recipient"] = f"rfc822;{recipient}"
    for name, value in fields.items():
        per_recipient[name] = value
    delivery = MIMEBase("message", "delivery-status")
    delivery.set_payload([per_message, per_recipient])
    delivery["Content-Description"] = "Delivery report"
    report.attach(delivery)
    headers = MIMEText(head + "\n", "rfc822-headers")
    headers["Content-Description"] = "Undelivered Message Headers"
    report.attach(headers)
    return report.as_bytes()


def tmda_challenge(original: bytes, pending: str = "14 days") -> bytes:
    """A TMDA confirmation request, as TMDA's ``AutoResponse`` builds it from its
    ``confirm_request.txt`` template: the robot holds our mail until we confirm."""
    first = email.message_from_bytes(original, policy=default)
    protected = str(first["To"])
    local, _, domain = protected.partition("@")
    accept = f"{local}-confirm-1795420800.4711.c0ffee@{domain}"
    text = MIMEText(
        "This message was created automatically by mail delivery software (TMDA).\n\n"
        "Your message attached below is being held because the address\n"
        f"<{first['From']}> has not been verified.\n\n"
        "To release your message for delivery, please send an empty message\n"
        'to the following address, or use your mailer\'s "Reply" feature.\n\n'
        f"   {accept}\n\n"
        "This confirmation verifies that your message is legitimate and not\n"
        "junk-mail. You should only have to confirm your address once.\n\n"
        f"If you do not respond to this confirmation request within {pending},\n"
        "your message will not be delivered.\n"
    )
    text["Content-Description"] = "Confirmation Request"
    text["Content-Disposition"] = "inline"
    copy = MIMEMessage(email.message_from_bytes(original))
    copy["Content-Description"] = "Original Message"
    copy["Content-Disposition"] = "inline"
    challenge = MIMEMultipart("mixed")
    challenge.attach(text)
    challenge.attach(copy)
    challenge["Content-Disposition"] = "inline"
    challenge["From"] = f'"Abuse Desk" <{protected}>'
    challenge["Subject"] = "Please confirm your message"
    challenge["Reply-To"] = accept
    challenge["Date"] = email.utils.formatdate()
    challenge["Message-ID"] = f"<{time.time_ns()}.TMDA@{domain}>"
    challenge["References"] = str(first["Message-ID"])
    challenge["In-Reply-To"] = str(first["Message-ID"])
    challenge["To"] = str(first["From"])
    challenge["Precedence"] = "bulk"
    challenge["Auto-Submitted"] = "auto-replied"
    challenge["X-Delivery-Agent"] = "TMDA/1.1.13.20190604.0 (Nikka-TMDAretro)"
    return challenge.as_bytes()


def reply_to(original: bytes, text: str, auto: bool = False) -> bytes:
    """A person's (or an auto-responder's) answer to a complaint, threaded by In-Reply-To."""
    first = email.message_from_bytes(original, policy=default)
    reply = EmailMessage(policy=default)
    reply["From"] = first["To"]
    reply["To"] = first["From"]
    reply["Subject"] = ("Automatic reply: " if auto else "Re: ") + str(first["Subject"])
    reply["In-Reply-To"] = first["Message-ID"]
    reply["References"] = first["Message-ID"]
    reply["Message-ID"] = f"<{time.time_ns()}.reply@example.net>"
    if auto:
        reply["Auto-Submitted"] = "auto-replied"
    reply.set_content(text)
    return reply.as_bytes()


def _serve(directory: Path) -> None:  # pragma: no cover (runs in a lab's namespace)
    """``abusekit.py DIR``: RDAP routes from DIR/routes.json on the port in DIR/rdap.port
    (each request's nftables ruleset saved to DIR/at-lookup-N.txt: what the firewall held
    when the lookup began) and an SMTP relay on DIR/smtp.port writing to DIR/smtp/."""
    import subprocess

    rdap = RdapServer(int((directory / "rdap.port").read_text()))
    routes = json.loads((directory / "routes.json").read_text())
    rdap.routes = {path: json.dumps(body).encode() for path, body in routes.items()}

    def snapshot(path: str) -> None:
        if path.startswith("/rdap/ip/"):
            ruleset = subprocess.run(
                ["nft", "list", "ruleset"], capture_output=True, text=True, timeout=10
            ).stdout
            count = len(list(directory.glob("at-lookup-*.txt")))
            (directory / f"at-lookup-{count}.txt").write_text(ruleset)

    rdap.on_request = snapshot
    (directory / "smtp").mkdir(exist_ok=True)
    sink = SmtpSink(int((directory / "smtp.port").read_text()), directory / "smtp")
    with rdap, sink:
        (directory / "ready").touch()
        deadline = time.monotonic() + 600  # bounded: the test kills it long before
        while time.monotonic() < deadline and not (directory / "stop").exists():
            time.sleep(0.1)


def iter_messages(directory: Path) -> Iterator[Message]:
    for path in sorted(directory.glob("*.eml")):
        yield email.message_from_bytes(path.read_bytes(), policy=default)


if __name__ == "__main__":  # pragma: no cover
    _serve(Path(sys.argv[1]))
