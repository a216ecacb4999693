"""Connections to the fleet's PostgreSQL: the DSN plus a password kept out of it."""

from __future__ import annotations

from typing import Any

from bruteguard.errors import BruteguardError
from bruteguard.fleet.config import FleetConfig

__all__ = ["FleetError", "connect_args"]


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
