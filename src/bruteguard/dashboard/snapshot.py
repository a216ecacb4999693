"""One look at what is happening: the numbers ``top`` and the dashboard show.

The ledger is opened read-only (``mode=ro``): a viewer never takes a write lock from the
daemon. The daemon's own counters (sources and their lag) come over the control socket;
when it is not running the ledger's numbers still show, with the reason beside them. Every
text here (user names, reasons) may be attacker text: the views escape it, this does not.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from bruteguard.config import Config
from bruteguard.control import request
from bruteguard.errors import BruteguardError
from bruteguard.model import BanRow, ban_view

__all__ = ["Snapshot", "Snapshots"]

ROWS = 50  # bans, failures and cases listed; counts are always whole
_RATE_WINDOW = 600.0  # failures per minute over the last ten minutes
_TOP_WINDOW = 3600.0  # top attackers and users of the last hour


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


def _tables(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _ban(row: tuple, now: float) -> dict[str, Any]:
    ban = BanRow(*row)
    return {**ban_view(ban.ban(), now), "lifted": ban.lifted}


def _live(db: sqlite3.Connection | None, now: float) -> dict[str, Any]:
    """What an index answers in milliseconds, whatever the ledger's size: taken each time."""
    if db is None:
        return {"active": 0, "bans": [], "recent": [], "failures": [], "banned": {}}
    bans = db.execute(
        "SELECT ip, jail, start, until, failures, reason, step, origin, lifted FROM bans"
        " WHERE lifted IS NULL AND until > ? ORDER BY start DESC LIMIT ?",
        (now, ROWS),
    )
    recent = db.execute(
        "SELECT ip, jail, start, until, failures, reason, step, origin, lifted FROM bans"
        " WHERE start > ? ORDER BY start DESC LIMIT ?",
        (now - 86400, ROWS),
    )
    failures = db.execute(
        "SELECT time, ip, jail, user FROM failures ORDER BY time DESC LIMIT ?", (ROWS // 2,)
    )
    banned = dict(
        db.execute(
            "SELECT jail, count(*) FROM bans WHERE lifted IS NULL AND until > ? GROUP BY jail",
            (now,),
        )
    )
    return {
        "active": sum(banned.values()),
        "bans": [_ban(row, now) for row in bans],
        "recent": [_ban(row, now) for row in recent],
        "failures": [FailureLine(*row) for row in failures],
        "banned": banned,
    }


def _aggregates(db: sqlite3.Connection | None, now: float) -> dict[str, Any]:
    """What needs a pass over the last hour's failures (0.1-0.4 s at 40,000 an hour): taken
    at most every ``Snapshots.slow`` seconds."""
    if db is None:
        return {"attackers": [], "users": [], "rates": {}, "cases": []}
    hour = now - _TOP_WINDOW
    attackers = db.execute(
        "SELECT ip, count(*), max(time), group_concat(DISTINCT jail) FROM failures"
        " WHERE time > ? GROUP BY ip ORDER BY 2 DESC, 3 DESC LIMIT ?",
        (hour, ROWS // 5),
    )
    users = db.execute(
        "SELECT user, count(*) FROM failures WHERE time > ? AND user IS NOT NULL"
        " GROUP BY user ORDER BY 2 DESC LIMIT ?",
        (hour, ROWS // 5),
    )
    rates = db.execute(
        "SELECT jail, sum(time > ?), count(*) FROM failures WHERE time > ? GROUP BY jail",
        (now - _RATE_WINDOW, hour),
    )
    cases: list[CaseLine] = []
    if "cases" in _tables(db):
        cases = [
            CaseLine(*row)
            for row in db.execute(
                "SELECT c.id, c.kind, c.state, c.contact, c.opened,"
                " (SELECT count(*) FROM case_addresses a WHERE a.case_id = c.id)"
                " FROM cases c ORDER BY c.opened DESC LIMIT ?",
                (ROWS,),
            )
        ]
    return {
        "attackers": [Attacker(*row) for row in attackers],
        "users": [(user, n) for user, n in users],
        "rates": {jail: (recent, last_hour) for jail, recent, last_hour in rates},
        "cases": cases,
    }


def _jails(rates: dict[str, tuple[int, int]], banned: dict[str, int]) -> list[JailRate]:
    jails = []
    for jail in sorted(set(rates) | set(banned)):
        recent, hour = rates.get(jail, (0, 0))
        jails.append(JailRate(jail, recent * 60 / _RATE_WINDOW, hour, banned.get(jail, 0)))
    return jails


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


def _fleet(config: Config) -> tuple[list[dict[str, Any]] | None, str]:
    if config.fleet is None:
        return None, ""
    from bruteguard.fleet.views import active_fleet_bans

    try:
        return active_fleet_bans(config.fleet, limit=ROWS), ""
    except BruteguardError as error:
        return None, str(error)


class Snapshots:
    """Snapshots of one configuration. Blocking (SQLite, the control socket, PostgreSQL): a
    server calls ``take`` in a thread, one at a time.

    What an index answers is read on every ``take``. The aggregates over the last hour and
    the fleet's bans are taken again when a failure arrived since, at most every ``busy``
    seconds, and otherwise every ``slow`` seconds (the hour's window slides): at a million
    failures a day one pass over the hour costs 0.1-0.4 s, which once a second would keep
    a core half busy.
    """

    def __init__(
        self, config: Config, *, fleet: bool = True, slow: float = 10.0, busy: float = 2.0
    ) -> None:
        self.config = config
        self.fleet = fleet
        self.slow = slow
        self.busy = busy
        self._slow: tuple[float, Any, dict[str, Any]] | None = None
        self.cost = 0.0  # seconds the last live part took (the daemon's status included)

    def pause(self, wanted: float) -> float:
        """Seconds to wait before the next ``take``: ``wanted``, or five times what the last
        live part cost, so a viewer never keeps more than a fifth of a core (nor the
        daemon's status) busy, whatever the ledger's size. (The aggregates have their own
        bound: ``busy`` and ``slow``.)"""
        return max(wanted, 5 * self.cost)

    def forget(self) -> None:
        """Take everything afresh next time (after an action changed it)."""
        self._slow = None

    def _stale(self, now: float, newest: Any) -> bool:
        if self._slow is None:
            return True
        taken, seen, _ = self._slow
        age = now - taken
        return not 0 <= age < self.slow or (age >= self.busy and newest != seen)

    def take(self, now: float) -> Snapshot:
        started = time.monotonic()
        daemon, status = _daemon(self.config)
        with _ledger(self.config.store) as db:
            live = _live(db, now)
            self.cost = time.monotonic() - started
            newest = live["failures"][0] if live["failures"] else None
            if self._stale(now, newest):
                slow = _aggregates(db, now)
                slow["fleet"] = _fleet(self.config) if self.fleet else (None, "")
                self._slow = (now, newest, slow)
        assert self._slow is not None
        slow = self._slow[2]
        banned = live.pop("banned")
        rates = slow["rates"]
        fleet_bans, fleet_error = slow["fleet"]
        return Snapshot(
            now=now,
            sources=_sources(status, now),
            daemon=daemon,
            jails=_jails(rates, banned),
            attackers=slow["attackers"],
            users=slow["users"],
            cases=slow["cases"],
            fleet=fleet_bans,
            fleet_error=fleet_error,
            **live,
        )
