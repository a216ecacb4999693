"""Find the network an address is in and its abuse contact: RDAP, then whois, then an
address the network's remarks name, then RFC 2142.

Asynchronous because the daemon is asyncio and a lookup is a few slow network round trips
that must never hold up banning; the CLI runs it with ``asyncio.run``. Each step is bounded
(``Servers.timeout`` per request, ``Servers.max_bytes`` per reply, ``Servers.deadline`` for
the whole lookup) and any failure in a step just moves on to the next.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from bruteguard.abuse.contact import Facts, NetworkContact, clean_email, network_size, role_rank
from bruteguard.abuse.national import NATIONAL_WHOIS, national_query
from bruteguard.abuse.rdap import RDAP_HOSTS, bootstrap_base, fetch, parse_rdap
from bruteguard.abuse.whois import WhoisFacts, parse_whois, query_whois
from bruteguard.clock import Clock, system_clock

__all__ = ["DEFAULT_WHOIS", "REGISTRIES", "Servers", "lookup"]

log = logging.getLogger(__name__)

REGISTRIES = ("ARIN", "RIPE", "APNIC", "LACNIC", "AFRINIC")
DEFAULT_WHOIS: dict[str, tuple[str, int]] = {
    "ARIN": ("whois.arin.net", 43),
    "RIPE": ("whois.ripe.net", 43),
    "APNIC": ("whois.apnic.net", 43),
    "LACNIC": ("whois.lacnic.net", 43),
    "AFRINIC": ("whois.afrinic.net", 43),
    **NATIONAL_WHOIS,  # reached only by APNIC's (LACNIC's for NIC.br) referral
}


@dataclass(frozen=True)
class Servers:
    """Where lookups go, and their bounds; tests point every entry at loopback servers.

    ``bootstrap`` is the directory holding IANA's ``ipv4.json``/``ipv6.json``. ``rdap``
    overrides a registry's RDAP base URL (and names the registry of a base URL the
    bootstrap returns). ``whois`` maps each registry to host and port; referrals are
    followed only to these, never to a host a reply names.
    """

    bootstrap: str = "https://data.iana.org/rdap/"
    rdap: Mapping[str, str] = field(default_factory=dict)
    whois: Mapping[str, tuple[str, int]] = field(default_factory=lambda: dict(DEFAULT_WHOIS))
    whois_first: str = "ARIN"
    timeout: float = 10.0
    deadline: float = 30.0
    max_bytes: int = 1 << 20
    max_referrals: int = 3


def _registry_of(base: str, servers: Servers) -> str | None:
    for registry, url in servers.rdap.items():
        if base.rstrip("/") == url.rstrip("/"):
            return registry
    return RDAP_HOSTS.get((urllib.parse.urlsplit(base).hostname or "").lower())


async def _rdap(address: str, servers: Servers) -> tuple[Facts | None, str | None]:
    """RDAP facts (``None`` on failure) and the registry the bootstrap named."""
    ip = ipaddress.ip_address(address)
    name = "ipv4.json" if ip.version == 4 else "ipv6.json"
    registry: str | None = None
    try:
        boot = await fetch(
            urllib.parse.urljoin(servers.bootstrap, name),
            timeout=servers.timeout,
            max_bytes=servers.max_bytes,
        )
        base = bootstrap_base(boot, address)
        registry = _registry_of(base, servers) if base else None
        base = servers.rdap.get(registry, base) if registry else base
        if base is None:
            return None, None
        data = await fetch(
            urllib.parse.urljoin(base.rstrip("/") + "/", f"ip/{ip}"),
            timeout=servers.timeout,
            max_bytes=servers.max_bytes,
        )
    except Exception as error:  # any failure of this step means: try whois
        log.info("rdap lookup of %s failed: %s", address, type(error).__name__)
        return None, registry
    if data is None:
        return None, registry
    return parse_rdap(data, registry), registry


async def _whois(address: str, registry: str, servers: Servers) -> WhoisFacts | None:
    """Whois facts from ``registry``'s server, following referrals to other registries."""
    seen: set[str] = set()
    facts: WhoisFacts | None = None
    current: str | None = registry
    while current and current not in seen and len(seen) <= servers.max_referrals:
        seen.add(current)
        endpoint = servers.whois.get(current)
        if endpoint is None:
            break
        query = f"n + {address}" if current == "ARIN" else national_query(current, address)
        try:
            data = await query_whois(
                *endpoint, query, timeout=servers.timeout, max_bytes=servers.max_bytes
            )
        except (OSError, TimeoutError, UnicodeError) as error:
            log.info("whois %s for %s failed: %s", current, address, type(error).__name__)
            break
        step = parse_whois(data, current)
        if facts is None:
            facts = step
        elif step.network or step.abuse_email:  # an empty answer keeps what we had
            _carry(facts, step)
            facts = step
        current = step.referral
    return facts


def _carry(referring: WhoisFacts, referred: WhoisFacts) -> None:
    """What a referral must not lose: the referring reply's domains (for RFC 2142), and its
    network (with its name) when that is the more specific one (a customer's block the
    national registry's answer only covers with its provider's), so an escalation never
    takes a whole provider. The national CSIRT either named stays too."""
    referred.domains.extend(d for d in referring.domains if d not in referred.domains)
    referred.csirt_email = referred.csirt_email or referring.csirt_email
    mine, theirs = referred.network, referring.network
    if theirs and (mine is None or network_size(theirs) < network_size(mine)):
        referred.network, referred.name = theirs, referring.name or referred.name


def _result(
    address: str,
    facts: Facts | None,
    fill: Facts | None,
    source: str,
    looked_up: float,
) -> NetworkContact:
    """One result from the facts that gave the contact, gaps filled from ``fill``."""

    def pick(name: str) -> object:
        for one in (facts, fill):
            value = getattr(one, name, None) if one is not None else None
            if value is not None:
                return value
        return None

    return NetworkContact(
        address=address,
        network=pick("network"),  # type: ignore[arg-type]
        name=pick("name"),  # type: ignore[arg-type]
        country=pick("country"),  # type: ignore[arg-type]
        asn=pick("asn"),  # type: ignore[arg-type]
        registry=pick("registry"),  # type: ignore[arg-type]
        abuse_email=getattr(facts, "abuse_email", None),
        abuse_phone=getattr(facts, "abuse_phone", None) or pick("abuse_phone"),  # type: ignore[arg-type]
        source=source,  # type: ignore[arg-type]
        looked_up=looked_up,
    )


async def _lookup(
    address: str, servers: Servers, partial: list[object], now: float
) -> NetworkContact:
    rdap, registry = await _rdap(address, servers)
    partial.append(rdap)
    if rdap is not None and rdap.abuse_email and not rdap.doubt:
        return _result(address, rdap, None, "rdap", now)
    start = (rdap.registry if rdap else None) or registry or servers.whois_first
    whois = await _whois(address, start, servers)
    partial.append(whois)
    if rdap is not None and rdap.abuse_email:  # in doubt: whois may name the role mailbox
        better = (
            whois is not None
            and whois.abuse_email
            and (role_rank(whois.abuse_email) < role_rank(rdap.abuse_email))
        )
        if not better:
            return _result(address, rdap, whois, "rdap", now)
    if whois is not None and whois.abuse_email:
        return _result(address, whois, rdap, "whois", now)
    for facts in (whois, rdap):
        if facts is not None and facts.remarks_email:
            base = _result(address, whois or rdap, rdap, "remarks", now)
            return _with_email(base, facts.remarks_email)
    return _rfc2142(address, whois, rdap, now)


def _rfc2142(
    address: str, whois: WhoisFacts | None, rdap: Facts | None, now: float
) -> NetworkContact:
    """``abuse@`` the network's own domain: the first domain of a valid contact e-mail."""
    for facts in (whois, rdap):
        for domain in getattr(facts, "domains", None) or ():
            email = clean_email(f"abuse@{domain}")
            if email:
                base = _result(address, whois or rdap, rdap, "rfc2142", now)
                return _with_email(base, email)
    csirt = getattr(whois, "csirt_email", None)
    if csirt:  # NIC.br withheld the holder's contacts: its national CSIRT takes reports
        return _with_email(_result(address, whois, rdap, "csirt", now), csirt)
    if whois or rdap:
        return _result(address, None, whois or rdap, "none", now)
    return _empty(address, now)


def _with_email(result: NetworkContact, email: str) -> NetworkContact:
    fields = {name: getattr(result, name) for name in result.__struct_fields__}
    fields["abuse_email"] = email
    return NetworkContact(**fields)


def _empty(address: str, now: float) -> NetworkContact:
    return NetworkContact(address, None, None, None, None, None, None, None, "none", now)


async def lookup(
    address: str, servers: Servers | None = None, clock: Clock = system_clock
) -> NetworkContact:
    """Who runs the network ``address`` is in; never raises for network trouble.

    Bounded by ``servers.deadline`` in total: past it, whatever was learnt so far is
    returned (``source`` "none" when no contact was found in time). ``looked_up`` is
    ``clock``'s time when the lookup began: the desk passes its store's clock, so the
    cache expiry it derives and the "now" it checks against are one clock's.
    """
    servers = servers or Servers()
    text = str(ipaddress.ip_address(address))  # ValueError for a non-address, by design
    now = clock()
    partial: list[object] = []
    try:
        async with asyncio.timeout(servers.deadline):
            return await _lookup(text, servers, partial, now)
    except TimeoutError:
        log.info("lookup of %s ran past %.0f s", text, servers.deadline)
        facts = [p for p in partial if isinstance(p, Facts)]
        return _result(text, None, facts[-1], "none", now) if facts else _empty(text, now)
