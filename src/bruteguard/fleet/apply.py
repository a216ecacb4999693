"""Fleet bans as this host's bans: which jail holds them, and which this host refuses.

A fleet ban never locks a host out of itself or its admins: a target that is or overlaps
this host's own addresses, loopback, or an ``ignoreip`` network (global or the jail's) is
skipped here, whatever the other host decided.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

from bruteguard.config import RECIDIVE_JAIL, JailConfig, parse_networks
from bruteguard.detect import IgnoreList
from bruteguard.fleet.subscriber import FleetBan
from bruteguard.model import Ban, Network

__all__ = ["LocalPlan", "plan"]


class LocalPlan:
    """What to do here: ``bans`` to store and enforce, ``lifts`` per origin host, and the
    targets ``refused`` by the ignore rules."""

    def __init__(self) -> None:
        self.bans: list[Ban] = []
        self.lifts: dict[str, list[tuple[str, float]]] = {}  # (target, lifted at)
        self.refused: list[str] = []


def _local_jail(jail: str, jails: Mapping[str, JailConfig]) -> JailConfig | None:
    """The same jail if it runs here; else recidive (every port); else the first jail."""
    for name in (jail, RECIDIVE_JAIL):
        if name in jails:
            return jails[name]
    return next(iter(jails.values()), None)


def _ignored(target: str, networks: Sequence[Network], own: Iterable[str]) -> bool:
    if "/" not in target:
        return target in IgnoreList(networks, own)
    banned = ipaddress.ip_network(target, strict=False)
    return (
        IgnoreList((), own).holds_own_address(banned)
        or str(banned.network_address) in IgnoreList(networks, ())
        or any(n.version == banned.version and n.overlaps(banned) for n in networks)
    )


def plan(
    changes: Sequence[FleetBan],
    jails: Mapping[str, JailConfig],
    ignoreip: Sequence[str],
    own: Iterable[str],
    now: float,
    me: str,
) -> LocalPlan:
    """This host's part of ``changes`` (enabled ``jails`` by name, the global ``ignoreip``,
    this host's ``own`` addresses, ``me`` its fleet name)."""
    own = list(own)
    base = parse_networks(list(ignoreip))
    result = LocalPlan()
    for change in changes:
        if change.lifted is not None:
            origin = "" if change.origin == me else change.origin  # an admin lifted ours
            result.lifts.setdefault(origin, []).append((change.ip, change.lifted))
            continue
        jail = _local_jail(change.jail, jails)
        if jail is None or change.until <= now:
            continue
        networks = [*base, *parse_networks(jail.ignoreip)]
        if _ignored(change.ip, networks, own):
            result.refused.append(change.ip)
            continue
        result.bans.append(
            Ban(
                change.ip,
                jail.name,
                change.start,
                change.until,
                change.failures,
                change.reason,
                origin=change.origin,
            )
        )
    return result
