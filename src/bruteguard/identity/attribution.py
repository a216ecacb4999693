"""A failure that names a host → the one connected peer it belongs to, or nobody.

Services with name resolution on (pure-ftpd, proftpd, pam's ``rhost=`` under sshd's
``UseDNS yes``) write the client's PTR name instead of its address. That name is chosen by
whoever controls the client's reverse zone: it may have no A record at all (tools that
resolve it skip the line, and the attacker guesses for ever), or one pointing at an innocent
host (tools that resolve it ban the victim). So the answer always comes from a real
connection, and DNS only ever chooses among real connections:

1. **Candidates** are the peers connected to the jail's ports when the line arrives (the
   socket table) plus those the kernel saw open a connection to them shortly before (the
   firewall log). Nobody else can be attributed, whatever DNS says.
2. **One candidate**: it is the client (``sole connection``).
3. **Several**: a candidate is chosen only on evidence that points at it alone: its PTR is
   the logged name and the name resolves back to it (``forward-confirmed``), or, failing
   that, its PTR is the logged name (``reverse-matched``; the service got the name from
   exactly that PTR). A name whose A record merely points at a connected host proves
   nothing: the attacker wrote that record to frame whoever it names.
4. Otherwise the failure stays **unattributed**, with its candidates, for ``status``.

A service that writes PTR text where the address goes (pure-ftpd) may write an attacker's
PTR that *reads* as an address (``192.0.2.11``): such text is checked the same way, and
the address as written is taken only when that peer is connected and no connected peer's
PTR spells it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from bruteguard.identity.address import canonical_address
from bruteguard.identity.resolver import normal_name

__all__ = ["Attribution", "Attributor", "Evidence"]

# More connections than this at once: too many PTR lookups for one line; say ambiguous.
MAX_CANDIDATES = 32


class Lookups(Protocol):
    """What attribution asks DNS (``resolver.Resolver``)."""

    async def addresses(self, name: str) -> frozenset[str]: ...

    async def names(self, address: str) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class Attribution:
    """The verdict on one named failure: ``address`` None means unattributed."""

    name: str
    address: str | None
    method: str  # "sole connection", "forward-confirmed", "reverse-matched" or why not
    candidates: tuple[str, ...]


class Evidence:
    """Who was connected to a set of ports: read at the moment a line arrives.

    ``peers(ports)`` is the live socket table; ``opened(ports, since, until)`` the firewall
    log's new connections (None when the kernel log is not available).
    """

    def __init__(
        self,
        peers: Callable[[Collection[int]], set[str]],
        opened: Callable[[Collection[int], float, float], set[str]] | None = None,
        window: float = 30.0,
    ) -> None:
        self._peers = peers
        self._opened = opened
        self.window = window

    def candidates(self, ports: Collection[int], moment: float, now: float) -> frozenset[str]:
        """Peers of ``ports`` now, and those that connected within ``window`` before the
        line's ``moment`` (and up to ``now``)."""
        found = set(self._peers(ports))
        if self._opened is not None:
            found |= self._opened(ports, min(moment, now) - self.window, now)
        return frozenset(found)


class Attributor:
    """Decides named failures from their candidates; asynchronous only for DNS."""

    def __init__(self, lookups: Lookups) -> None:
        self._lookups = lookups

    async def attribute(self, name: str, candidates: Iterable[str]) -> Attribution:
        """The one candidate ``name`` belongs to (see the module's rules), or None."""
        ordered = tuple(sorted(candidates))
        if not ordered:
            return Attribution(name, None, "no connection to the service's ports", ordered)
        if len(ordered) == 1:
            return Attribution(name, ordered[0], "sole connection", ordered)
        logged = canonical_address(name)  # PTR text may read as an address (ptr_hosts)
        wanted = normal_name(name)
        if wanted is None:
            return Attribution(name, None, "ambiguous: the logged name is not a DNS name", ordered)
        if len(ordered) > MAX_CANDIDATES:
            return Attribution(name, None, "ambiguous: too many connections", ordered)
        forward, *reverse = await asyncio.gather(
            self._no_addresses() if logged else self._lookups.addresses(wanted),
            *(self._lookups.names(candidate) for candidate in ordered),
        )
        matched = [c for c, names in zip(ordered, reverse, strict=True) if wanted in names]
        confirmed = [c for c in matched if c in forward]
        if len(confirmed) == 1:
            return Attribution(name, confirmed[0], "forward-confirmed", ordered)
        if len(matched) == 1:
            return Attribution(name, matched[0], "reverse-matched", ordered)
        if logged in ordered and not matched:
            # The address as written, connected, and no other peer's PTR spells it.
            return Attribution(name, logged, "logged address, connected", ordered)
        why = "several connections have that PTR" if matched else "no connection has that PTR"
        return Attribution(name, None, f"ambiguous: {why}", ordered)

    @staticmethod
    async def _no_addresses() -> frozenset[str]:
        return frozenset()
