"""The embedded ledger: one SQLite file holding failures, bans and source positions.

Durability is chosen per fact. Bans are committed with ``synchronous=FULL`` (the WAL is
fsynced before ``add_bans`` returns), because the daemon enforces a ban only after the store
has it. Failures and read positions are committed with ``synchronous=NORMAL``: they survive
a crash of the process, and a power cut loses at most the last moments, which the sources
re-read anyway. The schema is versioned with ``PRAGMA user_version`` and upgraded in place.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bruteguard.clock import Clock, system_clock
from bruteguard.errors import StoreError
from bruteguard.model import Ban, Failure, SourcePosition, Unattributed

__all__ = ["SCHEMA_VERSION", "SqliteStore", "storable"]

# Each entry upgrades the schema from version ``index`` to ``index + 1``; append, never edit.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE failures (
            time REAL NOT NULL,
            ip TEXT NOT NULL,
            jail TEXT NOT NULL,
            user TEXT,
            line TEXT NOT NULL)""",
        "CREATE INDEX failures_time ON failures (time)",
        "CREATE INDEX failures_ip_time ON failures (ip, time)",
        """CREATE TABLE bans (
            id INTEGER PRIMARY KEY,
            ip TEXT NOT NULL,
            jail TEXT NOT NULL,
            start REAL NOT NULL,
            until REAL NOT NULL,
            failures INTEGER NOT NULL,
            reason TEXT NOT NULL,
            lifted REAL)""",
        "CREATE INDEX bans_until ON bans (until)",
        "CREATE INDEX bans_ip ON bans (ip)",
        # The replace rule lives in the schema so that every insert, batched or typed by hand
        # in the sqlite3 shell, ends the active ban it supersedes and history keeps both.
        """CREATE TRIGGER bans_replace_active BEFORE INSERT ON bans BEGIN
            UPDATE bans SET lifted = NEW.start
            WHERE ip = NEW.ip AND jail = NEW.jail AND lifted IS NULL AND until > NEW.start;
        END""",
        """CREATE TABLE positions (
            key TEXT PRIMARY KEY,
            "offset" INTEGER NOT NULL,
            device INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            cursor TEXT NOT NULL,
            updated REAL NOT NULL)""",
    ),
    (
        """CREATE TABLE unattributed (
            time REAL NOT NULL,
            jail TEXT NOT NULL,
            name TEXT NOT NULL,
            candidates TEXT NOT NULL,
            reason TEXT NOT NULL,
            user TEXT,
            line TEXT NOT NULL)""",
        "CREATE INDEX unattributed_time ON unattributed (time)",
    ),
    ("ALTER TABLE bans ADD COLUMN step INTEGER NOT NULL DEFAULT 1",),
    ("CREATE TABLE blocklists (name TEXT PRIMARY KEY, loaded REAL NOT NULL)",),
    (  # the abuse desk (store/cases.py)
        """CREATE TABLE contacts (
            lo BLOB NOT NULL,
            hi BLOB NOT NULL,
            data TEXT NOT NULL,
            looked_up REAL NOT NULL,
            expires REAL NOT NULL)""",
        "CREATE INDEX contacts_lo ON contacts (lo)",
        """CREATE TABLE cases (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            mode TEXT NOT NULL,
            contact TEXT,
            lookup TEXT,
            opened REAL NOT NULL,
            updated REAL NOT NULL,
            due REAL NOT NULL,
            sent REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT NOT NULL DEFAULT '',
            flags TEXT NOT NULL DEFAULT '',
            message BLOB)""",
        "CREATE INDEX cases_contact ON cases (contact, state)",
        "CREATE INDEX cases_state_due ON cases (state, due)",
        """CREATE TABLE case_addresses (
            case_id TEXT NOT NULL REFERENCES cases (id),
            address TEXT NOT NULL,
            jail TEXT NOT NULL,
            first REAL NOT NULL,
            last REAL NOT NULL,
            attempts INTEGER NOT NULL,
            port INTEGER,
            PRIMARY KEY (case_id, address))""",
        "CREATE INDEX case_addresses_address ON case_addresses (address)",
        """CREATE TABLE case_events (
            case_id TEXT NOT NULL REFERENCES cases (id),
            time REAL NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL)""",
        "CREATE INDEX case_events_case ON case_events (case_id, time)",
        "CREATE TABLE holds (key TEXT PRIMARY KEY, until REAL NOT NULL, reason TEXT NOT NULL)",
        "CREATE TABLE mail_seen (key TEXT PRIMARY KEY, time REAL NOT NULL)",
    ),
    (  # the fleet's outbound queue (fleet/outbox.py); empty and unused without [fleet]
        """CREATE TABLE fleet_summaries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ip TEXT NOT NULL,
            jail TEXT NOT NULL,
            minute INTEGER NOT NULL,
            count INTEGER NOT NULL,
            samples TEXT NOT NULL)""",
        "CREATE UNIQUE INDEX fleet_summaries_key ON fleet_summaries (ip, jail, minute)",
        """CREATE TABLE fleet_ban_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ban_id INTEGER NOT NULL,
            kind TEXT NOT NULL)""",
        # the host a fleet ban came from ('' for this host's own)
        "ALTER TABLE bans ADD COLUMN origin TEXT NOT NULL DEFAULT ''",
    ),
    (  # the restart stamp (``restart_stamp``): gone with any change of the bans table
        "CREATE TABLE restart_stamps (enforcer TEXT PRIMARY KEY, stamp TEXT NOT NULL)",
        "CREATE TRIGGER bans_insert_unstamps AFTER INSERT ON bans BEGIN"
        " DELETE FROM restart_stamps; END",
        "CREATE TRIGGER bans_update_unstamps AFTER UPDATE ON bans BEGIN"
        " DELETE FROM restart_stamps; END",
        "CREATE TRIGGER bans_delete_unstamps AFTER DELETE ON bans BEGIN"
        " DELETE FROM restart_stamps; END",
    ),
    (  # the bans in force per jail from the index alone (``active_ban_counts``, ``status``):
        # through ``bans_until`` each costs a row lookup (1 M bans: 2.1 CPU-s against 0.2)
        "CREATE INDEX IF NOT EXISTS bans_active ON bans (until, jail) WHERE lifted IS NULL",
    ),
)

SCHEMA_VERSION = len(_MIGRATIONS)

log = logging.getLogger(__name__)

_BUSY_TIMEOUT = 10.0  # seconds; a CLI and the daemon may write at the same moment
_DEFAULT_CACHE_KIB = 2000  # SQLite's own default page cache
_LIFT_ALL_CACHE_KIB = 256 * 1024  # ``lift_all``'s, for that statement alone (see there)
_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1


def storable(text: str) -> str:
    """Text SQLite can hold: lone surrogates (undecodable log bytes) become escapes.

    Sources decode with ``surrogateescape``, so such a surrogate stands for one raw byte and
    is written as ``\\xNN``; any other lone surrogate as ``\\udXXX``.
    """
    if text.isascii():  # nearly every line; O(1) in CPython, where encoding copies it
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
        return raw.decode("utf-8", "backslashreplace")
    return text


def _signed(number: int) -> int:
    """st_dev/st_ino are unsigned 64-bit; SQLite integers are signed."""
    return number - _U64 if number > _I64_MAX else number


def _unsigned(number: int) -> int:
    return number + _U64 if number < 0 else number


def _open_file(path: Path) -> None:
    """Create the directory (0700) and the database file (0600) before SQLite does.

    SQLite gives its -wal and -shm files the mode of the database file, so they are
    private too. Existing directories and files keep the mode their owner chose.
    """
    with contextlib.suppress(FileExistsError):  # not exist_ok: a file there must say so below
        path.parent.mkdir(mode=0o700, parents=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


# Pages of the bans table for ``SqliteStore._pages``: (after id, *params, size).
_ACTIVE_BANS_PAGE = (
    "SELECT id, ip, jail, start, until, failures, reason, step, origin FROM bans"
    " WHERE id > ? AND until > ? AND lifted IS NULL ORDER BY id LIMIT ?"
)
_BANS_PAGE = (
    "SELECT id, ip, jail, start, until, failures, reason, step, origin, lifted FROM bans"
    " WHERE id > ? ORDER BY id LIMIT ?"
)


class SqliteStore:
    """The ``Store`` on one SQLite file; safe to share between threads (one lock).

    ``clock`` is the one clock of everything that stamps rows in this ledger (positions,
    cases, the abuse desk's lookups): tests inject it here and nowhere else.
    """

    def __init__(self, path: str | Path, clock: Clock = system_clock) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        # Addresses with failures recorded since the last ``trim_evidence``: only their
        # evidence can have grown past the cap.
        self._touched: set[str] = set()
        self._durable: bool | None = None  # the connection's synchronous setting, once set
        try:
            _open_file(self.path)
            db = sqlite3.connect(
                self.path,
                timeout=_BUSY_TIMEOUT,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # the lock below serialises all use
            )
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"{self.path}: cannot open the store: {_reason(error)}") from None
        try:
            _prepare(db, self.path)
        except BaseException:
            db.close()
            raise
        self._db = db

    # -- failures --------------------------------------------------------------------------

    def add_failures(self, failures: Iterable[Failure]) -> None:
        """Record failures (evidence, and the memory the detector is rebuilt from)."""
        with self.write("record failures", durable=False) as db:
            self._touched |= _insert_failures(db, failures)

    def failures_since(self, since: float) -> list[Failure]:
        """Failures at or after ``since``, oldest first (re-primes the detector on start)."""
        with self.read("read failures") as db:
            rows = db.execute(
                "SELECT time, ip, jail, user, line FROM failures"
                " WHERE time >= ? ORDER BY time, rowid",
                (since,),
            ).fetchall()
        return [Failure(*row) for row in rows]

    def failures_of(self, ip: str, since: float) -> list[Failure]:
        """The failures of one address at or after ``since``, oldest first (the evidence an
        abuse report carries)."""
        with self.read("read an address's failures") as db:
            rows = db.execute(
                "SELECT time, ip, jail, user, line FROM failures"
                " WHERE ip = ? AND time >= ? ORDER BY time, rowid",
                (ip, since),
            ).fetchall()
        return [Failure(*row) for row in rows]

    def prune(self, before: float, chunk: int = 20_000) -> int:
        """Forget failures (attributed or not) older than ``before``; returns how many.

        Oldest first through the time indexes, ``chunk`` rows per transaction: the first
        pass over a ledger that kept everything may delete millions, and a batch of new
        failures must never wait for more than one chunk.
        """
        removed = 0
        for table in ("failures", "unattributed"):
            while True:
                with self.write("prune failures", durable=False) as db:
                    deleted = db.execute(
                        f"DELETE FROM {table} WHERE rowid IN"  # noqa: S608 (a fixed name)
                        f" (SELECT rowid FROM {table} WHERE time < ? ORDER BY time LIMIT ?)",
                        (before, chunk),
                    ).rowcount
                removed += deleted
                if deleted < chunk:
                    break
        return removed

    def trim_evidence(self, keep: int, chunk: int = 1000) -> int:
        """Keep only the newest ``keep`` failure lines of each address that got failures
        since the last call; returns how many older lines were deleted.

        Only touched addresses are looked at (one indexed query each, ``chunk`` addresses per
        transaction, so writers wait for one chunk at most), never the whole table.
        """
        with self._lock:
            touched, self._touched = list(self._touched), set()
        removed = 0
        for start in range(0, len(touched), chunk):
            with self.write("trim evidence", durable=False) as db:
                for ip in touched[start : start + chunk]:
                    removed += db.execute(
                        "DELETE FROM failures WHERE rowid IN (SELECT rowid FROM failures"
                        " WHERE ip = ? ORDER BY time DESC, rowid DESC LIMIT -1 OFFSET ?)",
                        (ip, keep),
                    ).rowcount
        return removed

    def compact(self, most: int = 25_000) -> int:
        """Give up to ``most`` pages that deleted rows freed back to the file system (the
        file shrinks): ``incremental_vacuum``, then a checkpoint that truncates the WAL.
        Returns the pages freed. Bounded (100 MB of 4 KiB pages) so one call never holds
        the store for long; the next housekeeping pass frees the rest."""
        with self.read("compact the store") as db:
            ((free,),) = db.execute("PRAGMA freelist_count").fetchall()  # (ends the read)
            pages = min(int(free), most)
            if pages:
                # executescript: it steps the pragma to the end (each step frees one page,
                # and execute() would stop after the first).
                db.executescript(f"PRAGMA incremental_vacuum({pages});")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return pages

    def add_unattributed(self, failures: Iterable[Unattributed]) -> None:
        """Record failures that named a host no real connection could be tied to."""
        with self.write("record unattributed failures", durable=False) as db:
            db.executemany(
                "INSERT INTO unattributed VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        f.time,
                        storable(f.jail),
                        storable(f.name),
                        " ".join(f.candidates),
                        storable(f.reason),
                        None if f.user is None else storable(f.user),
                        storable(f.line),
                    )
                    for f in failures
                ),
            )

    def recent_unattributed(self, limit: int = 20) -> list[Unattributed]:
        """The newest unattributed failures, newest first."""
        with self.read("read unattributed failures") as db:
            rows = db.execute(
                "SELECT time, jail, name, candidates, reason, user, line FROM unattributed"
                " ORDER BY time DESC, rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            Unattributed(time, jail, name, tuple(candidates.split()), reason, user, line)
            for time, jail, name, candidates, reason, user, line in rows
        ]

    # -- bans ------------------------------------------------------------------------------

    def add_bans(self, bans: Iterable[Ban]) -> None:
        """Record bans durably (fsynced on return); ends an active ban of the same ip and jail.

        Bans are applied in order, so a batch may hold several bans of one address.
        """
        with self.write("record bans", durable=True) as db:
            _insert_bans(db, bans)

    def lift_bans(self, ips: Iterable[str], now: float) -> list[Ban]:
        """End the active bans of ``ips`` (any jail) at ``now``; returns them as they were.

        Addresses match as stored text: a network ban is lifted by its CIDR, not by a member.
        """
        lifted: list[Ban] = []
        ids: list[tuple[float, int]] = []
        with self.write("lift bans", durable=True) as db:
            for ip in dict.fromkeys(ips):
                for ban_id, *fields in db.execute(
                    "SELECT id, ip, jail, start, until, failures, reason, step, origin FROM bans"
                    " WHERE ip = ? AND lifted IS NULL AND until > ? ORDER BY id",
                    (ip, now),
                ):
                    ids.append((now, ban_id))
                    lifted.append(Ban(*fields))
            db.executemany("UPDATE bans SET lifted = ? WHERE id = ?", ids)
        return lifted

    def lift_from(self, origin: str, lifts: Iterable[tuple[str, float]], now: float) -> list[Ban]:
        """End the active bans of fleet host ``origin`` ('' for this host's) on each target
        that started before its lift (a newer ban of the same target stays); returns them as
        they were. A fleet unban lifts the bans it is about here, never another host's."""
        lifted: list[Ban] = []
        with self.write("lift fleet bans", durable=True) as db:
            for ip, before in lifts:
                rows = db.execute(
                    "UPDATE bans SET lifted = ? WHERE ip = ? AND origin = ? AND lifted IS NULL"
                    " AND until > ? AND start <= ? RETURNING ip, jail, start, until, failures,"
                    " reason, step, origin",
                    (now, ip, origin, now, before),
                ).fetchall()
                lifted += [Ban(*row) for row in rows]
        return lifted

    def active_bans(self, now: float) -> list[Ban]:
        """Bans whose ``until`` is after ``now`` and that were not lifted, oldest first."""
        with self.read("read active bans") as db:
            rows = db.execute(
                "SELECT ip, jail, start, until, failures, reason, step, origin FROM bans"
                " WHERE until > ? AND lifted IS NULL ORDER BY id",
                (now,),
            ).fetchall()
        return [Ban(*row) for row in rows]

    def active_bans_of(self, ip: str, now: float) -> list[Ban]:
        """The bans of ``ip`` (as stored text) in force at ``now``, in every jail."""
        with self.read("read active bans of a target") as db:
            rows = db.execute(
                "SELECT ip, jail, start, until, failures, reason, step, origin FROM bans"
                " WHERE ip = ? AND until > ? AND lifted IS NULL ORDER BY id",
                (ip, now),
            ).fetchall()
        return [Ban(*row) for row in rows]

    def active_ban_counts(self, now: float) -> dict[str, int]:
        """Bans in force at ``now`` per jail, counted by SQLite: ``status`` with a million
        bans must not load them."""
        with self.read("count active bans") as db:
            rows = db.execute(
                "SELECT jail, count(*) FROM bans WHERE until > ? AND lifted IS NULL GROUP BY jail",
                (now,),
            ).fetchall()
        return dict(rows)

    def newest_active_bans(self, now: float, jail: str, limit: int) -> list[str]:
        """The targets of ``jail``'s ``limit`` newest bans in force at ``now``."""
        with self.read("read newest active bans") as db:
            rows = db.execute(
                "SELECT ip FROM bans WHERE jail = ? AND until > ? AND lifted IS NULL"
                " ORDER BY id DESC LIMIT ?",
                (jail, now, limit),
            ).fetchall()
        return [ip for (ip,) in rows]

    def active_ban_pages(self, now: float, size: int = 10_000) -> Iterator[list[Ban]]:
        """``active_bans`` a page of ``size`` at a time, each page its own short read: the
        control socket streams ``bans`` page by page while the daemon goes on banning."""
        for rows in self._pages(_ACTIVE_BANS_PAGE, (now,), size):
            yield [Ban(*row) for row in rows]

    def ban_rows(self, size: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
        """Every ban in the ledger (lifted, replaced and expired ones too), oldest first, in
        pages of ``size``: the daemon's one read at start, from which it learns who is
        banned, how often each target was, what recidive counts and what was lifted.

        Each row is a plain tuple of ``BanRow``'s fields (``BanRow(*row)`` names them):
        making a named tuple of each cost a restart with a million bans about 1 CPU-s."""
        yield from self._pages(_BANS_PAGE, (), size)

    def _pages(
        self, query: str, params: tuple[float, ...], size: int
    ) -> Iterator[list[tuple[object, ...]]]:
        """The rows of ``query`` (its id first, left out here) in pages of ``size``.

        Pages continue after the last id seen (not an OFFSET), so a million bans cost one
        pass, and each page is its own short read: a writer may commit between pages, and
        the lock is never held while the caller works on one.
        """
        after = 0
        while True:
            with self.read("read bans") as db:
                rows = db.execute(query, (after, *params, size)).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            yield [row[1:] for row in rows]

    def expired_bans(self, after: float, now: float) -> list[Ban]:
        """Bans that ran out in ``(after, now]`` (found through the index on their end) and
        were not lifted, unless the same target is banned again in the same jail: what a
        firewall without timeouts must now be told to lift."""
        with self.read("read expired bans") as db:
            rows = db.execute(
                "SELECT ip, jail, start, until, failures, reason, step, origin FROM bans AS ended"
                " WHERE until > ? AND until <= ? AND lifted IS NULL AND NOT EXISTS ("
                " SELECT 1 FROM bans AS newer WHERE newer.ip = ended.ip"
                " AND newer.jail = ended.jail AND newer.until > ? AND newer.lifted IS NULL)"
                " ORDER BY until, id",
                (after, now, now),
            ).fetchall()
        return [Ban(*row) for row in rows]

    def lift_all(self, now: float) -> int:
        """End every active ban at ``now`` in one statement (``stop --unban``); how many.

        With a million bans the statement rewrites every page of the table: in SQLite's
        default 2 MiB page cache the pages spill to the WAL again and again (1 M bans: 7 to 9
        CPU-s); a cache as large as ``_LIFT_ALL_CACHE_KIB`` for this statement alone holds
        them (4 to 5 CPU-s), and is given back after it."""
        try:
            with self.write("lift every ban", durable=True) as db:
                db.execute(f"PRAGMA cache_size = -{_LIFT_ALL_CACHE_KIB}")
                return db.execute(
                    "UPDATE bans SET lifted = ? WHERE until > ? AND lifted IS NULL", (now, now)
                ).rowcount
        finally:
            with self.read("size the page cache") as db:
                db.execute(f"PRAGMA cache_size = -{_DEFAULT_CACHE_KIB}")

    def active_ban_shapes(self, now: float) -> dict[tuple[str, str], int]:
        """Bans in force at ``now`` per (jail, shape), counted by SQLite: the shape is
        ``"v4"``/``"v6"`` for a plain address (``::ffff:`` IPv4-mapped counts as ``"v4"``),
        ``"v4n24"``, ``"v6n64"`` … for a network. A firewall sizes its sets from it before
        the ledger is streamed into them. One scan of the table, not the index on the ban
        end: with most bans in force the index costs a row lookup each (1 M bans: 0.75
        CPU-s against 3.1)."""
        with self.read("count active bans") as db:
            rows = db.execute(
                "SELECT jail, CASE WHEN instr(ip, '/') THEN"
                " (CASE WHEN instr(ip, ':') THEN 'v6n' ELSE 'v4n' END)"
                " || substr(ip, instr(ip, '/') + 1)"
                " WHEN instr(ip, ':') AND NOT (lower(substr(ip, 1, 7)) = '::ffff:'"
                " AND instr(ip, '.')) THEN 'v6' ELSE 'v4' END, count(*)"
                " FROM bans NOT INDEXED WHERE until > ? AND lifted IS NULL GROUP BY 1, 2",
                (now,),
            ).fetchall()
        return {(jail, shape): count for jail, shape, count in rows}

    def set_restart_stamp(self, enforcer: str, stamp: str) -> None:
        """Keep ``enforcer``'s stamp of a clean stop (its firewall holds exactly the active
        bans). Any later change of the bans table -- ``ban``/``unban`` while the daemon is
        down, a fleet's ban, an edit in the sqlite3 shell -- deletes every stamp (the
        schema's triggers), so a stamp read at start proves nothing changed since."""
        with self.write("keep a restart stamp", durable=True) as db:
            db.execute(
                "INSERT OR REPLACE INTO restart_stamps (enforcer, stamp) VALUES (?, ?)",
                (enforcer, stamp),
            )

    def take_restart_stamps(self) -> dict[str, str]:
        """Every restart stamp (enforcer → stamp), deleted as it is read: a stamp is used
        by one start at most (a crash after it must not find it again)."""
        with self.write("take the restart stamps", durable=True) as db:
            rows = db.execute("SELECT enforcer, stamp FROM restart_stamps").fetchall()
            if rows:
                db.execute("DELETE FROM restart_stamps")
        return dict(rows)

    def ban_history(self, ip: str) -> list[Ban]:
        """Every ban of ``ip`` as it was decided (lifted or replaced ones too), oldest first."""
        with self.read("read ban history") as db:
            rows = db.execute(
                "SELECT ip, jail, start, until, failures, reason, step, origin FROM bans"
                " WHERE ip = ? ORDER BY start, id",
                (ip,),
            ).fetchall()
        return [Ban(*row) for row in rows]

    def blocklist_loaded(self, name: str, now: float) -> float:
        """When blocklist ``name`` was first loaded (``now`` if never): its bantime counts
        from then, across restarts and reloads."""
        with self.write("record a blocklist", durable=True) as db:
            db.execute(
                "INSERT INTO blocklists (name, loaded) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (storable(name), now),
            )
            (loaded,) = db.execute(
                "SELECT loaded FROM blocklists WHERE name = ?", (storable(name),)
            ).fetchone()
        return float(loaded)

    def prune_bans(self, before: float) -> int:
        """Forget bans that ended (expired or lifted) before ``before``; returns how many.

        This also shortens the history growing ban times are computed from, so keep
        ``before`` further back than the longest recidive window.
        """
        with self.write("prune bans", durable=False) as db:
            return db.execute(
                "DELETE FROM bans WHERE coalesce(min(lifted, until), until) < ?", (before,)
            ).rowcount

    # -- positions -------------------------------------------------------------------------

    def get_position(self, key: str) -> SourcePosition | None:
        """The saved read position of source ``key``."""
        with self.read("read a source position") as db:
            row = db.execute(
                'SELECT "offset", device, inode, fingerprint, cursor FROM positions WHERE key = ?',
                (storable(key),),
            ).fetchone()
        if row is None:
            return None
        offset, device, inode, fingerprint, cursor = row
        return SourcePosition(key, offset, _unsigned(device), _unsigned(inode), fingerprint, cursor)

    def set_positions(self, positions: Iterable[SourcePosition]) -> None:
        """Save read positions (one transaction; a key's newer position replaces the old)."""
        with self.write("save source positions", durable=False) as db:
            _upsert_positions(db, positions, self.clock())

    def record_batch(
        self,
        failures: Iterable[Failure],
        bans: Sequence[Ban],
        positions: Iterable[SourcePosition],
    ) -> None:
        """A batch of lines, all or nothing: its failures, the bans they decided and where
        its sources now stand. A crash before the commit re-reads the batch, after it never:
        no line counts twice, no decided ban is lost. Durable (fsynced) when there are bans.
        """
        with self.write("record a batch", durable=bool(bans)) as db:
            self._touched |= _insert_failures(db, failures)
            _insert_bans(db, bans)
            _upsert_positions(db, positions, self.clock())

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file (SQLite checkpoints the WAL); later calls raise ``StoreError``."""
        with self._lock:
            if self._db is not None:
                db, self._db = self._db, None
                try:
                    db.close()
                except sqlite3.Error as error:
                    raise StoreError(f"{self.path}: cannot close the store: {error}") from None

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transactions (also for the abuse desk's tables, store/cases.py) -------------------

    @contextlib.contextmanager
    def read(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._lock, _translated(self.path, action):
            yield self._connection()

    @contextlib.contextmanager
    def write(self, action: str, *, durable: bool) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``durable`` fsyncs the WAL before the commit returns."""
        with self._lock, _translated(self.path, action):
            db = self._connection()
            if durable is not self._durable:  # a statement less per write when unchanged
                db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                self._durable = durable
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.rollback()
                raise

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"{self.path}: the store is closed")
        return self._db


@contextlib.contextmanager
def _translated(path: Path, action: str) -> Iterator[None]:
    """Turn SQLite's errors into a ``StoreError`` that names the file and what failed."""
    try:
        yield
    except sqlite3.Error as error:
        raise StoreError(f"{path}: cannot {action}: {_reason(error)}") from None


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    if isinstance(error, sqlite3.DatabaseError) and "not a database" in str(error):
        return "the file is not a bruteguard database or is corrupt"
    return str(error)


def _prepare(db: sqlite3.Connection, path: Path) -> None:
    """Switch to WAL and incremental auto-vacuum; bring the schema to ``SCHEMA_VERSION``
    (refusing newer ones)."""
    with _translated(path, "open the store"):
        db.execute("PRAGMA journal_mode = WAL")
        _incremental_vacuum(db, path)
        if _version(db, path) == SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")  # re-read under the lock: another process may migrate
        try:
            _migrate(db, _version(db, path))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.rollback()
            raise


def _incremental_vacuum(db: sqlite3.Connection, path: Path) -> None:
    """Make the file able to shrink (``compact``): auto_vacuum = INCREMENTAL.

    Only VACUUM applies it (a rewrite of the file, once; instant for a new file, whose
    header the switch to WAL has already written). If another process holds the file then,
    it stays as it is and the next open tries again: the store works either way, it just
    does not shrink.
    """
    (mode,) = db.execute("PRAGMA auto_vacuum").fetchone()
    if mode == 2:  # INCREMENTAL
        return
    db.execute("PRAGMA auto_vacuum = INCREMENTAL")
    try:
        db.execute("VACUUM")
    except sqlite3.OperationalError as error:
        log.warning("%s: not converted to incremental vacuum yet: %s", path, error)
    else:
        log.info("%s: converted to incremental vacuum (the file can now shrink)", path)


def _version(db: sqlite3.Connection, path: Path) -> int:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: the store has schema version {version}, newer than this bruteguard"
            f" understands ({SCHEMA_VERSION}); upgrade bruteguard or use another file"
        )
    return version


def _migrate(db: sqlite3.Connection, version: int) -> None:
    """Apply every migration after ``version`` inside the caller's transaction."""
    for number in range(version, SCHEMA_VERSION):
        for statement in _MIGRATIONS[number]:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {number + 1}")


def _insert_failures(db: sqlite3.Connection, failures: Iterable[Failure]) -> set[str]:
    """Insert ``failures``; the addresses they are about."""
    addresses: set[str] = set()
    seen = addresses.add

    def rows() -> Iterator[tuple[object, ...]]:
        # ``storable`` only for text that is not ASCII (nearly none): two calls a row were
        # a tenth of saving a batch.
        for f in failures:
            seen(f.ip)
            user, line = f.user, f.line
            if user is not None and not user.isascii():
                user = storable(user)
            yield (f.time, f.ip, f.jail, user, line if line.isascii() else storable(line))

    db.executemany("INSERT INTO failures VALUES (?, ?, ?, ?, ?)", rows())
    return addresses


def _insert_bans(db: sqlite3.Connection, bans: Iterable[Ban]) -> None:
    db.executemany(
        "INSERT INTO bans (ip, jail, start, until, failures, reason, step, origin)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (b.ip, b.jail, b.start, b.until, b.failures, storable(b.reason), b.step, b.origin)
            for b in bans
        ),
    )


def _upsert_positions(
    db: sqlite3.Connection, positions: Iterable[SourcePosition], now: float
) -> None:
    rows = (
        (
            storable(p.key),
            p.offset,
            _signed(p.device),
            _signed(p.inode),
            p.fingerprint,
            p.cursor,
            now,
        )
        for p in positions
    )
    db.executemany(
        'INSERT INTO positions (key, "offset", device, inode, fingerprint, cursor,'
        " updated) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
        ' "offset" = excluded."offset", device = excluded.device,'
        " inode = excluded.inode, fingerprint = excluded.fingerprint,"
        " cursor = excluded.cursor, updated = excluded.updated",
        rows,
    )
