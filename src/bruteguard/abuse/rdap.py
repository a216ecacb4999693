"""RDAP (RFC 9082/9083/9224): the registry's JSON answer for an address, and its abuse entity.

The IANA bootstrap file says which registry serves an address; the registry's answer
carries entities with roles, nested to any depth (ARIN puts the ``abuse`` entity inside the
``registrant``), each with a jCard (RFC 7095) holding ``email`` and ``tel``. HTTP is
httpx's async client on the daemon's loop (no thread left behind when a lookup is given up):
one GET per step (redirects followed, at most ``_MAX_REDIRECTS``, http and https only), a hard
size cap, per-operation timeouts and a wall-clock deadline, so a slow, trickling or huge reply
cannot hold the daemon. Replies are asked for uncompressed and a compressed one is refused:
a size cap on what arrives must also be the cap on what is parsed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import urllib.parse
from typing import Any

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
    pick_email,
    remark_email,
)
from bruteguard.abuse.whois import WHOIS_HOSTS

__all__ = [
    "RDAP_HOSTS",
    "TooLarge",
    "bootstrap_base",
    "fetch",
    "parse_rdap",
]

RDAP_HOSTS = {
    "rdap.arin.net": "ARIN",
    "rdap.db.ripe.net": "RIPE",
    "rdap.apnic.net": "APNIC",
    "rdap.lacnic.net": "LACNIC",
    "rdap.afrinic.net": "AFRINIC",
}
_MAX_DEPTH = 6  # entities nested deeper than any registry does are ignored
_MAX_ENTITIES = 200
_MAX_REDIRECTS = 5
_HEADERS = {
    "Accept": "application/rdap+json, application/json",
    "Accept-Encoding": "identity",
    "User-Agent": "bruteguard",
}


class TooLarge(Exception):
    """A reply went over the size cap; it was cut off and not parsed."""


async def fetch(url: str, *, timeout: float, max_bytes: int) -> Any:
    """The decoded JSON at ``url``, or ``None`` for 404 (or a scheme other than http(s));
    raises on other HTTP errors, cut-offs (``TooLarge``), timeouts and bad JSON.

    ``timeout`` bounds each connect, read and write, and the whole GET (a server that
    trickles a byte a second is cut off too)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return None
    import httpx  # the abuse desk's only: the daemon without it, and scan, never load it

    async with (
        asyncio.timeout(timeout),
        httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=True,
            max_redirects=_MAX_REDIRECTS,
            headers=_HEADERS,
        ) as client,
        client.stream("GET", url) as response,
    ):
        if response.status_code == 404:  # "not ours": the caller falls back to whois
            return None
        response.raise_for_status()
        if response.headers.get("content-encoding", "identity").lower() != "identity":
            raise ValueError(f"{url}: a compressed reply, though none was asked for")
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > max_bytes:
                raise TooLarge(url)
    return json.loads(body)


def bootstrap_base(bootstrap: Any, address: str) -> str | None:
    """The RDAP base URL the IANA bootstrap file (``ipv4.json``/``ipv6.json``) gives."""
    ip = ipaddress.ip_address(address)
    best: tuple[int, str] | None = None
    services = bootstrap.get("services") if isinstance(bootstrap, dict) else None
    for service in services if isinstance(services, list) else ():
        if not (isinstance(service, list) and len(service) == 2):
            continue
        prefixes, urls = service
        https = [u for u in urls if isinstance(u, str) and u.startswith("https://")]
        http = [u for u in urls if isinstance(u, str) and u.startswith("http://")]
        chosen = (https or http or [None])[0]
        for prefix in prefixes if isinstance(prefixes, list) else ():
            try:
                net = ipaddress.ip_network(prefix, strict=False)
            except (TypeError, ValueError):
                continue
            fits = chosen and net.version == ip.version and ip in net
            if fits and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, chosen)
    return best[1] if best else None


def _vcard(entity: dict[str, Any]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """E-mails and (tel, types) from an entity's jCard, ignoring malformed entries."""
    emails: list[str] = []
    phones: list[tuple[str, list[str]]] = []
    card = entity.get("vcardArray")
    if not (isinstance(card, list) and len(card) == 2 and isinstance(card[1], list)):
        return emails, phones
    for prop in card[1][:100]:
        if not (isinstance(prop, list) and len(prop) >= 4 and isinstance(prop[0], str)):
            continue
        name, params, value = prop[0].lower(), prop[1], prop[3]
        if not isinstance(value, str):
            continue
        if name == "email":
            emails.append(value)
        elif name == "tel":
            kinds = params.get("type", []) if isinstance(params, dict) else []
            kinds = [kinds] if isinstance(kinds, str) else kinds
            phones.append((value, [k.lower() for k in kinds if isinstance(k, str)]))
    return emails, phones


def _walk(entities: Any, depth: int = 0) -> list[dict[str, Any]]:
    """All entities, nested ones included, breadth-first, bounded in depth and count."""
    found: list[dict[str, Any]] = []
    level = [e for e in entities if isinstance(e, dict)] if isinstance(entities, list) else []
    while level and depth < _MAX_DEPTH and len(found) < _MAX_ENTITIES:
        found.extend(level)
        children: list[dict[str, Any]] = []
        for entity in level:
            nested = entity.get("entities")
            if isinstance(nested, list):
                children.extend(e for e in nested if isinstance(e, dict))
        level, depth = children, depth + 1
    return found[:_MAX_ENTITIES]


def parse_rdap(data: Any, registry: str | None) -> Facts:
    """The network, names and abuse contact in an RDAP ``ip network`` object."""
    facts = Facts(registry=registry)
    if not isinstance(data, dict):
        return facts
    cidrs = data.get("cidr0_cidrs")
    if isinstance(cidrs, list) and cidrs and isinstance(cidrs[0], dict):
        first = cidrs[0]
        prefix = first.get("v4prefix") or first.get("v6prefix")
        if isinstance(prefix, str) and isinstance(first.get("length"), int):
            facts.network = clean_network(f"{prefix}/{first['length']}")
    if facts.network is None:
        facts.network = clean_network(data.get("startAddress"), data.get("endAddress"))
    facts.name = clean_name(data.get("name"))
    facts.country = clean_country(data.get("country"))
    origins = data.get("arin_originas0_originautnums")
    if isinstance(origins, list) and origins:
        facts.asn = clean_asn(origins[0])
    port43 = data.get("port43")
    if isinstance(port43, str) and port43.lower() in WHOIS_HOSTS:
        facts.registry = WHOIS_HOSTS[port43.lower()]
    fallback_phone: str | None = None  # a technical/NOC number, for a network to call
    abuse: list[tuple[str, list[tuple[str, list[str]]]]] = []  # each abuse e-mail, its phones
    for entity in _walk(data.get("entities")):
        roles = entity.get("roles")
        emails, phones = _vcard(entity)
        if fallback_phone is None and isinstance(roles, list) and {"technical", "noc"} & set(roles):
            voice = [v for v, kinds in phones if "fax" not in kinds]
            fallback_phone = next((p for p in map(clean_phone, voice) if p), None)
        for value in emails:
            email = clean_email(value)
            domain = email_domain(email) if email else ""
            if domain and domain not in RIR_DOMAINS and domain not in facts.domains:
                facts.domains.append(domain)
        if isinstance(roles, list) and "abuse" in roles:
            abuse.extend((value, phones) for value in emails)
    facts.abuse_email, facts.doubt = pick_email([value for value, _ in abuse])
    if facts.abuse_email:
        phones = next(p for v, p in abuse if clean_email(v) == facts.abuse_email)
        voice = [v for v, kinds in phones if "fax" not in kinds]
        facts.abuse_phone = next((p for p in map(clean_phone, voice) if p), None)
    if facts.abuse_phone is None:
        facts.abuse_phone = fallback_phone
    facts.remarks_email = _remarks_email(data.get("remarks"))
    return facts


def _remarks_email(remarks: Any) -> str | None:
    """An abuse address the network's own remarks name (RFC 9083 ``remarks`` objects)."""
    for remark in remarks[:20] if isinstance(remarks, list) else ():
        lines = remark.get("description") if isinstance(remark, dict) else None
        for line in lines[:50] if isinstance(lines, list) else ():
            email = remark_email(line) if isinstance(line, str) else None
            if email:
                return email
    return None
