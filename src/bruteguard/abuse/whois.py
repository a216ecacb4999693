"""Legacy whois (RFC 3912): ask port 43, follow registry referrals, read the contacts.

The fallback when RDAP has no abuse contact. Replies are plain text in each registry's own
format: ARIN's ``Key: value`` blocks with ``OrgAbuseEmail``/``ReferralServer``, and the RPSL
of RIPE, APNIC and AFRINIC (``abuse-c`` pointing at a role with ``abuse-mailbox``, APNIC's
``mnt-irt`` pointing at an IRT object) and LACNIC (``abuse-c`` pointing at a person's
``e-mail``); APNIC's copies of national registries' blocks and LACNIC's of NIC.br's refer
on to those (see ``national``).
Every reply is bounded in size and time; referrals go only to the registry servers named
in the configuration, never to a host the reply names.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from bruteguard.abuse.contact import (
    RIR_DOMAINS,
    Facts,
    clean_asn,
    clean_country,
    clean_email,
    clean_name,
    clean_network,
    clean_phone,
    email_domain,
    is_registry_email,
    network_size,
    pick_email,
    remark_email,
)
from bruteguard.abuse.national import (
    brazil_csirt,
    brazil_referral,
    parse_jpnic,
    parse_krnic,
    parse_twnic,
    referral_of,
)

__all__ = ["WHOIS_HOSTS", "WhoisFacts", "parse_whois", "query_whois", "referral_registry"]

WHOIS_HOSTS = {
    "whois.arin.net": "ARIN",
    "whois.ripe.net": "RIPE",
    "whois.apnic.net": "APNIC",
    "whois.lacnic.net": "LACNIC",
    "whois.afrinic.net": "AFRINIC",
}

_LINE = re.compile(r"\A([A-Za-z][A-Za-z0-9_-]{0,40}):[ \t]*(.*)\Z")
_ABUSE_NOTE = re.compile(r"\A% Abuse contact for '[^']{1,100}' is '([^']{1,254})'\Z")
_REFERRAL = re.compile(r"\A(?:whois://)?([A-Za-z0-9.-]{1,253})(?::([0-9]{1,5}))?/?\Z")
# The registries an object's ``source`` may name (APNIC's replies carry JPNIC's, KRNIC's and
# IDNIC's mirrored objects under their own source).
_SOURCES = {"RIPE", "APNIC", "AFRINIC", "LACNIC", "ARIN", "JPNIC", "KRNIC", "IDNIC", "CNNIC"}
_OWN_FORMAT = {"JPNIC": parse_jpnic, "KRNIC": parse_krnic, "TWNIC": parse_twnic}


@dataclass
class WhoisFacts(Facts):
    """What one whois reply says (RDAP's facts, and where it refers the query to)."""

    referral: str | None = None


async def query_whois(host: str, port: int, query: str, *, timeout: float, max_bytes: int) -> bytes:
    """The raw reply to ``query``, at most ``max_bytes`` (cut there), within ``timeout``."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, limit=65536)
        try:
            writer.write(query.encode("ascii") + b"\r\n")
            await writer.drain()
            chunks: list[bytes] = []
            size = 0
            while size < max_bytes:
                chunk = await reader.read(min(65536, max_bytes - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks)
        finally:
            writer.close()


def referral_registry(value: str) -> str | None:
    """The registry an ARIN ``ReferralServer``/IANA ``refer`` value names, if it is one."""
    match = _REFERRAL.match(value.strip().lower())
    if not match:
        return None
    return WHOIS_HOSTS.get(match.group(1))


def _objects(text: str) -> tuple[list[list[tuple[str, str]]], list[str]]:
    """Blank-line separated ``key: value`` objects, and the ``%`` comment lines."""
    objects: list[list[tuple[str, str]]] = []
    comments: list[str] = []
    current: list[tuple[str, str]] = []
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        if line.startswith(("%", "#")):
            comments.append(line)
            continue
        if not line.strip():
            if current:
                objects.append(current)
                current = []
            continue
        match = _LINE.match(line)
        if match:
            current.append((match.group(1).lower(), match.group(2).strip(" \t")))
        elif current and line[:1] in " \t+":  # RPSL continuation line
            key, value = current[-1]
            current[-1] = (key, f"{value} {line.strip()}")
    if current:
        objects.append(current)
    return objects, comments


def _get(obj: list[tuple[str, str]], key: str) -> str | None:
    return next((value for k, value in obj if k == key), None)


def _all(obj: list[tuple[str, str]], key: str) -> list[str]:
    return [value for k, value in obj if k == key]


def _domains(objects: list[list[tuple[str, str]]]) -> list[str]:
    """Domains of every valid e-mail in the reply, registries' own left out (RFC 2142 use)."""
    found: list[str] = []
    for obj in objects:
        for key, value in obj:
            if "mail" in key or key == "abuse-mailbox":
                email = clean_email(value)
                if email and email_domain(email) not in RIR_DOMAINS:
                    domain = email_domain(email)
                    if domain not in found:
                        found.append(domain)
    return found


def _parse_arin(objects: list[list[tuple[str, str]]], facts: WhoisFacts) -> None:
    for obj in objects:  # later blocks are more specific (reassignments follow allocations)
        keys = {k for k, _ in obj}
        if "netrange" in keys or "cidr" in keys:
            facts.network = clean_network(_get(obj, "cidr") or "") or clean_network(
                _get(obj, "netrange") or ""
            )
            facts.name = clean_name(_get(obj, "netname")) or facts.name
            asn = _get(obj, "originas")
            facts.asn = clean_asn(asn.split(",")[0]) if asn else facts.asn
        if "country" in keys:
            facts.country = clean_country(_get(obj, "country")) or facts.country
        for prefix in ("orgabuse", "rabuse"):
            if f"{prefix}email" in keys:
                email = clean_email(_get(obj, f"{prefix}email"))
                # a hostile reassignment must not erase its parent's contact
                if email and not is_registry_email(email):
                    facts.abuse_email = email
                    facts.abuse_phone = clean_phone(_get(obj, f"{prefix}phone"))
        if "referralserver" in keys:
            facts.referral = referral_registry(_get(obj, "referralserver") or "")
    if facts.referral:  # the "organisation" is the other registry, not the network's holder
        facts.abuse_email = facts.abuse_phone = None


def _parse_rpsl(
    objects: list[list[tuple[str, str]]], comments: list[str], facts: WhoisFacts
) -> None:
    by_handle: dict[str, list[tuple[str, str]]] = {}
    for obj in objects:
        handle = (
            _get(obj, "nic-hdl")
            or _get(obj, "nic-hdl-br")
            or _get(obj, "irt")
            or _get(obj, "organisation")
        )
        if handle:
            by_handle.setdefault(handle.upper(), obj)
    nets = sorted(
        (o for o in objects if o[0][0] in ("inetnum", "inet6num")),
        key=lambda o: network_size(clean_network(o[0][1])),
    )  # the most specific first: a /48 customer's block, not its provider's /32
    if nets:
        net = nets[0]
        facts.network = clean_network(net[0][1])
        facts.name = clean_name(_get(net, "netname") or _get(net, "owner"))
        facts.country = clean_country(_get(net, "country"))
        facts.asn = clean_asn(_get(net, "aut-num") or _get(net, "origin") or "")
        source = (_get(net, "source") or "").split("#")[0].strip().upper()
        facts.registry = source if source in _SOURCES else None
    route = next((o for o in objects if o[0][0] in ("route", "route6")), None)
    if facts.asn is None and route is not None:
        facts.asn = clean_asn(_get(route, "origin") or "")
    for net in nets:  # a block without a contact of its own inherits its parent's
        org = by_handle.get((_get(net, "org") or "").upper())
        refs = _all(net, "mnt-irt") + _all(net, "abuse-c")  # APNIC's IRT is the real one
        refs += _all(org, "abuse-c") if org is not None else []
        contacts = [by_handle[r.upper()] for r in refs if r.upper() in by_handle]
        _contact_from(contacts, facts)
        for obj in [net] + ([org] if org is not None else []):
            facts.remarks_email = facts.remarks_email or _remarks_email(_all(obj, "remarks"))
        if facts.abuse_email:
            break
    if facts.abuse_email is None and nets:  # national space: the holder is at its registry
        facts.referral = referral_of(nets[0])
    if facts.abuse_email is None:  # RIPE/APNIC/AFRINIC print the resolved contact up front
        for line in comments:
            match = _ABUSE_NOTE.match(line)
            email = clean_email(match.group(1)) if match else None
            if email and not is_registry_email(email):
                facts.abuse_email = email
                break


def _remarks_email(remarks: list[str]) -> str | None:
    """The abuse address a remark names, the sentence on one line or wrapped onto two."""
    for index, remark in enumerate(remarks[:100]):
        pair = " ".join(remarks[index : index + 2])
        email = remark_email(remark) or (remark_email(pair) if pair != remark else None)
        if email:
            return email
    return None


def _contact_from(contacts: list[list[tuple[str, str]]], facts: WhoisFacts) -> None:
    """The best mailbox of the referenced objects: ``abuse-mailbox`` over a plain
    ``e-mail``, role mailboxes over people's (see :func:`pick_email`), and its phone."""
    for key in ("abuse-mailbox", "e-mail"):
        values = [(v, obj) for obj in contacts for v in _all(obj, key)]
        email, doubt = pick_email([v for v, _ in values])
        if email:
            owner = next(obj for v, obj in values if clean_email(v) == email)
            facts.abuse_email, facts.doubt = email, doubt
            facts.abuse_phone = clean_phone(_get(owner, "phone"))
            return


def parse_whois(data: bytes, registry: str) -> WhoisFacts:
    """The facts in one reply from ``registry``'s server (format chosen by the reply)."""
    text = data.decode("utf-8", errors="replace")
    objects, comments = _objects(text)
    facts = WhoisFacts(registry=registry, domains=_domains(objects))
    if registry in _OWN_FORMAT:
        _OWN_FORMAT[registry](text, facts)
    elif any(k in ("netrange", "orgabuseemail", "referralserver") for o in objects for k, _ in o):
        _parse_arin(objects, facts)
        facts.registry = "ARIN"
    else:
        _parse_rpsl(objects, comments, facts)
        facts.registry = facts.registry or registry
        if registry == "LACNIC":  # NIC.br's space: its own whois may say more
            brazil = facts.abuse_email is None and brazil_referral(objects, comments)
            facts.referral = "NIC.br" if brazil else None
        elif registry != "APNIC":  # only APNIC's and LACNIC's copies refer onwards
            facts.referral = None
        if registry in ("LACNIC", "NIC.br"):
            facts.csirt_email = brazil_csirt(comments)
    return facts
