"""What a mail that came back after a complaint means: a bounce, an auto-reply or an answer.

Everything in such a mail is written by whoever sent it, possibly the very network we complained
about. So a case id is taken only when it has exactly the shape bruteguard writes, an address
only when it passes :func:`~bruteguard.abuse.contact.clean_email`, every text handed on is
printable and bounded, the work is bounded (parts looked at, characters decoded), and no input,
however broken, makes :func:`classify` raise.

Delivery status notifications (RFC 3464) are read field by field; other bounces (qmail, classic
Exim, Sendmail text, ...) are recognised by flufl.bounce and then read for a status code and a
"mailbox full" hint.
"""

from __future__ import annotations

import binascii
import codecs
import quopri
import re
from dataclasses import dataclass, field
from email.header import decode_header
from email.message import Message
from email.utils import collapse_rfc2231_value, getaddresses
from enum import StrEnum
from html.parser import HTMLParser

from flufl.bounce import all_failures

from bruteguard.abuse.case import CASE_ID
from bruteguard.abuse.contact import clean_email
from bruteguard.safe_text import printable

__all__ = [
    "MAX_PARTS",
    "MAX_TEXT",
    "Classified",
    "MailKind",
    "classify",
    "failure_kind",
    "find_case_ids",
]

MAX_PARTS = 50  # MIME parts looked at in one mail
MAX_TEXT = 1 << 20  # characters decoded from one mail, all parts together
MAX_PART_TEXT = 256 * 1024  # characters decoded from any one part
MAX_HEADER_CHARS = 8192  # of one header value
MAX_HEADERS = 300  # header fields read per part
MAX_DEPTH = 10  # multipart nesting followed
MAX_BLOCKS = 200  # delivery-status field blocks read
MAX_SUMMARY = 200
MAX_REPLY_TEXT = 4000
MAX_MESSAGE_ID = 250

# <bg-CASE@domain> as complaint.py writes Message-ID. The candidate runs up to the "@" so a
# longer token (bg-abc/../x) is refused as a whole instead of matching in part.
_MSGID_CASE = re.compile(r"<bg-([^<>@\s]{1,200})@[^<>@\s]{1,255}>")
_MSGID_CASE_ONLY = re.compile(r"\A\s*<bg-([^<>@\s]{1,200})@[^<>@\s]{1,255}>\s*\Z")
# Original headers quoted in the text of non-standard bounces (qmail, classic Exim, ...).
_QUOTED_CASE = re.compile(
    r"^[ \t>]*(?:message-id[ \t]*:[ \t]*<bg-([^<>@\s]{1,200})@[^<>@\s]{1,255}>"
    r"|x-bruteguard-case[ \t]*:[ \t]*(\S{1,200}))[ \t]*\r?$",
    re.IGNORECASE | re.MULTILINE,
)
# "[bruteguard case CASE]" in a Subject, kept by most replies. A token without a digit is not
# taken: "in case you ..." must not name a case.
_SUBJECT_OUR_CASE = re.compile(r"bruteguard[ \t]+case[ \t]+([^\s\[\]()<>,;\"']{1,200})", re.I)
_SUBJECT_CASE = re.compile(r"(?<![A-Za-z0-9])case[ \t:#]+([^\s\[\]()<>,;\"']{1,200})", re.I)

# RFC 3463 codes: a Status field may also be 2.x.x (delivered); in free text only 4/5 are
# taken, and not when part of a longer dotted number (an IP such as 4.2.2.1, a version).
_STATUS_FIELD = re.compile(r"\A([245])\.([0-9]{1,3})\.([0-9]{1,3})\Z")
_STATUS_TEXT = re.compile(r"(?<![\w.])([45]\.[0-7]\.[0-9]{1,3})(?![0-9])(?!\.[0-9])")
_SMTP_REPLY = re.compile(r"(?<![\w.])[45][0-9][0-9][ -](?=[45]\.[0-9]|[A-Za-z<])")
_MAILBOX_FULL = re.compile(
    r"(?<![\w.])[45]\.2\.2(?![0-9])(?!\.[0-9])"
    r"|mail ?box (?:is |was )?full|(?:mail ?box|inbox|account|mail ?folder)[^.\n]{0,30}"
    r"(?:is full|over (?:its |the )?quota|out of (?:storage )?space|exceeded)"
    r"|over ?quota|quota (?:is )?exceeded|exceed(?:s|ed|ing)? (?:the |their |its |his |her )?"
    r"(?:storage |disk |mailbox )?quota|insufficient (?:disk |storage )?(?:space|storage)"
    r"|out of storage",
    re.IGNORECASE,
)
# Our own mail refused (RFC 3463 X.7.x security/policy, X.3.4 / X.2.3 too big, and the words
# servers use for blocklists, SPF/DKIM/DMARC, reverse DNS, relaying, content). Checked before
# "dead contact": when a refusal may be about our mail, the recipient is never blamed.
_OUR_MAIL_REFUSED = re.compile(
    r"spamhaus|spamcop|barracuda|sorbs|uceprotect|spamrats|surbl|\bdnsbl|\brbl\b"
    r"|black ?list|block ?list|blocked (?:using|by|because|for|due)"
    r"|(?<!not )listed (?:at|in|on|by)|after mail from|domain of sender|permission to post"
    r"|ip source bloqu|may not be mail exchanger"
    r"|\bspf\b|\bdkim\b|\bdmarc\b|sender policy framework|authenticat(?:ion|ed) (?:fail|requir)"
    r"|reverse (?:dns|lookup|hostname)|\bptr\b|rdns|no (?:dns|reverse)|client host rejected"
    r"|relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited|not allowed)"
    r"|not (?:permitted|allowed) to relay|unable to relay|we do not relay|relay not"
    r"|message (?:size|length) exceeds|message (?:is )?too (?:big|large)|size limit"
    r"|exceeds (?:the )?(?:maximum |max )?(?:message )?size|\bspam\b|junk ?mail|\bvirus"
    r"|content (?:rejected|filter)|rejected (?:for|due to|because of) (?:policy|content)"
    r"|policy (?:reasons|violation|rejection)|message (?:rejected|refused|blocked) (?:as|due|by)"
    r"|poor reputation|bad reputation|reputation|access denied|sender (?:address )?(?:rejected"
    r"|domain|verif)|unroutable sender|sender address",
    re.IGNORECASE,
)
_GREYLISTED = re.compile(r"grey ?list|gray ?list", re.IGNORECASE)
# Rate limits, ours or the recipient's, and DNS trouble: wait, whatever the code says (Gmail
# sends 5.2.1 and GoDaddy 5.1.1 for rate limits).
_WAIT_WORDS = re.compile(
    r"rate limit|receiving mail at a rate|too many (?:messages|connections|recipients|mails)"
    r"|(?:sending|sent) (?:to )?too many|try again later|temporar(?:il)?y"
    r"|malformed or unexpected name server reply|servfail|name server (?:failure|timeout)",
    re.IGNORECASE,
)
# The contact's mailbox or domain does not exist (RFC 3463 X.1.1, X.1.2, X.1.10, X.1.6, X.2.1,
# X.4.4 "unable to route"), and the words servers use for it.
_OUR_STATUS = frozenset({"5.3.4", "5.2.3", "5.1.7", "5.1.8"})  # too big; our sender address
_DEAD_STATUS = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1", "5.4.4"})
_DEAD_CONTACT = re.compile(
    r"user ?unknown|unknown (?:user|recipient|local|mailbox|address)|no such (?:user|mailbox"
    r"|recipient|address|account|domain)|(?:user|recipient|mailbox|address|account)"
    r" (?:does not|doesn't|did not) exist|(?:mailbox|recipient|user|address|account)"
    r"[^.\n]{0,20}(?:not found|unavailable|invalid|disabled|deactivated|suspended|inactive"
    r"|no longer|has been moved|moved)|invalid (?:recipient|mailbox|address)"
    r"|host (?:or domain name )?(?:unknown|not found)|unknown host|domain (?:not found"
    r"|does not exist|unknown)|(?:couldn't|could not|cannot|can't) be found|address not found"
    r"|unrouteable|unroutable|unable to route|no mx|nxdomain|not our customer"
    r"|does not accept mail|null mx|not accepting (?:network )?(?:messages|mail)"
    r"|(?:does not|doesn't|not) exist|invalid (?:final delivery )?user ?id|invalid user"
    r"|(?:host|domain) \S{1,255} not found|dns lookup fail|domain is not reachable|is frozen"
    r"|(?:does not|doesn't) have an? \S{1,100} account|not listed in (?:the )?(?:domino"
    r" directory|public name & address book|directory)|recipient name is not recognized"
    r"|indicated no smtp service|no valid recipients"
    # Lotus Notes / Domino in Japanese: "not in the directory's list", "not found in the
    # Domino Directory" (their English "not listed in ... directory" is above).
    r"|ディレクトリのリストにありません|ディレクトリには見つかりません",
    re.IGNORECASE,
)
# The recipient's own account named as gone, disabled or locked: words no policy or content
# filter uses of our mail, so they stand even beside a 5.7.x status that servers pick for
# any refusal (sendmail "525 5.7.13 Disabled recipient address", Postfix access maps'
# "Recipient address rejected: User account disabled", vpopmail's "account is locked",
# qmail's "This account has been disabled or discontinued", La Poste's "The recipient
# account is blocked", "553 Invalid recipient"), and RFC 7504's 521 text for a host
# that takes no mail at all (sendmail says it with 5.7.27 for a null MX).
_ACCOUNT_GONE = re.compile(
    r"disabled recipient(?: address)?\b|recipient address rejected: (?:user )?account"
    r" (?:is )?disabled|\b(?:recipient|user)(?:'s)? account (?:is|has been) (?:blocked|locked"
    r"|disabled|suspended|closed|deactivated)|\baccount is locked\b"
    r"|\baccount has been disabled or discontinued|\binvalid recipient\b(?! domain)"
    r"|\bhost does not accept mail\b",
    re.IGNORECASE,
)
# Exchange Online's directory-based edge blocking: "550 5.4.1 Recipient address rejected:
# Access denied" means the address is not in the receiving organisation's directory
# (Microsoft's NDR reference), not a refusal of our mail; only with that status.
_EXCHANGE_NO_SUCH_RECIPIENT = re.compile(
    r"recipient\s+address\s+rejected:\s+access\s+denied", re.IGNORECASE
)
_EXPIRED = re.compile(
    r"expired|retry (?:time(?:out)?|limit) (?:exceeded|reached)|too long in (?:the )?queue"
    r"|could not be delivered (?:with|within)|giving up|gave up|maximum time",
    re.IGNORECASE,
)
# A refusal at the end of DATA comes after the server has seen our whole message: a "user
# unknown" there is often a content or sender filter in disguise (sisimai calls it
# "filtered"), so words alone do not make it a dead contact.
# The receiving server would not talk to our relay at all (Postfix's "refused to talk to
# me" for a greeting that is not 220; "Service refused"): after a whole retry period of
# that it blocks our relay or is gone, and only the admin can tell which.
_REFUSED_TO_TALK = re.compile(r"refused to talk to me|service refused", re.IGNORECASE)
_LOCAL_PROGRAM = re.compile(r"\A\s*x-unix\s*;", re.IGNORECASE)
_AFTER_DATA = re.compile(r"end of data|after data|at data|in reply to data", re.IGNORECASE)


def _doubted(kind: MailKind, status: str | None, notice: str) -> MailKind:
    """DEAD_CONTACT only when the refusal may not be a filter's disguise.

    qmail and its kin check recipients only at the end of DATA, so an account named closed
    there (:data:`_ACCOUNT_GONE`) still counts; a bare "user unknown" there does not.
    """
    if (
        kind is MailKind.DEAD_CONTACT
        and status not in _DEAD_STATUS
        and _AFTER_DATA.search(notice)
        and not _ACCOUNT_GONE.search(notice)
    ):
        return MailKind.UNKNOWN
    return kind


# Challenge-response systems (TMDA, ASK, SpamArrest, Boxbe, ...): a robot, never a bounce.
_CHALLENGE_SUBJECT = re.compile(
    r"please confirm|confirm your (?:message|mail|e-?mail)|\(confirm\b|verification required"
    r"|verify your (?:message|e-?mail|address)|approve your (?:message|e-?mail)",
    re.IGNORECASE,
)
_CHALLENGE_HEADERS = ("x-delivery-agent", "x-tmda-confirm-done", "x-challenge", "x-boxbe")
_WARNING = re.compile(
    r"warning only|this is (?:just )?a warning|not (?:yet )?been delivered|will be retried"
    r"|will (?:continue to )?(?:retry|try)|still (?:being )?(?:trying|retried)|delivery delayed"
    r"|has been delayed|delivery attempts will continue|no action is required|has been postponed",
    re.IGNORECASE,
)
_BOUNCE_WORDS = re.compile(
    r"undeliver|not (?:be )?delivered|couldn't be delivered|could not deliver|delivery (?:has )?"
    r"failed|delivery (?:status notification|failure)|returned mail|mail delivery|failure notice"
    r"|user unknown|unknown user|no such (?:user|mailbox)|mailbox unavailable|address rejected"
    r"|permanent (?:fatal )?error|failed permanently|recipient not found|non-?delivery"
    r"|(?<![\w.])[45]\.[0-7]\.[0-9]{1,3}(?![0-9])(?!\.[0-9])",
    re.IGNORECASE,
)
# Where the returned original starts in the text of a non-standard bounce: status codes and
# addresses after it are the original's, not the bounce's.
_ORIGINAL_STARTS = re.compile(
    r"^[ \t]*-{2,}[^\n]*(?:copy of (?:the|your) message|original message|message headers? follow"
    r"|returned message|message follows|undelivered message)"
    r"|^[ \t]*original message headers:|^[ \t]*-{3,}[ \t]*original message[ \t]*-{3,}",
    re.IGNORECASE | re.MULTILINE,
)
_AUTO_SUBJECT = re.compile(
    r"\A\s*auto:|out of (?:the )?office|\bautomatic reply\b|\bauto[ -]?(?:reply|response|"
    r"responder)\b|\bautoreply\b|\bautoresponse\b|away from (?:the |my )?(?:office|desk)"
    r"|\bon vacation\b|\bvacation reply\b|\babwesenheit|automatische antwort"
    r"|r[ée]ponse automatique|respuesta autom[áa]tica|risposta automatica|automatisch antwoord",
    re.IGNORECASE,
)
# A ticket system's tag: "[Ticket#2026112310000123]", "[example.net #48213]", "[INC0012345]".
_TICKET_TAG = re.compile(
    r"\[[^\[\]]{0,60}#[ \t]?[0-9]{2,}\]|\[(?:ticket|incident|inc|request|req|sr|issue)"
    r"[ \t#:-]*[0-9]{3,}\]"
    r"|\b(?:ticket|incident|request)[ \t]*(?:#|no\.?|number|id)[ \t:#]*[0-9]{3,}",
    re.IGNORECASE,
)
_TICKET_ACK_SUBJECT = re.compile(
    r"\breceived\b|\breceipt\b|acknowledg|\bauto-?reply\b|\bautomatic reply\b|\bcreated\b"
    r"|\bopened\b|\bnew ticket\b|\bconfirmation\b",
    re.IGNORECASE,
)
_TICKET_ACK_BODY = re.compile(
    r"automatically generated|this is an automat|automated (?:message|response|reply|acknowledg)"
    r"|(?:ticket|request|case|report|message|e-?mail) has been (?:created|opened|logged|registered"
    r"|received)|has been assigned (?:a |an |the )?(?:ticket|id|number|reference)"
    r"|no need to reply|do not reply to this",
    re.IGNORECASE,
)
_LIST_HEADERS = (
    "list-id", "list-post", "list-subscribe", "mailing-list", "x-mlserver", "x-mailman-version",
)  # fmt: skip
_NOT_MEMBER = re.compile(
    r"\bnot (?:a )?(?:list )?member\b|\bnon-?members?\b|\bmembers[- ]only\b", re.IGNORECASE
)
_BOUNCE_LOCALS = frozenset({"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon"})
_UNSAFE_CODECS = frozenset(  # quadratic decoders, and ones that interpret escapes
    {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined"}
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_FOLD = re.compile(r"\r?\n(?=[ \t])|\r(?=[ \t])")
_HEADER_LINE = re.compile(r"\A([!-9;-~]{1,76})[ \t]*:(.*)\Z", re.DOTALL)


class MailKind(StrEnum):
    """What a mail that came back means for the case it answers.

    Only DEAD_CONTACT can ever lead to a network block; anything the reader does not
    understand is UNKNOWN, which the admin decides (the safe default).
    """

    DEAD_CONTACT = "dead_contact"  # 5.1.1/5.1.2/5.1.10, host unknown, mailbox disabled/moved
    MAILBOX_FULL = "mailbox_full"  # 5.2.2 / 4.2.2 / over quota: reachable in principle, not now
    OUR_MAIL_REFUSED = "our_mail_refused"  # policy, DNSBL, SPF/DKIM/DMARC, PTR, size, spam
    TRANSIENT = "transient"  # temporary: delayed, 4.x.x, expired; nothing to do but wait
    UNKNOWN = "unknown"  # a failure not understood: the admin decides
    AUTO_REPLY = "auto_reply"  # out of office, challenge-response, ticket ack, 2.x.x notice
    HUMAN_REPLY = "human_reply"  # anything else answering a case: a person should read it
    UNRELATED = "unrelated"  # names no case of ours


@dataclass(frozen=True)
class Classified:
    """One incoming mail, read: which case, what it means, and what to put in the case file."""

    case_id: str | None
    kind: MailKind
    status: str | None  # RFC 3463 code, e.g. "5.1.1", when known
    recipient: str | None  # the failed recipient, only if it passes clean_email
    summary: str  # one printable line, at most 200 characters
    text: str  # for HUMAN_REPLY / AUTO_REPLY: the reply's text, printable, bounded; else ""
    message_id: str | None  # the incoming mail's own Message-ID, printable, bounded


def classify(message: Message) -> Classified:
    """Read one mail that came back after a complaint; never raises.

    A mail that cannot be read at all comes back UNRELATED with a summary saying so.
    """
    try:
        return _classify(_Mail(message))
    except Exception as err:  # hostile input must never stop the abuse desk
        return Classified(
            None,
            MailKind.UNRELATED,
            None,
            None,
            f"unreadable mail ({type(err).__name__})",
            "",
            None,
        )


def failure_kind(message: Message) -> MailKind | None:
    """The class a bounce would get if it answered one of our cases; None if no bounce.

    For evaluating the classifier over public bounce corpora, whose mails name no case.
    """
    try:
        mail = _Mail(message)
        subject = mail.subject()
        if _is_challenge(mail, subject):
            return MailKind.AUTO_REPLY
        bounce = _bounce(mail, subject)
    except Exception:
        return None
    if bounce is None:
        return MailKind.AUTO_REPLY if _is_auto_reply(mail, subject) else None
    return bounce[0].kind or MailKind.AUTO_REPLY


def find_case_ids(message: Message) -> list[str]:
    """Every bruteguard case id the mail names, most trustworthy first, without repeats.

    Order: In-Reply-To / References (``<bg-CASE@...>``); the returned original of a bounce
    (message/rfc822 or text/rfc822-headers part: its Message-ID or X-Bruteguard-Case); the
    same headers quoted in a text part; last, ``case CASE`` in the Subject.
    """
    try:
        return _find_case_ids(_Mail(message))
    except Exception:  # see classify
        return []


# --- reading a mail, bounded -------------------------------------------------------------------


@dataclass
class _Mail:
    """One mail with the parts, header fields and decoded texts read so far (each read once)."""

    message: Message
    left: int = MAX_TEXT
    parts: list[Message] = field(default_factory=list)
    _headers: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    _texts: dict[int, str] = field(default_factory=dict)
    _keep: list[object] = field(default_factory=list)  # keeps ids in the caches unique

    def __post_init__(self) -> None:
        self.parts = _walk(self.message)

    def headers(self, part: Message) -> list[tuple[str, str]]:
        """``(lower-case name, unfolded value)`` pairs as sent; values are not decoded."""
        key = id(part)
        if key not in self._headers:
            self._keep.append(part)
            pairs: list[tuple[str, str]] = []
            try:
                for count, (name, value) in enumerate(part.raw_items()):
                    if count >= MAX_HEADERS:
                        break
                    text = _FOLD.sub("", _plain_str(value)[:MAX_HEADER_CHARS])
                    pairs.append((_plain_str(name).strip().lower(), text))
            except Exception:  # noqa: S110 - a broken header list reads as empty
                pass
            self._headers[key] = pairs
        return self._headers[key]

    def header(self, part: Message, name: str) -> str | None:
        for key, value in self.headers(part):
            if key == name:
                return value
        return None

    def header_all(self, part: Message, name: str) -> list[str]:
        return [value for key, value in self.headers(part) if key == name]

    def text(self, part: Message) -> str:
        """The decoded text of a leaf part, within the mail's budget (once per part)."""
        key = id(part)
        if key not in self._texts:
            self._keep.append(part)
            limit = min(MAX_PART_TEXT, self.left)
            text = _decode_bytes(_payload_bytes(self, part, limit), _param(part, "charset"))
            text = _SURROGATE.sub("\ufffd", text[:limit])  # UTF-7 can decode to lone ones
            # One line end for every pattern: old Mac mail ends its lines with CR alone.
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            self.left -= len(text)
            self._texts[key] = text
        return self._texts[key]

    def subject(self) -> str:
        return _decode_words(self.header(self.message, "subject") or "")


def _walk(message: Message) -> list[Message]:
    """Parts in document order, at most MAX_PARTS, not entering returned originals."""
    out: list[Message] = []
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack and len(out) < MAX_PARTS:
        part, depth = stack.pop()
        out.append(part)
        if _ctype(part).startswith("multipart/") and depth < MAX_DEPTH:
            children = _raw_payload(part)
            if isinstance(children, list):
                kids = [c for c in children[:MAX_PARTS] if isinstance(c, Message)]
                stack.extend((child, depth + 1) for child in reversed(kids))
    return out


def _raw_payload(part: Message) -> object:
    """The body as the parser stored it: a list of parts, or the text still transfer-encoded.

    Not ``get_payload()``: for a body with 8-bit bytes that re-decodes the whole body with
    whatever charset the part declares, unbounded (and a charset name holding a NUL raises).
    """
    return getattr(part, "_payload", None)


def _ctype(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # an unparsable Content-Type is plain text (RFC 2045)
        return "text/plain"


def _param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:
        return None
    if isinstance(value, tuple):
        try:
            value = collapse_rfc2231_value(value)
        except Exception:
            return None
    return value[:100] if isinstance(value, str) else None


def _plain_str(value: object) -> str:
    """``value`` as text; bytes smuggled in as surrogates (8-bit headers) become U+FFFD."""
    try:
        text = value if isinstance(value, str) else str(value)
        text = str.__str__(text) if isinstance(text, str) else ""
    except Exception:
        return ""
    if _SURROGATE.search(text):
        text = _to_bytes(text).decode("utf-8", "replace")
    return text


def _to_bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _codec(charset: str | None) -> str:
    if not charset:
        return "utf-8"
    try:
        name = codecs.lookup(charset.strip().strip('"').lower()).name
    except (LookupError, ValueError, TypeError):
        return "utf-8"
    return "utf-8" if name in _UNSAFE_CODECS else name


def _decode_bytes(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(_codec(charset), "replace")
    except Exception:  # e.g. a declared "charset=base64": not a text codec
        return data.decode("utf-8", "replace")


def _payload_bytes(mail: _Mail, part: Message, limit: int) -> bytes:
    """At most ``limit`` bytes of a leaf's body, transfer encoding undone on a slice only."""
    if limit <= 0:
        return b""
    raw = _raw_payload(part)
    if isinstance(raw, bytes):
        return raw[:limit]
    if not isinstance(raw, str):
        return b""
    cte = (mail.header(part, "content-transfer-encoding") or "").strip().lower()
    if cte == "base64":
        clean = re.sub(r"[^A-Za-z0-9+/]", "", raw[: limit * 4 // 3 + 4096])
        clean = clean[: len(clean) // 4 * 4]
        try:
            data = binascii.a2b_base64(clean)
        except (binascii.Error, ValueError):
            data = b""
    elif cte == "quoted-printable":
        data = quopri.decodestring(_to_bytes(raw[: limit * 3]))
    else:
        data = _to_bytes(raw[:limit])
    return data[:limit]


def _decode_words(value: str) -> str:
    """RFC 2047 encoded-words decoded, with the same charset caution as bodies."""
    value = _plain_str(value)
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except Exception:
        return value
    out = []
    for chunk, charset in chunks:
        out.append(chunk if isinstance(chunk, str) else _decode_bytes(chunk, charset))
    return "".join(out)


def _parse_fields(text: str, max_blocks: int = MAX_BLOCKS) -> list[list[tuple[str, str]]]:
    """Header-style blocks separated by blank lines (delivery-status, rfc822-headers)."""
    blocks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
                current = []
                if len(blocks) >= max_blocks:
                    return blocks
            continue
        if line[0] in " \t" and current:
            name, value = current[-1]
            if len(value) < MAX_HEADER_CHARS:
                current[-1] = (name, value + " " + line.strip())
            continue
        match = _HEADER_LINE.match(line)
        if match and len(current) < MAX_HEADERS:
            current.append((match.group(1).lower(), match.group(2).strip()[:MAX_HEADER_CHARS]))
    if current:
        blocks.append(current)
    return blocks


# --- case ids --------------------------------------------------------------------------------


def _find_case_ids(mail: _Mail) -> list[str]:
    found: list[str] = []

    def add(candidate: str | None) -> None:
        if candidate and CASE_ID.match(candidate) and candidate not in found:
            found.append(candidate)

    top = mail.message
    for name in ("in-reply-to", "references"):
        for value in mail.header_all(top, name):
            for match in _MSGID_CASE.finditer(value):
                add(match.group(1))

    for fields in _returned_headers(mail):
        for name, value in fields:
            if name in ("message-id", "x-original-message-id"):
                match = _MSGID_CASE_ONLY.match(value)
                add(match.group(1) if match else None)
            elif name == "x-bruteguard-case":
                add(value.strip())

    for part in mail.parts:
        if _is_text_leaf(part):
            for match in _QUOTED_CASE.finditer(mail.text(part)):
                add(match.group(1) or match.group(2))

    inner = _wrapped_report(mail)
    for candidate in _find_case_ids(inner) if inner is not None else []:
        add(candidate)

    subject = mail.subject()
    for pattern in (_SUBJECT_OUR_CASE, _SUBJECT_CASE):
        for match in pattern.finditer(subject):
            token = match.group(1)
            if any(ch.isdigit() for ch in token):
                add(token)
    return found


def _returned_headers(mail: _Mail) -> list[list[tuple[str, str]]]:
    """Header fields of the returned original(s), and the per-message fields of a DSN."""
    out: list[list[tuple[str, str]]] = []
    for part in mail.parts:
        ctype = _ctype(part)
        if ctype in ("message/rfc822", "message/global"):
            payload = _raw_payload(part)
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                out.append(mail.headers(payload[0]))
            elif isinstance(payload, str):  # not parsed as a message (e.g. base64-encoded)
                out.extend(_parse_fields(mail.text(part), max_blocks=1))
        elif ctype in ("text/rfc822-headers", "message/global-headers"):
            out.extend(_parse_fields(mail.text(part), max_blocks=1))
        elif ctype in ("message/delivery-status", "message/global-delivery-status"):
            out.extend(_status_blocks(mail, part)[:1])
    return out


def _is_text_leaf(part: Message) -> bool:
    """A part whose body is text: text/plain, or a multipart whose boundary never came."""
    ctype = _ctype(part)
    if ctype == "text/plain":
        return not part.is_multipart()
    return ctype.startswith("multipart/") and isinstance(_raw_payload(part), str)


# --- delivery status notifications (RFC 3464) ------------------------------------------------


@dataclass(frozen=True)
class _Failure:
    kind: MailKind | None  # None: delivered / relayed / expanded, or no verdict
    status: str | None
    recipient: str | None
    shown_recipient: str  # for the summary, even when it failed clean_email
    reason: str


# Several recipients in one report: the one that asks most of the admin wins; a refusal of our
# mail or a failure not understood outranks a dead contact (the safe side).
_RANK = {
    MailKind.OUR_MAIL_REFUSED: 6,
    MailKind.UNKNOWN: 5,
    MailKind.DEAD_CONTACT: 4,
    MailKind.MAILBOX_FULL: 3,
    MailKind.TRANSIENT: 2,
    MailKind.AUTO_REPLY: 1,
    None: 0,
}


def _verdict(status: str | None, text: str, action: str = "") -> MailKind:
    """One failure's class from its action, RFC 3463 status and words; UNKNOWN if unsure.

    Order is by harm: a delay or temporary code never escalates, a possible refusal of our
    own mail is never blamed on the recipient, and only an explicit dead mailbox or domain
    (by code or by words) is DEAD_CONTACT.
    """
    full = bool(status and status[1:] == ".2.2") or bool(_MAILBOX_FULL.search(text))
    if action.startswith(("deliver", "relay", "expand")) or (status and status[0] == "2"):
        return MailKind.AUTO_REPLY
    delayed = action.startswith("delay")
    if delayed or (status and status[0] == "4"):
        if status == "4.2.2" and not delayed:
            return MailKind.MAILBOX_FULL
        # Deferred or given up after temporary refusals of our relay (a blocklist, no PTR,
        # an X.7 security/policy code such as Yahoo's "4.7.0 [TSS04] ... user complaints"):
        # the admin must hear of it, though nothing is wrong at the recipient. Greylisting
        # is the one policy answer that only asks us to wait.
        policy = bool(status and status[1:4] == ".7.") or bool(_OUR_MAIL_REFUSED.search(text))
        if policy and not _GREYLISTED.search(text):
            return MailKind.OUR_MAIL_REFUSED
        if action.startswith("fail") and _REFUSED_TO_TALK.search(text):
            return MailKind.UNKNOWN  # refused at every connection until our relay gave up
        return MailKind.TRANSIENT
    if status in ("5.4.7",) or (status is None and _EXPIRED.search(text)):
        return MailKind.TRANSIENT
    if _WAIT_WORDS.search(text):
        return MailKind.TRANSIENT
    if status == "5.4.1" and _EXCHANGE_NO_SUCH_RECIPIENT.search(text):
        return MailKind.DEAD_CONTACT
    if _OUR_MAIL_REFUSED.search(text):
        return MailKind.OUR_MAIL_REFUSED
    if _ACCOUNT_GONE.search(text):
        return MailKind.DEAD_CONTACT
    if status and (status.startswith("5.7.") or status in _OUR_STATUS):
        return MailKind.OUR_MAIL_REFUSED
    if full:
        return MailKind.MAILBOX_FULL
    if status in _DEAD_STATUS or _DEAD_CONTACT.search(text):
        return MailKind.DEAD_CONTACT
    if _EXPIRED.search(text):
        return MailKind.TRANSIENT
    return MailKind.UNKNOWN


def _status_blocks(mail: _Mail, part: Message) -> list[list[tuple[str, str]]]:
    """The field blocks of a message/(global-)delivery-status part, as the parser split them."""
    payload = _raw_payload(part)
    if isinstance(payload, str):
        return _parse_fields(mail.text(part))
    if not isinstance(payload, list):
        return []
    blocks: list[list[tuple[str, str]]] = []
    for block in payload[:MAX_BLOCKS]:
        if not isinstance(block, Message):
            continue
        blocks.append(mail.headers(block))
        rest = _raw_payload(block)  # global-delivery-status parses as one message: the rest
        if isinstance(rest, str) and rest.strip():
            blocks.extend(_parse_fields(rest[:MAX_PART_TEXT]))
    return blocks


def _is_dsn(mail: _Mail) -> bool:
    top = mail.message
    if _ctype(top) == "multipart/report":
        report = (_param(top, "report-type") or "").strip().lower()
        if report in ("delivery-status", "global-delivery-status"):
            return True
    return any(
        _ctype(p) in ("message/delivery-status", "message/global-delivery-status")
        for p in mail.parts
    )


def _dsn_failures(mail: _Mail) -> list[_Failure]:
    failures = []
    notice = _notification_text(mail)
    for part in mail.parts:
        if _ctype(part) not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        for block in _status_blocks(mail, part):
            fields: dict[str, str] = {}
            for name, value in block:
                fields.setdefault(name, value)
            if "action" in fields or "final-recipient" in fields:
                failures.append(_recipient_failure(fields, notice))
    return failures


def _status_of(value: str | None, *, allow_success: bool) -> str | None:
    if not value:
        return None
    token = value.strip().split(maxsplit=1)[0] if value.strip() else ""
    match = _STATUS_FIELD.match(token)
    if not match or (match.group(1) == "2" and not allow_success):
        return None
    return token


def _refined_status(status: str | None, diagnostic: str) -> str | None:
    """The Status field, made specific from the diagnostic when it says only x.0.0.

    Exim, for one, writes "Status: 5.0.0" while the remote server said "550 5.1.1".
    """
    if status is not None and not status.endswith(".0.0"):
        return status
    for match in _STATUS_TEXT.finditer(diagnostic):
        code = match.group(1)
        if status is None or code[0] == status[0]:
            return code
    return status


def _recipient_failure(fields: dict[str, str], notice: str = "") -> _Failure:
    action = (fields.get("action", "").strip().lower().split() or [""])[0]
    diagnostic = fields.get("diagnostic-code", "")
    status = _status_of(fields.get("status"), allow_success=True)
    status = _refined_status(status, diagnostic or notice)  # no diagnostic: the report's text
    recipient = None
    shown = ""
    for key in ("original-recipient", "final-recipient", "x-actual-recipient"):
        value = fields.get(key)
        if not value:
            continue
        address = value.partition(";")[2] if ";" in value else value
        address = address.strip()
        if address.startswith("<") and address.endswith(">"):
            address = address[1:-1].strip()
        shown = shown or address
        recipient = clean_email(address)
        if recipient:
            shown = recipient
            break
    kind: MailKind | None = _verdict(status, diagnostic, action)
    if kind is MailKind.UNKNOWN and notice:  # no diagnostic words: the report's own text
        kind = _verdict(status, notice, action)
    if kind is not None:
        kind = _doubted(kind, status, f"{diagnostic}\n{notice}")
    if kind is MailKind.DEAD_CONTACT and _LOCAL_PROGRAM.match(diagnostic):
        # A local delivery program's words (procmail, maildrop run by Postfix's local or
        # pipe, sendmail's prog mailer): its "no such user" is about its own set-up on a
        # host that took our mail for the address, not a verdict on the address.
        kind = MailKind.UNKNOWN
    if kind is MailKind.UNKNOWN and not action.startswith(("fail", "error")) and not status:
        kind = None  # a block with neither an action nor a status: no verdict
    reason = _diagnostic_text(diagnostic) or (f"action {action}" if action else "")
    return _Failure(kind, status, recipient, shown, reason)


def _diagnostic_text(diagnostic: str) -> str:
    """'smtp; 550 5.1.1 <a@b>: ...' -> '<a@b>: ...' (the code is shown once, in front)."""
    text = " ".join(diagnostic.split())
    text = re.sub(r"\A[A-Za-z0-9_.-]{1,20}\s*;\s*", "", text)
    text = re.sub(r"\A[245][0-9][0-9](?:[ -]|\Z)\s*", "", text)
    text = re.sub(r"\A[245]\.[0-9]{1,3}\.[0-9]{1,3}(?:\s+|\Z)", "", text)
    # Multi-line replies repeat the codes on every line: "... 552-5.2.2 the recipient ..."
    return re.sub(r"\s[245][0-9][0-9][ -](?:[245]\.[0-9]{1,3}\.[0-9]{1,3}\s)?", " ", text)


def _failure_summary(failure: _Failure, others: int) -> str:
    who = failure.shown_recipient
    reason = failure.reason
    if who and not reason.lower().startswith(f"<{who.lower()}>"):
        reason = f"<{who}>: {reason}" if reason else f"<{who}>"
    text = f"{failure.status} {reason}" if failure.status else reason
    if others:
        text += f" (+{others} more recipient{'s' if others > 1 else ''})"
    return text or "delivery status notification"


# --- non-standard bounces --------------------------------------------------------------------


def _notification_text(mail: _Mail) -> str:
    """The bounce's own words: its first text part, up to where the returned original starts."""
    for part in mail.parts:
        if _is_text_leaf(part):
            text = mail.text(part)[:65536]
            match = _ORIGINAL_STARTS.search(text)
            return text[: match.start()] if match else text
    return ""


def _bounded_copy(mail: _Mail, part: Message, depth: int, count: list[int]) -> Message:
    """A copy of the mail for flufl.bounce: same structure, decoded text only, all bounded.

    flufl.bounce reads every part's whole body; given the copy, it reads what this module
    already decoded within its budget, and no attachment at all.
    """
    copy = Message()
    for name, value in mail.headers(part):
        if name != "content-transfer-encoding":
            copy[name] = value
    if depth == 0 and not _parses_as_from(copy):
        del copy["from"]  # flufl.bounce's Yale detector fails when From yields no address
        copy["From"] = "<>"
    ctype = _ctype(part)
    payload = _raw_payload(part)
    if isinstance(payload, list):
        children = []
        for child in payload:
            if count[0] >= MAX_PARTS or depth >= MAX_DEPTH:
                break
            if isinstance(child, Message):
                count[0] += 1
                children.append(_bounded_copy(mail, child, depth + 1, count))
        copy.set_payload(children)
    elif isinstance(payload, str) and (
        ctype.startswith(("text/", "message/")) or ctype.startswith("multipart/")
    ):
        copy.set_payload(mail.text(part))
    else:
        copy.set_payload("")
    return copy


def _parses_as_from(message: Message) -> bool:
    try:
        return bool(getaddresses([str(message.get("from", ""))]))
    except Exception:
        return False


def _flufl_failures(mail: _Mail) -> tuple[list[str], list[str]]:
    """(temporary, permanent) failed addresses as flufl.bounce sees them, as plain text."""
    try:
        copy = _bounded_copy(mail, mail.message, 0, [1])
        temporary, permanent = all_failures(copy)
    except Exception:  # a detector tripping over junk means "no bounce found"
        return [], []

    def text(addresses: frozenset[bytes]) -> list[str]:
        return sorted(a.decode("ascii", "replace")[:254] for a in list(addresses)[:100])

    return text(temporary), text(permanent)


def _bounce_sender(mail: _Mail) -> tuple[bool, bool]:
    """(surely a mailer daemon, maybe one): From MAILER-DAEMON; From postmaster or null sender.

    Auto-replies are sent with a null return path too (RFC 3834), and a person may write from
    postmaster@, so the weak signs need failure words in the text as well.
    """
    top = mail.message
    return_path = (mail.header(top, "return-path") or "").strip()
    null_sender = return_path in ("<>", "") and mail.header(top, "return-path") is not None
    strong = weak = False
    addresses = _from_addresses(mail)
    for name, address in addresses[:5]:
        local = address.rpartition("@")[0].lower() if "@" in address else address.lower()
        display = name.strip().lower()
        if (
            local in _BOUNCE_LOCALS
            or display in ("mail delivery system", "mail delivery subsystem")
            or (not address.strip() and display in _BOUNCE_LOCALS)  # MAILER-DAEMON <> (DMA)
        ):
            strong = True
        elif local in ("postmaster", "post_master"):  # post_master@: Verizon's gateways
            weak = True
    return strong, weak or null_sender


def _first_clean(addresses: list[str]) -> str | None:
    for address in addresses:
        if cleaned := clean_email(address):
            return cleaned
    return None


def _text_failure(mail: _Mail, temporary: list[str], permanent: list[str], notice: str) -> _Failure:
    """A verdict from a non-standard bounce's own words."""
    status = None
    for match in _STATUS_TEXT.finditer(notice):
        status = match.group(1)
        if not permanent or status[0] == "5":
            break
    if (temporary and not permanent) or _WARNING.search(notice) or _WARNING.search(mail.subject()):
        # Still being retried: temporary, unless what holds it up is a refusal of our mail.
        kind = _verdict(status or "4.0.0", notice, "delayed")
        kind = kind if kind is MailKind.OUR_MAIL_REFUSED else MailKind.TRANSIENT
        addresses = temporary if temporary and not permanent else permanent
    else:  # the sender gave up: a permanent failure, whatever code the reply had
        kind, addresses = _doubted(_verdict(status, notice, "failed"), status, notice), permanent
    recipient = _first_clean(addresses)
    shown = recipient or (addresses[0] if addresses else "")
    return _Failure(kind, status, recipient, shown, _reason_line(notice, status, shown))


def _reason_line(notice: str, status: str | None, recipient: str) -> str:
    """Why, in the notice's words: the paragraph with the code, from the server's reply on."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n[ \t]*\n", notice)]
    paragraphs = [p for p in paragraphs if p]
    chosen = next((p for p in paragraphs if status and status in p), None)
    chosen = chosen or next((p for p in paragraphs if _SMTP_REPLY.search(p)), None)
    chosen = chosen or next((p for p in paragraphs if _BOUNCE_WORDS.search(p)), None)
    if not chosen:
        return "undeliverable (non-standard bounce)"
    reply = _SMTP_REPLY.search(chosen)
    if reply:
        return _diagnostic_text(chosen[reply.start() :])
    prefix = f"<{recipient}>:"
    if recipient and chosen.lower().startswith(prefix.lower()):
        chosen = chosen[len(prefix) :].strip()
    return chosen


# --- replies -----------------------------------------------------------------------------------


class _HTMLText(HTMLParser):
    """Visible text of an HTML reply; scripts and styles dropped, block ends made line ends."""

    _BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


def _html_text(html: str) -> str:
    parser = _HTMLText()
    try:
        parser.feed(html[:MAX_PART_TEXT])
        parser.close()
    except Exception:  # noqa: S110 - keep what was read
        pass
    return "".join(parser.out)


def _is_attachment(mail: _Mail, part: Message) -> bool:
    disposition = (mail.header(part, "content-disposition") or "").strip().lower()
    return disposition.startswith("attachment")


def _reply_text(mail: _Mail) -> str:
    leaves = [p for p in mail.parts if not _is_attachment(mail, p)]
    plain = [p for p in leaves if _ctype(p) == "text/plain" and not p.is_multipart()]
    html = [p for p in leaves if _ctype(p) == "text/html" and not p.is_multipart()]
    broken = [p for p in leaves if _is_text_leaf(p)]  # a multipart whose boundary never came
    for part in plain:
        if text := mail.text(part).strip():
            return _clean_text(text)
    for part in html:
        if text := _html_text(mail.text(part)).strip():
            return _clean_text(text)
    for part in broken:
        if text := mail.text(part).strip():
            return _clean_text(text)
    return ""


def _clean_text(text: str, limit: int = MAX_REPLY_TEXT) -> str:
    """Printable multi-line text: controls shown escaped, blank runs squeezed, length cut."""
    lines: list[str] = []
    for raw in text[: limit * 4].replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = printable(raw.expandtabs(4).rstrip())
        if line or (lines and lines[-1]):
            lines.append(line)
    out = "\n".join(lines).strip("\n")
    if len(out) > limit:
        out = out[: limit - 6] + " [...]"
    return out


def _one_line(text: str, limit: int = MAX_SUMMARY) -> str:
    line = printable(" ".join(text.split()))
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _from_addresses(mail: _Mail) -> list[tuple[str, str]]:
    """(display name, address) pairs of From, parsed before encoded-words are decoded.

    Decoding first would let a display name such as ``=?utf-8?b?...?=`` smuggle in a CR/LF
    and a second address that the parser would then take for the sender.
    """
    try:
        pairs = getaddresses(mail.header_all(mail.message, "from")[:5])
    except Exception:
        return []
    return [(_decode_words(name), address) for name, address in pairs[:5]]


def _sender(mail: _Mail) -> str:
    for name, address in _from_addresses(mail)[:1]:
        if cleaned := clean_email(address):
            return cleaned
        if name or address:
            return _one_line(name or address, 60)
    return "unknown sender"


def _is_ticket_system(mail: _Mail, subject: str) -> bool:
    top = mail.message
    return bool(_TICKET_TAG.search(subject)) or any(
        mail.header(top, name) is not None
        for name in ("rt-ticket", "x-rt-ticket", "x-otrs-ticketnumber", "x-ticket-id")
    )


def _is_challenge(mail: _Mail, subject: str) -> bool:
    """A challenge-response robot (TMDA and its kind) asking us to confirm: not a bounce."""
    top = mail.message
    agent = (mail.header(top, "x-delivery-agent") or "").lower()
    if "tmda" in agent or any(mail.header(top, n) is not None for n in _CHALLENGE_HEADERS[1:]):
        return True
    return bool(_CHALLENGE_SUBJECT.search(subject))


def _is_auto_reply(mail: _Mail, subject: str) -> bool:
    """RFC 3834 and its older cousins; a ticket system's acknowledgement; a challenge."""
    top = mail.message
    if _is_challenge(mail, subject):
        return True
    submitted = (mail.header(top, "auto-submitted") or "").strip().lower()
    if submitted and submitted.split(";")[0].split("(")[0].strip() != "no":
        return True
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-autogenerated"):
        value = mail.header(top, name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            return True
    if _AUTO_SUBJECT.search(subject):
        return True
    ticket = _is_ticket_system(mail, subject)
    precedence = (mail.header(top, "precedence") or "").strip().lower()
    # Request Tracker sends every mail, a person's answers too, with "Precedence: bulk"; in a
    # ticket system's mail only an acknowledgement's own words count.
    if precedence in ("auto_reply", "auto-reply") or (
        precedence in ("bulk", "junk") and not ticket
    ):
        return True
    if ticket:
        if _TICKET_ACK_SUBJECT.search(_TICKET_TAG.sub(" ", subject)):
            return True
        body = _reply_text(mail)[:2000]
        return bool(_TICKET_ACK_BODY.search(body))
    return False


def _disposition(mail: _Mail) -> str | None:
    """A read receipt (RFC 8098): the disposition it reports, e.g. 'displayed'."""
    for part in mail.parts:
        if _ctype(part) in (
            "message/disposition-notification",
            "message/global-disposition-notification",
        ):
            blocks = _status_blocks(mail, part)
            for block in blocks:
                for name, value in block:
                    if name == "disposition":
                        return value.rpartition(";")[2].strip()[:40] or "disposition"
            return "disposition"
    return None


# --- the verdict -----------------------------------------------------------------------------


def _classify(mail: _Mail) -> Classified:
    cases = _find_case_ids(mail)
    case_id = cases[0] if cases else None
    message_id = _message_id(mail)
    subject = mail.subject()

    bounce = None if _is_challenge(mail, subject) else _bounce(mail, subject)
    if bounce is not None:
        failure, others = bounce
        summary = _failure_summary(failure, others)
        kind = failure.kind or MailKind.AUTO_REPLY
        if failure.kind is None:
            summary = f"delivery report, no failure: {summary}"
        if case_id is None:
            return Classified(
                None,
                MailKind.UNRELATED,
                failure.status,
                failure.recipient,
                _one_line(f"bounce for a mail that is not ours: {summary}"),
                "",
                message_id,
            )
        return Classified(
            case_id, kind, failure.status, failure.recipient, _one_line(summary), "", message_id
        )

    sender = _sender(mail)
    disposition = _disposition(mail)
    if disposition is not None:
        kind, what = MailKind.AUTO_REPLY, f"read receipt ({disposition}) from {sender}"
    elif _is_auto_reply(mail, subject):
        kind, what = MailKind.AUTO_REPLY, f"auto-reply from {sender}"
    else:
        kind, what = MailKind.HUMAN_REPLY, f"reply from {sender}"
    summary = f"{what}: {subject}" if subject.strip() else what
    if case_id is None:
        return Classified(
            None,
            MailKind.UNRELATED,
            None,
            None,
            _one_line(f"names no case: {summary}"),
            "",
            message_id,
        )
    return Classified(case_id, kind, None, None, _one_line(summary), _reply_text(mail), message_id)


def _bounce(mail: _Mail, subject: str) -> tuple[_Failure, int] | None:
    """The worst failure a bounce reports (with how many others), or None if not a bounce."""
    if _is_dsn(mail):
        failures = _dsn_failures(mail)
        if failures:
            worst = max(failures, key=lambda f: _RANK[f.kind])
            return worst, len(failures) - 1
    if (inner := _wrapped_report(mail)) is not None:
        return _bounce(inner, inner.subject())
    temporary, permanent = _flufl_failures(mail)
    notice = _notification_text(mail)
    if temporary or permanent:
        return _text_failure(mail, temporary, permanent, notice), 0
    if _is_list_refusal(mail, subject, notice):
        reason = _one_line(subject or notice, 120)
        return _Failure(MailKind.UNKNOWN, None, None, "", f"mailing list refused: {reason}"), 0
    strong, weak = _bounce_sender(mail)
    if (
        _is_dsn(mail)
        or strong
        or (weak and (_BOUNCE_WORDS.search(subject) or _BOUNCE_WORDS.search(notice)))
    ):
        return _text_failure(mail, [], [], notice), 0
    return None


def _is_list_refusal(mail: _Mail, subject: str, notice: str) -> bool:
    """A list manager (fml, ezmlm, Mailman, ...) refusing or holding a non-member's post.

    The abuse address is a members-only list: our mail did not reach a person, and no
    one at the network is to blame; only the admin can find a way in.
    """
    top = mail.message
    if not any(mail.header(top, name) is not None for name in _LIST_HEADERS):
        return False
    return bool(_NOT_MEMBER.search(subject) or _NOT_MEMBER.search(notice[:4000]))


def _wrapped_report(mail: _Mail) -> _Mail | None:
    """A mail gateway's bounce that carries the real server's DSN as an attached message.

    Mail-filter gateways (Trend Micro's, for one) send their own short notice from
    MAILER-DAEMON and attach the DSN they received. Only one level is opened, only from a
    MAILER-DAEMON sender, and only a multipart/report: our complaint, the other attached
    message such a bounce may hold, is never one.
    """
    if _is_dsn(mail) or not _bounce_sender(mail)[0]:
        return None  # a DSN is read as it is; the report found is one, so one level only
    for part in mail.parts:
        if _ctype(part) not in ("message/rfc822", "message/global"):
            continue
        payload = _raw_payload(part)
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            inner = _Mail(payload[0], left=mail.left)
            if _ctype(inner.message) == "multipart/report" and _is_dsn(inner):
                return inner
    return None


def _message_id(mail: _Mail) -> str | None:
    value = mail.header(mail.message, "message-id")
    if value is None:
        return None
    match = re.search(r"<[^<>\s]{1,250}>", value)
    text = match.group(0) if match else value
    return _one_line(text, MAX_MESSAGE_ID) or None
