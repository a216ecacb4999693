"""Enforcers put bans into a firewall. Each one is small, batched and owns only what it made.

Every enforcer implements ``Enforcer``. Calls take whole batches: one firewall transaction
per call, never one process per address. ``reconcile`` makes the firewall equal to the
store's active bans (used on start, after a crash, after a reload).
"""

from collections.abc import Sequence
from typing import Protocol

from bruteguard.model import Ban

__all__ = ["Enforcer", "JailRule"]


class JailRule(Protocol):
    """What an enforcer needs to know about a jail: its name and the ports it protects."""

    name: str
    ports: tuple[int, ...]  # empty: every port
    protocol: str
    allow: tuple  # networks never blocked by this jail, even inside a banned network
    rate: tuple[int, float] | None  # (hits, seconds) from "ratelimit": kernel rate limit


class Enforcer(Protocol):
    """``expires``: the firewall drops a ban by itself when its time is up (nftables and
    ipset timeouts). Where it cannot (plain iptables, hosts.deny, routes, pf, ipfw), the
    daemon unbans expired bans at its housekeeping runs (every 30 s)."""

    name: str
    expires: bool

    def setup(self, jails: Sequence[JailRule]) -> None:
        """Create this enforcer's own firewall objects (idempotent); raise EnforcerError."""

    def reconcile(self, bans: Sequence[Ban], now: float) -> None:
        """Make the firewall hold exactly ``bans`` (each for its remaining time)."""

    def ban(self, bans: Sequence[Ban], now: float) -> None:
        """Add bans in one transaction."""

    def unban(self, bans: Sequence[Ban]) -> None:
        """Remove bans in one transaction (missing elements are not an error)."""

    def teardown(self) -> None:
        """Remove everything this enforcer created (``bruteguard stop --unban``)."""
