"""Asynchronous DNS for the identity stage: a name's addresses, an address's PTR names.

DNS answers are claims made by whoever controls the zone, so nothing here decides who to
ban: ``attribution`` only uses them to tell apart peers that were really connected. Every
lookup is bounded (``timeout``), a failure is an empty answer (never an exception for the
caller to forget), and answers are cached, so a burst of lines naming one host costs one
query. Lines that carry an address never come here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver
import dns.reversename

from bruteguard.identity.address import canonical_address

__all__ = ["Resolver", "normal_name"]

_CACHE_LIMIT = 10_000
# How long an answer (or a failure) is kept: short, because a hostile zone can change fast
# and because an address that was not connected a minute ago may be now.
_KEEP = 60.0


def normal_name(text: str) -> str | None:
    """``text`` as a comparable DNS name (lower case, no trailing dot), or None if it is not
    a syntactically valid name (spaces, empty labels, over 253 characters…)."""
    text = text.strip().rstrip(".").lower()
    if not text or len(text) > 253:
        return None
    try:
        name = dns.name.from_text(text)
    except (dns.exception.DNSException, UnicodeError, ValueError):
        return None
    if any(not label or b" " in label for label in name.labels[:-1]):
        return None
    return name.to_text(omit_final_dot=True)


class Resolver:
    """A dnspython stub resolver with a small cache of its own (positive and negative).

    ``nameservers`` empty: the system's (``/etc/resolv.conf``). ``timeout`` bounds each
    whole lookup, retries included.
    """

    def __init__(
        self, nameservers: Sequence[str] = (), port: int = 53, timeout: float = 2.0
    ) -> None:
        if nameservers:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = list(nameservers)
        else:
            self._resolver = dns.asyncresolver.Resolver()
        self._resolver.port = port
        self._resolver.lifetime = timeout
        self._resolver.timeout = timeout
        self._cache: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}
        self.queries = 0
        self.failures = 0

    async def addresses(self, name: str) -> frozenset[str]:
        """The A and AAAA records of ``name``, canonical; empty when there are none."""
        normal = normal_name(name)
        if normal is None:
            return frozenset()
        found = set(await self._lookup(normal, "A"))
        found.update(await self._lookup(normal, "AAAA"))
        return frozenset(found)

    async def names(self, address: str) -> frozenset[str]:
        """The PTR names of ``address``, normalised; empty when there are none."""
        return await self._lookup(address, "PTR")

    async def _lookup(self, key: str, rdtype: str) -> frozenset[str]:
        now = time.monotonic()
        cached = self._cache.get((key, rdtype))
        if cached is not None and cached[0] > now:
            return cached[1]
        self.queries += 1
        try:
            if rdtype == "PTR":
                answer = await self._resolver.resolve(
                    dns.reversename.from_address(key), "PTR", search=False
                )
                found = {normal_name(str(record.target)) for record in answer}
            else:
                answer = await self._resolver.resolve(key, rdtype, search=False)
                found = {canonical_address(record.address) for record in answer}
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            found = set()
        except (dns.exception.DNSException, OSError, ValueError):
            self.failures += 1  # timeout, SERVFAIL, no nameserver: an empty answer
            found = set()
        result = frozenset(item for item in found if item)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[(key, rdtype)] = (now + _KEEP, result)
        return result
