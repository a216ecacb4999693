"""The bounds of the configuration: a range for every number and absolute paths.

Every number has a range, so no value can be too big ever to act on (``maxretry = 2**70``
never bans) or to hold in a firewall's timeout. The checks raise ValueError starting with the
key's name (``maxretry: must be …``), which the configuration's loader turns into
``FILE: jails.NAME.maxretry: must be …``.
"""

from __future__ import annotations

import ipaddress
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
    "split_listen",
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


def split_listen(text: str) -> tuple[str, int]:
    """("127.0.0.1", 9797) from "127.0.0.1:9797", ("::1", 9797) from "[::1]:9797"; the
    port is 0 to 65535 (0: any free one, where a server allows it); ValueError naming
    ``listen`` on anything else."""
    host, _, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"listen: {text!r} is not ADDRESS:PORT (an IP address)") from None
    if not port.isdigit() or int(port) > MAX_PORT:
        raise ValueError(f"listen: {text!r} is not ADDRESS:PORT (a port 0 to {MAX_PORT})")
    return host, int(port)
