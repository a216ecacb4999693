"""The ipset enforcer (config name ``ipset``): for hosts run with iptables, not nftables.

Bans are entries of ipset sets with their own timeouts, so the kernel lifts them on time even
while bruteguard is stopped. Per jail and family (``4``/``6``) there are three sets::

    <prefix>-<jail>-4    hash:ip,  timeout 0 (per-entry timeouts)   single addresses
    <prefix>-<jail>-4n   hash:net, timeout 0                        networks (CIDR)
    <prefix>-<jail>-4a   hash:net, no timeout                       the jail's ``allow``

and iptables rules in bruteguard's own chains (see ``_commands``)::

    -A INPUT -j BRUTEGUARD                                   (inserted at the top, once)
    -A BRUTEGUARD -p tcp -m multiport --dports 22 -j BRUTEGUARD-sshd
    -A BRUTEGUARD-sshd -m set --match-set bruteguard-sshd-4a src -j RETURN
    -A BRUTEGUARD-sshd -p tcp -m set --match-set bruteguard-sshd-4 src -j REJECT …
    -A BRUTEGUARD-sshd -p tcp -m set --match-set bruteguard-sshd-4n src -j REJECT …

The allow RETURN sits in the jail's chain, so it exempts from this jail's sets only, also
inside a banned network ("allow wins"). ipset names have at most 31 characters and chain names
28, so a jail name may have at most ``27 - len(prefix)`` (17 with the default prefix).

Every ban, unban and reconcile is one ``ipset -exist restore``: ``add … timeout N`` (adding
again refreshes the timeout), ``del`` (a missing entry is no error). Reconcile fills a scratch
set and ``swap``s it in, so no set is ever empty part-way. ipset's longest timeout is 2147483 s
(about 24.8 days): a longer ban is entered without a timeout and lifted by the daemon's
``unban`` when it expires (and by ``reconcile`` on start).
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Iterable, Sequence
from functools import partial

from bruteguard.enforce import JailRule, describe_bans
from bruteguard.enforce._commands import (
    FAMILIES,
    Family,
    Table,
    XtEnforcer,
    XtJail,
    target_parts,
)
from bruteguard.enforce.nftables import parse_target
from bruteguard.errors import EnforcerError
from bruteguard.model import Ban

__all__ = ["MAX_TIMEOUT", "IpsetEnforcer"]

log = logging.getLogger(__name__)

MAX_TIMEOUT = 2147483  # seconds: the longest entry timeout ipset accepts
_MAXELEM = 1048576
_UNSPECIFIED = {"0.0.0.0", "::"}  # a hash set cannot store them; no packet comes from them


def _timeout(until: float, now: float) -> int | None:
    """Seconds for ``timeout`` (0: no timeout), or None if the ban has already ended."""
    if math.isinf(until) and until > 0:
        return 0
    remaining = until - now
    if not remaining > 0:
        return None
    if remaining > MAX_TIMEOUT:
        return 0
    return max(1, math.ceil(remaining))


class IpsetEnforcer(XtEnforcer):
    """Bans as timed ipset entries matched by own iptables chains; one ipset restore per call.

    Options and the chain handling come from ``XtEnforcer``.
    """

    name = "ipset"
    # Timeouts lift almost every ban by themselves, but ipset's longest is about 24.8 days:
    # longer bans go in without one, so the daemon must unban expired bans here too.
    expires = False

    @property
    def _swap(self) -> str:
        """The scratch set ``_replace`` fills and swaps in."""
        return f"{self.prefix}.swap"

    @functools.cached_property
    def _own_set(self) -> re.Pattern[str]:
        """Names of this prefix's sets (and its scratch set): what teardown may destroy."""
        return re.compile(
            rf"\A{re.escape(self.prefix)}(?:-[A-Za-z_][A-Za-z0-9_-]*-[46][na]?|\.swap)\Z"
        )

    # -- Enforcer protocol ---------------------------------------------------------------

    def setup(self, jails: Sequence[JailRule]) -> None:
        """Create the sets, chains and jump rule if missing; fill the allow sets.

        Ban entries are kept (a restart unbans nobody). If a step fails, whatever this call
        created is removed again and the chains are put back as they were.
        """
        specs = self._specs(jails)
        sets_before = self._list_sets()
        before = self._read_all()
        try:
            self._ipset(self._definition(specs.values()))
            for family in FAMILIES:
                rules = partial(self._jail_rules, family)
                lines = self.layout.chain_script(before[family], specs.values(), rules)
                self._restore(family, lines)
        except EnforcerError:
            self._undo(sets_before, before)
            raise
        self._jails = specs
        log.info("ipset: chains %s and sets ready for jails %s", self.layout.main, ", ".join(specs))

    def reconcile(self, bans: Sequence[Ban], now: float) -> None:
        """Replace the contents of every ban set with ``bans`` in one ipset restore."""
        if not self._jails:
            raise EnforcerError("ipset: setup() must run before reconcile() replaces the sets")
        entries = self._entries(bans, now)
        lines = []
        for jail in self._jails.values():
            for family in FAMILIES:
                for kind in ("", "n"):
                    name = self.set_name(jail.name, family.version, kind)
                    wanted = entries.get(name, {})
                    added = (f"{entry} timeout {seconds}" for entry, seconds in wanted.items())
                    lines += self._replace(name, self._spec(family, kind), added)
        self._ipset(lines)
        log.info("ipset: reconciled %d bans", sum(map(len, entries.values())))

    def ban(self, bans: Sequence[Ban], now: float) -> None:
        """Add or refresh bans (``add … -exist`` sets the new timeout) in one restore."""
        entries = self._entries(bans, now)
        lines = [
            f"add {name} {entry} timeout {seconds}"
            for name, members in entries.items()
            for entry, seconds in members.items()
        ]
        if lines:
            self._ipset(lines)
            log.info("ipset: banned %s", describe_bans(bans))

    def unban(self, bans: Sequence[Ban]) -> None:
        """Remove bans in one restore; entries that are not there are not an error.

        A network is removed as the entry it was banned as: unbanning 198.51.0.0/16 leaves
        a separately banned 198.51.100.0/24 in place.
        """
        lines = []
        for ban in bans:
            target = parse_target(ban.ip)
            name = self._set_for(ban.jail, target.version, target.network is not None)
            lines += [f"del {name} {part}" for part in target_parts(target)]
        if lines:
            self._ipset(lines)
            log.info("ipset: unbanned %s", describe_bans(bans))

    def teardown(self) -> None:
        """Remove the jump rule, own chains and own sets (and nothing else); idempotent."""
        self._remove_chains()
        own = [name for name in self._list_sets() if self._own_set.match(name)]
        if own:
            self._ipset([f"destroy {name}" for name in own])
        self._jails = {}
        log.info("ipset: chains %s and %d sets removed", self.layout.main, len(own))

    # -- health --------------------------------------------------------------------------

    def _probe(self) -> None:
        """``check`` lists the rules and the sets (and changes nothing)."""
        super()._probe()
        self._list_sets()

    # -- names and lines -----------------------------------------------------------------

    def set_name(self, jail: str, version: int, kind: str = "") -> str:
        """``<prefix>-<jail>-4`` (addresses), ``-4n`` (networks), ``-4a`` (allow)."""
        return f"{self.prefix}-{jail}-{version}{kind}"

    def _set_for(self, jail: str, version: int, is_network: bool) -> str:
        return self.set_name(self._jail(jail).name, version, "n" if is_network else "")

    @staticmethod
    def _spec(family: Family, kind: str) -> str:
        if kind == "a":
            return f"hash:net family {family.ipset} hashsize 1024 maxelem 65536"
        kind_type = "hash:net" if kind == "n" else "hash:ip"
        return f"{kind_type} family {family.ipset} hashsize 1024 maxelem {_MAXELEM} timeout 0"

    def _definition(self, jails: Iterable[XtJail]) -> list[str]:
        lines = []
        for jail in jails:
            for family in FAMILIES:
                for kind in ("", "n", "a"):
                    name = self.set_name(jail.name, family.version, kind)
                    lines.append(f"create {name} {self._spec(family, kind)}")
                allow = self.set_name(jail.name, family.version, "a")
                lines += self._replace(allow, self._spec(family, "a"), jail.allowed(family.version))
        return lines

    def _replace(self, name: str, spec: str, members: Iterable[str]) -> list[str]:
        """Fill a scratch set and swap it in: the live set changes in one step."""
        swap = self._swap
        return [
            f"destroy {swap}",  # a leftover of another type would make create fail
            f"create {swap} {spec}",
            *(f"add {swap} {member}" for member in members),
            f"swap {swap} {name}",
            f"destroy {swap}",
        ]

    def _jail_rules(self, family: Family, jail: XtJail) -> list[str]:
        def match(kind: str) -> str:
            return f"-m set --match-set {self.set_name(jail.name, family.version, kind)} src"

        return [
            *jail.passes(family),
            f"{match('a')} -j RETURN",
            jail.block(match(""), self.blocktype),
            jail.block(match("n"), self.blocktype),
        ]

    def _entries(self, bans: Sequence[Ban], now: float) -> dict[str, dict[str, int]]:
        """Validate ``bans`` and group them by set: entry → timeout; expired ones left out.

        Of two bans for the same entry in one batch the longer wins.
        """
        untils: dict[tuple[str, str], float] = {}
        entries: dict[str, dict[str, int]] = {}
        for ban in bans:
            target = parse_target(ban.ip)
            name = self._set_for(ban.jail, target.version, target.network is not None)
            seconds = _timeout(ban.until, now)
            if seconds is None:
                continue
            if target.text in _UNSPECIFIED:
                log.warning("ipset: ignoring a ban of the unspecified address %s", target.text)
                continue
            for part in target_parts(target):
                if untils.get((name, part), -math.inf) < ban.until:
                    untils[(name, part)] = ban.until
                    entries.setdefault(name, {})[part] = seconds
        return entries

    # -- running -------------------------------------------------------------------------

    def _ipset(self, lines: list[str]) -> None:
        self._ipset_run(["-exist", "restore"], "\n".join(lines) + "\n")

    def _list_sets(self) -> list[str]:
        output = self._ipset_run(["list", "-n"], None)
        return [line.strip() for line in output.splitlines() if line.strip()]

    def _ipset_run(self, args: list[str], script: str | None) -> str:
        return self._runner(self.argv_prefix, ["ipset", *args], script, self.timeout, "ipset")

    def _undo(self, sets_before: list[str], before: dict[Family, Table]) -> None:
        """Put chains back as ``before`` had them and destroy sets this setup created.

        Each step is tried even if one fails (the setup's own error is what is raised).
        """
        self._undo_chains(before)
        try:
            created = [
                name
                for name in self._list_sets()
                if self._own_set.match(name) and name not in sets_before
            ]
            if created:
                self._ipset([f"destroy {name}" for name in created])
        except EnforcerError as error:
            log.error("ipset: could not remove the sets of a failed setup: %s", error)
