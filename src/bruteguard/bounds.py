"""The bounds of the configuration: a range for every number and absolute paths.

Every number has a range, so no value can be too big ever to act on (``maxretry = 2**70``
never bans) or to hold in a firewall's timeout. The checks raise ValueError starting with the
key's name (``maxretry: must be …``), which the configuration's loader turns into
``FILE: jails.NAME.maxretry: must be …``.
"""

from __future__ import annotations

import os

from bruteguard.duration import format_duration

__all__ = [
    "MAX_BAN",
    "MAX_COUNT",
    "MAX_IPFW_TABLE",
    "MAX_NETWORK_WAIT",
    "MAX_PORT",
    "MAX_WINDOW",
    "check_absolute",
    "check_duration",
    "check_range",
]

MAX_COUNT = 10_000  # maxretry, subnet_maxretry
MAX_WINDOW = 365 * 86400.0  # findtime, subnet_findtime, caches, the abuse period
MAX_BAN = 3650 * 86400.0  # bantime, maxtime, blocklists, the desk's blocks and pauses
MAX_NETWORK_WAIT = 600.0  # SMTP and lookup timeouts and deadline
MAX_PORT = 65535
MAX_IPFW_TABLE = 65534


def check_range(key: str, value: float, low: float, high: float) -> None:
    """ValueError naming ``key`` and its range unless ``low <= value <= high``."""
    if not low <= value <= high:
        raise ValueError(f"{key}: must be {low:g} to {high:g}, got {value!r}")


def check_duration(key: str, value: float, high: float, *, zero: bool = False) -> None:
    """A duration of 1s to ``high``, or 0 where ``zero`` (0 means "never" or "the default")."""
    if not (1.0 <= value <= high or (zero and value == 0)):
        allowed = f"{'0 or ' if zero else ''}1s to {format_duration(high)}"
        raise ValueError(f"{key}: must be {allowed}, got {value!r} seconds")


def check_absolute(key: str, path: str) -> None:
    """Paths are absolute: the daemon's working directory is not the admin's (systemd runs
    it in /), so a relative path would name another file than the one meant."""
    if path and not os.path.isabs(path):
        raise ValueError(f"{key}: must be an absolute path (starting with /), got {path!r}")
