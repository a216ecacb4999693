"""The fleet's foundation on a real PostgreSQL of the test's own (tests/pgkit.py): the
[fleet] section, `fleet init`'s schema and least privilege, the local outbound queue and
the publisher's exactly-once drain across a database outage."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bruteguard.cli import main
from bruteguard.config import JailConfig, config_from_dict, load_config
from bruteguard.duration import Seconds
from bruteguard.errors import ConfigError
from bruteguard.fleet import outbox
from bruteguard.fleet.apply import plan
from bruteguard.fleet.config import FleetConfig
from bruteguard.fleet.connect import connect_args
from bruteguard.fleet.leader import Leader
from bruteguard.fleet.publisher import Publisher
from bruteguard.fleet.subscriber import FleetBan, Subscriber
from bruteguard.model import Ban, Failure
from bruteguard.store import postgres as schema
from bruteguard.store.postgres import SCHEMA_VERSION
from bruteguard.store.sqlite import SqliteStore
from conftest import toml_document
from pgkit import Cluster

_DATABASES = itertools.count()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    own = Cluster()
    try:
        yield own
    finally:
        own.destroy()


@pytest.fixture
def fleet_db(cluster: Cluster) -> str:
    """A fresh database in the module's cluster, its name."""
    name = f"fleet{next(_DATABASES)}"
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return name


def _write_config(tmp_path: Path, cluster: Cluster, db: str, host: str, **fleet) -> Path:
    path = tmp_path / f"{host}.toml"
    settings = {
        "store": str(tmp_path / f"{host}.db"),
        "socket": str(tmp_path / f"{host}.sock"),
        "fleet": {"dsn": cluster.dsn(user=host, dbname=db), "host": host, **fleet},
    }
    path.write_text(toml_document(settings), encoding="utf-8")
    return path


def _init_fleet(cluster: Cluster, db: str, *hosts: str) -> None:
    admin = cluster.dsn(dbname=db)
    assert main(["fleet", "init", "--dsn", admin]) == 0
    for host in hosts:
        assert main(["fleet", "add-host", host, "--dsn", admin]) == 0


# -- [fleet] ------------------------------------------------------------------------------


def test_no_fleet_section_means_none() -> None:
    assert config_from_dict({}).fleet is None


@pytest.mark.parametrize(
    "dsn",
    ["postgresql://agent:s3cr3t-pw@db.example/fleet", "host=db.example password=s3cr3t-pw"],
)
def test_a_dsn_with_a_password_is_refused_without_echoing_it(dsn: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"fleet": {"dsn": dsn}})
    assert "fleet.dsn: must not carry a password" in str(caught.value)
    assert "s3cr3t-pw" not in str(caught.value)


def test_fleet_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"fleet\.host: "):
        config_from_dict({"fleet": {"dsn": "host=db", "host": "web 1; DROP"}})
    with pytest.raises(ConfigError, match=r"fleet\.password_file: must be an absolute path"):
        config_from_dict({"fleet": {"dsn": "host=db", "password_file": "pw"}})
    with pytest.raises(ConfigError, match=r"fleet\.share\[0\]"):
        config_from_dict({"fleet": {"dsn": "host=db", "share": ["passwords"]}})
    fleet = config_from_dict({"fleet": {"dsn": "host=db", "share": ["bans"]}}).fleet
    assert fleet is not None and fleet.share == ["bans"] and fleet.host


def test_the_password_comes_from_its_file(tmp_path: Path, cluster: Cluster, fleet_db: str) -> None:
    """The agent logs in with the file's password (scram), which is nowhere in the DSN."""
    _init_fleet(cluster, fleet_db, "pwhost")
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("ALTER ROLE pwhost PASSWORD 'file-secret'")
    cluster.require_password("pwhost")
    secret = tmp_path / "pw"
    secret.write_text("file-secret\n", encoding="utf-8")
    path = _write_config(tmp_path, cluster, fleet_db, "pwhost", password_file=str(secret))
    fleet = load_config(path).fleet
    assert fleet is not None and "file-secret" not in fleet.dsn
    with psycopg.connect(**connect_args(fleet)) as conn:
        assert conn.execute("SELECT session_user").fetchone() == ("pwhost",)
    secret.write_text("wrong\n", encoding="utf-8")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(**connect_args(fleet))


# -- fleet init: schema and least privilege -----------------------------------------------


def test_init_is_versioned_and_idempotent(
    cluster: Cluster, fleet_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = cluster.dsn(dbname=fleet_db)
    assert main(["fleet", "init", "--dsn", admin]) == 0
    assert f"from version 0 to {SCHEMA_VERSION}" in capsys.readouterr().out
    assert main(["fleet", "init", "--dsn", admin]) == 0
    assert f"already at version {SCHEMA_VERSION}" in capsys.readouterr().out
    with psycopg.connect(admin) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'bruteguard'"
            )
        }
    assert {"hosts", "bans", "failure_summaries", "allowlist", "schema_version"} <= tables


def test_init_refuses_a_dsn_with_a_password(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "init", "--dsn", "host=127.0.0.1 password=hunter22"]) == 1
    err = capsys.readouterr().err
    assert "must not carry a password" in err and "hunter22" not in err


def test_an_agent_writes_only_through_its_functions(cluster: Cluster, fleet_db: str) -> None:
    _init_fleet(cluster, fleet_db, "web1", "web2")
    with psycopg.connect(cluster.dsn(user="web1", dbname=fleet_db), autocommit=True) as web1:
        web1.execute(
            "SELECT bruteguard.publish_ban(7, '203.0.113.7', 'sshd', 'test', 5, 1000, 2000)"
        )
        for forbidden in (
            "INSERT INTO bruteguard.bans (host_id, local_id, ip, jail, start, until)"
            " VALUES (1, 8, '203.0.113.8', 'sshd', now(), now())",
            "UPDATE bruteguard.bans SET lifted = now()",
            "DELETE FROM bruteguard.bans",
            "INSERT INTO bruteguard.allowlist (network) VALUES ('0.0.0.0/0')",
            "SELECT * FROM bruteguard.failure_summaries",
            "SELECT bruteguard.add_host('evil', 'web1')",
            "SELECT bruteguard.expire_failures(now())",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                web1.execute(forbidden)
        with pytest.raises(psycopg.errors.RaiseException, match="another host than web2"):
            web1.execute("SELECT bruteguard.heartbeat('web2', 0)")
        web1.execute("SELECT bruteguard.heartbeat('web1', 3)")
    with psycopg.connect(cluster.dsn(user="web2", dbname=fleet_db), autocommit=True) as web2:
        # web2 reads the fleet's bans but cannot lift web1's (its local id 7 is not web2's)
        web2.execute("SELECT bruteguard.lift_ban(7, 1500)")
        rows = web2.execute(
            "SELECT h.name, abbrev(b.ip), b.lifted FROM bruteguard.bans b"
            " JOIN bruteguard.hosts h ON h.id = b.host_id"
        ).fetchall()
        assert rows == [("web1", "203.0.113.7", None)]
    with psycopg.connect(cluster.dsn(dbname=fleet_db), autocommit=True) as admin:
        admin.execute("CREATE ROLE stranger LOGIN")
        admin.execute("GRANT bruteguard_agent TO stranger")
    stranger = cluster.dsn(user="stranger", dbname=fleet_db)
    with (
        psycopg.connect(stranger, autocommit=True) as x,
        pytest.raises(psycopg.errors.RaiseException, match="not a registered"),
    ):
        x.execute("SELECT bruteguard.publish_ban(1, '203.0.113.1', 'sshd', '', 1, 1, 2)")


# -- the local outbound queue -------------------------------------------------------------


def _failure(n: int, ip: str = "203.0.113.9", time: float = 6000.0) -> Failure:
    return Failure(time + n, ip, "sshd", "root", f"line {n} from {ip}")


def test_the_queue_fills_in_the_ledgers_own_transactions(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "l.db") as store:
        store.record_batch([_failure(0)], [], [])  # no fleet: nothing queued
        assert outbox.length(store) == (0, 0)
        outbox.enable(store, ["bans", "failures"], samples=2)
        failures = [_failure(n) for n in range(5)] + [_failure(70)]  # two minutes
        ban = Ban("203.0.113.9", "sshd", 6010.0, 9610.0, 5, "5 failures")
        store.record_batch(failures, [ban], [])
        store.lift_bans(["203.0.113.9"], 6020.0)
        events, summaries = outbox.take(store, 100)
        assert [(e.kind, e.ip, e.reason) for e in events] == [
            ("ban", "203.0.113.9", "5 failures"),
            ("lift", "203.0.113.9", "5 failures"),
        ]
        assert events[1].lifted == 6020.0
        assert [(s.minute, s.count, s.samples) for s in summaries] == [
            (6000, 5, ("line 0 from 203.0.113.9", "line 1 from 203.0.113.9")),
            (6060, 1, ("line 70 from 203.0.113.9",)),
        ]
        outbox.disable(store)
        store.record_batch([_failure(200)], [ban], [])
        assert outbox.length(store) == (2, 2)


def test_the_queue_drops_oldest_summaries_never_bans(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "l.db") as store:
        outbox.enable(store, ["bans", "failures"], samples=0)
        for minute in range(150):
            store.record_batch(
                [_failure(0, f"198.51.100.{minute % 250}", time=60.0 * minute)],
                [Ban(f"198.51.100.{minute}", "sshd", 60.0 * minute, 1e9, 1, "")],
                [],
            )
        assert outbox.trim(store, 100) == 50
        assert outbox.length(store) == (150, 100)
        _events, summaries = outbox.take(store, 1000)
        assert summaries[0].minute == 50 * 60  # the 50 oldest went


def test_a_minute_that_goes_on_while_it_is_sent_keeps_the_rest(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "l.db") as store:
        outbox.enable(store, ["failures"], samples=3)
        store.add_failures([_failure(n) for n in range(2)])
        _events, taken = outbox.take(store, 10)
        store.add_failures([_failure(n) for n in range(2, 5)])  # the same minute, meanwhile
        outbox.forget(store, [], taken)
        _events, rest = outbox.take(store, 10)
        assert [(s.count, s.minute) for s in rest] == [(3, taken[0].minute)]
        assert rest[0].id > taken[0].id  # a new key: the sent one is spent


# -- the publisher ------------------------------------------------------------------------


def _fleet_rows(cluster: Cluster, db: str) -> tuple[list[tuple], list[tuple]]:
    with psycopg.connect(cluster.dsn(dbname=db)) as conn:
        bans = conn.execute(
            "SELECT h.name, b.local_id, abbrev(b.ip), b.jail, b.reason,"
            " extract(epoch FROM b.until)::float8, extract(epoch FROM b.lifted)::float8"
            " FROM bruteguard.bans b JOIN bruteguard.hosts h ON h.id = b.host_id"
            " ORDER BY b.id"
        ).fetchall()
        summaries = conn.execute(
            "SELECT abbrev(ip), jail, extract(epoch FROM minute)::bigint, sum(count)::int"
            " FROM bruteguard.failure_summaries GROUP BY 1, 2, 3 ORDER BY 3, 1"
        ).fetchall()
    return bans, summaries


def test_publisher_drains_exactly_once_across_an_outage_and_a_crash(
    tmp_path: Path, cluster: Cluster, fleet_db: str
) -> None:
    _init_fleet(cluster, fleet_db, "web1")
    config = load_config(_write_config(tmp_path, cluster, fleet_db, "web1"))
    assert config.fleet is not None
    store = SqliteStore(config.store)
    outbox.enable(store, config.fleet.share, config.fleet.samples)
    publisher = Publisher(config.fleet, store)

    async def scenario() -> None:
        store.record_batch(
            [_failure(n) for n in range(3)],
            [Ban("203.0.113.9", "sshd", 6003.0, 9603.0, 3, "3 failures")],
            [],
        )
        assert await publisher.once()
        assert outbox.length(store) == (0, 0)

        cluster.stop()  # PostgreSQL down: local protection goes on, the queue grows
        try:
            store.record_batch(
                [_failure(n, "198.51.100.4", time=7200.0) for n in range(4)],
                [Ban("198.51.100.4", "sshd", 7204.0, 10804.0, 4, "4 failures")],
                [],
            )
            store.lift_bans(["203.0.113.9"], 7300.0)
            assert not await publisher.once()
            assert [b.ip for b in store.active_bans(7400.0)] == ["198.51.100.4"]
            assert outbox.length(store) == (2, 1)
        finally:
            cluster.start()

        # back: the queue drains; then a crash between PostgreSQL's commit and the local
        # forget (the ledger as it was before the drain) sends it all again, to no effect
        store.close()
        snapshot = tmp_path / "before-drain.db"
        with sqlite3.connect(config.store) as src, sqlite3.connect(snapshot) as dst:
            src.backup(dst)
        publisher.store = SqliteStore(config.store)
        assert await publisher.once()
        first = _fleet_rows(cluster, fleet_db)
        publisher.store.close()
        with sqlite3.connect(snapshot) as src, sqlite3.connect(config.store) as dst:
            src.backup(dst)
        publisher.store = SqliteStore(config.store)
        assert outbox.length(publisher.store) == (2, 1)
        assert await publisher.once()
        assert outbox.length(publisher.store) == (0, 0)
        assert _fleet_rows(cluster, fleet_db) == first
        await publisher.close()
        publisher.store.close()

    asyncio.run(scenario())
    bans, summaries = _fleet_rows(cluster, fleet_db)
    assert bans == [
        ("web1", 1, "203.0.113.9", "sshd", "3 failures", 9603.0, 7300.0),
        ("web1", 2, "198.51.100.4", "sshd", "4 failures", 10804.0, None),
    ]
    assert summaries == [("203.0.113.9", "sshd", 6000, 3), ("198.51.100.4", "sshd", 7200, 4)]
    with psycopg.connect(cluster.dsn(dbname=fleet_db)) as conn:
        ((queue, seen),) = conn.execute(
            "SELECT queue, last_seen IS NOT NULL FROM bruteguard.hosts WHERE name = 'web1'"
        ).fetchall()
    assert (queue, seen) == (0, True)


# -- fleet bans as this host's ------------------------------------------------------------


def _change(n: int, ip: str, jail: str = "sshd", **kw) -> FleetBan:
    fields = {
        "origin": "web1",
        "reason": "5 failures",
        "failures": 5,
        "start": 1000.0,
        "until": 5000.0,
        "lifted": None,
        **kw,
    }
    return FleetBan(n, ip=ip, jail=jail, **fields)


def test_a_fleet_ban_never_locks_a_host_out_of_itself_or_its_admins() -> None:
    config = config_from_dict(
        {
            "ignoreip": ["192.0.2.0/25"],
            "jails": {"sshd": {"ignoreip": ["2001:db8:1::/48"]}, "recidive": {}},
        }
    )
    jails = {jail.name: jail for jail in config.enabled_jails()}
    own = ["198.51.100.20", "2001:db8:5::1"]
    changes = [
        _change(1, "203.0.113.5"),
        _change(2, "192.0.2.9"),  # the admins' network
        _change(3, "192.0.2.0/24"),  # a wider ban that holds the admins' network
        _change(4, "198.51.100.0/24"),  # holds this host's own address
        _change(5, "2001:db8:1:2::/64"),  # inside the jail's ignoreip
        _change(6, "2001:db8:5::/64"),  # this host's own IPv6 /64
        _change(7, "127.0.0.1"),
        _change(8, "203.0.113.6", jail="no-such-jail"),  # recidive: every port
        _change(9, "203.0.113.7", until=999.0),  # over already
        _change(10, "203.0.113.5", lifted=1500.0),
        _change(11, "203.0.113.8", origin="web2", lifted=1600.0),
        _change(12, "203.0.113.9", origin="me", lifted=1700.0),  # an admin lifted ours
    ]
    local = plan(changes, jails, config.ignoreip, own, now=1200.0, me="me")
    assert [(b.ip, b.jail, b.origin, b.reason) for b in local.bans] == [
        ("203.0.113.5", "sshd", "web1", "5 failures"),
        ("203.0.113.6", "recidive", "web1", "5 failures"),
    ]
    assert local.refused == [
        "192.0.2.9",
        "192.0.2.0/24",
        "198.51.100.0/24",
        "2001:db8:1:2::/64",
        "2001:db8:5::/64",
        "127.0.0.1",
    ]
    assert local.lifts == {
        "web1": [("203.0.113.5", 1500.0)],
        "web2": [("203.0.113.8", 1600.0)],
        "": [("203.0.113.9", 1700.0)],
    }


def test_a_fleet_lift_ends_only_that_hosts_older_bans(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "l.db") as store:
        store.add_bans(
            [
                Ban("203.0.113.5", "sshd", 1000.0, 9000.0, 5, "", origin="web1"),
                Ban("203.0.113.5", "recidive", 1000.0, 9000.0, 5, ""),  # this host's own
                Ban("203.0.113.6", "sshd", 2000.0, 9000.0, 5, "", origin="web1"),  # newer
            ]
        )
        lifted = store.lift_from(
            "web1", [("203.0.113.5", 1500.0), ("203.0.113.6", 1500.0)], now=2500.0
        )
        assert [(b.ip, b.jail) for b in lifted] == [("203.0.113.5", "sshd")]
        assert {(b.ip, b.jail, b.origin) for b in store.active_bans(2500.0)} == {
            ("203.0.113.5", "recidive", ""),
            ("203.0.113.6", "sshd", "web1"),
        }


def test_a_host_over_its_ban_rate_cap_bans_nobody_else(cluster: Cluster, fleet_db: str) -> None:
    """A compromised or broken host can't ban the internet: past its cap a minute its bans
    are kept (marked capped) and no other host's subscriber ever sees them."""
    _init_fleet(cluster, fleet_db, "web1", "web2")
    with psycopg.connect(cluster.dsn(dbname=fleet_db), autocommit=True) as admin:
        admin.execute("UPDATE bruteguard.hosts SET max_bans_per_minute = 3 WHERE name = 'web1'")
    with psycopg.connect(cluster.dsn(user="web1", dbname=fleet_db), autocommit=True) as web1:
        for n in range(1, 6):
            web1.execute(
                "SELECT bruteguard.publish_ban(%s, %s, 'sshd', 'flood', 5, %s, %s)",
                (n, f"203.0.113.{n}", time.time(), time.time() + 3600),
            )
    applied: list[FleetBan] = []

    async def collect(changes) -> None:
        applied.extend(changes)

    fleet = FleetConfig(dsn=cluster.dsn(user="web2", dbname=fleet_db), host="web2")
    with SqliteStore(Path(cluster.dir) / "web2.db") as store:
        subscriber = Subscriber(fleet, store, collect)

        async def poll() -> bool:
            try:
                return await subscriber.once()
            finally:
                await subscriber.close()

        assert asyncio.run(poll())
    assert [change.ip for change in applied] == ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    with psycopg.connect(cluster.dsn(dbname=fleet_db)) as admin:
        capped = admin.execute(
            "SELECT abbrev(ip) FROM bruteguard.bans WHERE capped ORDER BY id"
        ).fetchall()
    assert capped == [("203.0.113.4",), ("203.0.113.5",)]


def test_init_upgrades_an_older_schema_in_place_and_refuses_a_newer_one(
    cluster: Cluster,
    fleet_db: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = cluster.dsn(dbname=fleet_db)
    with monkeypatch.context() as older:  # the bruteguard of schema version 1
        older.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        older.setattr(schema, "SCHEMA_VERSION", 1)
        with psycopg.connect(admin, autocommit=True) as conn:
            assert schema.migrate(conn) == (0, 1)
    assert main(["fleet", "add-host", "web1", "--dsn", admin]) == 0
    with psycopg.connect(cluster.dsn(user="web1", dbname=fleet_db), autocommit=True) as web1:
        web1.execute("SELECT bruteguard.publish_ban(1, '203.0.113.1', 'sshd', '', 1, 1, 2)")
    assert main(["fleet", "init", "--dsn", admin]) == 0
    assert f"from version 1 to {SCHEMA_VERSION}" in capsys.readouterr().out
    with psycopg.connect(admin, autocommit=True) as conn:
        assert conn.execute("SELECT abbrev(ip), capped FROM bruteguard.bans").fetchall() == [
            ("203.0.113.1", False)
        ]
        versions = conn.execute("SELECT version FROM bruteguard.schema_version ORDER BY 1")
        assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))
        conn.execute("INSERT INTO bruteguard.schema_version (version) VALUES (99)")
    assert main(["fleet", "init", "--dsn", admin]) == 1
    assert "schema has version 99, newer than this bruteguard" in capsys.readouterr().err


# -- fleet-wide thresholds and the leader -------------------------------------------------

_NOW = 1_800_000_000.0  # the test's clock: minutes of failures are stamped from it


def test_fleet_thresholds_are_bounded_and_off_by_default() -> None:
    jail = config_from_dict({"jails": {"sshd": {}}}).jails["sshd"]
    assert (jail.fleet_maxretry, jail.fleet_hosts) == (0, 0)
    with pytest.raises(ConfigError, match=r"jails\.sshd\.fleet_maxretry: must be 0 to 10000"):
        config_from_dict({"jails": {"sshd": {"fleet_maxretry": 2**70}}})
    with pytest.raises(ConfigError, match=r"jails\.sshd\.fleet_hosts: must be 0 to 10000"):
        config_from_dict({"jails": {"sshd": {"fleet_hosts": -1}}})
    with pytest.raises(ConfigError, match=r"jails\.sshd\.fleet_findtime: must be 1s to"):
        config_from_dict({"jails": {"sshd": {"fleet_findtime": "400d"}}})


def _publish_failures(cluster: Cluster, db: str, host: str, *rows: tuple[str, int, float]) -> None:
    """``host`` publishes (address, count, minutes ago) summaries for sshd, as its
    publisher would."""
    with psycopg.connect(cluster.dsn(user=host, dbname=db), autocommit=True) as conn:
        for n, (ip, count, ago) in enumerate(rows, start=1):
            conn.execute(
                "SELECT bruteguard.publish_failures(%s, %s, 'sshd', %s, %s, %s)",
                (n, ip, _NOW - ago * 60, count, [f"sample {n}"]),
            )


def _leader(cluster: Cluster, db: str, host: str, **thresholds) -> Leader:
    fleet = FleetConfig(dsn=cluster.dsn(user=host, dbname=db), host=host)
    jail = JailConfig(name="sshd", maxretry=5, bantime=Seconds(600), **thresholds)
    return Leader(fleet, lambda: [jail], clock=lambda: _NOW)


def _fleet_bans(cluster: Cluster, db: str) -> list[tuple]:
    with psycopg.connect(cluster.dsn(dbname=db)) as admin:
        return admin.execute(
            "SELECT abbrev(b.ip), b.jail, b.reason, b.failures,"
            " extract(epoch FROM b.until - b.start)::int"
            " FROM bruteguard.bans b JOIN bruteguard.hosts h ON h.id = b.host_id"
            " WHERE h.name = 'fleet' ORDER BY b.ip"
        ).fetchall()


def _leader_name(cluster: Cluster, db: str) -> str | None:
    """Who leads, as an agent sees it (``fleet status``)."""
    with psycopg.connect(cluster.dsn(user="web1", dbname=db)) as agent:
        row = agent.execute("SELECT bruteguard.leader()").fetchone()
    return row[0] if row else None


async def _rounds(*leaders: Leader) -> None:
    for leader in leaders:
        assert await leader.once()


async def _close(*leaders: Leader) -> None:
    for leader in leaders:
        await leader.close()


def test_the_fleet_threshold_by_count_bans_what_no_single_host_would(
    cluster: Cluster, fleet_db: str
) -> None:
    """Three hosts each see 3 failures of .7 (under their maxretry of 5): 9 in the fleet's
    hour reach fleet_maxretry 8. .8's 6 do not, nor do .7's failures of 2 hours ago."""
    _init_fleet(cluster, fleet_db, "web1", "web2", "web3")
    for host in ("web1", "web2", "web3"):
        _publish_failures(
            cluster,
            fleet_db,
            host,
            ("203.0.113.7", 3, 5),
            ("203.0.113.8", 2, 3),
            ("203.0.113.7", 4, 120),
        )
    leader = _leader(cluster, fleet_db, "web1", fleet_maxretry=8, fleet_findtime=Seconds(3600))

    async def scenario() -> list[FleetBan]:
        try:
            await _rounds(leader, leader)  # the second round decides nothing again
            # over TCP, the server notices a vanished leader within seconds, not hours
            cursor = await leader._conn.execute("SHOW tcp_keepalives_idle")
            assert await cursor.fetchone() == ("5",)
        finally:
            await _close(leader)
        seen: list[FleetBan] = []

        async def collect(changes) -> None:
            seen.extend(changes)

        fleet = FleetConfig(dsn=cluster.dsn(user="web2", dbname=fleet_db), host="web2")
        with SqliteStore(Path(cluster.dir) / f"{fleet_db}-web2.db") as store:
            subscriber = Subscriber(fleet, store, collect)
            try:
                assert await subscriber.once()
            finally:
                await subscriber.close()
        return seen

    seen = asyncio.run(scenario())
    assert list(leader.decided) == [("203.0.113.7", "sshd")]
    assert _fleet_bans(cluster, fleet_db) == [
        ("203.0.113.7", "sshd", "fleet threshold: 9 failures from 3 hosts in 3600 s", 9, 600)
    ]
    assert [(c.origin, c.ip, c.jail) for c in seen] == [("fleet", "203.0.113.7", "sshd")]


def test_the_fleet_threshold_by_hosts_honours_the_allowlist(
    cluster: Cluster, fleet_db: str
) -> None:
    """One failure on each of 3 hosts bans (fleet_hosts 3); 5 on 2 hosts do not; an
    allowlisted network is never decided."""
    _init_fleet(cluster, fleet_db, "web1", "web2", "web3")
    with psycopg.connect(cluster.dsn(dbname=fleet_db), autocommit=True) as admin:
        admin.execute("INSERT INTO bruteguard.allowlist (network) VALUES ('198.51.100.0/24')")
    for host in ("web1", "web2", "web3"):
        _publish_failures(cluster, fleet_db, host, ("203.0.113.7", 1, 1), ("198.51.100.4", 1, 1))
    for host in ("web1", "web2"):
        _publish_failures(cluster, fleet_db, host, ("203.0.113.9", 4, 1))
    leader = _leader(cluster, fleet_db, "web3", fleet_hosts=3)

    async def scenario() -> None:
        try:
            await _rounds(leader)
        finally:
            await _close(leader)

    asyncio.run(scenario())
    assert [row[:2] for row in _fleet_bans(cluster, fleet_db)] == [("203.0.113.7", "sshd")]


def _two_leaders(cluster: Cluster, db: str) -> tuple[Leader, Leader]:
    """web1's and web2's leader tasks (fleet_hosts 2), .7 having failed once on each."""
    _init_fleet(cluster, db, "web1", "web2")
    for host in ("web1", "web2"):
        _publish_failures(cluster, db, host, ("203.0.113.7", 1, 1))
    return _leader(cluster, db, "web1", fleet_hosts=2), _leader(cluster, db, "web2", fleet_hosts=2)


def test_only_the_lock_holder_decides(cluster: Cluster, fleet_db: str) -> None:
    first, second = _two_leaders(cluster, fleet_db)

    async def scenario() -> None:
        try:
            await _rounds(first, second, first, second)
        finally:
            await _close(first, second)

    asyncio.run(scenario())
    assert (first.leading, second.leading) == (False, False)  # closed: both let go
    assert list(first.decided) == [("203.0.113.7", "sshd")] and list(second.decided) == []
    # a host that is not the leader cannot decide by calling the function itself
    with (
        psycopg.connect(cluster.dsn(user="web2", dbname=fleet_db), autocommit=True) as web2,
        pytest.raises(psycopg.errors.RaiseException, match="only the fleet leader"),
    ):
        web2.execute("SELECT bruteguard.decide_fleet_bans('sshd', %s, 3600, 0, 2, 600)", (_NOW,))
    assert len(_fleet_bans(cluster, fleet_db)) == 1
    # nobody can register as the fleet's own origin of threshold bans
    assert main(["fleet", "add-host", "fleet", "--dsn", cluster.dsn(dbname=fleet_db)]) == 1


def test_the_version_3_decide_asks_require_leader_and_still_decides_for_the_leader(
    cluster: Cluster, fleet_db: str
) -> None:
    """Migration 8: the version-3 ``decide_fleet_bans`` (for leaders not yet upgraded) has
    no check of its own any more; through ``require_leader()`` it refuses a host without
    the leader's lock and decides for the one holding it."""
    _init_fleet(cluster, fleet_db, "web1", "web2")
    for host in ("web1", "web2"):
        _publish_failures(cluster, fleet_db, host, ("203.0.113.7", 1, 1))
    old = "bruteguard.decide_fleet_bans(text, float8, float8, integer, integer, float8)"
    decide = "SELECT bruteguard.decide_fleet_bans('sshd', %s, 3600, 0, 2, 600)"
    with psycopg.connect(cluster.dsn(dbname=fleet_db)) as admin:
        (source,) = admin.execute(f"SELECT prosrc FROM pg_proc WHERE oid = '{old}'::regprocedure")
        source = source[0]
    assert "PERFORM require_leader();" in source and "pg_locks" not in source, source
    with psycopg.connect(cluster.dsn(user="web1", dbname=fleet_db), autocommit=True) as web1:
        with pytest.raises(psycopg.errors.RaiseException, match="only the fleet leader"):
            web1.execute(decide, (_NOW,))
        assert web1.execute("SELECT pg_try_advisory_lock(%s)", (schema.LEADER_LOCK,)).fetchone()
        assert web1.execute(decide, (_NOW,)).fetchall() == [("203.0.113.7",)]
    assert [row[:2] for row in _fleet_bans(cluster, fleet_db)] == [("203.0.113.7", "sshd")]


def test_a_killed_leader_is_replaced_within_10s_and_nothing_is_decided_twice(
    cluster: Cluster, fleet_db: str
) -> None:
    """The leader's connection is terminated by the server: the other host leads within
    10 s, decides the same window again, and inserts nothing new."""
    first, second = _two_leaders(cluster, fleet_db)

    async def scenario() -> float:
        try:
            await _rounds(first, second)
            assert first.leading and not second.leading
            assert _leader_name(cluster, fleet_db) == "web1"
            with psycopg.connect(cluster.dsn(dbname=fleet_db), autocommit=True) as admin:
                killed = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'bruteguard web1'"
                ).fetchall()
            assert killed == [(True,)]
            started = time.monotonic()
            for _ in range(100):  # bounded: 100 rounds of 0.1 s
                await first.once()
                await second.once()
                if second.leading:
                    break
                await asyncio.sleep(0.1)
            took = time.monotonic() - started
            await _rounds(first, second)
            assert second.leading and not first.leading  # web1 is back, as a follower
            assert _leader_name(cluster, fleet_db) == "web2"
            return took
        finally:
            await _close(first, second)

    took = asyncio.run(scenario())
    assert took < 10.0
    assert list(first.decided) == [("203.0.113.7", "sshd")] and list(second.decided) == []
    assert [row[0] for row in _fleet_bans(cluster, fleet_db)] == ["203.0.113.7"]


# -- escalation on fleet counts -----------------------------------------------------------


def _publish_bans(cluster: Cluster, db: str, host: str, *rows: tuple[str, str, int, float]) -> None:
    """``host`` publishes (target, jail, failures, minutes ago) bans of 10 minutes."""
    with psycopg.connect(cluster.dsn(user=host, dbname=db), autocommit=True) as conn:
        for n, (ip, jail, failures, ago) in enumerate(rows, start=1000):
            start = _NOW - ago * 60
            conn.execute(
                "SELECT bruteguard.publish_ban(%s, %s, %s, 'local', %s, %s, %s)",
                (n, ip, jail, failures, start, start + 600),
            )


def _escalating_leader(cluster: Cluster, db: str, **thresholds) -> Leader:
    """web1's leader: sshd (maxretry 5, bantime 600, factor 2, /24 after 3 addresses) and
    recidive (3 bans in a day: a week)."""
    fleet = FleetConfig(dsn=cluster.dsn(user="web1", dbname=db), host="web1")
    jails = config_from_dict(
        {
            "jails": {
                "sshd": {"maxretry": 5, "bantime": "10m", "subnet_maxretry": 3} | thresholds,
                "recidive": {"maxretry": 3},
            }
        }
    ).enabled_jails()
    return Leader(fleet, lambda: jails, clock=lambda: _NOW)


def _decide(*leaders: Leader) -> None:
    async def scenario() -> None:
        try:
            await _rounds(*leaders)
        finally:
            await _close(*leaders)

    asyncio.run(scenario())


def test_fleet_bans_grow_with_every_earlier_ban_of_any_host(
    cluster: Cluster, fleet_db: str
) -> None:
    """.7 was banned twice before (by web2 locally, then by the fleet): its fleet threshold
    ban is the third, 600 s * 2^2 long. .8's only earlier ban was by hand (no failures): it
    gets the first step. .6 is banned by web3 right now: not decided again."""
    _init_fleet(cluster, fleet_db, "web1", "web2", "web3")
    _publish_bans(
        cluster,
        fleet_db,
        "web2",
        ("203.0.113.7", "sshd", 5, 300),
        ("203.0.113.8", "sshd", 0, 300),
    )
    with psycopg.connect(cluster.dsn(dbname=fleet_db), autocommit=True) as admin:
        fleet_id = admin.execute("SELECT id FROM bruteguard.hosts WHERE name = 'fleet'").fetchone()
        admin.execute(
            "INSERT INTO bruteguard.bans (host_id, local_id, ip, jail, failures, start, until)"
            " VALUES (%s, 999, '203.0.113.7', 'sshd', 6, to_timestamp(%s), to_timestamp(%s))",
            (fleet_id[0], _NOW - 7200, _NOW - 6600),
        )
    _publish_bans(cluster, fleet_db, "web3", ("203.0.113.6", "sshd", 5, 1))
    once_each = [(f"203.0.113.{n}", 1, 5) for n in (7, 8, 6)]
    for host in ("web1", "web2", "web3"):
        _publish_failures(cluster, fleet_db, host, *once_each)
    _decide(_escalating_leader(cluster, fleet_db, fleet_hosts=3, subnet_maxretry=0))
    decided = [row for row in _fleet_bans(cluster, fleet_db) if row[1:4:2] == ("sshd", 3)]
    assert [(ip, length) for ip, _, _, _, length in decided] == [
        ("203.0.113.7", 2400),
        ("203.0.113.8", 600),
    ]


def test_a_network_with_enough_fleet_banned_addresses_is_banned(
    cluster: Cluster, fleet_db: str
) -> None:
    """Three hosts each banned one or two addresses of 203.0.113.0/24 (none reached its
    own subnet_maxretry of 3): the fleet bans the /24, once. The allowlisted
    198.51.100.0/24 with as many is never decided, nor a /24 whose bans are a day old."""
    _init_fleet(cluster, fleet_db, "web1", "web2", "web3")
    with psycopg.connect(cluster.dsn(dbname=fleet_db), autocommit=True) as admin:
        admin.execute("INSERT INTO bruteguard.allowlist (network) VALUES ('198.51.100.0/24')")
    _publish_bans(cluster, fleet_db, "web1", ("203.0.113.1", "sshd", 5, 30))
    _publish_bans(
        cluster, fleet_db, "web2", ("203.0.113.2", "sshd", 5, 20), ("198.51.100.1", "sshd", 5, 1)
    )
    _publish_bans(
        cluster,
        fleet_db,
        "web3",
        ("203.0.113.3", "sshd", 5, 10),
        ("198.51.100.2", "sshd", 5, 1),
        ("198.51.100.3", "sshd", 5, 1),
        ("192.0.2.1", "sshd", 5, 2000),
        ("192.0.2.2", "sshd", 5, 2000),
        ("192.0.2.3", "sshd", 5, 2000),
    )
    _decide(_escalating_leader(cluster, fleet_db, fleet_maxretry=100))
    _decide(_escalating_leader(cluster, fleet_db, fleet_maxretry=100))  # nothing again
    assert _fleet_bans(cluster, fleet_db) == [
        ("203.0.113.0/24", "sshd", "fleet: 3 addresses of it banned in 1800 s", 3, 600)
    ]


def test_ipv6_counts_per_prefix_and_recidive_counts_every_hosts_bans(
    cluster: Cluster, fleet_db: str
) -> None:
    """Three addresses of one /64, each failing on another host, are one target: its /64
    is banned (fleet_hosts 3). .9, banned once by each of three hosts today, is a repeat
    offender across the fleet: banned in recidive (every port) for a week."""
    _init_fleet(cluster, fleet_db, "web1", "web2", "web3")
    for n, host in enumerate(("web1", "web2", "web3"), start=1):
        _publish_failures(cluster, fleet_db, host, (f"2001:db8:bad::{n}", 1, 2))
        _publish_bans(cluster, fleet_db, host, ("203.0.113.9", "sshd", 5, 60 * n))
    leader = _escalating_leader(cluster, fleet_db, fleet_hosts=3)
    _decide(leader)
    assert sorted(leader.decided) == [("2001:db8:bad::/64", "sshd"), ("203.0.113.9", "recidive")]
    assert _fleet_bans(cluster, fleet_db) == [
        ("203.0.113.9", "recidive", "fleet recidive: 3 bans from 3 hosts in 86400 s", 3, 604800),
        ("2001:db8:bad::/64", "sshd", "fleet threshold: 3 failures from 3 hosts in 3600 s", 3, 600),
    ]


def test_a_fleet_ban_applied_here_grows_this_hosts_next_ban() -> None:
    """The fleet banned .5 here once: the host's own next ban of it is its second step,
    twice as long, live and after a restart (the ledger's rows)."""
    from bruteguard.detect import Detector, LedgerRead

    jail = config_from_dict({"jails": {"sshd": {"maxretry": 2, "bantime": "10m"}}}).jails["sshd"]
    fleet_ban = Ban("203.0.113.5", "sshd", 100.0, 700.0, 9, "fleet threshold", origin="fleet")
    hits = [(1000.0 + n, "203.0.113.5", "root", "sshd", b"x") for n in range(2)]
    live = Detector([jail])
    live.remember_fleet_bans([fleet_ban])
    restarted = Detector([jail])
    restarted.remember_ledger(
        [("203.0.113.5", "sshd", 100.0, 700.0, 9, "fleet threshold", 1, "fleet", None)],
        LedgerRead(now=900.0, lifts_after=900.0),
    )
    for detector in (live, restarted):
        (ban,) = detector.observe(hits)
        assert (ban.step, ban.until - ban.start) == (2, 1200.0)


# -- the admin's commands: allowlist and ban cap ------------------------------------------


def test_fleet_allow_adds_lists_and_removes_as_an_admin_only(
    cluster: Cluster, fleet_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _init_fleet(cluster, fleet_db, "web1")
    admin = ["--dsn", cluster.dsn(dbname=fleet_db)]
    agent = ["--config", str(_write_config(tmp_path, cluster, fleet_db, "web1"))]
    capsys.readouterr()
    assert main(["fleet", "allow", "add", "198.51.100.0/24", "--comment", "partner", *admin]) == 0
    assert main(["fleet", "allow", "add", "2001:db8::7", *admin]) == 0
    assert main(["fleet", "allow", "add", "203.0.113.5/24", *admin]) == 1
    assert "has host bits set; did you mean 203.0.113.0/24?" in capsys.readouterr().err
    assert main(["fleet", "allow", "add", "not-an-ip", *admin]) == 1
    assert "'not-an-ip' is not an address or network" in capsys.readouterr().err
    assert main(["fleet", "allow", "add", "192.0.2.0/24", *agent]) == 1
    assert "use --dsn with an admin's role" in capsys.readouterr().err
    assert main(["fleet", "allow", "list", "--json", *agent]) == 0  # agents may read it
    listed = json.loads(capsys.readouterr().out)
    assert [(e["network"], e["comment"]) for e in listed] == [
        ("198.51.100.0/24", "partner"),
        ("2001:db8::7/128", ""),
    ]
    # the fleet's allowlist is what every subscriber honours
    with psycopg.connect(cluster.dsn(user="web1", dbname=fleet_db), autocommit=True) as web1:
        web1.execute(
            "SELECT bruteguard.publish_ban(1, '198.51.100.9', 'sshd', '', 5, %s, %s)",
            (time.time(), time.time() + 600),
        )
    assert main(["bans", "--fleet", "--json", *admin]) == 0
    assert [b["ip"] for b in json.loads(capsys.readouterr().out)] == ["198.51.100.9"]
    assert main(["fleet", "allow", "remove", "198.51.100.0/24", *admin]) == 0
    assert main(["fleet", "allow", "remove", "198.51.100.0/24", *admin]) == 1
    assert "is not on the fleet's allowlist" in capsys.readouterr().err
    assert main(["fleet", "allow", "list", *admin]) == 0
    out = capsys.readouterr().out
    assert "2001:db8::7/128" in out and "198.51.100.0/24" not in out
    assert main(["fleet", "allow", "remove", *admin]) == 1
    assert "which address or network?" in capsys.readouterr().err


def test_fleet_cap_sets_a_hosts_ban_rate_as_an_admin_only(
    cluster: Cluster, fleet_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _init_fleet(cluster, fleet_db, "web1")
    admin = ["--dsn", cluster.dsn(dbname=fleet_db)]
    agent = ["--config", str(_write_config(tmp_path, cluster, fleet_db, "web1"))]
    assert main(["fleet", "cap", "web1", "2", *admin]) == 0
    assert main(["fleet", "cap", "web1", "9999", *agent]) == 1
    assert "use --dsn with an admin's role" in capsys.readouterr().err
    assert main(["fleet", "cap", "web9", "2", *admin]) == 1
    assert "no host 'web9'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fleet", "cap", "web1", "-1", *admin])
    assert "must be 0 to 1000000" in capsys.readouterr().err
    with psycopg.connect(cluster.dsn(user="web1", dbname=fleet_db), autocommit=True) as web1:
        for n in range(1, 5):
            web1.execute(
                "SELECT bruteguard.publish_ban(%s, %s, 'sshd', '', 5, %s, %s)",
                (n, f"203.0.113.{n}", time.time(), time.time() + 600),
            )
        capped = web1.execute("SELECT count(*) FROM bruteguard.bans WHERE capped").fetchone()
    assert capped == (2,)


# -- LISTEN/NOTIFY ------------------------------------------------------------------------


def test_a_new_ban_wakes_subscribers_at_once_polling_stays_the_fallback(
    cluster: Cluster, fleet_db: str
) -> None:
    """publish_interval is a minute, yet web2 and web3 apply web1's ban, and then its lift,
    within a second each: the insert and the lift NOTIFY. A NOTIFY sent by a stranger wakes
    them for a read that finds nothing new. After PostgreSQL's restart (the listening
    connection lost) the next ban still arrives, by the reconnected listener."""
    _init_fleet(cluster, fleet_db, "web1", "web2", "web3")
    seen: dict[str, list[tuple[float, FleetBan]]] = {"web2": [], "web3": []}

    def subscriber(host: str, store: SqliteStore) -> Subscriber:
        async def collect(changes) -> None:
            seen[host].extend((time.monotonic(), change) for change in changes)

        fleet = FleetConfig(
            dsn=cluster.dsn(user=host, dbname=fleet_db), host=host, publish_interval=Seconds(60)
        )
        return Subscriber(fleet, store, collect)

    async def arrival(count: int) -> float:
        """Seconds until both subscribers saw ``count`` changes (bounded: 10 s)."""
        started = time.monotonic()
        for _ in range(1000):
            if all(len(changes) >= count for changes in seen.values()):
                return max(changes[count - 1][0] for changes in seen.values()) - started
            await asyncio.sleep(0.01)
        raise AssertionError(f"not applied within 10 s: {seen}")

    def publish(sql: str, *params) -> None:
        with psycopg.connect(cluster.dsn(user="web1", dbname=fleet_db), autocommit=True) as c:
            c.execute(sql, params)

    async def scenario(stores: list[SqliteStore]) -> list[float]:
        subscribers = [subscriber(host, store) for host, store in zip(seen, stores, strict=True)]
        tasks = [asyncio.create_task(s.run()) for s in subscribers]
        try:
            await asyncio.sleep(0.5)  # both listening, their first (empty) read done
            now = time.time()
            took = []
            await asyncio.to_thread(
                publish,
                "SELECT bruteguard.publish_ban(1, '203.0.113.1', 'sshd', 'x', 5, %s, %s)",
                now,
                now + 600,
            )
            took.append(await arrival(1))
            await asyncio.to_thread(publish, "SELECT bruteguard.lift_ban(1, %s)", now + 1)
            took.append(await arrival(2))
            await asyncio.to_thread(publish, "NOTIFY bruteguard_bans")  # anyone can
            await asyncio.sleep(0.3)
            assert [len(changes) for changes in seen.values()] == [2, 2]
            await asyncio.to_thread(cluster.stop)
            await asyncio.to_thread(cluster.start)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(
                publish,
                "SELECT bruteguard.publish_ban(2, '203.0.113.2', 'sshd', 'x', 5, %s, %s)",
                now,
                now + 600,
            )
            for _ in range(100):  # bounded: the outage's wake-up is a reconnect, then a read
                if all(len(changes) >= 3 for changes in seen.values()):
                    break
                await asyncio.sleep(0.1)
            return took
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    with (
        SqliteStore(Path(cluster.dir) / f"{fleet_db}-web2.db") as web2,
        SqliteStore(Path(cluster.dir) / f"{fleet_db}-web3.db") as web3,
    ):
        took = asyncio.run(scenario([web2, web3]))
    assert all(seconds < 1.0 for seconds in took), took
    for changes in seen.values():
        assert [(c.ip, c.lifted is not None) for _, c in changes] == [
            ("203.0.113.1", False),
            ("203.0.113.1", True),
            ("203.0.113.2", False),
        ]


# -- retention: daily partitions -----------------------------------------------------------


def _partitions(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'bruteguard.failure_summaries'::regclass ORDER BY 1"
    ).fetchall()
    return [name.removeprefix("failure_summaries_") for (name,) in rows]


def _day(days_ago: int, at: float) -> str:
    """The name of the UTC day ``days_ago`` before the day of ``at`` (YYYYMMDD).

    ``at`` is a moment of the clock the named day is compared with: the stamp of the rows
    a partition holds, or the database's ``now()`` in the transaction that made it, never
    the test's own clock read later (a UTC midnight may fall in between)."""
    return time.strftime("%Y%m%d", time.gmtime(at - days_ago * 86400))


def _db_now(conn: psycopg.Connection) -> float:
    """The database's ``now()`` (its clock, the one its partitions are named by)."""
    return conn.execute("SELECT extract(epoch FROM now())::float8").fetchone()[0]


def _init_time(conn: psycopg.Connection) -> float:
    """``now()`` of the transaction that brought the schema to its version: the clock by
    which that migration made today's and the days ahead's partitions."""
    return conn.execute(
        "SELECT extract(epoch FROM applied)::float8 FROM bruteguard.schema_version"
        " ORDER BY version DESC LIMIT 1"
    ).fetchone()[0]


def test_summaries_move_into_daily_partitions_without_loss_and_expire_by_the_day(
    cluster: Cluster,
    fleet_db: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A fleet at schema 5 holds summaries of 10, 3 and 0 days ago; `fleet init` moves them
    into one partition per day, all rows kept. A resend stays one row; a summary of a day
    without a partition makes it. `fleet expire --keep 2d` drops the 10 and 3 days old
    partitions, deletes what is older in the boundary day, and makes the days ahead; the
    leader expires by the admin's keep, and an agent can neither expire nor shorten it."""
    admin = cluster.dsn(dbname=fleet_db)
    with monkeypatch.context() as older:
        older.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:5])
        older.setattr(schema, "SCHEMA_VERSION", 5)
        with psycopg.connect(admin, autocommit=True) as conn:
            assert schema.migrate(conn) == (0, 5)
    assert main(["fleet", "add-host", "web1", "--dsn", admin]) == 0
    with psycopg.connect(admin, autocommit=True) as conn:
        now = _db_now(conn)  # the rows' stamps: their partitions are named by these
    rows = [(1, now - 10 * 86400), (2, now - 3 * 86400), (3, now - 3 * 86400 + 60), (4, now)]
    web1_dsn = cluster.dsn(user="web1", dbname=fleet_db)
    with psycopg.connect(web1_dsn, autocommit=True) as web1:
        for local_id, minute in rows:
            web1.execute(
                "SELECT bruteguard.publish_failures(%s, '203.0.113.1', 'sshd', %s, 2, '{}')",
                (local_id, minute),
            )
    assert main(["fleet", "init", "--dsn", admin]) == 0
    assert "from version 5 to" in capsys.readouterr().out
    with psycopg.connect(admin, autocommit=True) as conn:
        (kind,) = conn.execute(
            "SELECT partstrat FROM pg_partitioned_table"
            " WHERE partrelid = 'bruteguard.failure_summaries'::regclass"
        ).fetchone()
        assert kind == "r"  # by range (of the minute)
        kept = conn.execute(
            "SELECT local_id, tableoid::regclass::text FROM bruteguard.failure_summaries"
            " ORDER BY local_id"
        ).fetchall()
        # each in the partition of its own minute's day
        assert kept == [
            (local_id, f"bruteguard.failure_summaries_{_day(0, minute)}")
            for local_id, minute in rows
        ]
        made = _init_time(conn)
        assert {_day(-3, made), _day(0, made)} <= set(_partitions(conn))  # made ahead at init
    with psycopg.connect(web1_dsn, autocommit=True) as web1:
        for local_id, minute in [(4, now), (5, now - 1 * 86400), (6, now - 2 * 86400 - 3600)]:
            web1.execute(
                "SELECT bruteguard.publish_failures(%s, '203.0.113.1', 'sshd', %s, 2, '{}')",
                (local_id, minute),
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            web1.execute("SELECT * FROM bruteguard.expire_summaries('1 hour')")
        with pytest.raises(psycopg.errors.RaiseException, match="only the fleet leader"):
            web1.execute("SELECT * FROM bruteguard.leader_maintenance()")
    capsys.readouterr()
    assert main(["fleet", "expire", "--keep", "2d", "--dsn", admin]) == 0
    out = capsys.readouterr().out
    assert ": 2 daily partitions dropped" in out  # 10 and 3 days ago (6's day ends later)
    with psycopg.connect(admin, autocommit=True) as conn:
        left = conn.execute(
            "SELECT local_id FROM bruteguard.failure_summaries ORDER BY local_id"
        ).fetchall()
        assert left == [(4,), (5,)]  # 6 was 2 days and an hour ago
        days = _partitions(conn)
        assert _day(10, now) not in days and _day(3, now) not in days
        assert {_day(-3, now), _day(-1, now), _day(0, now), _day(1, now)} <= set(days)
        assert conn.execute("SELECT keep FROM bruteguard.retention").fetchone()[0].days == 2
    assert main(["fleet", "expire", "--keep", "10m", "--dsn", admin]) == 1
    assert "fleet expire:" in capsys.readouterr().err
    # the leader keeps the admin's 2 days: a summary of 5 days ago (a host back from a long
    # absence) makes its partition, and the leader's next maintenance drops it again
    with psycopg.connect(web1_dsn, autocommit=True) as web1:
        web1.execute(
            "SELECT bruteguard.publish_failures(7, '203.0.113.1', 'sshd', %s, 2, '{}')",
            (now - 5 * 86400,),
        )
    leader = _leader(cluster, fleet_db, "web1", fleet_hosts=2)
    _decide(leader)
    with psycopg.connect(admin, autocommit=True) as conn:
        assert _day(5, now) not in _partitions(conn)
        left = conn.execute("SELECT local_id FROM bruteguard.failure_summaries ORDER BY 1")
        assert left.fetchall() == [(4,), (5,)]


def test_the_leaders_decisions_are_capped_like_a_hosts(cluster: Cluster, fleet_db: str) -> None:
    """`fleet cap fleet 1`: of two addresses over the threshold the leader bans one; the
    other is recorded, capped, and decided no more. Prefixes an agent-leader passes out
    of config's bounds are held to them (no /0 from ipv4_prefix = 0)."""
    _init_fleet(cluster, fleet_db, "web1", "web2")
    assert main(["fleet", "cap", "fleet", "1", "--dsn", cluster.dsn(dbname=fleet_db)]) == 0
    for host in ("web1", "web2"):
        _publish_failures(cluster, fleet_db, host, ("203.0.113.7", 1, 1), ("203.0.113.8", 1, 1))
    leader = _leader(cluster, fleet_db, "web1", fleet_hosts=2)
    _decide(leader)
    assert len(leader.decided) == 1
    with psycopg.connect(cluster.dsn(dbname=fleet_db)) as admin:
        rows = admin.execute(
            "SELECT capped FROM bruteguard.bans b JOIN bruteguard.hosts h ON h.id = b.host_id"
            " WHERE h.name = 'fleet' ORDER BY capped"
        ).fetchall()
    assert rows == [(False,), (True,)]
    _decide(leader)  # the capped one is not decided again
    assert len(_fleet_bans(cluster, fleet_db)) == 2
    rule = {
        "findtime": 3600,
        "maxretry": 0,
        "hosts": 0,
        "bantime": 60,
        "factor": 2,
        "maxtime": 600,
        "v6_prefix": 0,
        "v4_prefix": 0,
        "subnet_maxretry": 1,
        "subnet_findtime": 86400,
    }
    with psycopg.connect(cluster.dsn(user="web2", dbname=fleet_db), autocommit=True) as web2:
        web2.execute("SELECT pg_try_advisory_lock(%s)", (schema.LEADER_LOCK,))
        decided = web2.execute(
            "SELECT address FROM bruteguard.decide_fleet_bans('sshd', %s, %s::jsonb)",
            (_NOW, json.dumps(rule)),
        ).fetchall()
    assert decided == []  # over the cap; and were it not, a /8 at most
    with psycopg.connect(cluster.dsn(dbname=fleet_db)) as admin:
        nets = admin.execute(
            "SELECT DISTINCT masklen(ip) FROM bruteguard.bans WHERE masklen(ip) < 32"
        ).fetchall()
    assert nets == [(8,)]
