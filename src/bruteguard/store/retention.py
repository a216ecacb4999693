"""What the ledger keeps of its evidence, applied in housekeeping (``[store]`` settings).

Failures are deleted by age (through the ``failures (time)`` index) and beyond the newest
lines per address; the space they held goes back to the file system. Two things bound the
settings from below, so retention can never change a decision: the detector is rebuilt
after a restart from the failures of the longest log jail's ``findtime``, and a jail needs
at most ``maxretry`` of them per address. Bans are not failures: the recidive jail and the
growing ban times read the ``bans`` table, which retention never touches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bruteguard.clock import Clock
from bruteguard.config import JailConfig, StoreConfig
from bruteguard.store import Store

__all__ = ["Retained", "Retention"]


@dataclass(frozen=True, slots=True)
class Retained:
    """What one housekeeping pass removed (for the log)."""

    expired: int
    trimmed: int
    freed_pages: int


class Retention:
    """The effective retention of ``settings`` for ``jails``, applied by ``run``."""

    def __init__(self, settings: StoreConfig, jails: Sequence[JailConfig], clock: Clock) -> None:
        log_jails = [jail for jail in jails if jail.from_logs]
        longest_window = max((float(jail.findtime) for jail in log_jails), default=0.0)
        self.keep_seconds = max(float(settings.keep_failures), longest_window)
        self.keep_lines = max(
            [settings.evidence_per_address, *(jail.maxretry for jail in log_jails)]
        )
        self.clock = clock

    def run(self, store: Store) -> Retained:
        """Delete expired failures and evidence over the cap, then shrink the file."""
        expired = store.prune(self.clock() - self.keep_seconds)
        trimmed = store.trim_evidence(self.keep_lines)
        return Retained(expired, trimmed, store.compact())  # also what earlier passes left
