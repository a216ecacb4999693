"""The nonces of the knocks already used, for as long as a replay of them could pass.

A knock is accepted within ``window`` seconds of its signing time, so its nonce needs
remembering for ``window`` seconds past that, and no longer: memory is bounded by the window
(and only correctly signed packets, i.e. the key holders, ever add to it). A restart forgets
the nonces, so the listener also refuses knocks signed before it started: a packet captured
before a restart cannot be replayed after it.
"""

from __future__ import annotations

import heapq

__all__ = ["ReplayCache"]


class ReplayCache:
    """``use(nonce, signed, now)``: True the first time, False for a replay."""

    def __init__(self, window: float, started: float) -> None:
        self.window = window
        self.started = started
        self._until: dict[bytes, float] = {}
        self._expiry: list[tuple[float, bytes]] = []

    def use(self, nonce: bytes, signed: float, now: float) -> bool:
        self._forget(now)
        if signed < self.started or nonce in self._until:
            return False
        until = signed + self.window
        self._until[nonce] = until
        heapq.heappush(self._expiry, (until, nonce))
        return True

    def _forget(self, now: float) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] < now:
            _, nonce = heapq.heappop(expiry)
            self._until.pop(nonce, None)

    def __len__(self) -> int:
        return len(self._until)
