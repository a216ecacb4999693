"""``[knock]``: where the key is, which UDP port listens, how long a knock opens a port."""

from __future__ import annotations

import msgspec

from bruteguard.bounds import check_absolute, check_duration, check_range
from bruteguard.duration import Seconds

__all__ = ["DEFAULT_KNOCK_PORT", "KnockConfig"]

DEFAULT_KNOCK_PORT = 62201  # fwknop's: an admin's firewall may already let it in


class KnockConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[knock]`` (docs/knock.md). Jails take part with ``knock = true``."""

    key_file: str = "/etc/bruteguard/knock.key"
    port: int = DEFAULT_KNOCK_PORT
    listen: str = "::"  # dual stack; "0.0.0.0" where IPv6 is off
    open_for: Seconds = Seconds(30)  # a knock lets new connections in for this long
    window: Seconds = Seconds(60)  # a packet older or newer than this (clock skew) is refused

    def __post_init__(self) -> None:
        check_absolute("key_file", self.key_file)
        check_range("port", self.port, 1, 65535)
        check_duration("open_for", self.open_for, 86400.0)
        check_duration("window", self.window, 3600.0)
