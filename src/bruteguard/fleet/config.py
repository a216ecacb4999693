"""``[fleet]``: where the fleet's PostgreSQL is, who this host is, and what it shares.

The password never sits in the DSN (which ends up in process listings, logs and error
messages): it comes from ``password_file`` or libpq's own ``PGPASSWORD``; a DSN carrying one
is refused.
"""

from __future__ import annotations

import re
import socket
from typing import Literal

import msgspec

from bruteguard.bounds import check_absolute, check_duration, check_range
from bruteguard.duration import Seconds

__all__ = ["FleetConfig", "dsn_password"]

HOST_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")
MAX_QUEUE = 10_000_000


def dsn_password(dsn: str) -> bool:
    """Whether ``dsn`` (a URI or ``key=value`` words) carries a password."""
    try:
        from psycopg.conninfo import conninfo_to_dict  # libpq's own parser: both forms
    except ImportError:
        raise ValueError("dsn: [fleet] needs psycopg 3: pip install 'bruteguard[fleet]'") from None
    try:
        return bool(conninfo_to_dict(dsn).get("password"))
    except Exception as error:  # psycopg.ProgrammingError; the message never echoes it
        raise ValueError("dsn: not a valid PostgreSQL connection string") from error


class FleetConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[fleet]`` (docs/fleet.md). ``share`` names what this host publishes."""

    dsn: str
    password_file: str = ""
    host: str = msgspec.field(default_factory=socket.gethostname)
    share: list[Literal["bans", "failures"]] = msgspec.field(
        default_factory=lambda: ["bans", "failures"]
    )
    # The outbound queue's cap in failure summaries; bans are never dropped.
    queue_limit: int = 100_000
    publish_interval: Seconds = Seconds(2)
    samples: int = 3  # sample lines kept per (address, jail, minute)

    def __post_init__(self) -> None:
        if dsn_password(self.dsn):
            raise ValueError(
                "dsn: must not carry a password (it would show in logs and process lists);"
                " use password_file or the PGPASSWORD environment variable"
            )
        check_absolute("password_file", self.password_file)
        if not HOST_NAME.match(self.host):
            raise ValueError(
                "host: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        check_range("queue_limit", self.queue_limit, 100, MAX_QUEUE)
        check_duration("publish_interval", self.publish_interval, 600.0)
        check_range("samples", self.samples, 0, 20)
        self.share = list(dict.fromkeys(self.share))

    def password(self) -> str | None:
        """The password from ``password_file`` (first line), or None (libpq reads
        PGPASSWORD or ~/.pgpass itself)."""
        if not self.password_file:
            return None
        with open(self.password_file, encoding="utf-8") as file:
            return file.readline().rstrip("\r\n")
