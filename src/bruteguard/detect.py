"""From counted attempts to ban decisions: per-jail sliding windows and the never-ban list.

``maxretry`` attempts by one address within ``findtime`` → a ``Ban`` for ``bantime``. Time is
the log's time, not the clock's, so replaying a year of logs decides exactly what a live
daemon would have decided. Lines may arrive a little out of order (several sources, remote
syslog): each window keeps its times sorted.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from bisect import insort
from collections.abc import Iterable, Sequence

from bruteguard.config import JailConfig, Network, parse_networks
from bruteguard.duration import format_duration
from bruteguard.match.engine import Hit
from bruteguard.model import Ban

__all__ = ["Detector", "IgnoreList", "local_addresses"]


def local_addresses() -> list[str]:
    """This host's own addresses (``ip -j addr``); loopback alone if that fails."""
    try:
        done = subprocess.run(
            ["ip", "-j", "addr", "show"], capture_output=True, timeout=5, check=True
        )
        interfaces = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    return [
        info["local"]
        for interface in interfaces
        for info in interface.get("addr_info", [])
        if "local" in info
    ]


class IgnoreList:
    """Addresses never to ban: loopback, unspecified/multicast, own addresses, ``ignoreip``."""

    def __init__(self, networks: Sequence[Network] = (), addresses: Iterable[str] = ()) -> None:
        self._networks = tuple(networks)
        self._addresses = frozenset(addresses)
        self._verdicts: dict[str, bool] = {}

    def __contains__(self, address: str) -> bool:
        verdict = self._verdicts.get(address)
        if verdict is None:
            verdict = self._decide(address)
            if len(self._verdicts) > 100_000:
                self._verdicts.clear()
            self._verdicts[address] = verdict
        return verdict

    def _decide(self, address: str) -> bool:
        if address in self._addresses:
            return True
        parsed = ipaddress.ip_address(address)
        if parsed.is_loopback or parsed.is_unspecified or parsed.is_multicast:
            return True
        return any(parsed in network for network in self._networks)


class _Window:
    """One jail's memory: recent attempt times per address, and who is banned until when."""

    __slots__ = ("banned_until", "bantime", "findtime", "ignore", "jail", "maxretry", "times")

    def __init__(self, jail: JailConfig, ignore: IgnoreList) -> None:
        self.jail = jail.name
        self.maxretry = jail.maxretry
        self.findtime = float(jail.findtime)
        self.bantime = float(jail.bantime)
        self.ignore = ignore
        self.times: dict[str, list[float]] = {}
        self.banned_until: dict[str, float] = {}


class Detector:
    """Feeds hits through every jail's window; returns the bans they trigger, in order."""

    def __init__(
        self,
        jails: Sequence[JailConfig],
        global_ignore: Sequence[Network] = (),
        own_addresses: Iterable[str] = (),
    ) -> None:
        own = tuple(own_addresses)
        self._windows = {
            jail.name: _Window(
                jail,
                IgnoreList([*global_ignore, *parse_networks(jail.ignoreip)], own),
            )
            for jail in jails
        }
        self.ignored = 0

    def observe(self, hits: Iterable[Hit]) -> list[Ban]:
        """Bans decided by these hits (each hit: time, address, user, jail, line)."""
        bans: list[Ban] = []
        windows = self._windows
        for moment, address, _user, jail, _line in hits:
            window = windows.get(jail)
            if window is None:
                continue
            if address in window.ignore:
                self.ignored += 1
                continue
            until = window.banned_until.get(address)
            if until is not None:
                if moment < until:
                    continue  # already banned: lines of its last connections still arrive
                del window.banned_until[address]
            times = window.times.get(address)
            if times is None:
                times = window.times[address] = [moment]
            elif moment >= times[-1]:
                times.append(moment)
            else:
                insort(times, moment)
            if len(times) > window.maxretry:
                del times[: len(times) - window.maxretry]
            if len(times) == window.maxretry and times[-1] - times[0] <= window.findtime:
                span = times[-1] - times[0]
                start = times[-1]
                ban = Ban(
                    ip=address,
                    jail=jail,
                    start=start,
                    until=start + window.bantime,
                    failures=window.maxretry,
                    reason=f"{window.maxretry} failures in {format_duration(max(span, 1))}",
                )
                bans.append(ban)
                window.banned_until[address] = ban.until
                del window.times[address]
        return bans

    def remember_bans(self, bans: Iterable[Ban]) -> None:
        """Bans already in force (from the store, or made by hand): don't decide them again."""
        for ban in bans:
            window = self._windows.get(ban.jail)
            if window is not None:
                window.banned_until[ban.ip] = ban.until
                window.times.pop(ban.ip, None)

    def forget(self, address: str) -> None:
        """After an unban: the address starts with a clean slate in every jail."""
        for window in self._windows.values():
            window.banned_until.pop(address, None)
            window.times.pop(address, None)

    def expire(self, now: float) -> None:
        """Drop windows that can no longer reach ``maxretry`` (keeps memory bounded)."""
        for window in self._windows.values():
            horizon = now - window.findtime
            stale = [a for a, t in window.times.items() if t[-1] < horizon]
            for address in stale:
                del window.times[address]
            done = [a for a, until in window.banned_until.items() if until <= now]
            for address in done:
                del window.banned_until[address]
