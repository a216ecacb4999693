"""The complaint an abuse desk receives: a short human text plus one X-ARF v4 report per source.

Everything that came from whois/RDAP (the contact address, the network name) is hostile input:
it is validated and refused when unsafe, never "cleaned" into some other value that would then
be trusted. Log lines are hostile too; they only ever go into a body part, never a header.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from bruteguard.abuse.case import CASE_ID
from bruteguard.errors import BruteguardError
from bruteguard.safe_text import printable

__all__ = [
    "MAX_LINES",
    "BadContact",
    "Offence",
    "Reporter",
    "UnsafeHeader",
    "check_header_text",
    "check_mailbox",
    "render_complaint",
    "render_postmaster_notice",
    "xarf_report",
]

MAX_LINES = 100  # log lines per address: enough evidence, short enough to read
MAX_LINE_CHARS = 500  # longer lines are cut (saying so): a log line is not a payload channel
MAX_HEADER_TEXT = 200

# Anchored, ASCII-only shapes. Quoted local parts, IP literals and IDN are refused, not
# converted: an abuse contact that needs them is rare enough to be handled by a person.
_LOCAL_RE = re.compile(r"\A[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_LABEL_RE = re.compile(r"\A[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
# ECMA-48 sequences: CSI (ESC [ ... final), OSC/DCS/PM/APC strings (ESC ] ... BEL or ST), and
# two-character escapes. Removed from log lines; any other control is shown escaped.
_TERM_ESC_RE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|[\x1b][\]P^_X][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|[\x90\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]"
)


class UnsafeHeader(BruteguardError, ValueError):
    """A value meant for a mail header carries CR/LF/control characters or is too long."""


class BadContact(UnsafeHeader):
    """A value meant as a mail address is not exactly one plain, valid address."""


def check_header_text(value: str, what: str = "header value") -> str:
    """``value`` unchanged if it can be put in a header as is; else :class:`UnsafeHeader`.

    Unicode format characters (bidi overrides, zero-width) are refused along with controls:
    they would make the subject a person reads differ from what it says.
    """
    if not isinstance(value, str) or not value.strip():
        raise UnsafeHeader(f"{what} is empty")
    if len(value) > MAX_HEADER_TEXT:
        raise UnsafeHeader(f"{what} is longer than {MAX_HEADER_TEXT} characters")
    if not value.isprintable():
        raise UnsafeHeader(f"{what} contains control characters: {printable(value)[:80]}")
    return value


def check_mailbox(value: str, what: str = "contact") -> str:
    """``value`` if it is exactly one plain ``local@domain`` address; else :class:`BadContact`.

    No display name, no group, no list, no comments, no route: whatever a whois record says,
    the message goes to one mailbox that looks exactly like what was validated.
    """
    if not isinstance(value, str):
        raise BadContact(f"{what} is not text")
    try:
        check_header_text(value, what)
    except BadContact:
        raise
    except UnsafeHeader as err:
        raise BadContact(str(err)) from None
    if len(value) > 254 or value.count("@") != 1:
        raise BadContact(f"{what} is not one mail address: {printable(value)[:80]}")
    local, domain = value.split("@")
    labels = domain.split(".")
    if (
        len(local) > 64
        or not _LOCAL_RE.match(local)
        or len(labels) < 2
        or not all(_LABEL_RE.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise BadContact(f"{what} is not one valid mail address: {printable(value)[:80]}")
    try:
        parsed = Address(addr_spec=value)
    except (ValueError, IndexError) as err:  # the email package's own parser must agree
        raise BadContact(f"{what} is not one valid mail address: {err}") from None
    if parsed.addr_spec != value:
        raise BadContact(f"{what} does not parse back to itself: {printable(value)[:80]}")
    return value


@dataclass(frozen=True)
class Reporter:
    """Who complains: the configured sender and how a person at the desk reaches the admin."""

    sender: str  # From:, e.g. "abuse-reports@example.org"
    org: str  # "Example Hosting"
    contact: str | None = None  # reply address for people; defaults to ``sender``
    phone: str | None = None
    name: str | None = None  # the admin's name, shown in the text

    @property
    def reply_address(self) -> str:
        """Where a person at the abuse desk writes back."""
        return self.contact or self.sender


@dataclass(frozen=True)
class Offence:
    """What one source address did, as the detector counted it (times are UTC)."""

    address: str
    first_seen: datetime
    last_seen: datetime
    attempts: int
    service: str  # the jail, e.g. "sshd"
    port: int | None = None  # destination port
    protocol: str = "tcp"
    source_port: int | None = None  # the last one seen; CGNAT operators need it

    def normalised(self) -> str:
        """The address in canonical form (so ``2001:DB8::1`` matches ``2001:db8::1``)."""
        return str(ipaddress.ip_address(self.address))


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: bruteguard reports times in UTC only")
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clean_line(line: str) -> str:
    """A log line safe to show: terminal escapes removed, other controls visible, length cut."""
    text = printable(_TERM_ESC_RE.sub("", line.rstrip("\r\n")))
    if len(text) > MAX_LINE_CHARS:
        text = f"{text[:MAX_LINE_CHARS]} [... {len(text) - MAX_LINE_CHARS} characters cut]"
    return text


def _lines_by_address(
    offences: Sequence[Offence], log_lines: Iterable[tuple[str, str]]
) -> dict[str, list[str]]:
    """Each offence's own lines, attributed by the address the detector matched.

    Attribution is by the matched address, never by searching the text: a line from another
    address may well mention this one (in a user name, say) and must not be sent here.
    """
    wanted: dict[str, list[str]] = {o.normalised(): [] for o in offences}
    for address, line in log_lines:
        try:
            key = str(ipaddress.ip_address(address))
        except ValueError:
            continue
        if key in wanted:
            wanted[key].append(line)
    return wanted


def xarf_report(
    offence: Offence, lines: Sequence[str], reporter: Reporter, *, report_id: str | None = None
) -> dict[str, object]:
    """One X-ARF v4 ``connection``/``login_attack`` report for one source address.

    Field names follow the X-ARF v4 schemas in github.com/xarf/xarf-spec:
    schemas/v4/xarf-core.json (xarf_version, report_id, timestamp, reporter{org, contact, type},
    source_identifier, source_port, class, type, evidence_source, evidence[{content_type,
    description, payload, hash, size}], description) and schemas/v4/types/
    connection-login-attack.json (protocol, destination_port, first_seen, last_seen).
    The CamelCase "ReportClass: Activity / ReportType: LoginAttack" layout is the older
    format that v4 parsers convert as legacy; it is not produced here.
    """
    evidence_text = "\n".join(lines) + ("\n" if lines else "")
    payload = evidence_text.encode("utf-8")
    report: dict[str, object] = {
        "xarf_version": "4.0.0",
        "report_id": report_id or str(uuid.uuid4()),
        "timestamp": _iso(offence.first_seen),
        "reporter": {"org": reporter.org, "contact": reporter.reply_address, "type": "automated"},
        "source_identifier": offence.normalised(),
        "class": "connection",
        "type": "login_attack",
        "protocol": offence.protocol,
        "first_seen": _iso(offence.first_seen),
        "last_seen": _iso(offence.last_seen),
        "evidence_source": "automated_filter",
        "description": (
            f"{offence.attempts} failed login attempts on {offence.service}"
            + (f" (port {offence.port}/{offence.protocol})" if offence.port else "")
        )[:1000],
        "evidence": [
            {
                "content_type": "text/plain",
                "description": f"{len(lines)} log lines for {offence.normalised()} (UTC)",
                "payload": base64.b64encode(payload).decode("ascii"),
                "hash": "sha256:" + hashlib.sha256(payload).hexdigest(),
                "size": len(payload),
            }
        ],
    }
    if offence.source_port:
        report["source_port"] = offence.source_port
    if offence.port:
        report["destination_port"] = offence.port
    return report


def _text_body(
    offences: Sequence[Offence],
    shown: dict[str, tuple[list[str], int]],
    reporter: Reporter,
    network: str | None,
    case_id: str,
) -> str:
    many = len(offences) > 1
    where = f" in your network {network}" if network else " in your network"
    out = [
        "Hello,",
        "",
        (
            f"{len(offences)} addresses{where} tried to log in to our servers"
            if many
            else f"The address {offences[0].normalised()}{where} tried to log in to our servers"
        )
        + " by guessing passwords (a brute-force login attack). The host behind "
        + ("them is" if not many else "each is")
        + " probably compromised. Please stop the activity.",
        "",
    ]
    for offence in offences:
        lines, left_out = shown[offence.normalised()]
        port = f", port {offence.port}/{offence.protocol}" if offence.port else ""
        out += [
            f"Address:   {offence.normalised()}",
            f"Service:   {printable(offence.service)}{port}",
            f"Attempts:  {offence.attempts}",
            f"First:     {_iso(offence.first_seen)} (UTC)",
            f"Last:      {_iso(offence.last_seen)} (UTC)",
            "",
            f"Log lines for {offence.normalised()} (times as logged):",
            *(f"  {line}" for line in lines),
        ]
        if left_out:
            out.append(f"  [{left_out} more lines left out]")
        out.append("")
    who = f"{reporter.name}, {reporter.org}" if reporter.name else reporter.org
    out += [
        "A machine-readable X-ARF v4 report for each address is attached.",
        "",
        f"Reported automatically by bruteguard for {who}.",
        f"Reach us at {reporter.reply_address}"
        + (f" or {reporter.phone}" if reporter.phone else "")
        + f"; please keep case {case_id} in the subject when replying.",
    ]
    return "\n".join(out) + "\n"


def render_complaint(
    *,
    reporter: Reporter,
    contact: str,
    offences: Sequence[Offence],
    log_lines: Iterable[tuple[str, str]],
    case_id: str,
    network: str | None = None,
    now: datetime | None = None,
    max_lines: int = MAX_LINES,
) -> EmailMessage:
    """The complaint to ``contact`` about ``offences`` (all from one network contact).

    ``log_lines`` are ``(address, line)`` pairs as the detector matched them; they may cover
    more addresses than ``offences`` (a whole batch): only each offence's own lines are used.
    One message per contact keeps mail volume down; X-ARF wants one report per source, so each
    address gets its own ``application/json`` attachment.

    Raises :class:`BadContact` / :class:`UnsafeHeader` before building anything if a value
    from whois/RDAP or the configuration is unsafe for a header.
    """
    contact = check_mailbox(contact, "abuse contact")
    check_mailbox(reporter.sender, "sender")
    if reporter.contact is not None:
        check_mailbox(reporter.contact, "reporter contact")
    check_header_text(reporter.org, "reporter organisation")
    if network is not None:
        network = check_header_text(network, "network name")
    if not CASE_ID.match(case_id):
        raise UnsafeHeader(f"case id {printable(case_id)[:80]!r} is not a plain token")
    if not offences:
        raise ValueError("a complaint needs at least one offence")
    if len({o.normalised() for o in offences}) != len(offences):
        raise ValueError("an address appears twice in one complaint")

    by_address = _lines_by_address(offences, log_lines)
    shown: dict[str, tuple[list[str], int]] = {}
    for key, lines in by_address.items():
        # The most recent lines are the most useful to the desk (is it still going on?).
        kept = lines[-max_lines:] if max_lines > 0 else []
        shown[key] = ([_clean_line(line) for line in kept], len(lines) - len(kept))

    first = offences[0].normalised()
    subject = f"[bruteguard case {case_id}] login attacks from {first}"
    if len(offences) > 1:
        subject += f" and {len(offences) - 1} more"
    if network:
        subject += f" ({network})"

    msg = _envelope(reporter, contact, subject, case_id, now)
    # The X-ARF mail convention (from X-ARF 0.2) that abuse-desk parsers still route on.
    msg["X-XARF"] = "PLAIN"

    msg.set_content(_text_body(offences, shown, reporter, network, case_id))
    msg.make_mixed()
    for offence in offences:
        key = offence.normalised()
        report = xarf_report(offence, shown[key][0], reporter)
        msg.add_attachment(
            json.dumps(report, indent=2, ensure_ascii=True).encode("ascii"),
            maintype="application",
            subtype="json",
            filename=f"xarf-{key.replace(':', '_')}.json",
        )
    return _finished(msg)


def _envelope(
    reporter: Reporter, to: str, subject: str, case_id: str, now: datetime | None
) -> EmailMessage:
    """The headers every desk mail carries; replies find their case by Message-ID."""
    sender = reporter.sender
    msg = EmailMessage()
    msg["From"] = Address(addr_spec=sender)
    msg["To"] = Address(addr_spec=to)
    if reporter.contact and reporter.contact != sender:
        msg["Reply-To"] = Address(addr_spec=reporter.contact)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(_utc(now or datetime.now(UTC)))
    msg["Message-ID"] = f"<bg-{case_id}@{sender.split('@')[1]}>"
    msg["X-Bruteguard-Case"] = case_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders must not answer
    return msg


def _finished(msg: EmailMessage) -> EmailMessage:
    # Bodies are encoded with 76-column lines. For the headers, the default 78-column
    # folding would move a long Subject onto its own continuation line, which some parsers
    # (Python's among them) then read with a leading space; header lines stay far below 998.
    msg.policy = msg.policy.clone(max_line_length=998)
    return msg


def render_postmaster_notice(
    *,
    reporter: Reporter,
    domain: str,
    broken: str,
    why: str,
    case_id: str,
    now: datetime | None = None,
) -> EmailMessage:
    """The one RFC 2142 notice to ``postmaster@domain``: its abuse mailbox ``broken``
    does not take mail (``why``: the bounce, shown as text). No log lines, no X-ARF: this
    is about the mailbox, not an attack."""
    to = check_mailbox(f"postmaster@{domain}", "postmaster address")
    check_mailbox(broken, "broken abuse mailbox")
    check_mailbox(reporter.sender, "sender")
    check_header_text(reporter.org, "reporter organisation")
    if not CASE_ID.match(case_id):
        raise UnsafeHeader(f"case id {printable(case_id)[:80]!r} is not a plain token")
    who = f"{reporter.name}, {reporter.org}" if reporter.name else reporter.org
    msg = _envelope(
        reporter,
        to,
        f"[bruteguard case {case_id}] abuse mailbox {broken} does not work",
        case_id,
        now,
    )
    msg.set_content(
        "\n".join(
            [
                "Hello postmaster,",
                "",
                f"We tried to report abuse from your network to {broken}, the abuse contact",
                "your registry record names, and the mail could not be delivered:",
                "",
                f"  {_clean_line(why)}",
                "",
                "RFC 2142 asks that abuse@ and postmaster@ reach a person. Please repair",
                "the abuse mailbox or correct the contact in your registry record, so that",
                "reports of attacks from your network reach you.",
                "",
                f"Sent once, automatically, by bruteguard for {who}.",
                f"Reach us at {reporter.reply_address}"
                + (f" or {reporter.phone}" if reporter.phone else "")
                + f"; case {case_id}.",
            ]
        )
        + "\n"
    )
    return _finished(msg)
