"""The lookup result and the checks every value from a registry reply must pass.

RDAP and whois text is written by whoever holds the network, i.e. possibly the attacker:
an e-mail field may carry CR/LF (header injection), several addresses, a display name or
junk, so a value is kept only when it is exactly one plain address or a plain phone number.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Literal

import msgspec

__all__ = [
    "RIR_DOMAINS",
    "Facts",
    "NetworkContact",
    "clean_asn",
    "clean_country",
    "clean_email",
    "clean_name",
    "clean_network",
    "clean_phone",
    "email_domain",
    "is_registry_email",
    "network_size",
    "pick_email",
    "remark_email",
    "role_rank",
]

Source = Literal["rdap", "whois", "remarks", "rfc2142", "csirt", "none"]

# Boilerplate in every reply names the registries themselves; they never run the network.
# The national registries under APNIC and LACNIC (JPNIC, KRNIC, TWNIC, CNNIC, IDNIC, VNNIC,
# NIC.br) appear as the contact of the whole national block they hold; complaining there
# reaches the registry, not the network, so their addresses are never a contact either.
RIR_DOMAINS = frozenset(
    {
        "arin.net",
        "ripe.net",
        "apnic.net",
        "lacnic.net",
        "afrinic.net",
        "iana.org",
        "nic.br",
        "registro.br",
        "nic.ad.jp",
        "kisa.or.kr",
        "nic.or.kr",
        "krnic.or.kr",
        "twnic.net.tw",
        "twnic.tw",
        "cnnic.cn",
        "cnnic.net.cn",
        "idnic.net",
        "apjii.or.id",
        "vnnic.vn",
        "vnnic.net.vn",
    }
)
# Mailboxes a network runs as a function, not a person's, best first (RFC 2142 names them).
_ROLES = (("abuse",), ("noc", "security", "hostmaster", "cert", "csirt", "irt", "soc"))
_WORDS = re.compile(r"[._+-]")
# "please send abuse reports to X", "abuse contact: X", "report abuse to X", "for internet
# abuse & spam reports: X" (an AFRINIC member's form) and the like, the whole remark
# anchored; X is then checked like every other address.
_REMARK = re.compile(
    r"\A(?:(?:please\s+)?(?:send|direct|forward|report|e-?mail)\s+(?:all\s+)?"
    r"(?:(?:spam|network)\s+(?:and|&|or|/)\s+)?abuse(?:\s+(?:reports?|complaints?|issues?))?"
    r"\s+to|abuse\s+(?:contact|e-?mail|mailbox|reports?|desk)(?:\s+(?:is|to|at))?"
    r"|for\s+(?:internet\s+)?abuse(?:\s+(?:and|&|/)\s+spam)?\s+(?:reports?|complaints?)"
    r"|report\s+abuse\s+to)\s*:?\s*<?(?:mailto:)?([^\s<>,;()\"']{3,254}?)>?\s*\.?\Z",
    re.IGNORECASE,
)

_LOCAL = re.compile(r"\A[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"\A(?:{_LABEL}\.)+[A-Za-z]{{2,63}}\Z")
_PHONE = re.compile(r"\A\+?[0-9][0-9 ()./-]{3,30}(?: ?(?:ext\.?|x) ?[0-9]{1,6})?\Z")
_COUNTRY = re.compile(r"\A[A-Z]{2}\Z")
_SHORT_V4 = re.compile(r"\A([0-9]{1,3}(?:\.[0-9]{1,3}){0,2})/([0-9]{1,2})\Z")
_ASN = re.compile(r"\A(?:AS)?([0-9]{1,10})\Z", re.IGNORECASE)


class NetworkContact(msgspec.Struct, frozen=True):
    """Who runs the network ``address`` is in, and where complaints go.

    ``source`` says where ``abuse_email`` came from ("none": no usable contact, which the
    escalation policy treats as a dead contact). ``looked_up`` is POSIX seconds (UTC).
    """

    address: str
    network: str | None
    name: str | None
    country: str | None
    asn: int | None
    registry: str | None
    abuse_email: str | None
    abuse_phone: str | None
    source: Source
    looked_up: float


def clean_email(value: object) -> str | None:
    """``value`` if it is exactly one plain address (``mailto:`` allowed), else ``None``."""
    if not isinstance(value, str):
        return None
    text = value.strip(" \t")
    if text[:7].lower() == "mailto:":
        text = text[7:]
    if not text or len(text) > 254 or not text.isascii() or not text.isprintable():
        return None  # CR, LF, NUL, other controls, non-ASCII (no SMTPUTF8 here)
    if " " in text or text.count("@") != 1:
        return None
    name, addr = parseaddr(text)
    if name or addr != text:
        return None
    try:
        parsed = Address(addr_spec=text)
    except (HeaderParseError, ValueError, IndexError):
        return None
    local, domain = parsed.username, parsed.domain
    if f"{local}@{domain}" != text or len(local) > 64:
        return None
    if not _LOCAL.match(local) or not _DOMAIN.match(domain):
        return None
    return f"{local}@{domain.lower()}"


def email_domain(email: str) -> str:
    """The domain part of an address already passed by :func:`clean_email`."""
    return email.rpartition("@")[2]


def is_registry_email(email: str) -> bool:
    """Whether ``email`` (already clean) belongs to a regional or national registry."""
    domain = email_domain(email)
    return any(domain == d or domain.endswith(f".{d}") for d in RIR_DOMAINS)


def role_rank(email: str) -> int:
    """0 for an abuse mailbox (``abuse@``, ``ip-abuse@``), 1 for noc/security/hostmaster-like
    role mailboxes, 2 otherwise (a person's address, or a function RFC 2142 does not name)."""
    words = set(_WORDS.split(email.rpartition("@")[0].lower()))
    return next((rank for rank, names in enumerate(_ROLES) if words & set(names)), len(_ROLES))


def pick_email(values: list[str]) -> tuple[str | None, bool]:
    """The best contact among ``values`` and whether it is in doubt.

    Registry addresses and unusable values are dropped; role mailboxes win (abuse@ first),
    ties keep the registry's order. In doubt: several addresses, or only people's, which is
    when a second source (whois after RDAP) should have its say.
    """
    found: list[str] = []
    for value in values[:50]:
        email = clean_email(value)
        if email and not is_registry_email(email) and email not in found:
            found.append(email)
    if not found:
        return None, False
    best = min(found, key=role_rank)
    return best, len(found) > 1 or role_rank(best) == len(_ROLES)


def remark_email(text: str) -> str | None:
    """The address a free-text remark names as the abuse contact, if it says so plainly."""
    match = _REMARK.match(" ".join(text.split()))
    if not match:
        return None
    email = clean_email(match.group(1))
    return email if email and not is_registry_email(email) else None


def clean_phone(value: object) -> str | None:
    """A phone number reduced to digits and separators (``tel:`` URIs accepted)."""
    if not isinstance(value, str):
        return None
    text = value.strip(" \t")
    if text[:4].lower() == "tel:":
        text = text[4:]
        text = text.replace(";ext=", " ext ")
    if not text.isascii() or not text.isprintable() or not _PHONE.match(text):
        return None
    digits = [ch for ch in text if ch.isdigit()]
    if len(digits) < 5 or set(digits) == {"0"}:  # APNIC's generated roles say +000000000
        return None
    return " ".join(text.split())


def clean_name(value: object, limit: int = 100) -> str | None:
    """A network or organisation name as printable text of bounded length."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    if not text or not text.isprintable():
        return None
    return text[:limit]


def clean_country(value: object) -> str | None:
    """An ISO 3166 alpha-2 code, upper case."""
    if not isinstance(value, str):
        return None
    text = value.strip().upper()
    return text if _COUNTRY.match(text) else None


def clean_asn(value: object) -> int | None:
    """An AS number from ``AS64496``, ``64496`` or an int."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**32 else None
    if not isinstance(value, str):
        return None
    match = _ASN.match(value.strip())
    if not match:
        return None
    number = int(match.group(1))
    return number if 0 < number < 2**32 else None


def clean_network(first: object, last: object = None) -> str | None:
    """CIDR text for a prefix, or for the range ``first``-``last`` (comma-joined if several)."""
    if not isinstance(first, str):
        return None
    short = _SHORT_V4.match(first.strip())
    if short and last is None:  # LACNIC writes 200.57.128/19 for 200.57.128.0/19
        octets = short.group(1).split(".")
        first = ".".join(octets + ["0"] * (4 - len(octets))) + "/" + short.group(2)
    try:
        if last is None:
            if "-" in first:
                first, _, last = first.partition("-")
            else:
                return str(ipaddress.ip_network(first.strip(), strict=False))
        if not isinstance(last, str):
            return None
        start = ipaddress.ip_address(first.strip())
        end = ipaddress.ip_address(last.strip())
        nets = list(ipaddress.summarize_address_range(start, end))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None
    return ", ".join(str(net) for net in nets[:8])


def network_size(network: str | None) -> int:
    """How many addresses ``network`` (:func:`clean_network` text) holds; unknown: most."""
    if network is None:
        return 1 << 129
    return sum(ipaddress.ip_network(part).num_addresses for part in network.split(", "))


@dataclass
class Facts:
    """What one registry reply says about a network; empty fields when it says nothing
    usable. RDAP and whois parsers both fill it (whois adds where it refers to)."""

    network: str | None = None
    name: str | None = None
    country: str | None = None
    asn: int | None = None
    registry: str | None = None
    abuse_email: str | None = None
    abuse_phone: str | None = None
    domains: list[str] = field(default_factory=list)
    doubt: bool = False  # several addresses or none a role mailbox: ask a second source
    remarks_email: str | None = None  # named only in free-text remarks
    csirt_email: str | None = None  # the national CSIRT the registry's reply names
