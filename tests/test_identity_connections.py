"""The connection book: lifetimes from conntrack events, bounds that only widen a life, and
gaps that make a window incomplete. Values in, values out: no kernel here (the events are
the ones the kernel sends, see test_identity_conntrack.py)."""

from __future__ import annotations

import socket

import pytest

from bruteguard.identity.connections import ConnectionBook
from bruteguard.identity.conntrack import ConnEvent, EventKind

SERVER = socket.inet_pton(socket.AF_INET, "192.0.2.1")
T0 = 1_000_000.0  # any clock: the book only compares its own times

# conntrack's status bits and TCP states as the kernel reports a connection's life.
CONFIRMED, SEEN_REPLY, ASSURED = 8, 2, 4
SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE = 1, 2, 3, 4, 8


def _event(kind: int, src: str, status: int, state: int | None, sport: int = 40000, port: int = 21):
    return ConnEvent(kind, src, sport, SERVER, port, status, state)


def _handshake(src: str, sport: int = 40000, port: int = 21) -> list[ConnEvent]:
    return [
        _event(EventKind.NEW, src, CONFIRMED, SYN_SENT, sport, port),
        _event(EventKind.UPDATE, src, CONFIRMED | SEEN_REPLY, SYN_RECV, sport, port),
        _event(EventKind.UPDATE, src, CONFIRMED | SEEN_REPLY | ASSURED, ESTABLISHED, sport, port),
    ]


def _reset(src: str, sport: int = 40000, port: int = 21) -> ConnEvent:
    return _event(EventKind.UPDATE, src, CONFIRMED | SEEN_REPLY | ASSURED, CLOSE, sport, port)


def test_a_connection_is_real_from_its_handshake_to_its_close() -> None:
    book = ConnectionBook(T0)
    book.feed(_handshake("192.0.2.10"), T0 + 10)
    book.feed([_reset("192.0.2.10")], T0 + 50)
    [connection] = book.real([21], T0 + 40, T0 + 70)  # closed within the window
    assert (connection.address, connection.port) == ("192.0.2.10", 21)
    # What the kernel reported at the read at T0 + 10 happened after the read before (T0):
    # the start is that earlier read, the end the later one. Bounds only widen a life.
    assert (connection.opened, connection.assured, connection.closed) == (T0, T0, T0 + 50)
    assert book.real([21], T0 + 51, T0 + 60) == []
    assert book.real([22], T0 + 10, T0 + 20) == [], "another port"


def test_a_bare_syn_is_never_a_real_connection() -> None:
    """A forged SYN gets a reply the forger never sees: no ASSURED, no candidate."""
    book = ConnectionBook(T0)
    book.feed(_handshake("192.0.2.10")[:2], T0 + 1)
    assert book.real([21], T0, T0 + 100) == []
    assert book.half_open() == 1
    book.feed([_event(EventKind.DESTROY, "192.0.2.10", CONFIRMED, None)], T0 + 60)
    assert book.half_open() == 0 and book.real([21], T0, T0 + 100) == []


def test_idle_then_reset_stays_a_candidate_for_the_services_delay() -> None:
    """The attack that beat a "who is connected now" window: connect, idle, send the
    password, reset before the service logs. The life still covers the line's window."""
    book = ConnectionBook(T0)
    book.feed(_handshake("192.0.2.10"), T0 + 1)
    book.feed([_reset("192.0.2.10")], T0 + 40)  # idled 39 s, then reset
    line = T0 + 45  # pure-ftpd's anti-guessing sleep, then the failure
    [connection] = book.real([21], line - 25 - 1.5, line + 1.5)
    assert connection.address == "192.0.2.10"


def test_ipv6_and_several_connections_of_one_address() -> None:
    book = ConnectionBook(T0)
    book.feed(_handshake("2001:db8::10", 40001) + _handshake("2001:db8::10", 40002), T0 + 1)
    book.feed(_handshake("192.0.2.11", 40003), T0 + 2)
    found = sorted((c.address, c.opened) for c in book.real([21], T0 + 5, T0 + 6))
    assert found == [("192.0.2.11", T0 + 1), ("2001:db8::10", T0), ("2001:db8::10", T0)]


def test_a_gap_makes_every_window_that_touches_it_incomplete() -> None:
    book = ConnectionBook(T0)
    book.feed([], T0 + 10)
    book.overrun(T0 + 20)  # the kernel dropped events between the reads at T0+10 and T0+20
    assert not book.complete(T0 + 15, T0 + 16)
    assert not book.complete(T0, T0 + 10), "the gap's edge counts"
    assert book.complete(T0 + 21, T0 + 30)
    assert not book.complete(T0 - 1, T0 + 5), "before the book began: unknown"


def test_resync_adds_what_was_missed_and_ends_what_is_gone() -> None:
    book = ConnectionBook(T0)
    book.feed(_handshake("192.0.2.10", 40001) + _handshake("192.0.2.12", 40002), T0 + 1)
    table = [
        _event(EventKind.UPDATE, "192.0.2.10", CONFIRMED | ASSURED, ESTABLISHED, 40001),
        _event(EventKind.UPDATE, "192.0.2.11", CONFIRMED | ASSURED, ESTABLISHED, 40005),
        _event(EventKind.UPDATE, "192.0.2.13", CONFIRMED, SYN_RECV, 40006),
    ]
    book.resync(table, T0 + 30)
    open_now = {(c.address, c.closed, c.from_start) for c in book.real([21], T0 + 31, T0 + 32)}
    assert open_now == {("192.0.2.10", None, True), ("192.0.2.11", None, False)}
    [gone] = [c for c in book.real([21], T0 + 29, T0 + 30) if c.address == "192.0.2.12"]
    assert gone.closed == T0 + 30, "ended at the latest moment it can have"
    assert book.silent() == 1, "192.0.2.11 was open before we knew: its end comes from a read"


def test_open_connections_found_at_start_count_from_the_books_beginning() -> None:
    book = ConnectionBook(T0 - 10)
    book.resync([_event(EventKind.UPDATE, "192.0.2.10", ASSURED | CONFIRMED, ESTABLISHED)], T0)
    [connection] = book.real([21], T0 - 10, T0)
    assert (connection.opened, connection.from_start) == (T0 - 10, False)
    book.resync([_event(EventKind.UPDATE, "192.0.2.10", ASSURED | CONFIRMED, CLOSE)], T0 + 5)
    assert [c.closed for c in book.real([21], T0, T0 + 10)] == [T0 + 5]


def test_a_clock_stepping_back_never_shortens_a_life() -> None:
    book = ConnectionBook(T0)
    book.feed(_handshake("192.0.2.10"), T0 + 100)
    book.feed([_reset("192.0.2.10")], T0 + 50)  # the clock stepped back 50 s
    [connection] = book.real([21], T0 + 99, T0 + 101)
    assert connection.closed == T0 + 100


def test_a_syn_flood_evicts_half_open_entries_first_and_never_a_real_one() -> None:
    book = ConnectionBook(T0, limit=100)
    book.feed(_handshake("192.0.2.10"), T0 + 1)
    flood = [
        _event(EventKind.NEW, f"198.51.100.{n % 250}", CONFIRMED, SYN_SENT, 1024 + n)
        for n in range(1000)
    ]
    book.feed(flood, T0 + 2)
    assert book.half_open() == 99
    assert [c.address for c in book.real([21], T0 + 2, T0 + 3)] == ["192.0.2.10"]
    assert book.complete(T0 + 1, T0 + 3), "dropping forged SYNs loses no evidence"


def test_closed_connections_are_kept_for_keep_then_the_window_is_unknown() -> None:
    book = ConnectionBook(T0, keep=60)
    book.feed(_handshake("192.0.2.10"), T0 + 1)
    book.feed([_reset("192.0.2.10")], T0 + 2)
    book.feed([], T0 + 100)
    assert book.real([21], T0, T0 + 5) == []
    assert not book.complete(T0, T0 + 5), "forgotten, so not known to be empty"


def test_more_closed_connections_than_the_limit_leave_a_gap() -> None:
    book = ConnectionBook(T0, limit=10)
    for n in range(20):
        book.feed(_handshake("192.0.2.10", 30000 + n), T0 + n)
        book.feed([_reset("192.0.2.10", 30000 + n)], T0 + n + 0.5)
    assert len(book) == 10
    assert not book.complete(T0 + 2, T0 + 3)
    assert book.complete(T0 + 15, T0 + 19)


@pytest.mark.parametrize(("keep", "limit"), [(0, 1), (10, 0), (-1, 5)])
def test_bad_bounds_are_refused(keep: float, limit: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        ConnectionBook(T0, keep=keep, limit=limit)
