"""One look at what is happening: the numbers ``top`` and the dashboard show.

The ledger is opened read-only (``mode=ro``): a viewer never takes a write lock from the
daemon. The daemon's own counters (sources and their lag) come over the control socket;
when it is not running the ledger's numbers still show, with the reason beside them. Every
text here (user names, reasons) may be attacker text: the views escape it, this does not.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from bruteguard.config import Config
from bruteguard.control import request
from bruteguard.errors import BruteguardError
from bruteguard.model import BanRow, ban_view

__all__ = ["Snapshot", "take"]

ROWS = 50  # bans, failures and cases listed; counts are always whole
_RATE_WINDOW = 600.0  # failures per minute over the last ten minutes
_TOP_WINDOW = 86400.0  # top attackers and users of the last day


class Attacker(msgspec.Struct):
    ip: str
    failures: int
    last: float
    jails: str


class FailureLine(msgspec.Struct):
    time: float
    ip: str
    jail: str
    user: str | None


class JailRate(msgspec.Struct):
    jail: str
    per_minute: float
    last_hour: int
    banned_now: int


class SourceLag(msgspec.Struct):
    jail: str
    source: str
    reading: bool
    lines: int | None
    lag: float | None  # seconds since its newest line (None: no line yet)
    behind: int | None  # bytes of log not yet read


class CaseLine(msgspec.Struct):
    id: str
    kind: str
    state: str
    contact: str | None
    opened: float
    addresses: int


class Snapshot(msgspec.Struct):
    now: float
    active: int
    bans: list[dict[str, Any]]  # ban_view(), as `bans --json` shows them, and "lifted"
    recent: list[dict[str, Any]]
    attackers: list[Attacker]
    users: list[tuple[str, int]]
    failures: list[FailureLine]
    jails: list[JailRate]
    sources: list[SourceLag]
    cases: list[CaseLine]
    daemon: str  # "running since …" facts or why it did not answer
    fleet: list[dict[str, Any]] | None = None  # the fleet's newest active bans, with [fleet]
    fleet_error: str = ""


@contextlib.contextmanager
def _ledger(path: str) -> Iterator[sqlite3.Connection | None]:
    """The ledger, read-only; None when there is none yet (nothing has happened)."""
    if not Path(path).exists():
        yield None
        return
    db = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True, timeout=5.0)
    try:
        yield db
    finally:
        db.close()


_EMPTY: dict[str, Any] = {"active": 0, "bans": [], "recent": [], "attackers": [], "users": [],
                          "failures": [], "jails": [], "cases": []}  # fmt: skip


def _tables(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _rates(db: sqlite3.Connection, now: float) -> list[JailRate]:
    """Failures per minute (last ten minutes) and in the last hour, and bans, per jail."""
    banned = dict(
        db.execute(
            "SELECT jail, count(*) FROM bans WHERE lifted IS NULL AND until > ? GROUP BY jail",
            (now,),
        )
    )
    rates = {
        jail: (recent, hour)
        for jail, recent, hour in db.execute(
            "SELECT jail, sum(time > ?), count(*) FROM failures WHERE time > ? GROUP BY jail",
            (now - _RATE_WINDOW, now - 3600),
        )
    }
    jails = []
    for jail in sorted(set(rates) | set(banned)):
        recent, hour = rates.get(jail, (0, 0))
        jails.append(JailRate(jail, recent * 60 / _RATE_WINDOW, hour, banned.get(jail, 0)))
    return jails


def _ban(row: tuple, now: float) -> dict[str, Any]:
    ban = BanRow(*row)
    return {**ban_view(ban.ban(), now), "lifted": ban.lifted}


def _cases(db: sqlite3.Connection) -> list[CaseLine]:
    if "cases" not in _tables(db):
        return []
    rows = db.execute(
        "SELECT c.id, c.kind, c.state, c.contact, c.opened,"
        " (SELECT count(*) FROM case_addresses a WHERE a.case_id = c.id)"
        " FROM cases c ORDER BY c.opened DESC LIMIT ?",
        (ROWS,),
    )
    return [CaseLine(*row) for row in rows]


def _from_ledger(db: sqlite3.Connection | None, now: float) -> dict[str, Any]:
    if db is None:
        return dict(_EMPTY)
    day = now - _TOP_WINDOW
    active = db.execute(
        "SELECT count(*) FROM bans WHERE lifted IS NULL AND until > ?", (now,)
    ).fetchone()[0]
    bans = db.execute(
        "SELECT ip, jail, start, until, failures, reason, step, origin, lifted FROM bans"
        " WHERE lifted IS NULL AND until > ? ORDER BY start DESC LIMIT ?",
        (now, ROWS),
    )
    recent = db.execute(
        "SELECT ip, jail, start, until, failures, reason, step, origin, lifted FROM bans"
        " WHERE start > ? ORDER BY start DESC LIMIT ?",
        (day, ROWS),
    )
    attackers = db.execute(
        "SELECT ip, count(*), max(time), group_concat(DISTINCT jail) FROM failures"
        " WHERE time > ? GROUP BY ip ORDER BY 2 DESC, 3 DESC LIMIT ?",
        (day, ROWS // 5),
    )
    users = db.execute(
        "SELECT user, count(*) FROM failures WHERE time > ? AND user IS NOT NULL"
        " GROUP BY user ORDER BY 2 DESC LIMIT ?",
        (day, ROWS // 5),
    )
    failures = db.execute(
        "SELECT time, ip, jail, user FROM failures ORDER BY time DESC LIMIT ?", (ROWS // 2,)
    )
    return {
        "active": active,
        "bans": [_ban(row, now) for row in bans],
        "recent": [_ban(row, now) for row in recent],
        "attackers": [Attacker(*row) for row in attackers],
        "users": [(user, n) for user, n in users],
        "failures": [FailureLine(*row) for row in failures],
        "jails": _rates(db, now),
        "cases": _cases(db),
    }


def _sources(status: dict[str, Any], now: float) -> list[SourceLag]:
    lags = []
    for jail in status.get("jails", []):
        for source in jail.get("sources", []):
            last = source.get("last_line")
            done, size = source.get("read_bytes"), source.get("size_bytes")
            lags.append(
                SourceLag(
                    jail=jail["name"],
                    source=str(source.get("detail", "")),
                    reading=bool(source.get("reading")),
                    lines=source.get("lines"),
                    lag=None if last is None else max(0.0, now - last),
                    behind=None if done is None or size is None else max(0, size - done),
                )
            )
    return lags


def _daemon(config: Config) -> tuple[str, dict[str, Any]]:
    try:
        status = request(config.socket, "status")
    except BruteguardError as error:
        return str(error), {}
    return f"running; enforcers: {', '.join(status.get('enforcers', []))}", status


def take(config: Config, now: float, *, fleet: bool = True) -> Snapshot:
    """The numbers now. Blocking (SQLite, the control socket, PostgreSQL): a server runs
    it in a thread."""
    daemon, status = _daemon(config)
    with _ledger(config.store) as db:
        numbers = _from_ledger(db, now)
    fleet_bans, fleet_error = None, ""
    if fleet and config.fleet is not None:
        from bruteguard.fleet.views import active_fleet_bans

        try:
            fleet_bans = active_fleet_bans(config.fleet, limit=ROWS)
        except BruteguardError as error:
            fleet_error = str(error)
    return Snapshot(
        now=now,
        sources=_sources(status, now),
        daemon=daemon,
        fleet=fleet_bans,
        fleet_error=fleet_error,
        **numbers,
    )
