"""The knock packet: what it says, how it is signed, and every reason one is refused.

Wire format (big-endian, 79 bytes, nothing optional)::

    magic    4  b"BGK" + version (1)
    time     8  milliseconds since the epoch when the client signed it
    nonce   16  random: two knocks in one millisecond still differ
    family   1  4 or 6
    address 16  the address to open (IPv4 in the first 4 bytes, the rest zero)
    port     2  the port to open (selects the jails that protect it)
    mac     32  HMAC-SHA256(key, all of the above)

Like fwknop's SPA, and unlike a port sequence, the packet is authenticated (a forger without
the key cannot make one), timestamped (an old capture is refused) and unique (a replay
within the time window is refused by the nonce). Unlike fwknop it is not encrypted: it holds
nothing secret, only an address and a port the observer already sees.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import socket
import struct
from dataclasses import dataclass

__all__ = ["MAGIC", "PACKET_SIZE", "Knock", "KnockRefused", "sign", "verify"]

MAGIC = b"BGK\x01"
_BODY = struct.Struct("!4sQ16sB16sH")
_MAC_SIZE = 32
PACKET_SIZE = _BODY.size + _MAC_SIZE
_FAMILIES = {4: (socket.AF_INET, 4), 6: (socket.AF_INET6, 16)}


class KnockRefused(ValueError):
    """A packet that opens nothing; the message says why (for the log, never the sender)."""


@dataclass(frozen=True, slots=True)
class Knock:
    """A verified knock: who may connect (``address``), to which ``port``, signed at
    ``time`` (seconds), with its ``nonce``."""

    address: str
    port: int
    time: float
    nonce: bytes


def _pack_address(address: str) -> tuple[int, bytes]:
    for version, (family, size) in _FAMILIES.items():
        try:
            packed = socket.inet_pton(family, address)
        except OSError:
            continue
        return version, packed.ljust(16, b"\0")[:16] if size == 4 else packed
    raise ValueError(f"not an IP address: {address!r}")


def sign(key: bytes, address: str, port: int, now: float, nonce: bytes | None = None) -> bytes:
    """A knock packet asking to open ``port`` for ``address``, signed at ``now``."""
    if not 0 < port < 65536:
        raise ValueError(f"not a port number: {port!r}")
    version, packed = _pack_address(address)
    nonce = secrets.token_bytes(16) if nonce is None else nonce
    body = _BODY.pack(MAGIC, int(now * 1000), nonce, version, packed, port)
    return body + hmac.new(key, body, hashlib.sha256).digest()


def verify(key: bytes, packet: bytes, now: float, window: float) -> Knock:
    """The knock ``packet`` carries, if it is well-formed, signed with ``key`` and signed
    within ``window`` seconds of ``now``; else KnockRefused. The replay check and the
    source-address check are the listener's (they need its memory and the sender)."""
    if len(packet) != PACKET_SIZE:
        raise KnockRefused(f"{len(packet)} bytes, not {PACKET_SIZE}")
    body, mac = packet[: _BODY.size], packet[_BODY.size :]
    # Constant time, and before anything in the body is believed.
    if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), mac):
        raise KnockRefused("bad signature")
    magic, millis, nonce, version, packed, port = _BODY.unpack(body)
    if magic != MAGIC:
        raise KnockRefused("unknown packet version")
    signed = millis / 1000
    if abs(now - signed) > window:
        raise KnockRefused(f"signed {now - signed:+.0f}s from now, outside the {window:g}s window")
    if version not in _FAMILIES or not 0 < port < 65536:
        raise KnockRefused("malformed address or port")
    family, size = _FAMILIES[version]
    if size == 4 and any(packed[4:]):
        raise KnockRefused("malformed address")
    address = socket.inet_ntop(family, packed[:size])
    return Knock(address, port, signed, nonce)
