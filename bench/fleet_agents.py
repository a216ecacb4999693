"""100 fleet agents on one PostgreSQL: ban propagation, summary ingest, catch-up, bytes.

Why: issue 19's floors for the fleet (docs/fleet.md): a ban published by one host applied
by all, p99 < 1 s; 5,000 failure summaries/s ingested fleet-wide, sustained; a host's
catch-up of 10,000 bans < 5 s; PostgreSQL's bytes per million failures stated. Their
numbers are what docs/fleet.md extrapolates to 10,000 hosts.

A PostgreSQL 15 cluster of its own is started in a temporary directory (tests/pgkit.py,
Debian's binaries; ``fsync`` back on, 128 MB of shared buffers, 300 connections), given
``fleet init`` and 100 hosts ``agent000`` … ``agent099`` (``fleet add-host``), and removed at
the end. The agents run as asyncio tasks spread over ``--processes`` processes, each with a
connection of its own and the real code: the subscribers are ``fleet.subscriber.Subscriber``
(LISTEN/NOTIFY, ``publish_interval`` a minute, so a wake-up is the notification, not a
poll) with a dry-run apply that only notes when each change arrived; summaries go through
``bruteguard.publish_failures`` in one transaction per round as ``fleet.publisher`` sends
them.

1. propagation: agent000 publishes ``--bans`` bans, one every 200 ms; each of the other 99
   notes when it has read each: latency = arrival - the publisher's call (commit included).
2. ingest: every agent sends ``--rate``/100 summaries (3 failures and ``--samples`` sample
   lines of ~85 bytes each, 3 as ``samples = 3`` keeps them) every second for ``--seconds``
   s: it holds if every row was sent in the time and no backlog grew (how late each commit
   returned after its round was due; those of the last 5 s under a second); then every
   agent sends back to back for as long (capacity). Then the summaries' table and index
   bytes (all daily partitions) and the WAL written by both, per million failures.
3. one leader round (``decide_fleet_bans``, a 1 h window) over every summary the
   ingest left: what the fleet threshold costs each ``publish_interval`` at that volume.
4. catch-up: ``--catchup`` bans published while agent099 is away; it then reads them from
   its cursor and stores them in its SQLite ledger (``fleet.apply.plan`` + ``add_bans``, the
   daemon's path; enforcers dry-run): the time from start to its cursor at the newest.

    .venv/bin/python bench/fleet_agents.py            # as root (runs PostgreSQL as postgres)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import psycopg

from bruteguard.cli import main as bruteguard
from bruteguard.config import config_from_dict
from bruteguard.duration import Seconds
from bruteguard.fleet.apply import plan
from bruteguard.fleet.config import FleetConfig
from bruteguard.fleet.subscriber import Subscriber
from bruteguard.store.postgres import LEADER_LOCK
from bruteguard.store.sqlite import SqliteStore
from pgkit import Cluster

__all__ = ["main"]

AGENTS = 100
PROPAGATION_P99_FLOOR = 1.0
INGEST_FLOOR = 5000.0
CATCHUP_FLOOR = 5.0
DB = "fleet"
_SAMPLE = "sshd[{pid}]: Failed password for invalid user {user} from {ip} port {port} ssh2"


def _name(n: int) -> str:
    return f"agent{n:03d}"


def _address(n: int) -> str:
    """Addresses from 10.0.0.0/8 (the documentation ranges are too small); text only."""
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])


# -- 1. propagation ----------------------------------------------------------------------


async def _subscribe(cluster: Cluster, agents: list[int], ready, done, tmp: Path) -> list:
    arrivals: list[tuple[str, float]] = []  # (ip, when)

    def subscriber(n: int) -> Subscriber:
        async def note(changes) -> None:
            now = time.time()
            arrivals.extend((change.ip, now) for change in changes)

        fleet = FleetConfig(
            dsn=cluster.dsn(user=_name(n), dbname=DB),
            host=_name(n),
            publish_interval=Seconds(60),
        )
        return Subscriber(fleet, SqliteStore(tmp / f"{_name(n)}.db"), note)

    subscribers = [subscriber(n) for n in agents]
    tasks = [asyncio.create_task(s.run()) for s in subscribers]
    await asyncio.sleep(1.0)  # every one connected, listening, its first read done
    await asyncio.to_thread(ready.wait)
    await asyncio.to_thread(done.wait)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for s in subscribers:
        s.store.close()
    return arrivals


def _subscriber_process(args: tuple) -> list:
    cluster, agents, ready, done, tmp = args
    return asyncio.run(_subscribe(cluster, agents, ready, done, Path(tmp)))


def propagation(cluster: Cluster, bans: int, processes: int, tmp: Path) -> dict:
    manager = multiprocessing.Manager()
    ready, done = manager.Barrier(processes + 1), manager.Event()
    shares = [list(range(1, AGENTS))[k::processes] for k in range(processes)]
    with multiprocessing.Pool(processes) as pool:
        pending = pool.map_async(
            _subscriber_process, [(cluster, s, ready, done, str(tmp)) for s in shares]
        )
        ready.wait()
        published: dict[str, float] = {}
        with psycopg.connect(cluster.dsn(user=_name(0), dbname=DB), autocommit=True) as conn:
            for n in range(bans):
                ip = _address(1_000_000 + n)
                now = published[ip] = time.time()  # from the call: the commit's time counts
                conn.execute(
                    "SELECT bruteguard.publish_ban(%s, %s, 'sshd', 'bench', 5, %s, %s)",
                    (n + 1, ip, now, now + 3600),
                )
                time.sleep(0.2)
        time.sleep(2.0)  # the last ones arrive
        done.set()
        arrivals = [row for rows in pending.get(timeout=120) for row in rows]
    latencies = [when - published[ip] for ip, when in arrivals if ip in published]
    expected = bans * (AGENTS - 1)
    return {
        "bans": bans,
        "subscribers": AGENTS - 1,
        "applied": len(latencies),
        "expected": expected,
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * _percentile(latencies, 0.99), 1),
        "max_ms": round(1000 * max(latencies), 1),
        "floor_p99_ms": 1000 * PROPAGATION_P99_FLOOR,
        "holds": len(latencies) == expected
        and _percentile(latencies, 0.99) < PROPAGATION_P99_FLOOR,
    }


# -- 2. ingest ---------------------------------------------------------------------------


async def _ingest(
    cluster: Cluster,
    agents: list[int],
    per_round: int,
    seconds: int,
    start: float,
    paced: bool,
    samples: int,
) -> list[tuple[float, int, int]]:
    """Each agent's rounds: paced, one a second (staggered over the second), each noted with
    how late its commit returned after it was due; else back to back until the end."""
    rounds: list[tuple[float, int, int]] = []  # (seconds late, rows, second)
    first_id = 0 if paced else 10_000_000

    async def agent(n: int) -> None:
        conn = await psycopg.AsyncConnection.connect(
            cluster.dsn(user=_name(n), dbname=DB), autocommit=True
        )
        local_id = first_id
        try:
            for second in range(seconds if paced else 10**9):
                due = start + second + (n % 100) / 100 if paced else time.time()
                if not paced and due >= start + seconds:
                    break
                await asyncio.sleep(max(0.0, due - time.time()))
                rows = []
                minute = float(int(time.time()) // 60 * 60)
                for _ in range(per_round):
                    local_id += 1
                    ip = _address(n * 100_000 + local_id % 100_000)
                    lines = [
                        _SAMPLE.format(pid=40000 + k, user=f"user{k}", ip=ip, port=50000 + k)
                        for k in range(samples)
                    ]
                    rows.append((local_id, ip, "sshd", minute, 3, lines))
                async with conn.transaction(), conn.cursor() as cur:
                    await cur.executemany(
                        "SELECT bruteguard.publish_failures(%s, %s, %s, %s, %s, %s)", rows
                    )
                rounds.append((time.time() - due, len(rows), second))
        finally:
            await conn.close()

    await asyncio.gather(*(agent(n) for n in agents))
    return rounds


def _ingest_process(args: tuple) -> list:
    return asyncio.run(_ingest(*args))


def _rounds(
    cluster: Cluster, per_round: int, seconds: int, processes: int, paced: bool, samples: int
) -> list:
    shares = [list(range(AGENTS))[k::processes] for k in range(processes)]
    start = time.time() + 2.0
    with multiprocessing.Pool(processes) as pool:
        results = pool.map(
            _ingest_process,
            [(cluster, share, per_round, seconds, start, paced, samples) for share in shares],
        )
    return [row for rows in results for row in rows]


def ingest(cluster: Cluster, rate: int, seconds: int, processes: int, samples: int) -> dict:
    """``rate`` summaries/s offered for ``seconds`` (sustained: every row sent in the time,
    and the rounds of the last 5 s not a second late: no backlog grew), then as fast as the
    agents go for ``seconds`` (capacity)."""
    per_round = max(1, rate // AGENTS)
    with psycopg.connect(cluster.dsn(dbname=DB), autocommit=True) as admin:
        (wal_before,) = admin.execute("SELECT pg_current_wal_lsn()").fetchone()
    paced = _rounds(cluster, per_round, seconds, processes, True, samples)
    flat_out = _rounds(cluster, per_round, seconds, processes, False, samples)
    with psycopg.connect(cluster.dsn(dbname=DB), autocommit=True) as admin:
        admin.execute("CHECKPOINT")
        summaries, failures, table_bytes, wal = admin.execute(
            "SELECT (SELECT count(*) FROM bruteguard.failure_summaries),"
            " (SELECT sum(count) FROM bruteguard.failure_summaries),"
            " (SELECT sum(pg_total_relation_size(relid))"
            "  FROM pg_partition_tree('bruteguard.failure_summaries')),"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)",
            (wal_before,),
        ).fetchone()
    late = [lag for lag, _, _ in paced]
    last = [lag for lag, _, second in paced if second >= seconds - 5]
    sent = sum(rows for _, rows, _ in paced)
    return {
        "offered_per_s": per_round * AGENTS,
        "seconds": seconds,
        "paced_rows": sent,
        "paced_per_s": round(sent / seconds),
        "round_late_p50_ms": round(1000 * statistics.median(late), 1),
        "round_late_p99_ms": round(1000 * _percentile(late, 0.99), 1),
        "round_late_max_ms": round(1000 * max(late), 1),
        "round_late_last_5s_max_ms": round(1000 * max(last), 1),
        "capacity_per_s": round(sum(rows for _, rows, _ in flat_out) / seconds),
        "samples_per_summary": samples,
        "summaries": summaries,
        "failures": int(failures),
        "table_bytes": int(table_bytes),
        "bytes_per_summary": round(int(table_bytes) / summaries),
        "table_bytes_per_million_failures": round(int(table_bytes) / int(failures) * 1e6),
        "wal_bytes_per_million_failures": round(float(wal) / int(failures) * 1e6),
        "floor_per_s": INGEST_FLOOR,
        "holds": sent == per_round * AGENTS * seconds
        and sent / seconds >= INGEST_FLOOR
        and max(last) < 1.0,
    }


# -- 3. the leader's round --------------------------------------------------------------


def decide(cluster: Cluster) -> dict:
    """One leader round over every summary the ingest left (all within the last hour): the
    fleet threshold's aggregate of the window, per jail, every ``publish_interval``."""
    rule = {
        "findtime": 3600.0,
        "maxretry": 10,
        "hosts": 3,
        "bantime": 600.0,
        "factor": 2.0,
        "maxtime": 604800.0,
        "v6_prefix": 64,
        "v4_prefix": 24,
        "subnet_maxretry": 5,
        "subnet_findtime": 86400.0,
    }
    with psycopg.connect(cluster.dsn(dbname=DB)) as admin:
        (summaries,) = admin.execute(
            "SELECT count(*) FROM bruteguard.failure_summaries"
            " WHERE minute > now() - '1h'::interval"
        ).fetchone()
    with psycopg.connect(cluster.dsn(user=_name(0), dbname=DB), autocommit=True) as conn:
        conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))
        began = time.monotonic()
        decided = conn.execute(
            "SELECT * FROM bruteguard.decide_fleet_bans('sshd', %s, %s::jsonb)",
            (time.time(), json.dumps(rule)),
        ).fetchall()
        took = time.monotonic() - began
    return {"summaries_in_window": summaries, "seconds": round(took, 2), "decided": len(decided)}


# -- 4. catch-up -------------------------------------------------------------------------


def catchup(cluster: Cluster, bans: int, tmp: Path) -> dict:
    me = AGENTS - 1
    fleet = FleetConfig(dsn=cluster.dsn(user=_name(me), dbname=DB), host=_name(me))
    jails = {j.name: j for j in config_from_dict({"jails": {"sshd": {}}}).enabled_jails()}
    store = SqliteStore(tmp / f"{_name(me)}-catchup.db")

    async def apply(changes) -> None:  # the daemon's path, enforcers dry-run
        local = plan(changes, jails, [], (), time.time(), fleet.host)
        await asyncio.to_thread(store.add_bans, local.bans)

    async def run() -> tuple[float, int]:
        subscriber = Subscriber(fleet, store, apply)
        try:
            assert await subscriber.once()  # positioned at the newest: then away
            with psycopg.connect(cluster.dsn(user=_name(1), dbname=DB)) as conn:
                now = time.time()
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(
                        "SELECT bruteguard.publish_ban(%s, %s, 'sshd', 'bench', 5, %s, %s)",
                        [
                            (10_000_000 + n, _address(2_000_000 + n), now, now + 3600)
                            for n in range(bans)
                        ],
                    )
            await subscriber.close()  # back: a new connection, from its cursor
            began = time.monotonic()
            assert await subscriber.once()
            return time.monotonic() - began, len(store.active_bans(time.time()))
        finally:
            await subscriber.close()

    took, stored = asyncio.run(run())
    store.close()
    return {
        "bans": bans,
        "stored": stored,
        "seconds": round(took, 2),
        "floor_seconds": CATCHUP_FLOOR,
        "holds": stored >= bans and took < CATCHUP_FLOOR,
    }


# -- the cluster -------------------------------------------------------------------------


def _cluster(cluster: Cluster) -> None:
    with open(cluster.data / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write("fsync = on\nshared_buffers = 128MB\nmax_connections = 300\n")
    cluster.stop()
    cluster.start()
    admin = cluster.dsn(dbname=DB)
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DB}")
    with contextlib.redirect_stdout(io.StringIO()):
        assert bruteguard(["fleet", "init", "--dsn", admin]) == 0
        for n in range(AGENTS):
            assert bruteguard(["fleet", "add-host", _name(n), "--dsn", admin]) == 0
    with psycopg.connect(admin, autocommit=True) as conn:  # the cap is not under test here
        conn.execute("UPDATE bruteguard.hosts SET max_bans_per_minute = 1000000")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bans", type=int, default=50, help="bans propagated (default 50)")
    parser.add_argument("--rate", type=int, default=5000, help="summaries/s offered")
    parser.add_argument("--seconds", type=int, default=30, help="ingest duration")
    parser.add_argument("--catchup", type=int, default=10000, help="bans to catch up on")
    parser.add_argument("--processes", type=int, default=4, help="agent processes")
    parser.add_argument("--samples", type=int, default=3, help="sample lines per summary")
    parser.add_argument("--out", type=Path, default=Path("bench/out/fleet_agents.json"))
    args = parser.parse_args(argv)
    results: dict = {"agents": AGENTS, "cpus": os.cpu_count(), "load_before": _load()}
    cluster = Cluster()
    try:
        _cluster(cluster)
        with tempfile.TemporaryDirectory(prefix="bg-fleet-bench-") as tmp:
            results["propagation"] = propagation(cluster, args.bans, args.processes, Path(tmp))
            print(json.dumps({"propagation": results["propagation"]}), flush=True)
            results["ingest"] = ingest(
                cluster, args.rate, args.seconds, args.processes, args.samples
            )
            print(json.dumps({"ingest": results["ingest"]}), flush=True)
            results["leader_round"] = decide(cluster)
            print(json.dumps({"leader_round": results["leader_round"]}), flush=True)
            results["catchup"] = catchup(cluster, args.catchup, Path(tmp))
            print(json.dumps({"catchup": results["catchup"]}), flush=True)
    finally:
        cluster.destroy()
    results["load_after"] = _load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))
    holds = all(results[k]["holds"] for k in ("propagation", "ingest", "catchup"))
    return 0 if holds else 1


if __name__ == "__main__":
    sys.exit(main())
