"""Connections to the fleet's PostgreSQL: the DSN plus a password kept out of it."""

from __future__ import annotations

import time
from typing import Any

from bruteguard.errors import BruteguardError
from bruteguard.fleet.config import FleetConfig

__all__ = ["FleetError", "Poller", "connect_args"]


def _log() -> Any:
    """The fleet's logger, taken when there is something to say: the CLI commands that
    import this module for ``FleetError`` (every command's parser) don't load logging."""
    import logging

    return logging.getLogger("bruteguard.fleet")


class FleetError(BruteguardError):
    """The fleet's PostgreSQL refused or failed a request (the message never holds a secret)."""


def connect_args(fleet: FleetConfig, dsn: str | None = None) -> dict[str, Any]:
    """``psycopg.connect`` keywords: ``dsn`` (default the configured one) and the password
    from ``password_file`` when set (libpq reads PGPASSWORD itself)."""
    args: dict[str, Any] = {
        "conninfo": dsn or fleet.dsn,
        "application_name": f"bruteguard {fleet.host}",
        "autocommit": True,
    }
    try:
        password = fleet.password()
    except OSError as error:
        raise FleetError(f"fleet.password_file: cannot read: {error.strerror}") from None
    if password is not None:
        args["password"] = password
    return args


class Poller:
    """A task that talks to the fleet every ``publish_interval`` on one connection of its
    own, opened on demand and dropped on any error; an outage is logged once, not per round.
    Subclasses do one round in ``_round``; its errors (PostgreSQL's, the network's, an
    unreadable password file, the local ledger's) end the round, never the task."""

    doing = "talk to the fleet"  # for the log: "cannot publish", …

    def __init__(self, fleet: FleetConfig) -> None:
        self.fleet = fleet
        self._conn: Any = None  # psycopg.AsyncConnection (imported lazily)
        self._down = False
        self.last_ok: float | None = None  # when a round last finished (metrics: fleet lag)

    @property
    def down(self) -> bool:
        """Whether the last round failed (PostgreSQL or the network is out)."""
        return self._down

    async def run(self) -> None:
        import asyncio  # the daemon's: a CLI command that names FleetError doesn't pay for it

        try:
            while True:
                await self.once()
                await asyncio.sleep(self.fleet.publish_interval)
        finally:
            await self.close()

    async def once(self) -> bool:
        """One round; whether the fleet answered."""
        import psycopg

        try:
            await self._round()
        except (psycopg.Error, OSError, BruteguardError) as error:  # the ledger's too
            await self.close()
            if not self._down:
                _log().warning("fleet: cannot %s (will retry): %s", self.doing, error)
                self._down = True
            return False
        if self._down:
            _log().warning("fleet: can %s again", self.doing)
            self._down = False
        self.last_ok = time.time()
        return True

    async def _round(self) -> None:
        raise NotImplementedError

    async def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(**connect_args(self.fleet))
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
