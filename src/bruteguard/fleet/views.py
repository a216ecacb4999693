"""Read-only views of the fleet's PostgreSQL that more than one command shows."""

from __future__ import annotations

from typing import Any

from bruteguard.fleet.config import FleetConfig
from bruteguard.fleet.connect import FleetError, connect_args

__all__ = ["active_bans", "active_fleet_bans"]

_ACTIVE_BANS = (
    "SELECT abbrev(b.ip), h.name, b.jail, b.failures,"
    " extract(epoch FROM b.until)::float8, b.reason"
    " FROM bruteguard.bans b JOIN bruteguard.hosts h ON h.id = b.host_id"
    " WHERE b.lifted IS NULL AND b.until > now() AND NOT b.capped"
)
_FIELDS = ("ip", "origin", "jail", "failures", "until", "reason")


def active_bans(conn: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """The fleet's active bans with the host that decided each: all of them oldest first
    (``bans --fleet``), or the newest ``limit`` (the dashboard)."""
    import psycopg

    query = _ACTIVE_BANS + (" ORDER BY b.id" if limit is None else " ORDER BY b.id DESC LIMIT %s")
    try:
        rows = conn.execute(query, () if limit is None else (limit,)).fetchall()
    except psycopg.Error as error:
        raise FleetError(f"the fleet's bans: {error}") from None
    return [dict(zip(_FIELDS, row, strict=True)) for row in rows]


def active_fleet_bans(fleet: FleetConfig, limit: int) -> list[dict[str, Any]]:
    """``active_bans`` on a connection of its own, as this host's agent role."""
    import psycopg

    try:
        with psycopg.connect(**connect_args(fleet), connect_timeout=5) as conn:
            return active_bans(conn, limit)
    except psycopg.Error as error:
        raise FleetError(f"cannot connect to the fleet's PostgreSQL: {error}") from None
