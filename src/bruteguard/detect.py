"""From counted attempts to ban decisions: per-jail sliding windows, escalation, never-ban list.

``maxretry`` attempts by one address within ``findtime`` → a ``Ban`` for ``bantime``. Time is
the log's time, not the clock's, so replaying a year of logs decides exactly what a live
daemon would have decided. Lines may arrive a little out of order (several sources, remote
syslog): each window keeps its times sorted.

Escalation, each step a plain rule on the bans already decided:

* **Growing ban times**: the n-th ban of one target in a jail lasts
  ``bantime * bantime_factor^(n-1)``, at most ``maxtime`` (counts survive restarts: the
  daemon loads them from the store).
* **IPv6 prefixes**: an IPv6 attacker owns at least a /64 and rotates through it, so IPv6
  attempts count, and are banned, per ``/ipv6_prefix``.
* **IPv4 networks**: ``subnet_maxretry`` addresses of one ``/ipv4_prefix`` banned within
  ``subnet_findtime`` → the prefix is banned (never one holding this host's own addresses).
* **Recidive**: a jail fed with the other jails' bans: ``maxretry`` bans of one target within
  ``findtime`` → banned on every port for its ``bantime``.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import socket
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bruteguard import _windows
from bruteguard.config import RECIDIVE, JailConfig, parse_networks
from bruteguard.duration import describe_duration
from bruteguard.match.engine import Hit
from bruteguard.model import Ban, Network

__all__ = [
    "Detector",
    "IgnoreList",
    "LedgerRead",
    "address_integer",
    "local_addresses",
    "network_of",
]


@dataclass
class LedgerRead:
    """What ``Detector.remember_ledger`` gathers across the ledger's pages, for the steps
    after the last page: a restart reads the ledger once.

    ``lifts`` holds the bans lifted before their end at or after ``lifts_after`` (``unban``,
    ``stop --unban``), keyed (target, jail, when); a ban replaced by a newer one (which
    starts at that moment) is not a lift. ``lifted()`` gives them to ``prime``.
    """

    now: float
    lifts_after: float
    recidive_starts: dict[str, list[float]] = field(default_factory=dict)
    lifts: dict[tuple[str, str, float], None] = field(default_factory=dict)

    def lifted(self) -> list[tuple[str, float]]:
        """(target, when) of each lift, oldest first."""
        return [(ip, when) for ip, _jail, when in sorted(self.lifts, key=lambda key: key[2])]


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

# Ended bans forgotten per housekeeping run and jail: with a million bans in force a walk
# of them all stalled the daemon 140-250 ms every 30 s; a slice of this many costs a few ms,
# and the whole memory is still gone through every (size / slice) runs.
_SWEEP_SLICE = 50_000

# Never a client to ban: loopback, unspecified, multicast.
_NEVER = tuple(
    ipaddress.ip_network(network)
    for network in ("127.0.0.0/8", "0.0.0.0/32", "224.0.0.0/4", "::1/128", "::/128", "ff00::/8")
)


class IgnoreList:
    """Addresses never to ban: loopback, unspecified/multicast, own addresses, ``ignoreip``.

    Networks are kept packed, as ``_windows`` reads them: a replay asks about tens of
    thousands of distinct addresses, and ``ipaddress`` objects cost microseconds each.
    """

    def __init__(self, networks: Sequence[Network] = (), addresses: Iterable[str] = ()) -> None:
        every = (*_NEVER, *networks)
        self._packed = tuple(
            b"".join(
                network.network_address.packed + network.netmask.packed
                for network in every
                if network.version == version
            )
            for version in (4, 6)
        )
        self._addresses = frozenset(addresses)
        # The own addresses as (family, bits, integer): a prefix is checked against them
        # by arithmetic, not by ``ipaddress`` objects (a flood brings a new /64 per line).
        self._own = tuple(address_integer(own) for own in self._addresses if address_integer(own))

    def __contains__(self, address: str) -> bool:
        """Raises ValueError for text that is not an IP address."""
        return address in self._addresses or _windows.in_networks(address, *self._packed)

    def screen(self, group_v6: bool) -> tuple[frozenset[str], bytes, bytes, bool]:
        """This list as ``_windows.decide`` takes it (IPv6 handed back if ``group_v6``)."""
        return (self._addresses, *self._packed, group_v6)

    def holds_own_address(self, network: Network | str) -> bool:
        """True if ``network`` (or its CIDR text) contains one of this host's own addresses
        (never ban those)."""
        text, _, length = str(network).partition("/")
        found = address_integer(text)
        if found is None:
            return False
        family, bits, value = found
        shift = bits - int(length or bits)
        return any(
            own_family == family and own >> shift == value >> shift
            for own_family, _, own in self._own
        )

    def own_prefixes(self, length: int) -> frozenset[str]:
        """The ``/length`` prefixes (CIDR text) of this host's own IPv6 addresses."""
        if length >= 128:
            return frozenset()
        return frozenset(
            network_of(own, length)
            for own in self._addresses
            if ":" in own and address_integer(own)
        )


def address_integer(address: str) -> tuple[int, int, int] | None:
    """(family, bits, the address as an integer), or None for text that is not one."""
    family, bits = (socket.AF_INET6, 128) if ":" in address else (socket.AF_INET, 32)
    try:
        return family, bits, int.from_bytes(socket.inet_pton(family, address))
    except OSError:
        return None


class _Window:
    """One jail's memory: recent attempt times per target, who is banned until when, how
    often each target was banned, and which addresses of each IPv4 network were banned."""

    __slots__ = (
        "banned_until",
        "bans",
        "bantime",
        "factor",
        "findtime",
        "ignore",
        "jail",
        "maxretry",
        "maxtime",
        "net_bans",
        "own_prefixes",
        "subnet",
        "sweep",
        "times",
        "v4_prefix",
        "v6_prefix",
    )

    def __init__(self, jail: JailConfig, ignore: IgnoreList) -> None:
        self.jail = jail.name
        self.maxretry = jail.maxretry
        self.findtime = float(jail.findtime)
        self.bantime = float(jail.bantime)
        self.factor = float(jail.bantime_factor)
        self.maxtime = jail.longest_ban
        self.v6_prefix = jail.ipv6_prefix
        self.v4_prefix = jail.ipv4_prefix
        self.subnet = (jail.subnet_maxretry, float(jail.subnet_findtime))
        self.ignore = ignore
        self.times: dict[str, list[float]] = {}
        self.banned_until: dict[str, float] = {}
        self.bans: dict[str, int] = {}
        self.net_bans: dict[int, dict[str, float]] = {}  # network number → address → ban
        # The IPv6 prefixes that hold one of our addresses: computed once, not remembered
        # per prefix met (a flood brings a new /64 per line, and they were never forgotten).
        self.own_prefixes = ignore.own_prefixes(self.v6_prefix)
        self.sweep: list[str] = []  # targets of banned_until still to check in this round

    def rule(self) -> tuple[int, float, float, float, float, int]:
        """The jail's rule as ``_windows.decide`` takes it."""
        return (
            self.maxretry,
            self.findtime,
            self.bantime,
            self.factor,
            self.maxtime,
            _KEEP * self.maxretry,
        )

    def state(self) -> tuple[dict[str, int], dict[str, list[float]], dict[str, float]]:
        """The memory ``_windows.decide`` reads and updates (``prime`` replaces ``bans``)."""
        return self.bans, self.times, self.banned_until


def _duration(window: _Window, step: int) -> float:
    """How long the ``step``-th ban lasts (``_windows.decide`` computes the same)."""
    length = window.bantime * math.pow(window.factor, step - 1)
    return length if length < window.maxtime else window.maxtime


def _ban(window: _Window, target: str, first: float, last: float, reason: str | None = None) -> Ban:
    step = window.bans.get(target, 0) + 1
    window.bans[target] = step
    return _made(window, target, first, last, last + _duration(window, step), step, reason)


def _made(
    window: _Window,
    target: str,
    first: float,
    last: float,
    until: float,
    step: int,
    reason: str | None = None,
) -> Ban:
    maxretry = window.maxretry
    reason = reason or _reason(maxretry, round(max(last - first, 1)), window.jail)
    # Positional (ip, jail, start, until, failures, reason, step): a replay makes thousands.
    return Ban(target, window.jail, last, until, maxretry, reason, step)


@functools.lru_cache(maxsize=4096)
def _reason(failures: int, seconds: int, jail: str) -> str:
    what = "ban" if jail == RECIDIVE else "failure"
    return f"{failures} {what}{'' if failures == 1 else 's'} in {describe_duration(seconds)}"


def _key(window: _Window, address: str) -> str:
    """The address, or for IPv6 its ``/v6_prefix`` unless this host has an address in that
    prefix (a LAN shared with the attacker: then each address stands alone)."""
    if window.v6_prefix >= 128 or ":" not in address:
        return address
    prefix = network_of(address, window.v6_prefix)
    return address if prefix in window.own_prefixes else prefix


@functools.lru_cache(maxsize=65536)
def network_of(address: str, length: int) -> str:
    """``address``'s network of prefix ``length``, as CIDR text (integer arithmetic on the
    packed address: a replay asks this for every ban)."""
    found = address_integer(address)
    if found is None:
        raise ValueError(f"not an IP address: {address!r}")
    family, bits, value = found
    value &= ((1 << bits) - 1) ^ ((1 << (bits - length)) - 1)
    network = socket.inet_ntop(family, value.to_bytes(bits // 8))
    return f"{network}/{length}"


def _forget_ended(window: _Window, now: float) -> None:
    """Drop the bans that ended from ``banned_until``, ``_SWEEP_SLICE`` targets per call: a
    round takes a snapshot of the targets (a list of the same strings) and checks a slice
    of it each time; a small jail is gone through whole every time."""
    if not window.sweep:
        window.sweep = list(window.banned_until)
    batch = window.sweep[-_SWEEP_SLICE:]
    del window.sweep[-_SWEEP_SLICE:]
    banned = window.banned_until
    for target in batch:
        until = banned.get(target)
        if until is not None and until <= now:
            del banned[target]


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


def _in_time_order(parts: list[bytes]) -> bytes:
    """One target's attempts gathered from several addresses (an IPv6 prefix's), as the
    times in the order they happened: each address's series is in arrival order, but one
    after the other they are not, and a window steps through time, not through addresses.

    The series keep no order across addresses, so a line that came late (its time before
    one of another address of the prefix that was read earlier) is stepped at its time
    here, where the daemon and ``scan --json`` step it when it arrived; in a log whose
    times never go back the two are the same.
    """
    if len(parts) == 1:
        return parts[0]
    return _windows.merge(parts)


class Detector:
    """Feeds hits through every jail's window; returns the bans they trigger, in order,
    with the escalations (network bans, recidive) they complete right after them."""

    def __init__(
        self,
        jails: Sequence[JailConfig],
        global_ignore: Sequence[Network] = (),
        own_addresses: Iterable[str] = (),
    ) -> None:
        own = tuple(own_addresses)
        self._own = own
        self._jail_ignore = {jail.name: parse_networks(jail.ignoreip) for jail in jails}
        windows = {}
        for jail in jails:
            networks = (*global_ignore, *self._jail_ignore[jail.name])
            windows[jail.name] = _Window(jail, IgnoreList(networks, own))
        self._recidive = next(
            (windows.pop(j.name) for j in jails if j.filter == RECIDIVE and j.name in windows),
            None,
        )
        self._windows = windows
        self.ignored = 0

    def allow(self, global_ignore: Sequence[Network]) -> None:
        """A new global allow list (names re-resolved, files re-read, admins come and
        gone): every jail's from now on; what was counted and banned stays."""
        for window in self._all():
            networks = (*global_ignore, *self._jail_ignore.get(window.jail, ()))
            window.ignore = IgnoreList(networks, self._own)
            window.own_prefixes = window.ignore.own_prefixes(window.v6_prefix)

    def observe(self, hits: Iterable[Hit], escalate: bool = True) -> list[Ban]:
        """Bans decided by these hits (each hit: time, address, user, jail, line), each
        followed by the escalations it completes (unless ``escalate`` is false)."""
        bans: list[Ban] = []
        windows = self._windows
        in_networks = _windows.in_networks
        named = window = None
        for moment, address, _user, jail, _line in hits:
            if jail != named:  # a batch is mostly one jail's: its window looked up once
                named, window = jail, windows.get(jail)
                if window is not None:
                    never_banned, *networks, _ = window.ignore.screen(False)
                    ungrouped = window.v6_prefix >= 128
                    times, banned_until = window.times, window.banned_until
                    first_never_bans = window.maxretry > 1
            if window is None:
                continue
            # ``address in window.ignore``, ``_key`` and ``_step`` inline for the commonest
            # line of a flood, a new address's first attempt (it cannot complete a window):
            # three calls a line were most of the daemon's deciding (issue 18).
            if address in never_banned or in_networks(address, *networks):
                self.ignored += 1
                continue
            target = address if ungrouped or ":" not in address else _key(window, address)
            if first_never_bans and target not in times and target not in banned_until:
                times[target] = [moment]
                continue
            ban = _step(window, target, moment)
            if ban is not None:
                bans.append(ban)
                if escalate:
                    bans += self.escalate([ban])
        return bans

    def observe_jail(self, jail: str, series: Mapping[str, list[Any]]) -> list[Ban]:
        """Bans decided by a whole jail's ``Series`` entry (address → [packed times as
        native doubles, …], in arrival order; ``Stream.collect``): the replay's fast path.

        The same decisions ``observe`` makes for these hits (a target's windows never depend
        on another target's): ignored addresses are skipped and counted, IPv6 ones gathered
        per prefix, and every target that is new to the jail, its times in order, is decided
        in one compiled call (``_windows.decide``); the others attempt by attempt. Escalations
        are not made here: pass all the bans, in time order, to ``escalate``.
        """
        window = self._windows.get(jail)
        if window is None:
            return []
        group_v6 = window.v6_prefix < 128
        decided, ignored, deferred = _windows.decide(
            series, window.rule(), window.state(), window.ignore.screen(group_v6)
        )
        self.ignored += ignored
        parts: dict[str, list[bytes]] = {}
        stepwise: list[tuple[str, bytes]] = []
        for address, packed in deferred:
            if group_v6 and ":" in address:
                parts.setdefault(_key(window, address), []).append(packed)
            else:  # known to the jail already, or times out of order
                stepwise.append((address, packed))
        if parts:
            prefixes = {target: [_in_time_order(times)] for target, times in parts.items()}
            more, _, later = _windows.decide(prefixes, window.rule(), window.state(), None)
            decided += more
            stepwise += later
        bans = [_made(window, *row) for row in decided]
        for target, packed in stepwise:
            for moment in memoryview(packed).cast("d"):
                ban = _step(window, target, moment)
                if ban is not None:
                    bans.append(ban)
        return bans

    def escalate(self, bans: Sequence[Ban]) -> list[Ban]:
        """The network and recidive bans that ``bans`` (in time order) complete."""
        more: list[Ban] = []
        for ban in bans:
            window = self._windows.get(ban.jail)
            if window is not None and "/" not in ban.ip and ":" not in ban.ip:
                network = self._subnet(window, ban)
                if network is not None:
                    more.append(network)
        recidive = self._recidive
        if recidive is not None:
            for ban in sorted([*bans, *more], key=lambda b: b.start):
                if ban.jail == recidive.jail or ban.failures == 0:
                    continue  # its own bans and bans by hand do not feed it
                if "/" not in ban.ip and ban.ip in recidive.ignore:
                    continue
                found = _step(recidive, ban.ip, ban.start)
                if found is not None:
                    more.append(found)
        return more

    def _subnet(self, window: _Window, ban: Ban) -> Ban | None:
        """The ban of ``ban``'s IPv4 network, if enough of its addresses are banned now."""
        threshold, findtime = window.subnet
        if threshold <= 0:
            return None
        # Networks are tracked by number (the address's first v4_prefix bits): a replay asks
        # this for every IPv4 ban, and a network's text is needed only once it is full.
        found = address_integer(ban.ip)
        if found is None:
            raise ValueError(f"not an IP address: {ban.ip!r}")
        number = found[2] >> (32 - window.v4_prefix)
        start = ban.start
        seen = window.net_bans.get(number)
        if seen is None:  # the commonest case: a network's first banned address
            seen = window.net_bans[number] = {ban.ip: start}
        else:
            seen[ban.ip] = start
            for address in [a for a, at in seen.items() if at < start - findtime]:
                del seen[address]
        if len(seen) < threshold:
            return None
        network = network_of(ban.ip, window.v4_prefix)
        if window.banned_until.get(network, -math.inf) > start:
            return None
        if window.ignore.holds_own_address(network):
            return None
        first = min(seen.values())
        seen.clear()
        reason = f"{threshold} addresses of it banned in {describe_duration(ban.start - first)}"
        found = _ban(window, network, first, ban.start, reason)
        window.banned_until[network] = found.until
        return found

    def remember_history(self, counts: dict[tuple[str, str], int]) -> None:
        """How often each (jail, target) was banned before (``remember_ledger`` counts them):
        growing ban times go on from there after a restart."""
        for (jail, target), count in counts.items():
            window = self._window(jail)
            if window is not None:
                window.bans[target] = max(window.bans.get(target, 0), count)

    def remember_ledger(
        self, rows: Sequence[tuple[Any, ...]], ledger: LedgerRead
    ) -> list[tuple[Any, ...]]:
        """Learn from the ledger's bans (a page of them, oldest first) what a restart must
        know: who is banned now (not decided again), how often each target was banned
        (growing ban times go on from there: ``remember_history``), and, into ``ledger``,
        the starts of the bans recidive still counts (for ``prime_recidive``) and the bans
        lifted by hand (for ``prime``), both used once every page is read. Returns the rows
        of the bans active at ``ledger.now``, as they are (no ``Ban`` made of each: a restart
        reads a million, and the firewall takes the rows, ``reconcile_rows``).
        """
        now, recidive_starts, lifts, lifts_after = (
            ledger.now,
            ledger.recidive_starts,
            ledger.lifts,
            ledger.lifts_after,
        )
        recidive = self._recidive
        since = now - recidive.findtime if recidive is not None else math.inf
        fed_jail = recidive.jail if recidive is not None else None
        windows = {jail: self._window(jail) for jail in {row[1] for row in rows}}
        active = []
        for row in rows:
            ip, jail, start, until, failures, _reason, _step, origin, lifted = row
            window = windows[jail]
            if failures > 0:  # by hand: neither grows nor feeds recidive
                if window is not None:  # the fleet's grow this host's next ban too
                    window.bans[ip] = window.bans.get(ip, 0) + 1
                # the fleet's leader counts the fleet's for recidive (docs/fleet.md)
                if start >= since and jail != fed_jail and not origin:
                    starts = recidive_starts.get(ip)
                    if starts is None:
                        recidive_starts[ip] = [start]
                    else:
                        starts.append(start)
            if lifts and start >= lifts_after:
                lifts.pop((ip, jail, start), None)  # a newer ban replaced it: not a lift
            if lifted is not None and lifts_after <= lifted < until:
                lifts[ip, jail, lifted] = None
            elif lifted is None and until > now:
                active.append(row)
                if window is not None:  # as remember_bans: not decided again
                    window.banned_until[ip] = until
                    window.times.pop(ip, None)
        return active

    def prime(self, hits: Iterable[Hit], lifts: Iterable[tuple[str, float]] = ()) -> None:
        """Replay recent failures (the store's, in time order) to rebuild the windows after
        a restart.

        What they decide is in the store already, and the store is the truth about it: ban
        counts stay as it said, and so do the bans in force (``remember_bans`` gave them
        first). ``lifts`` (target, when; in time order) are the bans it lifted (``unban``,
        ``stop --unban``): the replay forgets each target at that moment as the live daemon
        did, so the failures that made a lifted ban never revive it, those after the lift
        count, and a late line from before the lift is still ignored.
        """
        saved = [(window, dict(window.bans), dict(window.banned_until)) for window in self._all()]
        replayed: dict[str, float] = {}  # lifted targets the replay knew: when
        pending = iter(lifts)
        lift = next(pending, None)
        batch: list[Hit] = []
        for hit in hits:
            while lift is not None and lift[1] <= hit[0]:
                self.observe(batch, escalate=False)
                batch.clear()
                self._lift(*lift, replayed)
                lift = next(pending, None)
            batch.append(hit)
        self.observe(batch, escalate=False)
        if lift is not None:
            self._lift(*lift, replayed)
        for target, when in pending:
            self._lift(target, when, replayed)
        for window, bans, banned_until in saved:
            window.bans = bans
            for target, when in replayed.items():
                if target not in banned_until:  # a newer ban in force wins
                    # A late line from before the lift is ignored; one stamped in the lift's
                    # own second counts (syslog stamps whole seconds: it may be a new try,
                    # and the live daemon counts it too).
                    banned_until[target] = math.floor(when)
            window.banned_until = banned_until

    def _lift(self, target: str, when: float, replayed: dict[str, float]) -> None:
        """A lift met in ``prime``'s replay: ``forget``, noting the target if it was known
        (one unknown to the replay has no late lines to ignore: nothing is kept for it)."""
        for window in self._all():
            known = window.banned_until.pop(target, None) is not None
            if window.times.pop(target, None) is not None or known:
                replayed[target] = when

    def prime_recidive(self, history: dict[str, list[float]]) -> None:
        """Feed the recidive jail the bans already made, per target the start times of its
        bans in the window (``remember_ledger`` gathers them; the lists are kept), without
        deciding anything: what they completed is in the store already.

        A target with one ban, not banned by recidive now (almost every one), completes
        nothing: its list is taken as it is. The few others are stepped ban by ban.
        """
        recidive = self._recidive
        if recidive is None:
            return
        saved = dict(recidive.bans)
        times, banned = recidive.times, recidive.banned_until
        if recidive.maxretry > 1:  # one ban alone completes nothing
            stepped = {target for target, starts in history.items() if len(starts) > 1}
            stepped.update(target for target in (*banned, *times) if target in history)
        else:
            stepped = set(history)
        # Every list taken in one C-level update (a generator that left the stepped out cost
        # 0.5 s at a million targets), then the stepped given back what they had.
        earlier = {target: times[target] for target in stepped if target in times}
        times.update(history)
        for target in stepped:
            if target in earlier:
                times[target] = earlier[target]
            else:
                del times[target]
        keep = _KEEP * recidive.maxretry
        for target in stepped:
            starts = sorted(history[target])
            until = banned.get(target)
            fresh = target not in times and (until is None or starts[0] >= until)
            if fresh and len(starts) < recidive.maxretry:
                if until is not None:
                    del banned[target]
                times[target] = starts[-keep:]
                continue
            for start in starts:
                if _step(recidive, target, start) is not None:
                    banned.pop(target, None)  # the store says if it is
        recidive.bans = saved

    def _window(self, jail: str) -> _Window | None:
        if self._recidive is not None and jail == self._recidive.jail:
            return self._recidive
        return self._windows.get(jail)

    def remember_bans(self, bans: Iterable[Ban]) -> None:
        """Bans already in force (from the store, or made by hand): don't decide them again."""
        for ban in bans:
            window = self._window(ban.jail)
            if window is not None:
                window.banned_until[ban.ip] = ban.until
                window.times.pop(ban.ip, None)

    def remember_fleet_bans(self, bans: Iterable[Ban]) -> None:
        """The fleet's bans applied here: in force (not decided again), and each one made
        from failures counts for the growing ban time of this host's next ban of its target
        (recidive and network bans on fleet counts are the fleet leader's to decide)."""
        bans = list(bans)
        self.remember_bans(bans)
        for ban in bans:
            window = self._window(ban.jail)
            if window is not None and ban.failures > 0:
                window.bans[ban.ip] = window.bans.get(ban.ip, 0) + 1

    def forget(self, address: str) -> None:
        """After an unban: the address starts with a clean slate in every jail."""
        for window in self._all():
            window.banned_until.pop(address, None)
            window.times.pop(address, None)

    def expire(self, now: float) -> None:
        """Drop windows that can no longer reach ``maxretry`` (keeps memory bounded)."""
        for window in self._all():
            horizon = now - window.findtime
            stale = [a for a, t in window.times.items() if t[-1] < horizon]
            for address in stale:
                del window.times[address]
            _forget_ended(window, now)
            gone = now - window.subnet[1]
            old = [n for n, seen in window.net_bans.items() if max(seen.values(), default=0) < gone]
            for network in old:
                del window.net_bans[network]

    def _all(self) -> list[_Window]:
        return [*self._windows.values(), *([self._recidive] if self._recidive else [])]
