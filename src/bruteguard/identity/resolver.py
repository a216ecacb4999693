"""Asynchronous PTR lookups for the identity stage, kept as observations with their TTL.

DNS answers are claims made by whoever controls the zone, so nothing here decides who to
ban: ``names`` judges a connection from its observations, and ``attribution`` decides only
among real connections. Every lookup is bounded (``timeout``); a failure is an observation
that says so (never an exception for the caller to forget). Forward (A/AAAA) lookups are
never made: a name's address records say nothing about who was connected.
"""

from __future__ import annotations

from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver
import dns.reversename

from bruteguard.clock import Clock, system_clock
from bruteguard.identity.names import PtrObservation

__all__ = ["Resolver", "normal_name"]

_MAX_TTL = 3600.0  # an answer is trusted to stay cached at most this long


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


def _negative_ttl(response: dns.message.Message | None) -> float:
    """How long a "no such name / no PTR" answer may be cached: the SOA in the authority
    section (RFC 2308), or 0 when the reply carried none."""
    if response is None:
        return 0.0
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return float(min(rrset.ttl, rrset[0].minimum))
    return 0.0


class Resolver:
    """A dnspython stub resolver for PTR observations.

    ``nameservers`` empty: the system's (``/etc/resolv.conf``), which is what the services
    use: the observations are only as good as that sharing (see docs/identity.md).
    ``timeout`` bounds each whole lookup, retries included.
    """

    def __init__(
        self,
        nameservers: Sequence[str] = (),
        port: int = 53,
        timeout: float = 2.0,
        clock: Clock = system_clock,
    ) -> None:
        if nameservers:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = list(nameservers)
        else:
            self._resolver = dns.asyncresolver.Resolver()
        self._resolver.port = port
        self._resolver.lifetime = timeout
        self._resolver.timeout = timeout
        self._resolver.cache = None  # the resolver's own cache is the one that matters
        self.clock = clock
        self.queries = 0
        self.failures = 0

    async def observe(self, address: str) -> PtrObservation:
        """Ask for the PTR of ``address`` now."""
        asked = self.clock()
        self.queries += 1
        qname = dns.reversename.from_address(address)
        names: frozenset[str] = frozenset()
        ok, ttl = True, 0.0
        try:
            answer = await self._resolver.resolve(qname, "PTR", search=False)
            names = frozenset(record.target.to_text(omit_final_dot=True) for record in answer)
            ttl = float(answer.rrset.ttl) if answer.rrset is not None else 0.0
        except dns.resolver.NXDOMAIN as error:
            ttl = _negative_ttl(error.responses().get(qname))
        except dns.resolver.NoAnswer as error:
            ttl = _negative_ttl(error.response())
        except (dns.exception.DNSException, OSError, ValueError):
            self.failures += 1  # timeout, SERVFAIL, no nameserver
            ok = False
        return PtrObservation(address, names, ok, asked, self.clock(), min(ttl, _MAX_TTL))
