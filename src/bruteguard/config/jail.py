"""``[jails.NAME]`` and ``[defaults]``: one jail, in the words fail2ban users know; the
checks its settings share with the rest of the file (networks, journal matches)."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from bruteguard.allow import as_network
from bruteguard.bounds import (
    MAX_BAN,
    MAX_COUNT,
    MAX_WINDOW,
    check_absolute,
    check_duration,
    check_range,
)
from bruteguard.duration import Seconds, parse_duration
from bruteguard.model import Network

__all__ = ["RECIDIVE", "RECIDIVE_JAIL", "JailConfig", "check_journalmatch", "parse_networks"]

# The filter of the jail fed from bruteguard's own bans instead of a log, and its jail.
RECIDIVE = "recidive"
RECIDIVE_JAIL = "recidive"


class JailConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One jail, in the words fail2ban users know."""

    name: str = ""
    enabled: bool = True
    filter: str = ""
    backend: Literal["auto", "file", "journal", "stdin"] = "auto"
    logpath: list[str] = []
    journalmatch: list[str] = []
    maxretry: int = 5
    findtime: Seconds = Seconds(600)
    bantime: Seconds = Seconds(3600)
    ignoreip: list[str] = []
    port: list[int | str] = []  # none: every port (a built-in jail names its service's)
    protocol: Literal["tcp", "udp"] = "tcp"
    # sshd's "POSSIBLE BREAK-IN ATTEMPT!" says reverse DNS is broken, not that anyone failed
    # to log in: it counts as this many failures (0: none).
    breakin_weight: int = 0
    # Growing ban times: the n-th ban of one address in this jail lasts
    # bantime * bantime_factor^(n-1), at most maxtime (1: every ban lasts bantime). maxtime
    # unset: a week, or bantime if that is longer.
    bantime_factor: float = 2.0
    maxtime: Seconds = Seconds(0)
    # IPv6 attackers own whole prefixes: failures count per /ipv6_prefix (128: per address).
    ipv6_prefix: int = 64
    # subnet_maxretry addresses of one IPv4 /ipv4_prefix banned within subnet_findtime →
    # the whole prefix is banned (0: never).
    subnet_maxretry: int = 5
    subnet_findtime: Seconds = Seconds(86400)
    ipv4_prefix: int = 24
    # New connections to the jail's ports from one source beyond "HITS/DURATION" (e.g.
    # "4/3m") are dropped by the kernel before the service sees them (nftables).
    ratelimit: str = ""
    # The abuse desk for this jail's bans: "" follows [abuse] mode; "off", "draft", "send".
    abuse: Literal["", "off", "draft", "send"] = ""
    # Fleet-wide thresholds (docs/fleet.md; 0: off): an address whose failures on all the
    # fleet's hosts within fleet_findtime reach fleet_maxretry, or come from fleet_hosts
    # hosts, is banned fleet-wide by the leader.
    fleet_maxretry: int = 0
    fleet_findtime: Seconds = Seconds(3600)
    fleet_hosts: int = 0
    # Closed to all but the allow list and those who knocked ([knock], docs/knock.md).
    knock: bool = False
    # The global ignoreip, copied in when the file is loaded (never written in a jail).
    global_ignoreip: list[str] = []

    def __post_init__(self) -> None:
        check_range("maxretry", self.maxretry, 1, MAX_COUNT)
        check_duration("findtime", self.findtime, MAX_WINDOW)
        check_duration("bantime", self.bantime, MAX_BAN)
        check_duration("maxtime", self.maxtime, MAX_BAN, zero=True)
        if not 0 <= self.breakin_weight <= 1000:
            raise ValueError(f"breakin_weight: must be 0 to 1000, got {self.breakin_weight}")
        if not 1.0 <= self.bantime_factor <= 100.0:
            raise ValueError(f"bantime_factor: must be 1 to 100, got {self.bantime_factor}")
        if self.maxtime and self.maxtime < self.bantime:
            raise ValueError("maxtime: must be at least bantime")
        if not 16 <= self.ipv6_prefix <= 128:
            raise ValueError(f"ipv6_prefix: must be 16 to 128, got {self.ipv6_prefix}")
        if not 8 <= self.ipv4_prefix <= 32:
            raise ValueError(f"ipv4_prefix: must be 8 to 32, got {self.ipv4_prefix}")
        check_range("subnet_maxretry", self.subnet_maxretry, 0, MAX_COUNT)
        check_duration("subnet_findtime", self.subnet_findtime, MAX_WINDOW)
        check_range("fleet_maxretry", self.fleet_maxretry, 0, MAX_COUNT)
        check_duration("fleet_findtime", self.fleet_findtime, MAX_WINDOW)
        check_range("fleet_hosts", self.fleet_hosts, 0, MAX_COUNT)
        for path in self.logpath:
            check_absolute("logpath", path)
        if self.ratelimit:
            _parse_ratelimit(self.ratelimit)
        parse_networks(self.ignoreip, "ignoreip")
        check_journalmatch(self.journalmatch)
        if not self.filter:
            self.filter = self.name

    @property
    def ports(self) -> tuple[int, ...]:
        """Port numbers (service names resolved when the config was loaded)."""
        return tuple(int(p) for p in self.port)

    @property
    def longest_ban(self) -> float:
        """``maxtime``, or its default: a week, or ``bantime`` if that is longer."""
        return float(self.maxtime) if self.maxtime else max(float(self.bantime), 7 * 86400.0)

    @property
    def allow(self) -> tuple[Network, ...]:
        """Networks this jail never blocks, even inside a banned network (``ignoreip``, the
        global list included): what enforcers exempt."""
        return tuple(parse_networks([*self.global_ignoreip, *self.ignoreip]))

    @property
    def from_logs(self) -> bool:
        """False for the recidive jail, which is fed from bruteguard's own bans."""
        return self.filter != RECIDIVE

    @property
    def rate(self) -> tuple[int, float] | None:
        """``ratelimit`` as (hits, seconds), or None."""
        return _parse_ratelimit(self.ratelimit) if self.ratelimit else None


def _parse_ratelimit(text: str) -> tuple[int, float]:
    hits, slash, duration = text.partition("/")
    if not slash or not hits.strip().isdigit() or not 0 < int(hits) <= 1000:
        raise ValueError(f"ratelimit: expected HITS/DURATION like 4/3m, got {text!r}")
    seconds = parse_duration(duration.strip())
    if not 1 <= seconds <= 86400:
        raise ValueError(f"ratelimit: the duration must be 1s to 1d, got {duration!r}")
    return int(hits), seconds


def parse_networks(texts: list[str], key: str = "ignoreip") -> list[Network]:
    """Addresses and CIDRs as networks; ValueError names the bad entry."""
    networks: list[Network] = []
    for text in texts:
        network = as_network(text)
        if network is None:
            raise ValueError(f"{key}: {text!r} is not an IP address or CIDR network")
        networks.append(network)
    return networks


_JOURNAL_TERM = re.compile(r"\A[A-Z0-9_]+=.*\Z", re.DOTALL)


def check_journalmatch(matches: list[str]) -> None:
    """Each match is ``FIELD=value`` terms (ANDed) and ``+`` (OR), as journalctl takes them."""
    for match in matches:
        for term in match.split():
            if term != "+" and not _JOURNAL_TERM.match(term):
                raise ValueError(f"journalmatch: {term!r} is not FIELD=value")
