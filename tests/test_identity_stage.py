"""The daemon's identity stage: named failures in, verdicts out, DNS off the caller's path.

The stage runs as the daemon runs it, against a real DNS server on loopback (dnskit's
scripted zone). Its connection book is fed the events the kernel sends (their reading from
the kernel is tested in test_identity_conntrack.py, the whole in the end-to-end tests), so
these tests need no namespace. One clock, injected, drives the stage and the book.
"""

from __future__ import annotations

import asyncio
import socket
import time

from bruteguard.config import IdentityConfig, JailConfig
from bruteguard.duration import Seconds
from bruteguard.identity.connections import ConnectionBook
from bruteguard.identity.conntrack import ConnEvent, EventKind
from bruteguard.identity.stage import IdentityStage
from bruteguard.match.engine import Hit
from bruteguard.model import Unattributed
from dnskit import Answer, ScriptedDns

ATTACKER, INNOCENT = "198.51.100.7", "203.0.113.50"
NAME = "nx.attacker.test"
SERVER = socket.inet_aton("192.0.2.1")
PORT = 2121


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _stage(dns_port: int, clock: Clock, conntrack: bool = True) -> IdentityStage:
    config = IdentityConfig(
        nameservers=["127.0.0.1"], dns_port=dns_port, dns_timeout=Seconds(1.0),
        conntrack=conntrack,
    )  # fmt: skip
    jail = JailConfig(name="ftp", filter="pure-ftpd", port=[PORT])
    stage = IdentityStage(config, [jail], firewall=False, clock=clock)
    if conntrack:  # the book the kernel's events would fill
        stage.book = ConnectionBook(clock() - 60)
    return stage


def _connect(stage: IdentityStage, address: str, sport: int) -> None:
    """A client's handshake, as the kernel reports it (NEW, then ASSURED)."""
    stage.take([ConnEvent(EventKind.NEW, address, sport, SERVER, PORT, 8, 1)])
    stage.take([ConnEvent(EventKind.UPDATE, address, sport, SERVER, PORT, 14, 3)])


async def _run(
    stage: IdentityStage,
    names: list[str],
    moment: float,
    connected: tuple[str, ...] = (),
    close: bool = True,
) -> tuple[float, list[Hit], list[Unattributed]]:
    """``connected`` clients connect, then the named failures are submitted: how long
    ``submit`` took, and what was delivered. (All on the loop, as in the daemon.)"""
    for sport, address in enumerate(connected, start=40001):
        _connect(stage, address, sport)
    delivered = asyncio.Event()
    got: tuple[list[Hit], list[Unattributed]] = ([], [])

    async def deliver(hits: list[Hit], unattributed: list[Unattributed]) -> None:
        nonlocal got
        got = (hits, unattributed)
        delivered.set()

    started = time.monotonic()
    named = [
        (moment, name, "x", "ftp", f"pure-ftpd: (?@{name}) [WARNING] Authentication failed")
        for name in names
    ]
    stage.submit(named, deliver)
    submitted = time.monotonic() - started
    await asyncio.wait_for(delivered.wait(), timeout=10)
    if close:
        await stage.close()
    return submitted, *got


def test_the_connection_whose_ptr_is_the_name_is_attributed() -> None:
    script = {ATTACKER: [Answer((NAME,))], INNOCENT: [Answer(("host.innocent.test",))]}
    clock = Clock()
    with ScriptedDns(script) as dns:
        stage = _stage(dns.port, clock)
        _, hits, unattributed = asyncio.run(_run(stage, [NAME], clock.now, (ATTACKER, INNOCENT)))
    assert [(hit[1], hit[2], hit[3]) for hit in hits] == [(ATTACKER, "x", "ftp")]
    assert unattributed == []
    assert stage.counts["attributed"] == 1


def test_dns_runs_in_the_background_and_silence_means_unattributed() -> None:
    """``submit`` returns at once (lines with addresses keep flowing); the verdict comes
    after the timeout, with the candidates recorded."""
    clock = Clock()
    with ScriptedDns({ATTACKER: [Answer(silent=True)]}) as dns:
        stage = _stage(dns.port, clock)
        submitted, hits, unattributed = asyncio.run(_run(stage, [NAME], clock.now, (ATTACKER,)))
    assert submitted < 0.05
    assert hits == []
    [failure] = unattributed
    assert failure.candidates == (ATTACKER,)
    assert failure.reason.startswith("no real connection is known to have that PTR")
    assert (failure.name, failure.jail, failure.user) == (NAME, "ftp", "x")


def test_a_new_connections_ptr_is_asked_at_once_and_not_again_while_cached() -> None:
    """pure-ftpd writes names, so the stage asks as the connection opens: its answer is the
    one the resolver's cache gives the service."""
    clock = Clock()
    with ScriptedDns({ATTACKER: [Answer((NAME,), ttl=600)]}) as dns:
        stage = _stage(dns.port, clock)

        async def scenario() -> list[Hit]:
            stage.take([ConnEvent(EventKind.NEW, ATTACKER, 40001, SERVER, PORT, 8, 1)])
            await asyncio.sleep(0.5)
            assert dns.asked == {ATTACKER: 1}, "asked before the handshake completed"
            stage.take([ConnEvent(EventKind.UPDATE, ATTACKER, 40001, SERVER, PORT, 14, 3)])
            _, hits, _ = await _run(stage, [NAME, NAME], clock.now)
            return hits

        hits = asyncio.run(scenario())
    assert [hit[1] for hit in hits] == [ATTACKER, ATTACKER]
    assert dns.asked == {ATTACKER: 1}, "decided from the answer still cached"


def test_a_line_older_than_the_evidence_is_not_tied_to_a_connection() -> None:
    clock = Clock()
    with ScriptedDns({ATTACKER: [Answer((NAME,))]}) as dns:
        stage = _stage(dns.port, clock)
        _, hits, unattributed = asyncio.run(_run(stage, [NAME], clock.now - 3600, (ATTACKER,)))
    assert hits == []
    assert [u.reason for u in unattributed] == [
        "too old to tie to a connection (replayed or delayed line)"
    ]


def test_without_connection_evidence_nobody_is_attributed_and_it_says_why() -> None:
    clock = Clock()
    with ScriptedDns({ATTACKER: [Answer((NAME,))]}) as dns:
        stage = _stage(dns.port, clock, conntrack=False)
        stage.start()
        _, hits, unattributed = asyncio.run(_run(stage, [NAME], clock.now))
    assert hits == []
    assert [u.reason for u in unattributed] == ["no connection evidence: identity.conntrack is off"]
    assert stage.describe()["evidence"] == "none"


def test_a_flood_of_named_lines_while_dns_is_slow_is_bounded() -> None:
    """Past 256 decisions in flight, new ones are recorded unattributed at once."""
    clock = Clock()
    with ScriptedDns({ATTACKER: [Answer(silent=True)]}) as dns:
        stage = _stage(dns.port, clock)

        async def flood() -> list[Unattributed]:
            _connect(stage, ATTACKER, 40001)
            got: list[Unattributed] = []

            async def deliver(hits: list[Hit], unattributed: list[Unattributed]) -> None:
                got.extend(unattributed)

            for n in range(300):
                stage.submit([(clock.now, NAME, f"u{n}", "ftp", "line")], deliver)
            await asyncio.sleep(0)
            overloaded = [u for u in got if u.reason == "overloaded"]
            await stage.close()
            return overloaded

        overloaded = asyncio.run(flood())
    assert len(overloaded) == 300 - 256
    assert all(u.candidates == (ATTACKER,) for u in overloaded)


def test_a_zone_seen_answering_two_ways_never_makes_the_innocent_the_only_fit() -> None:
    """The flip: the attacker's zone gives the innocent's name to the first query of a
    connection (hoping it is the service's) with TTL 0, and its own name with a long TTL
    to every later one. Once bruteguard has seen both, the attacker is never excluded, so
    the innocent, whose PTR really is that name, is never the only fitting connection."""
    copied = "mail.innocent.test"
    script = {
        ATTACKER: [Answer((copied,), ttl=0), Answer(("x.attacker.test",), ttl=600)],
        INNOCENT: [Answer((copied,), ttl=600)],
    }
    clock = Clock()
    with ScriptedDns(script) as dns:
        stage = _stage(dns.port, clock)

        async def scenario() -> tuple[list[Hit], list[Unattributed]]:
            # An earlier connection: its NEW is asked at once (the copied name, TTL 0),
            # the decision on its line asks again (its own name). It is long gone when…
            _connect(stage, ATTACKER, 40001)
            await asyncio.sleep(0.3)
            await _run(stage, [copied], clock.now, close=False)
            stage.take([ConnEvent(EventKind.UPDATE, ATTACKER, 40001, SERVER, PORT, 14, 8)])
            clock.now += 120
            stage.take([])  # the reader's read: nothing new (the daemon reads at least every 30 s)
            # …a later connection, whose every answer is its own name with a long TTL.
            _connect(stage, ATTACKER, 40003)
            _connect(stage, INNOCENT, 40002)
            await asyncio.sleep(0.3)
            clock.now += 5
            _, hits, unattributed = await _run(stage, [copied], clock.now)
            return hits, unattributed

        hits, unattributed = asyncio.run(scenario())
    assert dns.asked[ATTACKER] >= 2
    assert stage.history.unstable(ATTACKER, clock.now)
    assert hits == []
    assert [u.candidates for u in unattributed] == [(ATTACKER, INNOCENT)]


def test_a_line_naming_no_client_goes_to_the_connection_that_ended_with_it() -> None:
    """An old lighttpd's TLS error names no client: the connection that ended with it is
    the client; with a second one ending then, nobody is."""
    clock = Clock()
    config = IdentityConfig(nameservers=["127.0.0.1"], dns_port=9, dns_timeout=Seconds(1.0))
    jail = JailConfig(name="panel", filter="sw-cp-server", port=[PORT])

    async def scenario(second_closes: bool) -> tuple[list[Hit], list[Unattributed]]:
        stage = IdentityStage(config, [jail], firewall=False, clock=clock)
        stage.book = ConnectionBook(clock() - 60)
        for sport, address in ((40001, ATTACKER), (40002, INNOCENT)):
            _connect(stage, address, sport)
        clock.now += 3
        ends = [ConnEvent(EventKind.UPDATE, ATTACKER, 40001, SERVER, PORT, 14, 4)]
        if second_closes:
            ends.append(ConnEvent(EventKind.UPDATE, INNOCENT, 40002, SERVER, PORT, 14, 4))
        stage.take(ends)
        got: list[tuple[list[Hit], list[Unattributed]]] = []

        async def deliver(hits: list[Hit], unattributed: list[Unattributed]) -> None:
            got.append((hits, unattributed))

        line = "2026-11-23 22:37:08: (connections.c.299) SSL: 1 error:140780E5:…"
        stage.submit([(clock.now - 0.4, "", None, "panel", line)], deliver)
        await asyncio.sleep(0.05)
        await stage.close()
        return got[0]

    hits, unattributed = asyncio.run(scenario(second_closes=False))
    assert ([h[1] for h in hits], unattributed) == ([ATTACKER], [])
    hits, unattributed = asyncio.run(scenario(second_closes=True))
    assert hits == []
    assert [(u.reason, u.candidates) for u in unattributed] == [
        ("ambiguous: several connections ended then", (ATTACKER, INNOCENT))
    ]
