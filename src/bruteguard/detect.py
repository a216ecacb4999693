"""From counted attempts to ban decisions: per-jail sliding windows and the never-ban list.

``maxretry`` attempts by one address within ``findtime`` → a ``Ban`` for ``bantime``. Time is
the log's time, not the clock's, so replaying a year of logs decides exactly what a live
daemon would have decided. Lines may arrive a little out of order (several sources, remote
syslog): each window keeps its times sorted.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from bisect import bisect_right
from collections.abc import Iterable, Sequence

from bruteguard.config import JailConfig, Network, parse_networks
from bruteguard.duration import format_duration
from bruteguard.match import _core
from bruteguard.match.engine import Hit
from bruteguard.model import Ban

__all__ = ["Detector", "IgnoreList", "local_addresses"]


def local_addresses() -> list[str]:
    """This host's own addresses (``ip -j addr``); loopback alone if that fails."""
    import json  # the daemon's only: a replay doesn't pay for these
    import subprocess

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


# Per address and jail, the newest _KEEP * maxretry attempt times are kept: enough for
# late lines to complete an older window, and a bound on memory for slow attackers.
_KEEP = 4

# Never a client to ban: loopback, unspecified, multicast.
_NEVER = tuple(
    ipaddress.ip_network(network)
    for network in ("127.0.0.0/8", "0.0.0.0/32", "224.0.0.0/4", "::1/128", "::/128", "ff00::/8")
)


class IgnoreList:
    """Addresses never to ban: loopback, unspecified/multicast, own addresses, ``ignoreip``.

    Networks are kept as (family, network, mask) integers: a replay asks about tens of
    thousands of distinct addresses, and ``ipaddress`` objects cost microseconds each.
    """

    def __init__(self, networks: Sequence[Network] = (), addresses: Iterable[str] = ()) -> None:
        every = (*_NEVER, *networks)
        self._networks = {
            version: tuple(
                (int(network.network_address), int(network.netmask))
                for network in every
                if network.version == version
            )
            for version in (4, 6)
        }
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
        version = 6 if ":" in address else 4
        value = int.from_bytes(
            socket.inet_pton(socket.AF_INET6 if version == 6 else socket.AF_INET, address)
        )
        return any(value & mask == network for network, mask in self._networks[version])


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


def _ban(window: _Window, address: str, first: float, last: float) -> Ban:
    return Ban(
        ip=address,
        jail=window.jail,
        start=last,
        until=last + window.bantime,
        failures=window.maxretry,
        reason=_reason(window.maxretry, round(max(last - first, 1))),
    )


@functools.lru_cache(maxsize=4096)
def _reason(failures: int, seconds: int) -> str:
    return f"{failures} failures in {format_duration(seconds)}"


def _step(window: _Window, address: str, moment: float) -> Ban | None:
    """One attempt of ``address`` in ``window``: the ban it completes, if any.

    A late line (two sources, remote syslog) is sorted in and may complete a window further
    back than the newest attempts: every run of ``maxretry`` consecutive times that holds it
    is checked.
    """
    until = window.banned_until.get(address)
    if until is not None:
        if moment < until:
            return None  # already banned: lines of its last connections still arrive
        del window.banned_until[address]
    times = window.times.get(address)
    if times is None:
        times = window.times[address] = [moment]
        at = 0
    elif moment >= times[-1]:
        times.append(moment)
        at = len(times) - 1
    else:
        at = bisect_right(times, moment)
        times.insert(at, moment)
    maxretry = window.maxretry
    for first in range(max(0, at - maxretry + 1), min(at, len(times) - maxretry) + 1):
        last = times[first + maxretry - 1]
        if last - times[first] <= window.findtime:
            del window.times[address]
            ban = _ban(window, address, times[first], last)
            window.banned_until[address] = ban.until
            return ban
    if len(times) > _KEEP * maxretry:
        del times[: len(times) - _KEEP * maxretry]
    return None


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
            ban = _step(window, address, moment)
            if ban is not None:
                bans.append(ban)
        return bans

    def observe_series(self, jail: str, address: str, packed: bytes | bytearray) -> list[Ban]:
        """Bans decided by one address's attempts in one jail: ``packed`` holds their times
        as native doubles (``array('d')``, ``Stream.collect``), in arrival order.

        The same decisions ``observe`` makes for these hits (an address's windows never
        depend on another address's), made in one compiled pass when the address is new to
        the jail and its times are in order: the replay's fast path.
        """
        window = self._windows.get(jail)
        count = len(packed) // 8
        if window is None or not count:
            return []
        if address in window.ignore:
            self.ignored += count
            return []
        decided = None
        if address not in window.times and address not in window.banned_until:
            decided = _core.windows(packed, window.maxretry, window.findtime, window.bantime)
        times = memoryview(packed).cast("d")
        if decided is None:
            return [ban for moment in times if (ban := _step(window, address, moment))]
        pairs, start = decided
        bans = [_ban(window, address, first, last) for first, last in pairs]
        if start < count:
            window.times[address] = times[max(start, count - _KEEP * window.maxretry) :].tolist()
        elif bans:
            window.banned_until[address] = bans[-1].until
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
