"""The daemon's identity stage: named failures in, attributed hits and unattributed records out.

The evidence is the kernel's record of real connections (``conntrack`` events read as they
happen into a ``ConnectionBook``), so nothing about a line depends on when bruteguard
happens to read it. For services that write names, each new connection's PTR is asked for
at once (``names``), so the answer bruteguard sees is the one the resolver's cache gave the
service. A named line waits only for the DNS that checks its candidates, in a task of its
own; lines that carry an address never come here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bruteguard.clock import Clock, system_clock
from bruteguard.config import IdentityConfig, JailConfig
from bruteguard.errors import BruteguardError
from bruteguard.identity.attribution import (
    ENDED_WITH_LINE,
    MAX_CANDIDATES,
    Attribution,
    attribute,
    attribute_address,
    attribute_ending,
)
from bruteguard.identity.connections import Connection, ConnectionBook
from bruteguard.identity.conntrack import ConnEvent, ConntrackEvents, EventKind, dump
from bruteguard.identity.names import PtrHistory
from bruteguard.identity.resolver import Resolver
from bruteguard.identity.tracking_rule import TrackingRule
from bruteguard.match.engine import Hit, NamedHit
from bruteguard.match.imported import builtin_filter, is_imported
from bruteguard.match.signatures import HostNames
from bruteguard.model import Unattributed
from bruteguard.safe_text import printable

__all__ = ["Deliver", "IdentityStage"]

log = logging.getLogger("bruteguard")

# Attribution tasks in flight at most; past this (a flood of named lines while DNS is
# slow) new ones are recorded unattributed at once rather than queued without bound.
_MAX_PENDING = 256
# PTR lookups of new connections in flight at most (a SYN flood asks for many).
_MAX_EARLY = 64
# How long connection evidence is kept: a named line read later than this (a replay, a
# source that fell far behind) cannot be tied to a connection.
_KEEP = 900.0
# A line's stamp is cut to the second, and read after it was written.
_SLACK = 1.5
# A resynchronisation with the kernel's table (after lost events; for connections that
# were open before bruteguard listened, which send no events) at most this often.
_RESYNC_EVERY = 30.0
_TIMEOUT_CLOSE = Path("/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close")
_STALE = "too old to tie to a connection (replayed or delayed line)"

Deliver = Callable[[list[Hit], list[Unattributed]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _JailFacts:
    ports: tuple[int, ...]
    names: HostNames
    early: bool  # the service writes names: ask each new connection's PTR at once


def _facts(jail: JailConfig) -> _JailFacts:
    service = builtin_filter(jail.filter)
    names = service.host_names if service is not None else HostNames()
    early = is_imported(jail.filter) or (service is not None and service.ptr_hosts)
    return _JailFacts(tuple(jail.ports), names, early and not names.addresses_only)


class IdentityStage:
    """Ties named failures of ``jails`` to real connections (see ``attribution``)."""

    def __init__(
        self,
        config: IdentityConfig,
        jails: Sequence[JailConfig],
        firewall: bool = True,
        clock: Clock = system_clock,
    ) -> None:
        """``firewall`` false (only the dry-run enforcer): no tracking rule is installed,
        so connections are seen only if the host's own firewall already tracks them."""
        self.config = config
        self.clock = clock
        self._firewall = firewall
        self._jails = {jail.name: _facts(jail) for jail in jails}
        self._ports = sorted({p for facts in self._jails.values() for p in facts.ports})
        self._early_ports = frozenset(
            p for facts in self._jails.values() if facts.early for p in facts.ports
        )
        self._resolver = Resolver(
            config.nameservers, config.dns_port, float(config.dns_timeout), clock
        )
        self.history = PtrHistory()
        self.book: ConnectionBook | None = None
        self.unavailable = "not started"
        self._events: ConntrackEvents | None = None
        self._rule: TrackingRule | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._early: dict[str, asyncio.Task[None]] = {}
        self._resyncing: asyncio.Task[None] | None = None
        self._last_resync = 0.0
        self.counts = {"attributed": 0, "unattributed": 0, "early_skipped": 0}

    # -- life cycle ---------------------------------------------------------------------

    def same_as(self, other: IdentityStage) -> bool:
        """Whether ``other`` (built from a reloaded configuration) would watch and judge
        exactly as this one does, so this one, with its evidence, can go on instead."""
        return (
            self.config == other.config
            and self._firewall == other._firewall
            and self._jails == other._jails
        )

    def start(self) -> None:
        """Install the tracking rule, subscribe to conntrack events and read the table
        (blocking: run it in a thread). Without them (no nft, no privileges, conntrack
        off) named lines are never attributed, and the log says why."""
        if not self.config.conntrack or not self._ports:
            self.unavailable = "identity.conntrack is off" if self._ports else "no ports"
            return
        events = ConntrackEvents(self._ports)
        rule = TrackingRule() if self._firewall else None
        try:
            if rule is not None:
                rule.setup(self._ports)
            events.open()
            started = self.clock()
            table = dump(self._ports)
        except BruteguardError as error:
            events.close()
            self.unavailable = str(error)
            log.warning(
                "no connection evidence (%s): failures logged with a host name instead of"
                " an address will not be attributed",
                error,
            )
            self._rule = rule  # removed again on close if it was installed
            return
        self._rule, self._events = rule, events
        # A closed connection stays in the table a while (a reset one the shortest): the
        # first dump knows every connection that closed since then.
        self.book = ConnectionBook(started - _closed_lingers(), keep=_KEEP)
        self.book.resync(table, started)
        self._last_resync = started
        self.unavailable = ""

    def start_reader(self) -> None:
        """Read conntrack events as they arrive (on the running event loop)."""
        if self._events is not None:
            asyncio.get_running_loop().add_reader(self._events.fileno(), self._read)

    async def close(self) -> None:
        """Finish nothing half-way: pending work is cancelled, the rule removed."""
        tasks = [*self._pending, *self._early.values()]
        if self._resyncing is not None:
            tasks.append(self._resyncing)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._events is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._events.fileno())
            self._events.close()
            self._events = None
        if self._rule is not None:
            try:
                await asyncio.to_thread(self._rule.teardown)
            except BruteguardError as error:
                log.error("could not remove the connection-tracking rule: %s", error)
            self._rule = None

    def describe(self) -> dict[str, object]:
        """What ``status`` shows of the evidence."""
        book, events = self.book, self._events
        return {
            "evidence": "conntrack" if book is not None else "none",
            "unavailable": self.unavailable,
            "connections": len(book) if book is not None else 0,
            "complete_since": book.since if book is not None else None,
            "overruns": events.overruns if events is not None else 0,
            "ptr_lookups": self._resolver.queries,
            **self.counts,
        }

    # -- evidence -----------------------------------------------------------------------

    def _read(self) -> None:
        """Take the kernel's pending events (the event loop calls it while the socket is
        readable, and ``submit`` before it judges a line)."""
        if self._events is not None:
            self.take(*self._events.read_events())

    def take(self, events: list[ConnEvent], overrun: bool = False) -> None:
        """What the kernel reported since the last read: into the book, and for services
        that write names, each new connection's PTR asked at once."""
        if self.book is None:
            return
        now = self.clock()
        if overrun:
            self.book.overrun(now)
            self._resync(now)
        self.book.feed(events, now)
        for event in events:
            if event.kind == EventKind.NEW and event.dport in self._early_ports:
                self._ask_early(event)

    def _ask_early(self, event: ConnEvent) -> None:
        """The PTR of a new connection, asked before the service can ask it."""
        address = event.src
        if address in self._early or self.history.current(address, self.clock()):
            return
        if len(self._early) >= _MAX_EARLY:
            self.counts["early_skipped"] += 1  # such a connection stays "unknown"
            return
        task = asyncio.ensure_future(self._observe(address))
        self._early[address] = task
        task.add_done_callback(lambda _: self._early.pop(address, None))

    async def _observe(self, address: str) -> None:
        self.history.add(await self._resolver.observe(address))

    def _resync(self, now: float) -> None:
        """Read the kernel's table again (in a thread), at most every ``_RESYNC_EVERY``."""
        if self._resyncing is not None or now - self._last_resync < _RESYNC_EVERY:
            return
        self._last_resync = now
        self._resyncing = asyncio.ensure_future(self._resync_now())

    async def _resync_now(self) -> None:
        try:
            taken = self.clock()
            table = await asyncio.to_thread(dump, self._ports)
            if self.book is not None:
                self._read()  # events up to the dump first, then the dump's view
                self.book.resync(table, max(taken, self.clock()))
        except BruteguardError as error:
            log.warning("conntrack: %s", error)
        finally:
            self._resyncing = None

    def tick(self) -> None:
        """Housekeeping: a read (so a quiet spell does not stretch the bounds of the next
        connection's start), and connections open before bruteguard listened, which send
        no events, have their end learnt from the table (every ``_RESYNC_EVERY``)."""
        self._read()
        if self.book is not None and self.book.silent():
            self._resync(self.clock())

    # -- named failures -----------------------------------------------------------------

    def submit(self, named: list[NamedHit], deliver: Deliver) -> None:
        """Take the evidence for ``named`` now; decide and ``deliver`` in the background."""
        if not named:
            return
        self._read()
        now = self.clock()
        cases: list[tuple[NamedHit, list[Connection], bool]] = []
        settled: list[Unattributed] = []
        ready: list[Hit] = []  # address-less lines need no DNS: decided here
        for hit in named:
            moment, name, user, jail, line = hit
            facts = self._jails.get(jail)
            if facts is None or self.book is None:
                why = f"no connection evidence: {self.unavailable or 'unknown jail'}"
                settled.append(Unattributed(moment, jail, name, (), why, user, line))
                continue
            since = moment - facts.names.log_delay - _SLACK
            until = moment + _SLACK
            if since < now - _KEEP:
                settled.append(Unattributed(moment, jail, name, (), _STALE, user, line))
                continue
            if not name:
                verdict = self._ended_with(facts, moment)
                _log_verdict(verdict)
                if verdict.address is None:
                    settled.append(
                        Unattributed(moment, jail, name, verdict.candidates, verdict.method,
                                     user, line)
                    )  # fmt: skip
                else:
                    ready.append((moment, verdict.address, user, jail, line))
                continue
            complete = self.book.complete(since, until)
            cases.append((hit, self.book.real(facts.ports, since, until), complete))
        self.counts["unattributed"] += len(settled)
        self.counts["attributed"] += len(ready)
        work = self._decide if len(self._pending) < _MAX_PENDING else self._give_up
        task = asyncio.ensure_future(work(cases, deliver, settled, ready))
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _ended_with(self, facts: _JailFacts, moment: float) -> Attribution:
        """The verdict on a line that names no client (see ``attribute_ending``)."""
        assert self.book is not None
        if not facts.names.ends_connection:
            return Attribution("", None, "the line names no client", ())
        before, after = ENDED_WITH_LINE
        since, until = moment + before - _SLACK, moment + after
        connections = self.book.real(facts.ports, since, until)
        return attribute_ending(connections, moment, complete=self.book.complete(since, until))

    def _done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("attribution failed", exc_info=task.exception())

    async def _decide(
        self,
        cases: list[tuple[NamedHit, list[Connection], bool]],
        deliver: Deliver,
        settled: list[Unattributed],
        ready: list[Hit],
    ) -> None:
        await self._observe_candidates(cases)
        now = self.clock()
        hits: list[Hit] = []
        unattributed: list[Unattributed] = []
        verdicts: list[Attribution] = []
        for hit, connections, complete in cases:
            moment, name, user, jail, line = hit
            names = self._jails[jail].names
            if names.addresses_only:
                verdict = attribute_address(name, connections, complete=complete)
            else:
                verdict = attribute(
                    name,
                    connections,
                    self.history,
                    now,
                    complete=complete,
                    min_ttl=names.resolves_within + 5.0,
                    sanitize=names.written,
                )
            verdicts.append(verdict)
            if verdict.address is None:
                unattributed.append(
                    Unattributed(moment, jail, name, verdict.candidates, verdict.method, user, line)
                )
            else:
                hits.append((moment, verdict.address, user, jail, line))
        for verdict in verdicts:
            _log_verdict(verdict)
        self.counts["attributed"] += len(hits)
        self.counts["unattributed"] += len(unattributed)
        await deliver(ready + hits, settled + unattributed)

    async def _observe_candidates(
        self, cases: list[tuple[NamedHit, list[Connection], bool]]
    ) -> None:
        """Ask DNS about every candidate whose answer the resolver no longer caches (the
        early lookups still in flight are awaited, not repeated)."""
        now = self.clock()
        wanted: set[str] = set()
        for hit, connections, complete in cases:
            if self._jails[hit[3]].names.addresses_only:
                continue  # an address is compared, never a name: no DNS
            addresses = {c.address for c in connections}
            if complete and len(addresses) <= MAX_CANDIDATES:
                wanted |= {a for a in addresses if self.history.current(a, now) is None}
        waits = [self._early[a] for a in wanted if a in self._early]
        asks = [self._observe(a) for a in sorted(wanted) if a not in self._early]
        if waits or asks:
            await asyncio.gather(*waits, *asks, return_exceptions=True)

    async def _give_up(
        self,
        cases: list[tuple[NamedHit, list[Connection], bool]],
        deliver: Deliver,
        settled: list[Unattributed],
        ready: list[Hit],
    ) -> None:
        unattributed = []
        for (moment, name, user, jail, line), connections, _ in cases:
            candidates = tuple(sorted({c.address for c in connections}))
            unattributed.append(
                Unattributed(moment, jail, name, candidates, "overloaded", user, line)
            )
        self.counts["unattributed"] += len(unattributed)
        await deliver(ready, settled + unattributed)


def _closed_lingers() -> float:
    """Seconds conntrack keeps a reset connection (``nf_conntrack_tcp_timeout_close``,
    read for this namespace); 0 when it cannot be read."""
    try:
        return max(0.0, float(_TIMEOUT_CLOSE.read_text().strip()))
    except (OSError, ValueError):
        return 0.0


def _log_verdict(verdict: Attribution) -> None:
    shown = f"failure from {printable(verdict.name[:255])}" if verdict.name else "a failure"
    if not verdict.name:
        shown += " naming no client"
    candidates = ", ".join(verdict.candidates) or "nobody"
    if verdict.address is not None:
        log.info(
            "%s: %s (%s; real connections: %s)", shown, verdict.address, verdict.method,
            candidates,
        )  # fmt: skip
    else:
        log.warning(
            "%s not attributed: %s (real connections: %s)", shown, verdict.method, candidates
        )
