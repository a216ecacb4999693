"""The complaint an abuse desk receives: a short human text plus one X-ARF v4 report per source.

The mail follows the XARF-over-SMTP convention (github.com/abusix/xarf, "XARF via SMTP", an
extension of RFC 5965): ``multipart/report; report-type=feedback-report`` with the text, a
``message/feedback-report`` part saying ``Feedback-Type: xarf``, then the JSON reports.

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
from datetime import UTC, datetime, tzinfo
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from bruteguard import __version__
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
# The peer's port as sshd writes it, the last "from ADDRESS port N" of a line (a user name
# comes before it, so an attacker's "from 192.0.2.9 port 1" in a name is never the last one).
_FROM_PORT_RE = re.compile(r"\A.*\bfrom (?P<address>[0-9A-Fa-f.:]+) port (?P<port>[0-9]{1,5})\b")
XARF_VERSION = "4.2.0"  # xarf-spec schemas/v4 as of 2026-03 (commit 37820da)


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
    source_port: int | None = None  # the last one seen; CGNAT operators need it; else
    # taken from the offence's log lines (see :func:`source_port_of`)

    def normalised(self) -> str:
        """The address in canonical form (so ``2001:DB8::1`` matches ``2001:db8::1``)."""
        return str(ipaddress.ip_address(self.address))


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: bruteguard reports times in UTC only")
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _zone_name(moment: datetime) -> str:
    """``CET (UTC+01:00)``: the zone's name where it has one, always with its offset."""
    offset = moment.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    utc = f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    name = moment.tzname() or ""
    return f"{name} ({utc})" if name and not name.startswith(("UTC", "+", "-")) else utc


def _local_and_utc(moment: datetime, zone: tzinfo | None) -> str:
    """``2026-11-23 10:00:00 CET (UTC+01:00) = 2026-11-23T09:00:00Z``: the log's own clock,
    which its lines show, and UTC beside it."""
    local = _utc(moment).astimezone(zone)  # zone None: this host's zone, which syslog uses
    return f"{local:%Y-%m-%d %H:%M:%S} {_zone_name(local)} = {_iso(moment)}"


def source_port_of(address: str, lines: Sequence[str]) -> int | None:
    """The peer's port in the last of ``lines`` that names it (sshd's ``from A port N``).

    Only a line whose ``from`` names ``address`` itself counts, and only 1..65535.
    """
    for line in reversed(lines):
        found = _FROM_PORT_RE.match(line)
        if found is None:
            continue
        try:
            named = str(ipaddress.ip_address(found["address"]))
        except ValueError:
            continue
        port = int(found["port"])
        if named == address and 0 < port < 65536:
            return port
    return None


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
    offence: Offence,
    lines: Sequence[str],
    reporter: Reporter,
    *,
    report_id: str | None = None,
    zone: str = "UTC",
) -> dict[str, object]:
    """One X-ARF v4 ``connection``/``login_attack`` report for one source address.

    Valid against github.com/xarf/xarf-spec schemas/v4 (xarf-v4-master.json, xarf-core.json
    and types/connection-login-attack.json, as tests/test_abuse_xarf_schema.py checks):
    ``category`` (not v4-draft's ``class``), ``reporter`` and ``sender`` each exactly
    {org, contact, domain}, and ``source_port``, which the login-attack type requires for an
    address: raises :class:`ValueError` when it is unknown (see :func:`render_complaint`).
    ``zone`` names the evidence lines' clock. The CamelCase "ReportClass: Activity" layout is
    the older format that v4 parsers convert as legacy; it is not produced here.
    """
    source_port = offence.source_port or source_port_of(offence.normalised(), lines)
    if source_port is None:
        raise ValueError(f"no source port known for {offence.normalised()}")
    evidence_text = "\n".join(lines) + ("\n" if lines else "")
    payload = evidence_text.encode("utf-8")
    who = {
        "org": reporter.org,
        "contact": reporter.reply_address,
        "domain": reporter.reply_address.rsplit("@", 1)[1],
    }
    report: dict[str, object] = {
        "xarf_version": XARF_VERSION,
        "report_id": report_id or str(uuid.uuid4()),
        "timestamp": _iso(offence.first_seen),
        "reporter": who,
        "sender": dict(who),  # we file our own report: no third party in between
        "source_identifier": offence.normalised(),
        "source_port": source_port,
        "category": "connection",
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
                "description": (
                    f"{len(lines)} log lines for {offence.normalised()} (times as logged, {zone})"
                )[:500],
                "payload": base64.b64encode(payload).decode("ascii"),
                "hash": "sha256:" + hashlib.sha256(payload).hexdigest(),
                "size": len(payload),
            }
        ],
    }
    if offence.port:
        report["destination_port"] = offence.port
    return report


def _sentence(text: str) -> str:
    """``text`` ended by one full stop: "Example B.V." must not become "Example B.V.."."""
    return text if text.endswith((".", "!", "?")) else text + "."


def _text_body(
    offences: Sequence[Offence],
    shown: dict[str, tuple[list[str], int]],
    reporter: Reporter,
    network: str | None,
    case_id: str,
    zone: tzinfo | None,
    without_xarf: Sequence[str],
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
        + " by guessing passwords (a brute-force login attack). "
        + ("The host behind each is" if many else "The host behind it is")
        + " probably compromised. Please stop the activity.",
        "",
    ]
    for offence in offences:
        lines, left_out = shown[offence.normalised()]
        port = f", port {offence.port}/{offence.protocol}" if offence.port else ""
        clock = _zone_name(_utc(offence.last_seen).astimezone(zone))
        out += [
            f"Address:   {offence.normalised()}",
            f"Service:   {printable(offence.service)}{port}",
            f"Attempts:  {offence.attempts}",
            f"First:     {_local_and_utc(offence.first_seen, zone)}",
            f"Last:      {_local_and_utc(offence.last_seen, zone)}",
            "",
            f"Log lines for {offence.normalised()} (times as logged, in {clock}):",
            *(f"  {line}" for line in lines),
        ]
        if left_out:
            out.append(f"  [{left_out} more lines left out]")
        out.append("")
    who = f"{reporter.name}, {reporter.org}" if reporter.name else reporter.org
    if len(without_xarf) < len(offences):
        out.append("A machine-readable X-ARF v4 report for each address is attached.")
    if without_xarf:
        out.append(
            "No X-ARF report for "
            + ", ".join(without_xarf)
            + ": the log does not record the source port, which X-ARF v4 requires."
        )
    out += [
        "",
        _sentence(f"Reported automatically by bruteguard for {who}"),
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
    log_zone: tzinfo | None = None,
) -> EmailMessage:
    """The complaint to ``contact`` about ``offences`` (all from one network contact).

    ``log_lines`` are ``(address, line)`` pairs as the detector matched them; they may cover
    more addresses than ``offences`` (a whole batch): only each offence's own lines are used.
    One message per contact keeps mail volume down; X-ARF wants one report per source, so each
    address gets its own ``application/json`` attachment, unless no line records its source
    port (X-ARF v4 requires one): the text then says so, and with no report at all the mail
    is plain text without the feedback-report marker. ``log_zone`` is the clock the log lines
    were written in (``None``: this host's zone); the text gives it with UTC beside it.
    ``now`` is the draft's ``Date:``; :func:`bruteguard.abuse.smtp.send` sets it again when
    the mail actually goes out.

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

    reports: list[tuple[str, dict[str, object]]] = []
    without_xarf: list[str] = []
    for offence in offences:
        key = offence.normalised()
        lines = shown[key][0]
        zone = _zone_name(_utc(offence.last_seen).astimezone(log_zone))
        try:
            reports.append((key, xarf_report(offence, lines, reporter, zone=zone)))
        except ValueError:  # no source port: a report X-ARF v4 parsers would refuse
            without_xarf.append(key)

    msg = _envelope(reporter, contact, subject, case_id, now)
    msg.set_content(_text_body(offences, shown, reporter, network, case_id, log_zone, without_xarf))
    if not reports:
        return _finished(msg)
    msg.make_mixed()
    # XARF via SMTP: the RFC 5965 feedback report whose Feedback-Type says JSON follows.
    msg.set_type("multipart/report")
    msg.set_param("report-type", "feedback-report")
    feedback = EmailMessage()
    feedback.set_payload(f"Feedback-Type: xarf\nUser-Agent: bruteguard/{__version__}\nVersion: 1\n")
    feedback["Content-Type"] = "message/feedback-report"
    feedback["Content-Disposition"] = "inline"
    msg.attach(feedback)
    for key, report in reports:
        part = EmailMessage()  # attached by hand: add_attachment would re-wrap in mixed
        part.set_content(
            json.dumps(report, indent=2, ensure_ascii=True).encode("ascii"),
            maintype="application",
            subtype="json",
            disposition="attachment",
            filename=f"xarf-{key.replace(':', '_')}.json",
        )
        del part["MIME-Version"]
        msg.attach(part)
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
                _sentence(f"Sent once, automatically, by bruteguard for {who}"),
                f"Reach us at {reporter.reply_address}"
                + (f" or {reporter.phone}" if reporter.phone else "")
                + f"; case {case_id}.",
            ]
        )
        + "\n"
    )
    return _finished(msg)
