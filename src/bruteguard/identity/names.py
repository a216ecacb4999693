"""What DNS told bruteguard about an address's PTR, and what that says about a logged name.

A service that logs names asked DNS for the PTR of its client; bruteguard asks the same
resolver (by default the system's). Whoever controls the client's reverse zone controls the
answer, and can try to give the service one name and bruteguard another. So an answer is
kept as an *observation* (names, success, TTL, when), and a connection is judged from all
the observations made during its life:

* it **fits** a logged name when one of them gives that name as the service writes it;
* it is **excluded** only when all of them succeeded, agree, give other names, and carry a
  TTL long enough that the resolver's cache held that answer while the service looked the
  name up; and when the address (its /64 for IPv6) has never been seen answering two
  different ways in a day (``unstable``);
* otherwise it is **unknown**: it may be the one, so it keeps a line ambiguous.

An attacker who answers the service and bruteguard differently must win every race between
the two queries: the first one it loses shows bruteguard both answers, and its address is
unstable, so never excluded, for a day.
"""

from __future__ import annotations

import ipaddress
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Fit", "PtrHistory", "PtrObservation", "logged_texts"]

# RFC 952/1123 host names as the C library accepts them from a PTR (letters, digits,
# hyphens, underscores; dot-separated labels). Anything else may be refused by the
# service's resolver, which then writes the numeric address instead.
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
                       r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$")  # fmt: skip
_UNSTABLE_FOR = 86400.0


class Fit(Enum):
    FITS = "fits"
    EXCLUDED = "excluded"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class PtrObservation:
    """One PTR answer for ``address``. ``names``: the PTR targets as DNS gave them (no
    trailing dot; empty for NXDOMAIN or no PTR). ``ok`` False: the query failed (timeout,
    SERVFAIL), so what anyone else got is unknown. ``ttl``: seconds the answer may be
    cached (0 when the reply did not say)."""

    address: str
    names: frozenset[str]
    ok: bool
    asked: float
    answered: float
    ttl: float

    @property
    def valid_until(self) -> float:
        return self.answered + self.ttl


def logged_texts(
    observation: PtrObservation, sanitize: Callable[[str], str] = str
) -> frozenset[str]:
    """What a service could have written for its client, had it got this answer: each PTR
    name as the service writes it (``sanitize``), lower case; the numeric address when there
    is no PTR or a name the C library may refuse."""
    texts = {sanitize(name).lower() for name in observation.names}
    if not observation.names or any(not _HOSTNAME.match(name) for name in observation.names):
        texts.add(observation.address.lower())
    return frozenset(texts)


def _group(address: str) -> str:
    """Where instability is remembered: the address, or its /64 for IPv6 (one owner)."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(slots=True)
class _Entry:
    observations: list[PtrObservation] = field(default_factory=list)


class PtrHistory:
    """The last observations of each address (at most ``per_address``, for ``keep``
    seconds, for at most ``limit`` addresses, least recently used first out). Two answers
    that disagree within ``keep`` make the address unstable for a day."""

    def __init__(self, *, keep: float = 3600.0, per_address: int = 8, limit: int = 50_000) -> None:
        self.keep = keep
        self.per_address = per_address
        self.limit = limit
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._unstable: OrderedDict[str, float] = OrderedDict()  # group -> until

    def add(self, observation: PtrObservation) -> None:
        entry = self._entries.get(observation.address)
        if entry is None:
            entry = self._entries[observation.address] = _Entry()
        else:
            self._entries.move_to_end(observation.address)
        horizon = observation.answered - self.keep
        entry.observations = [o for o in entry.observations if o.answered >= horizon]
        others = {o.names for o in entry.observations if o.ok}
        if observation.ok and others and others != {observation.names}:
            self._mark_unstable(observation.address, observation.answered)
        entry.observations.append(observation)
        del entry.observations[: -self.per_address]
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def _mark_unstable(self, address: str, now: float) -> None:
        group = _group(address)
        self._unstable[group] = now + _UNSTABLE_FOR
        self._unstable.move_to_end(group)
        while len(self._unstable) > self.limit:
            self._unstable.popitem(last=False)

    def unstable(self, address: str, now: float) -> bool:
        """Whether the address's reverse zone answered two ways within a day."""
        return self._unstable.get(_group(address), 0.0) > now

    def current(self, address: str, now: float) -> PtrObservation | None:
        """The newest successful observation still within its TTL (what the resolver's
        cache holds now), or None: then it must be asked again."""
        entry = self._entries.get(address)
        for observation in reversed(entry.observations if entry else ()):
            if observation.ok and observation.valid_until > now:
                return observation
        return None

    def during(self, address: str, since: float) -> list[PtrObservation]:
        """The observations made since ``since``, with the one before it if its answer was
        still cached at ``since``."""
        entry = self._entries.get(address)
        if entry is None:
            return []
        found = [o for o in entry.observations if o.answered >= since]
        earlier = [o for o in entry.observations if o.answered < since]
        if earlier and earlier[-1].ok and earlier[-1].valid_until >= since:
            found.insert(0, earlier[-1])
        return found

    def fit(
        self,
        address: str,
        name: str,
        since: float,
        now: float,
        *,
        min_ttl: float,
        sanitize: Callable[[str], str] = str,
    ) -> Fit:
        """Whether a connection of ``address`` open since ``since`` fits the logged
        ``name`` (see the module's rules); ``min_ttl`` is how long an answer must stay
        cached to cover the service's own lookup."""
        wanted = name.lower()
        seen = self.during(address, since)
        texts = [logged_texts(o, sanitize) for o in seen if o.ok]
        if any(wanted in t for t in texts):
            return Fit.FITS
        if (
            seen
            and len(texts) == len(seen)
            and len(set(texts)) == 1
            and all(o.ttl >= min_ttl for o in seen)
            and not self.unstable(address, now)
        ):
            return Fit.EXCLUDED
        return Fit.UNKNOWN

    def __len__(self) -> int:
        return len(self._entries)
