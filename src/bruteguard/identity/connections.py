"""Lifetimes of the real TCP connections to the jails' ports, from conntrack events.

A failure line that names a host belongs to a connection that was alive when the service
handled the attempt, or that closed at most the service's logging delay before the line.
So the evidence is each connection's *lifetime*, not who is connected when the line is
read: a client that connects, idles, sends a password and resets before the service logs
its failure is still on record.

Times are bounds that only ever widen a connection's life, so the evidence can make a case
ambiguous but never leave the real client out: what the kernel reports between two reads
happened after the earlier one (its start is set to that read) and before the later one
(its end is set to that read).

Only connections whose handshake completed (conntrack ``ASSURED``) are *real*; a bare SYN,
which anyone can send with any source address, is remembered only until its handshake
completes or it goes away. When the kernel dropped events (``gap``), what happened in that
span is unknown, and ``complete`` says so for every window that touches it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from bruteguard.identity.conntrack import ASSURED, CLOSING_STATES, ConnEvent, EventKind

__all__ = ["Connection", "ConnectionBook"]

_Key = tuple[str, int, bytes, int]


@dataclass(slots=True)
class Connection:
    """One TCP connection to a watched port, and what is known of its life.

    ``opened``: no later than its first packet. ``assured``: when its handshake was seen
    complete (None: never, so not a real connection). ``closed``: no earlier than its
    first closing state (None: still open), and ``closing_since`` no later than it: the
    close happened in between. ``from_start``: bruteguard saw its first packet (False for
    a connection already open when it started listening, or found after a gap).
    """

    address: str
    port: int
    opened: float
    assured: float | None = None
    closed: float | None = None
    from_start: bool = True
    closing_since: float | None = None

    def may_have_ended_during(self, since: float, until: float) -> bool:
        """Whether its end can have been a moment of [since, until]."""
        return (
            self.closed is not None
            and self.closed >= since
            and (self.closing_since if self.closing_since is not None else self.opened) <= until
        )

    def alive_during(self, since: float, until: float) -> bool:
        """Whether it was a real connection at some moment of [since, until]."""
        return (
            self.assured is not None
            and self.opened <= until
            and (self.closed is None or self.closed >= since)
        )


class ConnectionBook:
    """The connections of the last ``keep`` seconds, fed by conntrack events.

    ``limit`` bounds the open connections held (a SYN flood fills it with connections that
    never complete: those are evicted first); closed ones are kept ``keep`` seconds, at
    most ``limit`` of them. Whatever must be forgotten early is recorded as a gap, so no
    window that needed it is ever called complete.
    """

    def __init__(self, started: float, *, keep: float = 900.0, limit: int = 200_000) -> None:
        if keep <= 0 or limit < 1:
            raise ValueError("keep and limit must be positive")
        self.keep = keep
        self.limit = limit
        self.since = started  # evidence is complete from here on (gaps aside)
        self._last_read = started
        self._half_open: OrderedDict[_Key, Connection] = OrderedDict()
        self._open: dict[_Key, Connection] = {}
        self._closed: deque[Connection] = deque()
        self._gaps: deque[tuple[float, float]] = deque()
        self.evicted = 0

    # -- feeding ----------------------------------------------------------------------

    def feed(self, events: Iterable[ConnEvent], now: float) -> None:
        """Apply the events read at ``now`` (all happened since the previous read)."""
        now = max(now, self._last_read)  # a clock stepping back must not reorder ends
        for event in events:
            key = (event.src, event.sport, event.dst, event.dport)
            if event.kind == EventKind.DESTROY:
                self._end(key, now)
            else:
                self._apply(key, event, self._last_read, now)
        self._last_read = now
        self._bound(now)

    def gap(self, since: float, until: float) -> None:
        """Events of [since, until] were lost: no window touching that span is complete."""
        if until >= since:
            self._gaps.append((since, until))

    def overrun(self, now: float) -> None:
        """The kernel dropped events since the last read."""
        self.gap(self._last_read, now)

    def resync(self, table: Iterable[ConnEvent], now: float) -> None:
        """Reconcile with a dump of the table taken at ``now``: connections we hold but the
        table no longer has ended (at ``now``, the latest they can have); ones it has that
        we never saw are open since an unknown time (``from_start`` False), and what it
        says of the others (handshake done, closing) is applied as if just reported."""
        now = max(now, self._last_read)
        present: set[_Key] = set()
        for event in table:
            key = (event.src, event.sport, event.dst, event.dport)
            present.add(key)
            self._apply(key, event, None, now)
        for key in [k for k in self._open if k not in present]:
            self._end(key, now)
        for key in [k for k in self._half_open if k not in present]:
            del self._half_open[key]
        self._bound(now)

    def _apply(self, key: _Key, event: ConnEvent, earliest: float | None, now: float) -> None:
        """One report of a connection's state. ``earliest``: when what it reports may first
        have happened (None: unknown, so as early as the book reaches)."""
        connection = self._open.get(key) or self._half_open.get(key)
        if connection is None:
            seen_start = earliest is not None and (
                event.kind == EventKind.NEW or not event.status & ASSURED
            )
            start = earliest if seen_start and earliest is not None else self.since
            connection = Connection(event.src, event.dport, start, from_start=seen_start)
            self._half_open[key] = connection
        if connection.assured is None and event.status & ASSURED:
            connection.assured = connection.opened if earliest is None else earliest
            self._half_open.pop(key, None)
            self._open[key] = connection
        if event.tcp_state in CLOSING_STATES and connection.closed is None:
            self._end(key, now)

    def _end(self, key: _Key, now: float) -> None:
        """The connection ended between the previous read and ``now``."""
        self._half_open.pop(key, None)
        connection = self._open.pop(key, None)
        if connection is not None:
            if connection.closed is None:
                connection.closed = now
                connection.closing_since = max(connection.opened, min(self._last_read, now))
            self._closed.append(connection)

    def _bound(self, now: float) -> None:
        while len(self._half_open) + len(self._open) > self.limit and self._half_open:
            self._half_open.popitem(last=False)
            self.evicted += 1
        while len(self._open) > self.limit:
            # Never happens short of a limit below the real connections: forget the
            # oldest, and the span of its life becomes unknown.
            key = next(iter(self._open))
            connection = self._open.pop(key)
            self.gap(connection.opened, now)
            self.evicted += 1
        horizon = now - self.keep
        closed = self._closed
        while closed and (len(closed) > self.limit or (closed[0].closed or 0.0) < horizon):
            dropped = closed.popleft()
            if (dropped.closed or 0.0) >= horizon:
                self.gap(dropped.opened, dropped.closed or now)
                self.evicted += 1
        gaps = self._gaps
        while gaps and gaps[0][1] < horizon:
            gaps.popleft()
        self.since = max(self.since, horizon)

    # -- asking -----------------------------------------------------------------------

    def complete(self, since: float, until: float) -> bool:
        """Whether every connection alive during [since, until] is known."""
        if since < self.since:
            return False
        return not any(start <= until and end >= since for start, end in self._gaps)

    def real(self, ports: Collection[int], since: float, until: float) -> list[Connection]:
        """Real connections to ``ports`` alive at some moment of [since, until]."""
        wanted = frozenset(ports)
        found = [
            c for c in self._open.values() if c.port in wanted and c.alive_during(since, until)
        ]
        for connection in reversed(self._closed):
            if connection.closed is not None and connection.closed < since:
                # Closed in time order: everything before ended earlier. (Ends set by a
                # resync share one time, so the order holds.)
                break
            if connection.port in wanted and connection.alive_during(since, until):
                found.append(connection)
        return found

    def half_open(self) -> int:
        return len(self._half_open)

    def silent(self) -> int:
        """Open connections that may send no events (open before bruteguard listened, or
        found after a gap): only a read of the table learns of their end."""
        return sum(1 for c in self._open.values() if not c.from_start)

    def __len__(self) -> int:
        return len(self._open) + len(self._closed)
