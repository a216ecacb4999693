"""The subscriber: the fleet's bans and unbans, applied to this host's firewall.

It reads ``bruteguard.bans`` by change number (every ban and every lift takes the next one,
at commit: ``schema.CHANGES_AT_COMMIT``), after the last change it read, which it keeps in
the local ledger (as the source position ``fleet:bans``): a host that was offline catches up
from there, not from the beginning. This host's own bans (unless an admin lifted them), bans
over their host's rate cap and bans the fleet's allowlist covers are skipped, and the cursor
moves past them too (each is read once, not at every poll, and ``fleet status`` counts none
of them as behind); ``fleet.apply`` honours the local ``ignoreip`` and own addresses and
skips bans that already ended.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from bruteguard.fleet.config import FleetConfig
from bruteguard.fleet.connect import Poller
from bruteguard.model import SourcePosition
from bruteguard.store.postgres import BANS_CHANNEL
from bruteguard.store.sqlite import SqliteStore

__all__ = ["CURSOR_KEY", "FleetBan", "Subscriber"]


CURSOR_KEY = "fleet:bans"
_PAGE = 5000
_GAP = 0.05  # seconds: the least time between two reads woken by notifications

# Every change after a change number, oldest first, and whether this host takes it: other
# hosts' bans, and lifts of this host's own bans by an admin (``unban --fleet``). A ban
# lifted before this host saw it comes as a lift (harmless if never applied here).
_CHANGES = """
SELECT b.change, h.name, abbrev(b.ip), b.jail, b.reason, b.failures,
       extract(epoch FROM b.start)::float8, extract(epoch FROM b.until)::float8,
       extract(epoch FROM b.lifted)::float8,
       NOT b.capped
       AND (h.name <> %s OR b.lifted_by IS DISTINCT FROM h.name)
       AND NOT EXISTS (SELECT 1 FROM bruteguard.allowlist a
                       WHERE a.network >>= b.ip OR b.ip >>= a.network)
FROM bruteguard.bans b JOIN bruteguard.hosts h ON h.id = b.host_id
WHERE b.change > %s
ORDER BY b.change
LIMIT %s
"""


class FleetBan(msgspec.Struct, frozen=True):
    """One change of the fleet's bans: a ban of ``origin``'s, or (``lifted``) its end."""

    change: int
    origin: str
    ip: str
    jail: str
    reason: str
    failures: int
    start: float
    until: float
    lifted: float | None  # when it was lifted; None while it stands


Apply = Callable[[Sequence[FleetBan]], Awaitable[None]]


class Subscriber(Poller):
    """Reads the fleet's changes when PostgreSQL announces one (LISTEN/NOTIFY on its own
    connection) and at least every ``publish_interval``; ``apply`` is the daemon's (store
    first, then the enforcers). ``once`` for tests."""

    doing = "read the fleet's bans"

    def __init__(self, fleet: FleetConfig, store: SqliteStore, apply: Apply) -> None:
        super().__init__(fleet)
        self.store = store
        self.apply = apply
        saved = store.get_position(CURSOR_KEY)
        self.cursor = int(saved.cursor) if saved is not None and saved.cursor else 0

    async def run(self) -> None:
        """Read, then wait for the next NOTIFY of a ban (or ``publish_interval``: polling
        stays the fallback, for a notification lost with a connection), and again."""
        retry = 1.0
        try:
            while True:
                if await self.once():
                    retry = 1.0
                    await self._wait()
                else:  # no listener while PostgreSQL is away: try again soon, then less
                    await asyncio.sleep(min(retry, self.fleet.publish_interval))
                    retry *= 2
        finally:
            await self.close()

    async def _wait(self) -> None:
        import psycopg

        started = time.monotonic()
        conn = self._conn
        if conn is None or conn.closed:
            return
        try:
            async for _ in conn.notifies(timeout=self.fleet.publish_interval, stop_after=1):
                pass
        except psycopg.Error:  # the connection broke: the next round reconnects, and says so
            await self.close()
            return
        # Back-to-back wakes (a host's bans in many transactions, or NOTIFYs a stranger
        # sends) read at most every _GAP seconds: what they announce is read in one go.
        await asyncio.sleep(max(0.0, _GAP - (time.monotonic() - started)))

    async def _connection(self) -> Any:
        conn = self._conn
        fresh = await super()._connection()
        if fresh is not conn:  # a new session listens before it reads: nothing slips by
            await fresh.execute(f"LISTEN {BANS_CHANNEL}")
        return fresh

    async def _round(self) -> None:
        """Apply every change after the cursor, a page at a time."""
        while True:
            rows = await self._read()
            changes = [FleetBan(*row[:-1]) for row in rows if row[-1]]
            if changes:
                await self.apply(changes)
            if rows:  # past the skipped ones too: each change is read once
                self.cursor = rows[-1][0]
                await asyncio.to_thread(
                    self.store.set_positions,
                    [SourcePosition(CURSOR_KEY, cursor=str(self.cursor))],
                )
            if len(rows) < _PAGE:
                return

    async def _read(self) -> list[tuple]:
        """The next page of changes, each with whether this host takes it (last column)."""
        conn = await self._connection()
        async with conn.cursor() as cur:
            await cur.execute(_CHANGES, (self.fleet.host, self.cursor, _PAGE))
            return await cur.fetchall()
