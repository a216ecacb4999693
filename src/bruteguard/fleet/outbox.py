"""The outbound queue in the local SQLite ledger: what this host has yet to tell the fleet.

Filled by triggers inside the ledger's own transactions, so a failure or ban is queued if and
only if it was recorded (no window where one exists without the other, and no change to the
daemon's hot path). Failures are folded into one row per (address, jail, minute) with a
count and the first few lines; ban events (a ban, a lift) reference the ban's row. Bans
that came from the fleet (``origin`` set) are never sent back. The
queue's AUTOINCREMENT ids never repeat, so (host, id) is the idempotent key the fleet's
``ON CONFLICT DO NOTHING`` relies on.

Bounded: ``trim`` drops the oldest summaries beyond the cap; ban events are never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import msgspec

from bruteguard.store.sqlite import SqliteStore

__all__ = ["BanEvent", "Summary", "disable", "enable", "forget", "length", "take", "trim"]

_TRIGGERS = ("fleet_queue_failure", "fleet_queue_ban", "fleet_queue_lift")
# One row per (address, jail, minute): a count and the first SAMPLES lines.
_FAILURE_TRIGGER = (
    "CREATE TRIGGER fleet_queue_failure AFTER INSERT ON failures BEGIN"
    " INSERT INTO fleet_summaries (ip, jail, minute, count, samples)"
    " VALUES (NEW.ip, NEW.jail, CAST(NEW.time / 60 AS INTEGER) * 60, 1,"
    " CASE WHEN SAMPLES > 0 THEN json_array(NEW.line) ELSE '[]' END)"
    " ON CONFLICT (ip, jail, minute) DO UPDATE SET count = count + 1,"
    " samples = CASE WHEN json_array_length(samples) < SAMPLES"
    " THEN json_insert(samples, '$[#]', NEW.line) ELSE samples END;"
    " END"
)


class Summary(msgspec.Struct, frozen=True):
    """Failures of one address in one jail within one minute (``minute``: its first second)."""

    id: int
    ip: str
    jail: str
    minute: int
    count: int
    samples: tuple[str, ...]


class BanEvent(msgspec.Struct, frozen=True):
    """A local ban (``kind`` "ban") or its end ("lift"), with the ban row as it is now."""

    id: int
    kind: str
    ban_id: int
    ip: str
    jail: str
    start: float
    until: float
    failures: int
    reason: str
    lifted: float | None


def enable(store: SqliteStore, share: Iterable[str], samples: int) -> None:
    """Queue what ``share`` names ("failures", "bans") from now on; stop queueing the rest."""
    share = set(share)
    statements = [f"DROP TRIGGER IF EXISTS {name}" for name in _TRIGGERS]
    if "failures" in share:
        statements.append(_FAILURE_TRIGGER.replace("SAMPLES", str(int(samples))))
    if "bans" in share:
        statements += [
            "CREATE TRIGGER fleet_queue_ban AFTER INSERT ON bans WHEN NEW.origin = '' BEGIN"
            " INSERT INTO fleet_ban_events (ban_id, kind) VALUES (NEW.id, 'ban'); END",
            "CREATE TRIGGER fleet_queue_lift AFTER UPDATE OF lifted ON bans"
            " WHEN OLD.lifted IS NULL AND NEW.lifted IS NOT NULL AND NEW.origin = '' BEGIN"
            " INSERT INTO fleet_ban_events (ban_id, kind) VALUES (NEW.id, 'lift'); END",
        ]
    with store.write("set up the fleet queue", durable=False) as db:
        for statement in statements:
            db.execute(statement)


def disable(store: SqliteStore) -> None:
    """No [fleet]: queue nothing (the queue's rows stay until a fleet drains them)."""
    with store.read("check the fleet queue") as db:
        present = db.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'fleet_%'"
        ).fetchone()[0]
    if present:
        enable(store, (), 0)


def length(store: SqliteStore) -> tuple[int, int]:
    """(ban events, summaries) waiting."""
    with store.read("count the fleet queue") as db:
        bans = db.execute("SELECT count(*) FROM fleet_ban_events").fetchone()[0]
        summaries = db.execute("SELECT count(*) FROM fleet_summaries").fetchone()[0]
    return int(bans), int(summaries)


def trim(store: SqliteStore, limit: int) -> int:
    """Drop the oldest summaries beyond ``limit``; returns how many (bans are never dropped)."""
    with store.write("trim the fleet queue", durable=False) as db:
        return db.execute(
            "DELETE FROM fleet_summaries WHERE id IN (SELECT id FROM fleet_summaries"
            " ORDER BY id LIMIT max(0, (SELECT count(*) FROM fleet_summaries) - ?))",
            (limit,),
        ).rowcount


def take(store: SqliteStore, most: int) -> tuple[list[BanEvent], list[Summary]]:
    """The oldest ``most`` ban events and summaries, oldest first (nothing is removed:
    ``forget`` them once the fleet has them). A ban pruned meanwhile comes back without
    its row (``ip`` empty): there is nothing left to tell."""
    with store.read("read the fleet queue") as db:
        events = db.execute(
            "SELECT e.id, e.kind, e.ban_id, coalesce(b.ip, ''), coalesce(b.jail, ''),"
            " coalesce(b.start, 0), coalesce(b.until, 0), coalesce(b.failures, 0),"
            " coalesce(b.reason, ''), b.lifted"
            " FROM fleet_ban_events e LEFT JOIN bans b ON b.id = e.ban_id"
            " ORDER BY e.id LIMIT ?",
            (most,),
        ).fetchall()
        summaries = db.execute(
            "SELECT id, ip, jail, minute, count, samples FROM fleet_summaries ORDER BY id LIMIT ?",
            (most,),
        ).fetchall()
    return (
        [BanEvent(*row) for row in events],
        [
            Summary(id_, ip, jail, minute, count, tuple(json.loads(samples)))
            for id_, ip, jail, minute, count, samples in summaries
        ],
    )


def forget(store: SqliteStore, events: Iterable[int], summaries: Iterable[Summary]) -> None:
    """Remove what the fleet has acknowledged.

    A summary that counted more failures since it was taken (the same minute went on) keeps
    the difference, under a new id: the sent id is spent (the fleet ignores it from now on).
    """
    with store.write("empty the fleet queue", durable=False) as db:
        db.executemany("DELETE FROM fleet_ban_events WHERE id = ?", ((i,) for i in events))
        for sent in summaries:
            row = db.execute(
                "DELETE FROM fleet_summaries WHERE id = ? RETURNING count, samples", (sent.id,)
            ).fetchone()
            if row is not None and row[0] > sent.count:
                count, samples = row
                db.execute(
                    "INSERT INTO fleet_summaries (ip, jail, minute, count, samples)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        sent.ip,
                        sent.jail,
                        sent.minute,
                        count - sent.count,
                        json.dumps(json.loads(samples)[len(sent.samples) :]),
                    ),
                )
