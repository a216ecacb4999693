"""The fleet's faults with real daemons on a PostgreSQL of the test's own (tests/pgkit.py),
beyond what test_fleet.py and test_fleet_daemons.py already play (a clean stop of the
database, a leader's backend terminated, a host stopped for one ban):

- the postmaster SIGKILLed while a host is banning, and started again (crash recovery):
  no ban lost, none and no failure summary twice;
- a host offline through an hour of the fleet's bans (stamped by an injected clock, not
  waited for) catches up from its cursor: what still stands, not what ended, was lifted,
  or was already applied and lifted here;
- the leading daemon SIGKILLed: the other leads within 10 s and nothing is decided twice;
- a host banning 10,000 addresses a minute: the others apply only its cap, the cap shows in
  ``fleet status`` and in its log, and its own bans hold at home.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bruteguard.cli import main
from bruteguard.clock import Clock
from bruteguard.fleet import outbox
from bruteguard.fleet.config import FleetConfig
from bruteguard.fleet.publisher import Publisher
from bruteguard.fleet.subscriber import Subscriber
from bruteguard.model import Ban
from bruteguard.store.sqlite import SqliteStore
from pgkit import Cluster
from test_daemon import _wait
from test_fleet_daemons import FleetDaemon, _fleet

# One ban per address: no /64 or /24 grouping, so every address is a ban of its own.
EACH_ADDRESS = "ipv6_prefix = 128\nsubnet_maxretry = 0\n"


def _address(n: int) -> str:
    """The n-th attacker: a /64 of its own in 2001:db8::/32 (written as bruteguard does)."""
    return str(ipaddress.IPv6Address(f"2001:db8:{n >> 16:x}:{n & 0xFFFF:x}::1"))


def _failures(addresses: list[str], each: int = 3) -> str:
    """``each`` sshd failure lines for every address (a daemon with maxretry 3 bans them)."""
    stamp = time.strftime("%b %e %H:%M:%S")
    return "".join(
        f"{stamp} host sshd[{1000 + n % 50000}]: Failed password for root from {ip}"
        f" port {20000 + (n * each + k) % 40000} ssh2\n"
        for n, ip in enumerate(addresses)
        for k in range(each)
    )


def _banned_now(daemon: FleetDaemon) -> int:
    status = json.loads(daemon.cli("status", "--json").stdout)
    return sum(jail["banned_now"] for jail in status["jails"])


def _behind(daemon: FleetDaemon) -> int:
    """Fleet changes the host has yet to read (``fleet status``)."""
    return int(json.loads(daemon.cli("fleet", "status", "--json").stdout)["changes_behind"])


def _query(admin: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(admin) as conn:
        return conn.execute(query, params).fetchall()


@contextlib.contextmanager
def _registered(*hosts: str) -> Iterator[tuple[Cluster, str]]:
    """A cluster of the test's own with the fleet's schema and ``hosts``; (it, admin DSN)."""
    cluster = Cluster()
    try:
        admin = cluster.dsn()
        assert main(["fleet", "init", "--dsn", admin]) == 0
        for name in hosts:
            assert main(["fleet", "add-host", name, "--dsn", admin]) == 0
        yield cluster, admin
    finally:
        cluster.destroy()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Cluster, str, FleetDaemon, FleetDaemon]]:
    """Daemons a and b (dry-run) on a cluster of their own, one ban per address."""
    yield from _fleet(tmp_path, EACH_ADDRESS)


def test_the_postmaster_killed_mid_stream_loses_no_ban_and_doubles_none(pair) -> None:
    """A bans 300 addresses in 30 rounds; PostgreSQL is SIGKILLed after the 10th and
    started after the 20th (crash recovery). Every ban reaches the fleet once, every
    failure summary counts once, and B applies every ban."""
    cluster, admin, a, b = pair
    addresses = [_address(n) for n in range(300)]
    try:
        for round_ in range(30):
            if round_ == 10:
                cluster.kill()
            if round_ == 20:
                cluster.start()
            a.append(_failures(addresses[round_ * 10 : round_ * 10 + 10]))
            time.sleep(0.15)
    finally:
        if round_ < 20:  # an assertion above: leave the cluster up for the teardown
            cluster.start()
    _wait(lambda: _banned_now(a) == 300, 30, "A's 300 bans")
    _wait(lambda: _banned_now(b) == 300, 60, "A's 300 bans applied on B")
    assert {ban["ip"] for ban in a.bans()} == set(addresses)
    assert {(ban["ip"], ban["origin"]) for ban in b.bans()} == {(ip, "a") for ip in addresses}

    rows = _query(
        admin,
        "SELECT abbrev(ip), count(*), count(DISTINCT local_id), bool_or(capped)"
        " FROM bruteguard.bans GROUP BY ip",
    )
    assert sorted(ip for ip, *_ in rows) == sorted(addresses)
    assert {tuple(rest) for _ip, *rest in rows} == {(1, 1, False)}  # once each, none capped
    failures = _query(
        admin,
        "SELECT abbrev(ip), sum(count)::int FROM bruteguard.failure_summaries GROUP BY ip",
    )
    assert sorted(failures) == sorted((ip, 3) for ip in addresses)  # no summary sent twice
    status = json.loads(a.cli("fleet", "status", "--json").stdout)
    assert status["queue"] == {"bans": 0, "summaries": 0}
    # the daemon lived through the outage: it noticed, queued, and drained afterwards
    assert "fleet: cannot publish (queueing locally)" in a.errors()
    assert "fleet: can publish (queueing locally) again" in a.errors()


def _leader(admin: str) -> str | None:
    ((name,),) = _query(admin, "SELECT bruteguard.leader()")
    return name


def test_the_leading_daemon_killed_another_leads_within_10s_deciding_nothing_twice(
    tmp_path: Path,
) -> None:
    """fleet_hosts = 2: .70 fails once on each host and is decided by whichever daemon
    leads. That daemon is SIGKILLed: the other leads within 10 s (its session's lock freed
    as the kernel closes the dead process's connection), the killed one comes back as a
    follower, and .71, failing next, is decided once, by the new leader; .70 never again."""
    fixture = _fleet(tmp_path, "fleet_hosts = 2\n")
    _cluster, admin, a, b = next(fixture)
    daemons = {"a": a, "b": b}
    try:
        a.append(_failures(["203.0.113.70"], 1))
        b.append(_failures(["203.0.113.70"], 1))
        for daemon in (a, b):
            ban = _wait(lambda d=daemon: d.ban_of("203.0.113.70"), 30, "the fleet's ban")
            assert ban["origin"] == "fleet"
        first = _leader(admin)
        assert first in daemons
        (survivor,) = set(daemons) - {first}
        killed = daemons[first]
        assert killed.process is not None
        killed.process.kill()
        killed.process.wait(timeout=20)
        started = time.monotonic()
        _wait(lambda: _leader(admin) == survivor, 10, f"{survivor} to lead", interval=0.1)
        took = time.monotonic() - started
        assert took < 10.0
        assert f"fleet: {survivor} is the leader now" in daemons[survivor].errors()

        killed.start()
        for daemon in (a, b):
            daemon.append(_failures(["203.0.113.71"], 1))
        for daemon in (a, b):
            _wait(lambda d=daemon: d.ban_of("203.0.113.71"), 30, "the new leader's ban")
        time.sleep(2.5)  # more rounds of the new leader, and of the one come back
        assert _leader(admin) == survivor
        decided = "banned 203.0.113.71 in sshd by the fleet (ban 1 of it)"
        assert decided in daemons[survivor].errors()
        decisions = _query(
            admin,
            "SELECT abbrev(ip), count(*)::int FROM bruteguard.fleet_decisions GROUP BY ip"
            " ORDER BY ip",
        )
        assert decisions == [("203.0.113.70", 1), ("203.0.113.71", 1)]
        bans = _query(
            admin,
            "SELECT abbrev(b.ip), h.name FROM bruteguard.bans b"
            " JOIN bruteguard.hosts h ON h.id = b.host_id ORDER BY b.ip",
        )
        assert bans == [("203.0.113.70", "fleet"), ("203.0.113.71", "fleet")]
    finally:
        fixture.close()


CAP = 600  # a host's default cap of published bans a minute (hosts.max_bans_per_minute)


def test_a_host_banning_10000_addresses_a_minute_is_capped(pair) -> None:
    """A bans 10,000 addresses within seconds (real failure lines, its real pipeline):
    all 10,000 hold on A and reach the fleet, but past A's cap of 600 a minute they are
    marked capped: B applies exactly the first 600, `fleet status` shows the 9,400 capped,
    and A's log says so."""
    _cluster, admin, a, b = pair
    addresses = [_address(n) for n in range(10_000)]
    a.append(_failures(addresses))
    _wait(lambda: _banned_now(a) == 10_000, 120, "A's 10,000 bans", interval=0.5)

    def published() -> tuple[int, int]:
        ((total, capped),) = _query(
            admin,
            "SELECT count(*)::int, (count(*) FILTER (WHERE capped))::int"
            " FROM bruteguard.bans b JOIN bruteguard.hosts h ON h.id = b.host_id"
            " WHERE h.name = 'a'",
        )
        return total, capped

    _wait(lambda: published() == (10_000, 10_000 - CAP), 120, "A's bans in the fleet", 0.5)
    # each host has read every change: B past the capped ones, A past its own
    for daemon in (a, b):
        _wait(lambda d=daemon: _behind(d) == 0, 30, "every change read", interval=0.5)
    on_b = b.bans()
    assert len(on_b) == CAP and {ban["origin"] for ban in on_b} == {"a"}
    first = _query(
        admin,
        "SELECT abbrev(b.ip) FROM bruteguard.bans b JOIN bruteguard.hosts h"
        " ON h.id = b.host_id WHERE h.name = 'a' AND NOT b.capped",
    )
    assert {ban["ip"] for ban in on_b} == {ip for (ip,) in first}
    status = json.loads(b.cli("fleet", "status", "--json").stdout)
    assert {h["name"]: h["capped"] for h in status["hosts"]} == {"a": 10_000 - CAP, "b": 0}
    over = re.findall(
        r"fleet: (\d+) of this host's bans were over its cap of 600 a minute", a.errors()
    )
    assert sum(map(int, over)) == 10_000 - CAP, over
    fleet_bans = json.loads(b.cli("bans", "--fleet", "--json").stdout)
    assert len(fleet_bans) == CAP  # the capped ones are nobody's fleet bans
    assert _banned_now(a) == 10_000  # A's own protection is whole


BANTIME = 1915.0  # a ban of the hour's first half has ended when it is over, of the second not
STEP = 120.0  # the injected clock moves two minutes a round


def test_a_host_offline_for_an_hour_of_bans_catches_up_from_its_cursor(tmp_path: Path) -> None:
    """B (a real daemon) applies two of A's bans, its admin lifts one of them on B, and B
    stops. For the next hour of A's clock (injected: two minutes a round, not waited for)
    A bans 200 addresses a round and lifts some; then B starts. B applies what still stands
    (the second half-hour's bans, not those lifted) and A's lift of a ban it held; it does
    not re-read from the beginning (the ban lifted on B stays lifted)."""
    b: FleetDaemon | None = None
    with _registered("a", "b") as (cluster, admin):
        try:
            with psycopg.connect(admin, autocommit=True) as conn:  # an hour of A's bans, at once
                conn.execute("UPDATE bruteguard.hosts SET max_bans_per_minute = 100000")
            b = FleetDaemon(tmp_path / "b", cluster.dsn(user="b"), "b", [])
            end = time.time()  # the hour ends now
            now = [end - 3600 - STEP]
            clock: Clock = lambda: now[0]  # noqa: E731 - the one clock A's ledger stamps with
            store = SqliteStore(tmp_path / "a.db", clock=clock)
            outbox.enable(store, ["bans"], 0)
            publisher = Publisher(FleetConfig(dsn=cluster.dsn(user="a"), host="a"), store)
            kept, lifted_by_a = "203.0.113.80", "203.0.113.81"
            rounds: list[list[str]] = []

            async def the_hour() -> None:
                store.add_bans(
                    [Ban(ip, "sshd", now[0], end + 7200, 3, "before") for ip in (kept, lifted_by_a)]
                )
                assert await publisher.once()
                b.start()
                _wait(lambda: b.ban_of(kept) and b.ban_of(lifted_by_a), 15, "A's bans on B")
                b.cli("unban", kept)  # B's admin lifts it here
                assert b.ban_of(kept) is None
                assert b.stop(signal.SIGTERM) == 0
                for step in range(30):
                    now[0] = end - 3600 + STEP * step
                    ips = [_address(step * 200 + n) for n in range(200)]
                    rounds.append(ips)
                    store.add_bans([Ban(ip, "sshd", now[0], now[0] + BANTIME, 3, "") for ip in ips])
                    if step:
                        store.lift_bans(rounds[step - 1][:4], now[0])
                    if step == 3:
                        store.lift_bans([lifted_by_a], now[0])
                    assert await publisher.once()
                await publisher.close()

            asyncio.run(the_hour())
            store.close()
            # standing: the rounds of the second half-hour, but for the 4 lifted the round after
            standing = {
                ip for step in range(15, 30) for ip in rounds[step][4 if step < 29 else 0 :]
            }
            assert len(standing) == 15 * 200 - 14 * 4
            b.start()
            _wait(
                lambda: {ban["ip"] for ban in b.bans()} == standing,
                60,
                "B to catch up with what stands",
                interval=0.5,
            )
            assert time.time() < end - 3600 + 15 * STEP + BANTIME  # round 15's still stand
            assert {ban["origin"] for ban in b.bans()} == {"a"}
            assert b.ban_of(kept) is None  # applied and lifted here before the hour: not again
            assert b.ban_of(lifted_by_a) is None  # lifted by A during the hour
            assert "fleet unban of 203.0.113.81 (from a)" in b.errors()
            status = json.loads(b.cli("fleet", "status", "--json").stdout)
            assert status["changes_behind"] == 0
        finally:
            if b is not None and b.process is not None and b.process.poll() is None:
                b.process.kill()
                b.process.wait(timeout=20)


def test_a_ban_committed_after_a_later_change_is_still_applied(tmp_path: Path) -> None:
    """web1's publishing transaction takes its change number, web2 publishes after it and
    commits first, web3 reads web2's ban meanwhile; then web1 commits. web3 must still
    apply web1's ban: a cursor past a number whose transaction had not yet committed would
    lose it for good."""
    with _registered("web1", "web2", "web3") as (cluster, _admin):
        applied: list[str] = []

        async def collect(changes) -> None:
            applied.extend(change.ip for change in changes)

        fleet = FleetConfig(dsn=cluster.dsn(user="web3"), host="web3")
        publish = "SELECT bruteguard.publish_ban(1, %s, 'sshd', '', 3, %s, %s)"
        span = (time.time(), time.time() + 3600)
        with (
            SqliteStore(tmp_path / "web3.db") as store,
            psycopg.connect(cluster.dsn(user="web1")) as web1,
            psycopg.connect(cluster.dsn(user="web2"), autocommit=True) as web2,
        ):
            subscriber = Subscriber(fleet, store, collect)

            async def poll() -> None:
                try:
                    assert await subscriber.once()
                finally:
                    await subscriber.close()

            web1.execute(publish, ("203.0.113.1", *span))  # its transaction stays open
            web2.execute(publish, ("203.0.113.2", *span))
            asyncio.run(poll())
            assert applied == ["203.0.113.2"]
            web1.commit()
            asyncio.run(poll())
        assert applied == ["203.0.113.2", "203.0.113.1"]
