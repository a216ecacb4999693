"""The publisher: drains the local outbound queue into the fleet's PostgreSQL, exactly once.

Each round sends the oldest ban events and summaries in one PostgreSQL transaction, then
forgets them locally. Killed between the two, the next round sends them again and the
fleet's ``ON CONFLICT (host, local id) DO NOTHING`` (and ``lifted IS NULL``) make the resend
a no-op: at least once on the wire, exactly once in the fleet. PostgreSQL down: the round
fails, is logged once per outage, and the queue (bounded, ``fleet.outbox.trim``) waits.
Local protection never waits for any of this.
"""

from __future__ import annotations

import asyncio
import logging

from bruteguard.fleet import outbox
from bruteguard.fleet.config import FleetConfig
from bruteguard.fleet.connect import Poller
from bruteguard.store.sqlite import SqliteStore

__all__ = ["Publisher"]

log = logging.getLogger(__name__)

_BATCH = 1000
# Which of the bans just published the fleet marked over this host's cap (blast radius).
_CAPPED = (
    "SELECT count(*)::int, max(h.max_bans_per_minute) FROM bruteguard.bans b"
    " JOIN bruteguard.hosts h ON h.id = b.host_id"
    " WHERE b.host_id = bruteguard.agent_host() AND b.local_id = ANY(%s) AND b.capped"
)


class Publisher(Poller):
    """One host's publisher; ``run`` until cancelled, or ``once`` (tests)."""

    doing = "publish (queueing locally)"

    def __init__(self, fleet: FleetConfig, store: SqliteStore) -> None:
        super().__init__(fleet)
        self.store = store
        self._capped = (0, 0)  # this round's bans over the host's cap, and the cap

    async def _round(self) -> None:
        """Trim the queue, then send batches while whole ones were sent."""
        dropped = await asyncio.to_thread(outbox.trim, self.store, self.fleet.queue_limit)
        if dropped:
            log.warning("fleet queue full: dropped the %d oldest failure summaries", dropped)
        self._capped = (0, 0)
        try:
            while await self._send_batch():
                pass
        finally:
            capped, cap = self._capped
            if capped:  # this host's admin must hear it: the fleet silently ignores them
                log.warning(
                    "fleet: %d of this host's bans were over its cap of %d a minute: the"
                    " fleet keeps them, no other host applies them",
                    capped,
                    cap,
                )

    async def _send_batch(self) -> bool:
        """Send one batch; whether it was full (more may wait)."""
        events, summaries = await asyncio.to_thread(outbox.take, self.store, _BATCH)
        waiting = await asyncio.to_thread(outbox.length, self.store)
        conn = await self._connection()
        capped = None
        async with conn.transaction(), conn.cursor() as cur:
            for event in events:
                if not event.ip:
                    continue  # the ban was pruned locally before it could be sent
                if event.kind == "ban":
                    await cur.execute(
                        "SELECT bruteguard.publish_ban(%s, %s, %s, %s, %s, %s, %s)",
                        (
                            event.ban_id,
                            event.ip,
                            event.jail,
                            event.reason,
                            event.failures,
                            event.start,
                            event.until,
                        ),
                    )
                elif event.lifted is not None:
                    await cur.execute(
                        "SELECT bruteguard.lift_ban(%s, %s)", (event.ban_id, event.lifted)
                    )
            if summaries:
                await cur.executemany(
                    "SELECT bruteguard.publish_failures(%s, %s, %s, %s, %s, %s)",
                    [(s.id, s.ip, s.jail, s.minute, s.count, list(s.samples)) for s in summaries],
                )
            published = [e.ban_id for e in events if e.kind == "ban" and e.ip]
            if published:
                await cur.execute(_CAPPED, (published,))
                capped = await cur.fetchone()
            await cur.execute(
                "SELECT bruteguard.heartbeat(%s, %s)",
                (self.fleet.host, sum(waiting) - len(events) - len(summaries)),
            )
        if capped is not None and capped[0]:  # counted once committed
            self._capped = (self._capped[0] + capped[0], capped[1])
        await asyncio.to_thread(outbox.forget, self.store, [e.id for e in events], summaries)
        return len(events) == _BATCH or len(summaries) == _BATCH
