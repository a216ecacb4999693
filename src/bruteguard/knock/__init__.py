"""Single packet authorization: one HMAC-signed UDP packet opens a jail's port for its sender.

See docs/knock.md. ``packet`` is the wire format, ``keys`` the shared secret, ``replay``
the memory of packets already used, ``listener`` the daemon's side, ``client`` the admin's.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bruteguard.knock.config import KnockConfig
    from bruteguard.knock.packet import Knock, KnockRefused, sign, verify

__all__ = ["Knock", "KnockConfig", "KnockRefused", "sign", "verify"]

# Loaded when first asked for: the config reads ``knock.config`` on every command (a scan
# too), and the packet's hashing and random modules are only the daemon's and the client's.
_HOME = {"KnockConfig": "config", "Knock": "packet", "KnockRefused": "packet"}
_HOME.update(sign="packet", verify="packet")


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
