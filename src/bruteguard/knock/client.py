"""``bruteguard knock HOST``: the admin's side, one signed packet to the server's knock port.

The address signed is the one the server will see the packet come from: by default the
local address the kernel picks to reach HOST (right unless a NAT rewrites it; then the
admin names the outside address with ``--address``, as fwknop's ``-a``).
"""

from __future__ import annotations

import socket
import time

from bruteguard.knock.packet import sign

__all__ = ["send_knock", "source_address"]


def _destination(host: str, port: int) -> tuple[int, tuple]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as error:
        raise OSError(f"cannot resolve {host!r}: {error.strerror}") from None
    family, _, _, _, sockaddr = found[0]
    return family, sockaddr


def source_address(host: str, port: int) -> str:
    """The local address packets to ``host`` leave from (no packet is sent to learn it)."""
    family, sockaddr = _destination(host, port)
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(sockaddr)
        return str(probe.getsockname()[0]).partition("%")[0]


def send_knock(
    key: bytes, host: str, open_port: int, knock_port: int, address: str | None = None
) -> str:
    """Send one knock asking ``host`` to open ``open_port`` for ``address`` (default: our
    own address towards it); the address signed."""
    family, sockaddr = _destination(host, knock_port)
    signed = address or source_address(host, knock_port)
    packet = sign(key, signed, open_port, time.time())
    with socket.socket(family, socket.SOCK_DGRAM) as sender:
        sender.sendto(packet, sockaddr)
    return signed
