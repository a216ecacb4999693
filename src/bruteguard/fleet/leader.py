"""The leader: one host at a time decides the fleet-wide thresholds.

Every host runs this task; the one whose dedicated connection holds the session-level
advisory lock ``schema.LEADER_LOCK`` decides. The lock belongs to the session, so a leader
that dies, hangs up or is cut off (``pg_terminate_backend``) loses it the moment PostgreSQL
notices, and the next host to try it within ``publish_interval`` takes over. What it
decides, ``bruteguard.decide_fleet_bans`` records under a unique (address, jail, window)
key and only for the lock's holder: a new leader that decides the same window again, or a
former one, inserts nothing.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from bruteguard.clock import Clock, system_clock
from bruteguard.config import RECIDIVE, JailConfig
from bruteguard.fleet.config import FleetConfig
from bruteguard.fleet.connect import Poller
from bruteguard.store.postgres import LEADER_LOCK

__all__ = ["Leader"]

log = logging.getLogger("bruteguard.fleet")


# The server ends a leader's session (and so frees the lock) soon after its host vanishes
# from the network: TCP keepalives after 5 s idle, 3 probes 2 s apart, and unacknowledged
# data given up after 10 s; by default a silent peer would hold the lock for hours.
_NOTICE_A_LOST_LEADER = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 10000",
)


def _rule(jail: JailConfig) -> dict[str, float]:
    """The jail's thresholds and escalation, as ``decide_fleet_bans`` reads them."""
    return {
        "findtime": float(jail.fleet_findtime),
        "maxretry": jail.fleet_maxretry,
        "hosts": jail.fleet_hosts,
        "bantime": float(jail.bantime),
        "factor": float(jail.bantime_factor),
        "maxtime": jail.longest_ban,
        "v6_prefix": jail.ipv6_prefix,
        "v4_prefix": jail.ipv4_prefix,
        "subnet_maxretry": jail.subnet_maxretry,
        "subnet_findtime": float(jail.subnet_findtime),
    }


def _recidive_rule(jail: JailConfig) -> dict[str, float | str]:
    """Recidive's window (its ``maxretry`` counts bans in other jails) and ban times."""
    return {
        "jail": jail.name,
        "maxretry": jail.maxretry,
        "findtime": float(jail.findtime),
        "bantime": float(jail.bantime),
        "factor": float(jail.bantime_factor),
        "maxtime": jail.longest_ban,
    }


_MAINTENANCE = 3600.0  # seconds between the leader's rounds of partition upkeep


class Leader(Poller):
    """Tries the lock every round; while it holds it, decides every jail with a fleet
    threshold (``fleet_maxretry`` or ``fleet_hosts``). A host with no such jail neither
    connects nor leads. ``jails`` is read each round, so a reload's thresholds count from
    the next one. ``decided`` holds the latest bans this task decided (for tests and logs)."""

    doing = "take part in the fleet's leader election"

    def __init__(
        self,
        fleet: FleetConfig,
        jails: Callable[[], Sequence[JailConfig]],
        clock: Clock = system_clock,
    ) -> None:
        super().__init__(fleet)
        self.jails = jails
        self.clock = clock
        self.leading = False
        self._maintained = -math.inf  # monotonic time of the last maintenance: at once
        self.decided: deque[tuple[str, str]] = deque(maxlen=100)  # (address, jail), newest

    async def _round(self) -> None:
        jails = list(self.jails())
        deciding = [jail for jail in jails if jail.fleet_maxretry or jail.fleet_hosts]
        if not deciding:  # nothing to decide here: leave the lead to a host that has
            await self.close()
            return
        conn = await self._connection()
        if not self.leading:
            for setting in _NOTICE_A_LOST_LEADER:
                await conn.execute(setting)
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))
            row = await cursor.fetchone()
            self.leading = bool(row and row[0])
            if not self.leading:
                return
            log.warning("fleet: %s is the leader now", self.fleet.host)
        if time.monotonic() >= self._maintained + _MAINTENANCE:
            await self._maintain(conn)
        now = self.clock()
        for jail in deciding:
            await self._decide(
                conn,
                "SELECT * FROM bruteguard.decide_fleet_bans(%s, %s, %s::jsonb)",
                (jail.name, now, json.dumps(_rule(jail))),
            )
        recidive = next((jail for jail in jails if jail.filter == RECIDIVE), None)
        if recidive is not None:  # repeat offenders across the fleet (docs/escalation.md)
            await self._decide(
                conn,
                "SELECT * FROM bruteguard.decide_fleet_recidive(%s, %s::jsonb)",
                (now, json.dumps(_recidive_rule(recidive))),
            )

    async def _maintain(self, conn: Any) -> None:
        """Today's and the next days' partitions of failure summaries made, those older than
        the admin's ``fleet expire --keep`` dropped (docs/fleet.md, Retention)."""
        cursor = await conn.execute("SELECT * FROM bruteguard.leader_maintenance()")
        row = await cursor.fetchone()
        self._maintained = time.monotonic()
        if row and row[1]:
            log.warning("fleet: dropped %d daily partitions of failure summaries", row[1])

    async def _decide(self, conn: Any, query: str, params: tuple[Any, ...]) -> None:
        cursor = await conn.execute(query, params)
        for address, jail, step in await cursor.fetchall():
            log.warning("fleet: banned %s in %s by the fleet (ban %d of it)", address, jail, step)
            self.decided.append((address, jail))

    async def close(self) -> None:
        """Closing the connection releases the lock: leadership ends with it."""
        if self.leading:
            log.warning("fleet: %s is no longer the leader", self.fleet.host)
        self.leading = False
        await super().close()
