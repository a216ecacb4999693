"""SqliteStore on real SQLite files: round trips, durability, history, bad files, bad text."""

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from bruteguard.detect import Detector, LedgerRead
from bruteguard.errors import StoreError
from bruteguard.model import Ban, BanRow, Failure, SourcePosition, Unattributed
from bruteguard.store.sqlite import SCHEMA_VERSION, SqliteStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "bruteguard.db"


@pytest.fixture
def store(db_path: Path):
    with SqliteStore(db_path) as opened:
        yield opened


def ban(ip: str = "192.0.2.1", jail: str = "sshd", start: float = 1000.0, **kw) -> Ban:
    kw.setdefault("until", start + 600)
    return Ban(ip=ip, jail=jail, start=start, **kw)


# -- files and permissions -------------------------------------------------------------------


def test_creates_private_directory_and_file(db_path: Path) -> None:
    with SqliteStore(db_path) as store:
        store.add_bans([ban()])
        assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700
        for suffix in ("", "-wal", "-shm"):
            assert stat.S_IMODE(Path(f"{db_path}{suffix}").stat().st_mode) == 0o600, suffix
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    SqliteStore(tmp_path / "b.db").close()
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


# -- failures --------------------------------------------------------------------------------


def test_failures_round_trip_in_time_order_and_prune(store: SqliteStore) -> None:
    late = Failure(30.0, "192.0.2.3", "sshd", "root", "Failed password for root")
    early = Failure(10.0, "2001:db8::1", "postfix", None, "SASL LOGIN authentication failed")
    middle = Failure(20.0, "192.0.2.3", "sshd", "admin", "Invalid user admin")
    store.add_failures([late, early])
    store.add_failures(iter([middle]))

    assert store.failures_since(0) == [early, middle, late]
    assert store.failures_since(20.0) == [middle, late]  # "at or after"
    assert store.prune(20.0) == 1
    assert store.failures_since(0) == [middle, late]
    assert store.prune(20.0) == 0


def test_weird_text_is_stored_without_crash(store: SqliteStore) -> None:
    undecodable = b"Failed password for \xff\xfe from 203.0.113.5".decode(
        "utf-8", "surrogateescape"
    )
    hostile = [
        Failure(1.0, "203.0.113.5", "sshd", "a\x00b", "line with NUL \x00 inside"),
        Failure(2.0, "203.0.113.5", "sshd", "'); DROP TABLE bans; --", "x' OR '1'='1"),
        Failure(3.0, "203.0.113.5", "sshd", "\ud800", undecodable),
        Failure(4.0, "203.0.113.5", "sshd", None, "A" * 1_000_000 + "\udcff"),
    ]
    store.add_failures(hostile)
    store.add_bans([ban(reason="user \udc80 tried")])

    stored = store.failures_since(0)
    assert stored[:2] == hostile[:2]  # NUL and quotes come back exactly
    assert stored[2].user == "\\ud800"
    assert stored[2].line == "Failed password for \\xff\\xfe from 203.0.113.5"
    assert stored[3].line == "A" * 1_000_000 + "\\xff"
    assert store.active_bans(0)[0].reason == "user \\x80 tried"
    assert len(store.ban_history("192.0.2.1")) == 1  # the bans table is still there


# -- bans ------------------------------------------------------------------------------------


def test_ban_survives_close_and_reopen(db_path: Path) -> None:
    decided = ban(ip="198.51.100.0/24", until=9e9, failures=7, reason="subnet: 4 addresses")
    with SqliteStore(db_path) as store:
        store.add_bans([decided])
    with SqliteStore(db_path) as store:
        assert store.active_bans(2000.0) == [decided]


def test_ban_survives_sigkill_right_after_add_bans(db_path: Path) -> None:
    child = textwrap.dedent(
        """
        import os, sys
        from bruteguard.model import Ban
        from bruteguard.store.sqlite import SqliteStore

        store = SqliteStore(sys.argv[1])
        store.add_bans([Ban("203.0.113.66", "sshd", 1000.0, 9e9, 5, "killed")])
        os.kill(os.getpid(), 9)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", child, str(db_path)], capture_output=True, timeout=60
    )
    assert result.returncode == -9, result.stderr.decode()
    assert Path(f"{db_path}-wal").stat().st_size > 0  # never checkpointed: recovery from WAL

    with SqliteStore(db_path) as store:
        assert store.active_bans(2000.0) == [Ban("203.0.113.66", "sshd", 1000.0, 9e9, 5, "killed")]


def test_bans_are_fsynced_before_add_bans_returns_failures_are_not(db_path: Path) -> None:
    """What power loss would show, seen as system calls: only the ban commit syncs the WAL."""
    child = textwrap.dedent(
        """
        import os, sys
        from bruteguard.model import Ban, Failure, SourcePosition
        from bruteguard.store.sqlite import SqliteStore

        store = SqliteStore(sys.argv[1])
        os.write(2, b"<failures>")
        store.add_failures([Failure(1.0, "192.0.2.1", "sshd", None, "Failed password")])
        store.set_positions([SourcePosition("journal", cursor="s=1")])
        os.write(2, b"<bans>")
        store.add_bans([Ban("192.0.2.1", "sshd", 1.0, 9e9)])
        os.write(2, b"<end>")
        os._exit(0)
        """
    )
    trace = db_path.parent / "strace.out"
    db_path.parent.mkdir()
    argv = ["strace", "-f", "-o", str(trace), "-e", "trace=fsync,fdatasync,write"]
    subprocess.run([*argv, sys.executable, "-c", child, str(db_path)], check=True, timeout=60)

    calls = trace.read_text()
    light = calls[calls.index('"<failures>"') : calls.index('"<bans>"')]
    durable = calls[calls.index('"<bans>"') : calls.index('"<end>"')]
    assert "sync(" not in light
    assert "fdatasync(" in durable or "fsync(" in durable


def test_active_bans_expire_by_time(store: SqliteStore) -> None:
    short = ban(ip="192.0.2.1", until=1100.0)
    long = ban(ip="192.0.2.2", until=5000.0)
    store.add_bans([short, long])
    assert store.active_bans(1099.0) == [short, long]
    assert store.active_bans(1100.0) == [long]  # until is exclusive
    assert store.active_bans(5000.0) == []
    assert store.ban_history("192.0.2.1") == [short]  # expired bans stay in history


def test_ban_rows_read_every_ban_once_in_order(store: SqliteStore) -> None:
    bans = [ban(ip=f"192.0.2.{i}", until=1100.0 + 100 * (i % 3)) for i in range(1, 8)]
    store.add_bans(bans)
    store.lift_bans(["192.0.2.2"], now=1050.0)
    rows = [BanRow(*row) for page in store.ban_rows(size=3) for row in page]
    assert [row.ban() for row in rows] == bans
    assert [row.lifted for row in rows] == [None, 1050.0, None, None, None, None, None]
    assert [len(page) for page in store.ban_rows(size=3)] == [3, 3, 1]


def test_expired_bans_are_found_through_the_index_on_their_end(store: SqliteStore) -> None:
    ran_out = ban(ip="192.0.2.1", until=1100.0)
    lifted = ban(ip="192.0.2.2", until=1100.0)
    renewed = ban(ip="192.0.2.3", until=1100.0)
    other_jail = ban(ip="192.0.2.3", jail="postfix", until=1100.0)
    earlier = ban(ip="192.0.2.4", until=1050.0)
    store.add_bans([ran_out, lifted, renewed, other_jail, earlier])
    store.lift_bans(["192.0.2.2"], now=1010.0)
    store.add_bans([ban(ip="192.0.2.3", start=1090.0, until=9000.0)])  # renewed in sshd only
    assert store.expired_bans(1060.0, 1200.0) == [ran_out, other_jail]
    assert store.expired_bans(1200.0, 1300.0) == []
    with store.read("plan") as db:
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT 1 FROM bans WHERE until > 1 AND until <= 2"
            " AND lifted IS NULL"
        ).fetchall()
    # the index on the end of the bans not lifted (bans_active), not a scan of the table
    assert "INDEX bans_active (until>? AND until<?)" in str(plan)


def test_lift_all_ends_every_active_ban_and_only_those(store: SqliteStore) -> None:
    expired = ban(ip="192.0.2.1", start=0.0, until=10.0)
    active = [ban(ip=f"192.0.2.{i}", jail=jail) for i in (2, 3) for jail in ("sshd", "ftp")]
    store.add_bans([expired, *active])
    assert store.lift_all(1200.0) == 4
    assert store.active_bans(1200.0) == []
    with store.read("look") as db:  # the large cache was for that statement alone
        assert db.execute("PRAGMA cache_size").fetchone() == (-2000,)
    assert [BanRow(*row).lifted for page in store.ban_rows() for row in page] == [
        None,
        *[1200.0] * 4,
    ]


def test_lift_bans_ends_every_active_jail_of_an_address(store: SqliteStore) -> None:
    ssh = ban(ip="192.0.2.7", jail="sshd")
    mail = ban(ip="192.0.2.7", jail="postfix")
    expired = ban(ip="192.0.2.7", jail="ftp", start=0.0, until=10.0)
    other = ban(ip="192.0.2.8")
    store.add_bans([expired, ssh, mail, other])

    assert store.lift_bans(["192.0.2.7", "192.0.2.7", "192.0.2.99"], now=1200.0) == [ssh, mail]
    assert store.active_bans(1200.0) == [other]
    assert store.lift_bans(["192.0.2.7"], now=1300.0) == []
    assert store.ban_history("192.0.2.7") == [expired, ssh, mail]


def test_the_ledger_read_tells_which_bans_were_lifted_early_and_when(store: SqliteStore) -> None:
    """What a restart learns from ``ban_rows``: lifts by hand since a moment, not a ban
    replaced by a newer one nor one that had ended already."""
    lifted = ban(ip="192.0.2.7", start=1000.0, until=5000.0)
    old = ban(ip="192.0.2.8", start=0.0, until=400.0)
    expired = ban(ip="192.0.2.9", start=1000.0, until=1100.0)
    store.add_bans([lifted, old, expired])
    store.lift_bans(["192.0.2.8"], now=100.0)  # before ``since``
    store.lift_bans(["192.0.2.7"], now=1200.0)
    store.lift_bans(["192.0.2.9"], now=1300.0)  # ended already: nothing to lift
    store.add_bans([ban(ip="192.0.2.7", jail="mail", start=1000.0, until=5000.0)])
    store.add_bans([ban(ip="192.0.2.7", jail="mail", start=1400.0, until=5000.0)])  # replaced
    assert lifts_since(store, 500.0) == [("192.0.2.7", 1200.0)]
    assert lifts_since(store, 0.0) == [("192.0.2.8", 100.0), ("192.0.2.7", 1200.0)]


def lifts_since(store: SqliteStore, since: float) -> list[tuple[str, float]]:
    ledger = LedgerRead(2000.0, since)
    detector = Detector([], [])
    for rows in store.ban_rows(size=2):  # pages: a replacement in a later page still counts
        detector.remember_ledger(rows, ledger)
    return ledger.lifted()


def test_replacing_an_active_ban_keeps_history(store: SqliteStore) -> None:
    first = ban(start=1000.0, until=1600.0)
    second = ban(start=1500.0, until=4000.0, reason="recidive")
    other_jail = ban(jail="postfix", start=1000.0, until=1600.0)
    store.add_bans([first, other_jail])
    store.add_bans([second])

    assert store.active_bans(1550.0) == [other_jail, second]  # first ended at second.start
    assert store.ban_history("192.0.2.1") == [first, other_jail, second]


def test_replacement_within_one_batch_applies_in_order(store: SqliteStore) -> None:
    bans = [ban(start=1000.0 + i, until=2000.0 + i, failures=i) for i in range(3)]
    store.add_bans(bans)
    assert store.active_bans(1500.0) == [bans[2]]
    assert store.ban_history("192.0.2.1") == bans


def test_an_expired_ban_is_not_lifted_by_a_new_one(db_path: Path) -> None:
    with SqliteStore(db_path) as store:
        store.add_bans([ban(start=1000.0, until=1100.0), ban(start=1200.0, until=1800.0)])
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT lifted FROM bans ORDER BY id").fetchall() == [(None,), (None,)]


def test_prune_bans_forgets_only_ended_bans(store: SqliteStore) -> None:
    old = ban(ip="192.0.2.1", start=0.0, until=100.0)
    lifted = ban(ip="192.0.2.2", start=0.0, until=9000.0)
    current = ban(ip="192.0.2.3", start=0.0, until=9000.0)
    store.add_bans([old, lifted, current])
    store.lift_bans(["192.0.2.2"], now=150.0)

    assert store.prune_bans(200.0) == 2
    assert store.ban_history("192.0.2.1") == store.ban_history("192.0.2.2") == []
    assert store.active_bans(200.0) == [current]


def test_hundred_thousand_bans(store: SqliteStore, capsys: pytest.CaptureFixture[str]) -> None:
    bans = [
        Ban(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", "sshd", 1000.0, 5000.0 + i, 5, "maxretry")
        for i in range(100_000)
    ]
    began = time.perf_counter()
    store.add_bans(bans)
    inserted = time.perf_counter()
    active = store.active_bans(2000.0)
    fetched = time.perf_counter()

    assert active == bans
    with capsys.disabled():
        print(
            f"\n100,000 bans: add_bans {inserted - began:.3f} s,"
            f" active_bans {fetched - inserted:.3f} s"
        )


# -- positions -------------------------------------------------------------------------------


def test_positions_upsert(db_path: Path) -> None:
    rotated = SourcePosition("file:/var/log/auth.log", 10, 2049, 131, "ab12", "")
    with SqliteStore(db_path) as store:
        assert store.get_position("file:/var/log/auth.log") is None
        store.set_positions([SourcePosition("file:/var/log/auth.log", 500, 2049, 77, "ff00")])
        store.set_positions([rotated, SourcePosition("journal", cursor="s=abc;i=1f")])
    with SqliteStore(db_path) as store:
        assert store.get_position("file:/var/log/auth.log") == rotated
        assert store.get_position("journal") == SourcePosition("journal", cursor="s=abc;i=1f")


def test_positions_keep_full_64_bit_device_and_inode(store: SqliteStore) -> None:
    huge = SourcePosition("file:/nfs/\udcff.log", 1, 2**64 - 1, 2**63, "", "")
    store.set_positions([huge])
    assert store.get_position("file:/nfs/\udcff.log") == huge


# -- sharing ---------------------------------------------------------------------------------


def test_threads_and_a_second_connection_share_the_file(store: SqliteStore, db_path: Path) -> None:
    def write(worker: int) -> None:
        for n in range(50):
            store.add_failures([Failure(float(n), f"192.0.2.{worker}", "sshd", None, "x")])

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    with SqliteStore(db_path) as other:
        for thread in threads:
            thread.start()
        other.add_bans([ban()])
        for thread in threads:
            thread.join(timeout=60)
        assert len(other.failures_since(0)) == 200
    assert store.active_bans(0) == [ban()]


def test_closed_store_raises_store_error(db_path: Path) -> None:
    store = SqliteStore(db_path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.active_bans(0)


# -- bad files -------------------------------------------------------------------------------


def test_corrupt_file_is_a_store_error(db_path: Path) -> None:
    db_path.parent.mkdir()
    db_path.write_bytes(b"this is not SQLite\n" * 512)
    with pytest.raises(StoreError, match="not a bruteguard database or is corrupt") as caught:
        SqliteStore(db_path)
    assert str(db_path) in str(caught.value)


def test_newer_schema_is_refused(db_path: Path) -> None:
    SqliteStore(db_path).close()
    with sqlite3.connect(db_path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer") as caught:
        SqliteStore(db_path)
    assert str(db_path) in str(caught.value)


def test_old_empty_file_is_migrated_in_place(db_path: Path) -> None:
    db_path.parent.mkdir()
    sqlite3.connect(db_path).close()  # an empty database at user_version 0
    with SqliteStore(db_path) as store:
        store.add_bans([ban()])
        assert store.active_bans(0) == [ban()]


def test_directory_as_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=f"{tmp_path}: cannot open the store: is a directory"):
        SqliteStore(tmp_path)


def test_file_as_parent_directory_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").touch()
    path = tmp_path / "file" / "b.db"
    with pytest.raises(StoreError, match=f"{path}: cannot open the store: not a directory"):
        SqliteStore(path)


def test_permission_denied_is_a_store_error(db_path: Path) -> None:
    SqliteStore(db_path).close()
    db_path.chmod(0)
    child = textwrap.dedent(
        """
        import sys
        from bruteguard.store.sqlite import SqliteStore
        from bruteguard.errors import StoreError
        try:
            SqliteStore(sys.argv[1])
        except StoreError as error:
            print(error)
        """
    )
    # root would ignore the mode: run the child without the capabilities that let it
    argv = [sys.executable, "-c", child, str(db_path)]
    if os.getuid() == 0:
        argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.stdout == f"{db_path}: cannot open the store: permission denied\n", result.stderr


def test_record_batch_is_all_or_nothing(db_path: Path) -> None:
    store = SqliteStore(db_path)
    failure = Failure(1000.0, "198.51.100.7", "sshd", "root", "Failed password for root")
    position = SourcePosition("file:/var/log/auth.log", 4096, 1, 2, "abc")
    store.record_batch([failure], [ban("198.51.100.7")], [position])
    # A batch that fails at its last step (a position the schema refuses: no cursor)
    # leaves nothing of itself behind.
    with pytest.raises(StoreError):
        store.record_batch(
            [Failure(2000.0, "203.0.113.9", "sshd", None, "x")],
            [ban("203.0.113.9", start=2000.0)],
            [SourcePosition("file:/var/log/auth.log", 8192, 1, 2, "abc", None)],  # type: ignore[arg-type]
        )
    store.close()
    reopened = SqliteStore(db_path)
    assert [f.ip for f in reopened.failures_since(0)] == ["198.51.100.7"]
    assert [b.ip for b in reopened.active_bans(1500.0)] == ["198.51.100.7"]
    assert reopened.get_position("file:/var/log/auth.log") == position
    reopened.close()


def test_unattributed_failures_round_trip_newest_first_and_prune(store: SqliteStore) -> None:
    store.add_unattributed(
        [
            Unattributed(100.0, "pure-ftpd", "nx.attacker.test", (), "no connection", "root"),
            Unattributed(
                200.0,
                "pure-ftpd",
                "bad\udcff\x1bname",
                ("198.51.100.7", "2001:db8::7"),
                "ambiguous: several connections have that PTR",
                None,
                "pure-ftpd: (?@bad) [WARNING] Authentication failed for user [x]",
            ),
        ]
    )
    newest, oldest = store.recent_unattributed(10)
    assert (newest.time, newest.candidates, newest.user) == (
        200.0,
        ("198.51.100.7", "2001:db8::7"),
        None,
    )
    assert newest.name == "bad\\xff\x1bname"  # an undecodable byte is kept as an escape
    assert (oldest.name, oldest.reason, oldest.user) == (
        "nx.attacker.test",
        "no connection",
        "root",
    )
    assert store.recent_unattributed(1) == [newest]
    store.prune(150.0)
    assert store.recent_unattributed(10) == [newest]


def test_active_ban_shapes_count_per_jail_and_set(store: SqliteStore) -> None:
    store.add_bans(
        [
            ban("192.0.2.1"),
            ban("192.0.2.2"),
            ban("::ffff:192.0.2.3"),  # IPv4-mapped: an IPv4 address
            ban("2001:db8::1"),
            ban("2001:db8:1::/64"),
            ban("198.51.100.0/24", jail="recidive"),
            ban("192.0.2.9", until=1001.5),  # ended by then
        ]
    )
    store.lift_bans(["192.0.2.2"], 1001.0)
    assert store.active_ban_shapes(1600.0) == {}  # every other ban() ends at start + 600
    assert store.active_ban_shapes(1002.0) == {
        ("sshd", "v4"): 2,
        ("sshd", "v6"): 1,
        ("sshd", "v6n64"): 1,
        ("recidive", "v4n24"): 1,
    }


def test_any_change_of_the_bans_deletes_the_restart_stamps(store: SqliteStore) -> None:
    store.add_bans([ban("192.0.2.1"), ban("192.0.2.2")])
    changes = [
        lambda: store.add_bans([ban("192.0.2.3")]),
        lambda: store.lift_bans(["192.0.2.1"], 1001.0),
        lambda: store.prune_bans(5000.0),
    ]
    for change in changes:
        store.set_restart_stamp("nftables", "token:1:layout")
        store.set_restart_stamp("iptables", "other")
        change()
        assert store.take_restart_stamps() == {}
    store.set_restart_stamp("nftables", "token:1:layout")
    assert store.take_restart_stamps() == {"nftables": "token:1:layout"}
    assert store.take_restart_stamps() == {}  # used once


def test_active_bans_per_jail_are_counted_from_the_partial_index(db_path: Path) -> None:
    """``status`` counts the bans in force per jail from ``bans_active`` alone: lifted and
    ended bans are not in it, so a million active bans cost no row lookups and a long
    history costs nothing."""
    with SqliteStore(db_path) as store:
        store.add_bans([ban("192.0.2.1"), ban("192.0.2.2", jail="vsftpd"), ban("192.0.2.3")])
        store.add_bans([ban("198.51.100.1", start=100.0, until=200.0)])  # ended
        store.lift_bans(["192.0.2.3"], 1100.0)
        assert store.active_ban_counts(1200.0) == {"sshd": 1, "vsftpd": 1}
    with sqlite3.connect(db_path) as raw:
        plan = raw.execute(
            "EXPLAIN QUERY PLAN SELECT jail, count(*) FROM bans"
            " WHERE until > ? AND lifted IS NULL GROUP BY jail",
            (1200.0,),
        ).fetchall()
        (entry,) = raw.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'bans_active'"
        ).fetchone()
    assert any("INDEX bans_active" in row[-1] for row in plan), plan
    assert "WHERE lifted IS NULL" in entry
