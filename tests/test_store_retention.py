"""Failure retention on a real SQLite file with an injected clock: expired failures and
evidence over the cap go, the file shrinks, bans (and so recidive) are never touched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bruteguard.config import config_from_dict
from bruteguard.errors import ConfigError
from bruteguard.model import Ban, BanRow, Failure
from bruteguard.store.retention import Retention
from bruteguard.store.sqlite import SqliteStore

DAY = 86400.0
T0 = 1_700_000_000.0  # any fixed moment: nothing here reads the calendar
LINE = "sshd[4242]: Failed password for invalid user {user} from {ip} port 50022 ssh2 " + "x" * 120


class Clock:
    """The injected clock: a time the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def failures(count: int, start: float, spread: float, ips: int = 500) -> list[Failure]:
    """``count`` failures of ``ips`` addresses, evenly over ``spread`` seconds from ``start``."""
    return [
        Failure(
            start + spread * i / count,
            f"203.0.113.{i % ips % 250}" if i % ips < 250 else f"2001:db8::{i % ips:x}",
            "sshd",
            f"user{i}",
            LINE.format(user=f"user{i}", ip="x"),
        )
        for i in range(count)
    ]


def retention(clock: Clock, **store: object) -> Retention:
    """The retention of ``[store]`` settings ``store`` for the sshd jail alone."""
    config = config_from_dict({"store": {"path": "/unused.db", **store}})
    sshd = [jail for jail in config.enabled_jails() if jail.name == "sshd"]
    return Retention(config.store_settings, sshd, clock)


def ledger_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def test_expired_failures_go_the_file_shrinks_and_bans_stay(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    clock = Clock(T0 + DAY)
    bans = [
        Ban("203.0.113.7", "sshd", T0, T0 + 600, 5, "5 failures", 1),
        Ban("203.0.113.7", "recidive", T0 + 700, T0 + 7 * DAY, 5, "5 bans", 1),
        Ban("2001:db8::/64", "sshd", T0 + 800, T0 + 900, 5, "network", 1),
    ]
    with SqliteStore(path, clock) as store:
        store.add_failures(failures(60_000, T0, DAY))
        store.add_bans(bans)
        keep = retention(clock)  # the defaults: 30 days
        assert keep.run(store).expired == 0
        store.compact()
        full = ledger_bytes(path)
        assert full > 10_000_000

        clock.now = T0 + 30 * DAY + DAY / 2  # the first half of the failures is 30 days old
        done = keep.run(store)
        assert 29_000 < done.expired < 31_000 and done.freed_pages > 0
        assert len(store.failures_since(0)) == 60_000 - done.expired
        assert min(f.time for f in store.failures_since(0)) >= clock.now - 30 * DAY

        clock.now = T0 + 40 * DAY
        keep.run(store)
        assert store.failures_since(0) == []
        # Bans are never failure evidence: history, counts and recidive's input remain.
        assert store.ban_history("203.0.113.7") == bans[:2]
        assert [BanRow(*row).ban() for rows in store.ban_rows() for row in rows] == bans
    assert ledger_bytes(path) < full / 10, "the file gave the space back"


def test_the_longest_findtime_is_always_kept(tmp_path: Path) -> None:
    """A jail that looks 60 days back must find its failures after a restart, whatever
    keep_failures says: the detector is rebuilt from them."""
    clock = Clock(T0 + 45 * DAY)
    config = config_from_dict(
        {"store": {"keep_failures": "7d"}, "jails": {"sshd": {"findtime": "60d"}}}
    )
    keep = Retention(config.store_settings, config.enabled_jails(), clock)
    assert keep.keep_seconds == 60 * DAY
    with SqliteStore(tmp_path / "ledger.db", clock) as store:
        store.add_failures(failures(100, T0, DAY))
        store.add_failures(failures(100, T0 - 20 * DAY, DAY))
        assert keep.run(store).expired == 100
        assert min(f.time for f in store.failures_since(0)) == T0


def test_evidence_is_capped_to_the_newest_lines_per_address(tmp_path: Path) -> None:
    clock = Clock(T0 + DAY)
    keep = retention(clock, evidence_per_address=10)
    quiet = [Failure(T0 + i, "198.51.100.2", "sshd", None, f"line {i}") for i in range(4)]
    noisy = [Failure(T0 + i, "198.51.100.1", "sshd", None, f"line {i}") for i in range(50)]
    with SqliteStore(tmp_path / "ledger.db", clock) as store:
        store.record_batch(noisy[:30] + quiet, [], [])
        store.add_failures(noisy[30:])
        assert keep.run(store).trimmed == 40
        assert store.failures_of("198.51.100.1", 0) == noisy[-10:]
        assert store.failures_of("198.51.100.2", 0) == quiet
        assert keep.run(store).trimmed == 0, "only addresses with new failures are looked at"
        store.add_failures([Failure(T0 + 99, "198.51.100.1", "sshd", None, "newest")])
        assert keep.run(store).trimmed == 1
        assert store.failures_of("198.51.100.1", 0)[-1].line == "newest"


def test_the_cap_never_goes_below_a_jails_maxretry() -> None:
    config = config_from_dict(
        {"store": {"evidence_per_address": 10}, "jails": {"sshd": {"maxretry": 40}}}
    )
    assert Retention(config.store_settings, config.enabled_jails(), Clock(T0)).keep_lines == 40


def test_an_existing_ledger_is_converted_so_it_can_shrink(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    clock = Clock(T0 + DAY)
    with SqliteStore(path, clock) as store:
        store.add_failures(failures(20_000, T0, 3600))
        store.add_bans([Ban("203.0.113.9", "sshd", T0, T0 + 60, 3, "3 failures", 1)])
    with sqlite3.connect(path) as raw:  # as bruteguard wrote it before: no auto_vacuum
        raw.execute("PRAGMA auto_vacuum = NONE")
        raw.execute("VACUUM")
        assert raw.execute("PRAGMA auto_vacuum").fetchone() == (0,)
    with SqliteStore(path, clock) as store:
        clock.now = T0 + 40 * DAY
        assert retention(clock).run(store).expired == 20_000
        assert store.ban_history("203.0.113.9")[0].reason == "3 failures"
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # INCREMENTAL
    assert ledger_bytes(path) < 200_000


def test_store_table_settings_and_their_errors() -> None:
    config = config_from_dict(
        {"store": {"path": "/srv/bg.db", "keep_failures": "90d", "evidence_per_address": 50}}
    )
    assert config.store == config.store_settings.path == "/srv/bg.db"
    assert config.store_settings.keep_failures == 90 * DAY
    plain = config_from_dict({"store": "/srv/plain.db"})
    assert plain.store == plain.store_settings.path == "/srv/plain.db"
    assert plain.store_settings.keep_failures == 30 * DAY
    for bad, says in (
        ({"keep_failures": "5 parsecs"}, "store.keep_failures: expected a duration"),
        ({"keep_failures": "10m"}, "store.keep_failures: must be 1h to 10 years"),
        ({"evidence_per_address": 0}, "store.evidence_per_address: must be 10 to 1000000"),
    ):
        with pytest.raises(ConfigError, match=says):
            config_from_dict({"store": bad})


def test_prune_deletes_in_chunks_and_stops_at_the_cut(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "ledger.db", Clock(T0)) as store:
        store.add_failures(failures(50, T0, 50))  # one a second
        assert store.prune(T0 + 30, chunk=7) == 30
        assert [f.time for f in store.failures_since(0)] == [T0 + i for i in range(30, 50)]


def test_compact_frees_at_most_what_it_is_asked_per_call(tmp_path: Path) -> None:
    clock = Clock(T0 + 40 * DAY)
    with SqliteStore(tmp_path / "ledger.db", clock) as store:
        store.add_failures(failures(5_000, T0, DAY))
        store.prune(T0 + DAY)
        first = store.compact(most=100)
        rest = store.compact()
        assert first == 100 and rest > 100
        assert store.compact() == 0
