"""The national registries APNIC refers to (JPNIC, KRNIC, TWNIC, CNNIC, IDNIC) and LACNIC's
NIC.br.

For their space the regional reply often names only the national registry's IRT or
hostmaster (refused: a complaint there reaches the registry, not the network); the holder
and its abuse mailbox are in the national whois. How the regional reply marks such a block:
APNIC by the national registry's ``source`` (JPNIC, KRNIC), maintainer (``MAINT-TW-TWNIC``,
``MAINT-CNNIC-AP``, ``MNT-APJII-ID``), IRT (``IRT-TWNIC-AP``, ...) or the remark naming its
whois server; LACNIC by the "LACNIC resource: whois.registro.br" / "Copyright (c) Nic.br"
comments and NIC.br's ``nic-hdl-br`` handles. VNNIC runs no whois server at all (web only):
its members' objects, and their own contacts, are APNIC's, so there is nowhere to refer to.

Three of the national formats are not RPSL: JPNIC answers ``a. [Network Number]
192.0.2.0/24``-style lines (English with the ``/e`` query suffix), KRNIC a Korean section
then an ``# ENGLISH`` one of ``[ Network Information ]`` blocks with ``Key : value`` lines,
TWNIC ``Netname:``/``Netblock:`` lines and indented ``Administrator contact:``-style
sections; CNNIC, IDNIC and NIC.br answer RPSL, read by ``whois``. All parsers fill the
same :class:`Facts` and keep to the same rules: values pass the ``clean_*`` checks, the
smallest network wins, a registry's own address is never the contact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bruteguard.abuse.contact import (
    Facts,
    clean_email,
    clean_name,
    clean_network,
    clean_phone,
    email_domain,
    is_registry_email,
    network_size,
    pick_email,
)
from bruteguard.abuse.national_servers import NATIONAL_WHOIS

__all__ = [
    "NATIONAL_WHOIS",
    "brazil_referral",
    "national_query",
    "parse_jpnic",
    "parse_krnic",
    "parse_twnic",
    "referral_of",
]


_JP_LINE = re.compile(r"\A(?:[a-z]\.\s)?\s*\[([A-Za-z][A-Za-z -]{0,40})\]\s*(.*)\Z")
_KR_LINE = re.compile(r"\A([A-Za-z][A-Za-z0-9 -]{0,40}?)\s*:\s(.*)\Z")
_KR_HEADER = re.compile(r"\A\[\s*([A-Za-z][A-Za-z -]{0,60}?)\s*\]\Z")
_KR_RANGE = re.compile(
    r"\A([0-9a-fA-F.:]{2,45})\s*-\s*([0-9a-fA-F.:]{2,45})(?:\s*\(/[0-9+/]{1,40}\))?\Z"
)
_TW_FIELD = re.compile(r"\A(Netname|Netblock)\s*:\s*(\S.{0,200})\Z", re.IGNORECASE)
_TW_CONTACT = re.compile(r"\A([A-Za-z][A-Za-z -]{0,40}?)\s+contact\s*:\Z", re.IGNORECASE)
# What marks APNIC's copy of a national block: the source, the registry's IRT or maintainer
# (MAINT-TW-TWNIC, MAINT-CNNIC-AP, MNT-APJII-ID, IRT-*NIC-*), or the remark
# naming the national whois server.
_MARKS = {
    "JPNIC": ("jpnic", "whois.nic.ad.jp"),
    "KRNIC": ("krnic", "whois.kisa.or.kr"),
    "TWNIC": ("twnic",),
    "CNNIC": ("cnnic",),
    "IDNIC": ("idnic", "apjii"),
}
# NIC.br's data as LACNIC's joint whois serves it: its resource line and copyright comment.
_BR_COMMENTS = ("whois.registro.br", "copyright (c) nic.br")


def referral_of(net: list[tuple[str, str]]) -> str | None:
    """The national registry whose block APNIC's network object is, if it is one."""
    text = " ".join(
        value.lower() for key, value in net if key in ("source", "mnt-irt", "mnt-by", "remarks")
    )
    return next((nir for nir, marks in _MARKS.items() if any(m in text for m in marks)), None)


def brazil_referral(objects: list[list[tuple[str, str]]], comments: list[str]) -> bool:
    """Whether a LACNIC reply is NIC.br's data (its comments, or its ``nic-hdl-br`` handles)."""
    if any(mark in line.lower() for line in comments[:200] for mark in _BR_COMMENTS):
        return True
    return any(obj[0][0] == "nic-hdl-br" for obj in objects[:500] if obj)


# NIC.br's replies end with the national CSIRT for security issues (its comment, wrapped over
# three lines): "Security and mail abuse issues should also be addressed to cert.br,
# http://www.cert.br/ , respectivelly to cert@cert.br and mail-abuse@cert.br".
_BR_CSIRT = re.compile(
    r"\ASecurity and mail abuse issues should also be addressed to cert\.br, \S{1,60} ?, "
    r"respectivelly to (cert@cert\.br) and \S{1,60}\Z",
    re.IGNORECASE,
)


def brazil_csirt(comments: list[str]) -> str | None:
    """CERT.br's security address, when NIC.br's closing comment names it (the reply's
    own server text, not the holder's): where a brute-force report goes when NIC.br
    withholds the network's contacts (Brazil's LGPD)."""
    lines = [line.lstrip("%").strip() for line in comments[-20:]]
    for index in range(len(lines)):
        match = _BR_CSIRT.match(" ".join(lines[index : index + 3]))
        if match:
            return match.group(1).lower()
    return None


def national_query(registry: str, address: str) -> str:
    """JPNIC answers in Japanese unless the query ends in ``/e``."""
    return f"{address}/e" if registry == "JPNIC" else address


def _fill(facts: Facts, emails: list[str], phones: list[str | None]) -> None:
    """Contact from the e-mails in order of preference (see :func:`pick_email`)."""
    email, doubt = pick_email(emails)
    if email:
        facts.abuse_email, facts.doubt = email, doubt
        index = next(i for i, v in enumerate(emails) if clean_email(v) == email)
        facts.abuse_phone = phones[index] if index < len(phones) else None
    for value in emails:
        clean = clean_email(value)
        if clean and not is_registry_email(clean) and email_domain(clean) not in facts.domains:
            facts.domains.append(email_domain(clean))


def parse_jpnic(text: str, facts: Facts) -> None:
    """JPNIC's ``/e`` answer: ``[Network Number]``, ``[Network Name]``, ``[Organization]``,
    and the contact from ``[Abuse]`` (else ``[E-Mail]``), up to the "Less Specific Info."
    list that follows the network (it names other networks)."""
    fields: dict[str, list[str]] = {}
    for raw in text.split("\n")[:2000]:
        line = raw.removesuffix("\r").strip()
        if line.startswith(("Less Specific Info", "More Specific Info")):
            break
        match = _JP_LINE.match(line)
        if match:
            fields.setdefault(match.group(1).lower(), []).append(match.group(2).strip())
    network = (fields.get("network number") or [""])[0]
    facts.network = clean_network(network.replace(" ", ""))
    facts.name = clean_name((fields.get("organization") or fields.get("network name") or [""])[0])
    facts.country = "JP" if facts.network else None
    for key in ("abuse", "e-mail"):
        values = fields.get(key, [])
        if values:
            _fill(facts, values, [])  # its network record holds no phone of the contact
        if facts.abuse_email:
            break


@dataclass
class _Block:
    """One network block of a KRNIC/TWNIC reply and the contact blocks that follow it."""

    network: str | None = None
    name: str | None = None
    contacts: list[dict[str, str]] = field(default_factory=list)  # kind, e-mail, phone


def parse_krnic(text: str, facts: Facts) -> None:
    """KRNIC's ``# ENGLISH`` section: each ``[ Network Information ]`` block with the
    contact blocks after it; the smallest network and its own contacts win, an abuse
    block's address over a technical or admin one's."""
    _, marker, english = text.partition("# ENGLISH")
    blocks: list[_Block] = []
    section = ""
    for raw in (english if marker else "").split("\n")[:2000]:
        line = raw.removesuffix("\r").strip()
        header = _KR_HEADER.match(line)
        if header:
            section = header.group(1).lower()
            if section == "network information":
                blocks.append(_Block())
            elif "contact" in section and blocks:  # older replies head each contact
                blocks[-1].contacts.append({"kind": section})
            continue
        match = _KR_LINE.match(line)
        if not match or not blocks:
            continue
        key, value = match.group(1).lower(), match.group(2).strip()
        block = blocks[-1]
        if section == "network information" and key in ("ipv4 address", "ipv6 address"):
            span = _KR_RANGE.match(value)
            block.network = span and clean_network(span.group(1), span.group(2))
            block.network = block.network or clean_network(value)
        elif section == "network information" and key == "organization name":
            block.name = clean_name(value)
        elif section == "network information" and key == "name":  # today's: no heading
            block.contacts.append({"kind": "network"})
        elif key in ("e-mail", "phone") and block.contacts and len(block.contacts) <= 20:
            block.contacts[-1].setdefault(key, value)
    _best_block(blocks, facts, "KR")


def parse_twnic(text: str, facts: Facts) -> None:
    """TWNIC's answer: ``Netname:`` and ``Netblock:`` lines (a provider's block, then a
    customer's), each followed by ``Administrator contact:``/``Technical contact:``
    sections whose indented lines hold a name, an e-mail and a phone; the smallest block
    and its own contacts win, an abuse section's address first."""
    blocks: list[_Block] = []
    section = False
    for raw in text.split("\n")[:2000]:
        line = raw.removesuffix("\r").strip()
        netline = _TW_FIELD.match(line)
        heading = _TW_CONTACT.match(line)
        if not line:
            section = False
        elif netline:
            key, value = netline.group(1).lower(), netline.group(2).strip()
            if key == "netname" or not blocks or blocks[-1].network:
                blocks.append(_Block())
            if key == "netname":
                blocks[-1].name = clean_name(value)
            else:
                blocks[-1].network = clean_network(value)
            section = False
        elif heading and blocks and len(blocks[-1].contacts) < 20:
            blocks[-1].contacts.append({"kind": heading.group(1).lower()})
            section = True
        elif section and blocks and line.isprintable():  # no CR/controls inside a line
            contact = blocks[-1].contacts[-1]
            email = _tw_email(line)
            if email:
                contact.setdefault("e-mail", email)
            elif clean_phone(line):
                contact.setdefault("phone", line)
    _best_block(blocks[:200], facts, "TW")


def _tw_email(line: str) -> str | None:
    """The address a contact line ends with (``Name  addr`` or ``addr``); ``None`` for a
    list of several (another ``@`` before it, or a separator just before it)."""
    *before, last = line.split()
    if any("@" in word for word in before) or (before and before[-1][-1] in ",;"):
        return None
    return last if clean_email(last) else None


def _best_block(blocks: list[_Block], facts: Facts, country: str) -> None:
    """The smallest block with its contacts, an abuse contact's address before the others'."""
    usable = [b for b in blocks if b.network]
    if not usable:
        return
    best = min(usable, key=lambda b: network_size(b.network))
    facts.network, facts.name, facts.country = best.network, best.name, country
    ordered = sorted(best.contacts, key=lambda c: 0 if "abuse" in c["kind"] else 1)
    _fill(
        facts,
        [c.get("e-mail", "") for c in ordered],
        [clean_phone(c.get("phone")) for c in ordered],
    )
