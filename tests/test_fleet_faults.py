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

import ipaddress
import json
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

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


def _query(admin: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(admin) as conn:
        return conn.execute(query, params).fetchall()


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
