"""Peers connected to a service's ports right now, from the kernel's TCP socket table.

When a service logs a hostname instead of an address, the clients connected to its port at
that moment are the candidates for who it was. ``connected_peers`` reads them from
``/proc/net/tcp`` and ``/proc/net/tcp6``:

* only sockets whose *local* port is one of the service's ports count, in every state but
  ``LISTEN`` (``ESTABLISHED``, ``FIN_WAIT*``, ``TIME_WAIT``, ``CLOSE_WAIT``, ``LAST_ACK``,
  ``CLOSING``: a client that just failed and hung up is still there for a while);
* half-open ``SYN_RECV`` entries are left out unless ``include_half_open=True``: the peer
  never finished the handshake, so it cannot have sent a password, and a spoofed SYN
  creates one with any source address an attacker likes (a victim's, to frame it);
* addresses are canonical (``canonical_address``): an IPv4 client of a dual-stack socket
  (``::ffff:198.51.100.7``) is ``198.51.100.7``; unspecified remote addresses are dropped.

Why ``/proc`` and not sock_diag netlink (pyroute2): no extra dependency, and ``/proc/net``
always shows the network namespace the daemon runs in, which is the one its services use.
A missing file (a kernel without IPv6) means no peers; a row that does not parse is skipped.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Collection, Iterable
from pathlib import Path

from bruteguard.identity.address import canonical_address

__all__ = ["TCP_STATES", "connected_peers"]

# include/net/tcp_states.h: the ``st`` column, in hex.
TCP_STATES: dict[int, str] = {
    0x01: "ESTABLISHED",
    0x02: "SYN_SENT",
    0x03: "SYN_RECV",
    0x04: "FIN_WAIT1",
    0x05: "FIN_WAIT2",
    0x06: "TIME_WAIT",
    0x07: "CLOSE",
    0x08: "CLOSE_WAIT",
    0x09: "LAST_ACK",
    0x0A: "LISTEN",
    0x0B: "CLOSING",
    0x0C: "NEW_SYN_RECV",
}
_LISTEN = 0x0A
_HALF_OPEN = frozenset({0x03, 0x0C})
_FILES = (("tcp", socket.AF_INET, 8), ("tcp6", socket.AF_INET6, 32))


def connected_peers(
    ports: Collection[int],
    proc_net: str = "/proc/net",
    *,
    include_half_open: bool = False,
) -> set[str]:
    """Canonical addresses of TCP peers whose connection's local port is in ``ports``.

    Cost: each file is read once in one ``read`` (the kernel renders it; about 150 bytes a
    socket) and split into lines; only the local port of each row is decoded (a slice and
    an ``int``), and addresses only of rows on a watched port. A busy host with 10,000
    sockets costs a few milliseconds, fine on the event loop for a hostname line.
    """
    wanted = {f"{port:04X}" for port in ports}
    if not wanted:
        return set()
    skip = {_LISTEN} if include_half_open else {_LISTEN, *_HALF_OPEN}
    peers: set[str] = set()
    for name, family, width in _FILES:
        try:
            text = (Path(proc_net) / name).read_text(encoding="ascii", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            continue  # no IPv6 in this kernel, or no such table: no peers there
        peers.update(_peers(text.splitlines()[1:], family, width, wanted, skip))
    return peers


def _peers(
    rows: Iterable[str], family: int, width: int, wanted: set[str], skip: set[int]
) -> Iterable[str]:
    """The remote addresses of the rows on a wanted local port and not in a skipped state.

    Row: ``sl: LOCAL_HEX:PORT REMOTE_HEX:PORT ST …``. Each address word is a 32-bit value
    printed in host byte order, so packing it with ``=I`` gives back the network bytes.
    """
    for row in rows:
        fields = row.split(None, 4)
        if len(fields) < 4:
            continue
        local, remote, state = fields[1], fields[2], fields[3]
        if local[-5:-4] != ":" or local[-4:] not in wanted:
            continue
        try:
            if int(state, 16) in skip:
                continue
            hex_address, _, _port = remote.partition(":")
            if len(hex_address) != width:
                continue
            words = [int(hex_address[i : i + 8], 16) for i in range(0, width, 8)]
            packed = struct.pack(f"={len(words)}I", *words)
            text = socket.inet_ntop(family, packed)
        except (ValueError, struct.error, OSError):
            continue  # a malformed row: skip it, never fail the caller
        address = canonical_address(text)
        if address is not None and address not in ("0.0.0.0", "::"):
            yield address
