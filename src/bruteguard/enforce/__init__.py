"""Enforcers put bans into a firewall. Each one is small, batched and owns only what it made.

Every enforcer implements ``Enforcer``. Calls take whole batches: one firewall transaction
per call, never one process per address. ``reconcile`` makes the firewall equal to the
store's active bans (used on start, after a crash, after a reload).
"""

from collections.abc import Sequence
from typing import Protocol

from bruteguard.model import Ban

__all__ = ["Enforcer", "JailRule", "describe_bans"]


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


def describe_bans(bans: Sequence[Ban]) -> str:
    """What a batch of bans is about, for the log: one ban per address *and jail*, so
    unbanning one address in three jails is "203.0.113.5 in jails sshd, sshd-ddos,
    recidive", not "3 targets"."""
    targets = dict.fromkeys(ban.ip for ban in bans)
    jails = dict.fromkeys(ban.jail for ban in bans)
    if len(targets) == 1:
        what = next(iter(targets))
    else:
        networks = sum("/" in target for target in targets)
        parts = [
            (len(targets) - networks, "address", "addresses"),
            (networks, "network", "networks"),
        ]
        what = " and ".join(f"{n} {one if n == 1 else many}" for n, one, many in parts if n)
    return f"{what} in {'jail' if len(jails) == 1 else 'jails'} {', '.join(jails)}"
