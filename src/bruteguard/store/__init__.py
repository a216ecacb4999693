"""The ledger: failures, bans and source positions, behind one narrow interface.

SQLite (``store.sqlite``) is the default; a PostgreSQL store for fleets implements the same
``Store`` protocol. The rules the daemon relies on: ``add_bans`` and ``record_batch`` have
committed when they return, so a ban is durable before any firewall is told about it; and
``record_batch`` writes a batch's failures, bans and source positions in one transaction,
so a crash neither counts a line twice nor loses a decided ban.
"""

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from bruteguard.model import Ban, Failure, SourcePosition, Unattributed

__all__ = ["Store"]


class Store(Protocol):
    def add_failures(self, failures: Iterable[Failure]) -> None:
        """Record failures (evidence, and the memory the detector is rebuilt from)."""

    def failures_since(self, since: float) -> list[Failure]:
        """Failures at or after ``since``, oldest first (re-primes the detector on start)."""

    def failures_of(self, ip: str, since: float) -> list[Failure]:
        """The failures of one address at or after ``since``, oldest first."""

    def add_bans(self, bans: Iterable[Ban]) -> None:
        """Record bans durably; replaces an active ban of the same address and jail."""

    def lift_bans(self, ips: Iterable[str], now: float) -> list[Ban]:
        """End the active bans of ``ips`` at ``now``; returns the bans that were active."""

    def lift_from(self, origin: str, lifts: Iterable[tuple[str, float]], now: float) -> list[Ban]:
        """End fleet host ``origin``'s active bans of each (target, lifted at)."""

    def active_bans(self, now: float) -> list[Ban]:
        """Bans whose ``until`` is after ``now``."""

    def active_bans_of(self, ip: str, now: float) -> list[Ban]:
        """The bans of ``ip`` in force at ``now``, in every jail."""

    def active_ban_counts(self, now: float) -> dict[str, int]:
        """Bans in force at ``now`` per jail."""

    def newest_active_bans(self, now: float, jail: str, limit: int) -> list[str]:
        """The targets of ``jail``'s ``limit`` newest bans in force at ``now``."""

    def active_ban_pages(self, now: float, size: int = 10_000) -> Iterator[list[Ban]]:
        """``active_bans`` in pages of ``size``, oldest first, each page its own read."""

    def ban_rows(self, size: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
        """Every ban (lifted and expired ones too), oldest first, in pages of ``size``;
        each a plain tuple of ``BanRow``'s fields."""

    def expired_bans(self, after: float, now: float) -> list[Ban]:
        """Bans that ran out in ``(after, now]``, not lifted nor renewed in their jail."""

    def lift_all(self, now: float) -> int:
        """End every active ban at ``now``; how many."""

    def ban_history(self, ip: str) -> list[Ban]:
        """Every ban of ``ip``, oldest first."""

    def blocklist_loaded(self, name: str, now: float) -> float:
        """When blocklist ``name`` was first loaded (``now`` if never)."""

    def prune(self, before: float) -> int:
        """Forget failures (attributed or not) older than ``before``; returns how many."""

    def trim_evidence(self, keep: int) -> int:
        """Keep the newest ``keep`` failure lines per address (of those that got new ones)."""

    def compact(self) -> int:
        """Give freed space back to the file system; returns how much (in the store's units)."""

    def add_unattributed(self, failures: Iterable[Unattributed]) -> None:
        """Record failures that named a host no real connection could be tied to."""

    def recent_unattributed(self, limit: int = 20) -> list[Unattributed]:
        """The newest unattributed failures, newest first."""

    def get_position(self, key: str) -> SourcePosition | None:
        """The saved read position of source ``key``."""

    def set_positions(self, positions: Iterable[SourcePosition]) -> None:
        """Save read positions (one transaction)."""

    def record_batch(
        self,
        failures: Iterable[Failure],
        bans: Sequence[Ban],
        positions: Iterable[SourcePosition],
    ) -> None:
        """One batch of lines, all or nothing: failures, the bans they decided, positions."""

    def close(self) -> None:
        """Flush and close."""
