"""sd_notify without libsystemd: READY=1, RELOADING=1, STOPPING=1, STATUS=… to systemd."""

from __future__ import annotations

import os
import socket

__all__ = ["notify"]


def notify(*states: str) -> bool:
    """Tell systemd our state (``Type=notify`` units); False when not run by systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(states).encode())
    except OSError:
        return False
    return True
