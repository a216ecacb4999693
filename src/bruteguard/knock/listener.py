"""The daemon's side: a UDP socket that verifies knocks and asks the firewall to open.

Every check is made before anything is believed, and a refused packet gets no answer (a
scanner learns nothing, not even that something listens). Order: size and signature
(constant time), time window, then the signed address against the packet's own source (a
knock opens for its sender only: a captured packet sent from elsewhere opens nothing), then
the nonce (a replay opens nothing). Only a packet that passes all of them reaches the
firewall, and it never waits for it: opening runs as a task.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Collection

from bruteguard.identity import canonical_address
from bruteguard.knock.packet import PACKET_SIZE, Knock, KnockRefused, verify
from bruteguard.knock.replay import ReplayCache
from bruteguard.safe_text import printable

__all__ = ["KnockListener"]

log = logging.getLogger("bruteguard.knock")

Opener = Callable[[Knock], Awaitable[None]]


class KnockListener(asyncio.DatagramProtocol):
    """Verifies the datagrams of one UDP socket; ``opener`` is called with each good knock
    whose port is one of ``ports``."""

    def __init__(
        self,
        key: bytes,
        window: float,
        ports: Collection[int],
        opener: Opener,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._window = window
        self._ports = frozenset(ports)
        self._opener = opener
        self._clock = clock
        self.replays = ReplayCache(window, clock())
        self.accepted = 0
        self.refused = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        source = canonical_address(str(addr[0]))
        try:
            knock = self.check(data, source)
        except KnockRefused as why:
            self.refused += 1
            log.info("knock from %s refused: %s", source or printable(str(addr[0])), why)
            return
        self.accepted += 1
        log.warning("knock from %s accepted: opening port %d", knock.address, knock.port)
        task = asyncio.ensure_future(self._opener(knock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def check(self, data: bytes, source: str | None) -> Knock:
        """The knock in ``data`` sent from ``source``, or KnockRefused."""
        if len(data) != PACKET_SIZE:
            raise KnockRefused(f"{len(data)} bytes, not {PACKET_SIZE}")
        now = self._clock()
        knock = verify(self._key, data, now, self._window)
        if source is None or canonical_address(knock.address) != source:
            raise KnockRefused(f"signed for {knock.address}, sent from another address")
        if knock.port not in self._ports:
            raise KnockRefused(f"port {knock.port} is not behind a knock")
        if not self.replays.use(knock.nonce, knock.time, now):
            raise KnockRefused("replayed (or signed before this listener started)")
        return knock


async def listen(address: str, port: int, protocol: KnockListener) -> asyncio.DatagramTransport:
    """Bind the knock socket (``::`` takes IPv4 too: dual stack)."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=sock)
    return transport  # type: ignore[return-value]
