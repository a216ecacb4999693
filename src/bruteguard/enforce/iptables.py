"""The plain iptables enforcer (config name ``iptables``): no ipset, one rule per ban.

For hosts that have iptables but neither nftables nor ipset. Bans are rules in bruteguard's
own chains (layout in ``_commands``)::

    -A INPUT -j BRUTEGUARD                                   (inserted at the top, once)
    -A BRUTEGUARD -p tcp -m multiport --dports 22 -j BRUTEGUARD-sshd
    -A BRUTEGUARD-sshd -s 192.0.2.20/32 -j RETURN            (the jail's allow: first)
    -A BRUTEGUARD-sshd -s 192.0.2.11/32 -p tcp -j REJECT --reject-with tcp-reset
    -A BRUTEGUARD-sshd -s 198.51.100.0/24 -p tcp -j REJECT --reject-with tcp-reset

Every ban, unban and reconcile reads the table (``iptables -S``) and rebuilds the changed jail
chains (``-F`` then every rule) in one ``iptables-restore --noflush`` per family: one atomic
commit, never one process per address.

Limits: the kernel walks these rules one by one for every packet to a jail's ports, so this
is for small ban counts; beyond a few thousand use the ipset or nftables enforcer. More than
20,000 bans in one jail chain (per jail and family) is refused with an EnforcerError.

Time: iptables rules have no timeouts and this enforcer keeps no timers. A ban stays until
the daemon calls ``unban`` for it when it expires (and ``reconcile`` on start drops every
ban that ended while bruteguard was stopped). ``ban`` ignores bans that have already ended.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

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

__all__ = ["MAX_BANS_PER_JAIL", "IptablesEnforcer"]

log = logging.getLogger(__name__)

MAX_BANS_PER_JAIL = 20_000
# A ban rule as ``iptables -S`` prints it back (allow rules end in RETURN and do not match).
_BAN_RULE = re.compile(
    r"\A-A (?P<chain>\S+) -s (?P<source>[0-9A-Fa-f:.]+/\d{1,3})(?: -p (?:tcp|udp))?"
    r" -j (?:REJECT|DROP)(?: --reject-with [a-z0-9-]+)?\Z"
)
_BY_VERSION = {family.version: family for family in FAMILIES}

# jail name → ban entries (addresses and CIDRs, canonical text), in rule order.
Chains = dict[str, dict[str, None]]


class IptablesEnforcer(XtEnforcer):
    """One REJECT/DROP rule per ban in own per-jail chains; one restore per family and call.

    Options, the chain handling and ``check`` come from ``XtEnforcer``.
    """

    name = "iptables"
    expires = False  # no kernel timeouts: the daemon unbans expired bans

    # -- Enforcer protocol ---------------------------------------------------------------

    def setup(self, jails: Sequence[JailRule]) -> None:
        """Create the chains and jump rule if missing; rebuild them, keeping the bans.

        If a family fails, the chains are put back as they were in both families.
        """
        specs = self._specs(jails)
        before = self._read_all()
        try:
            for family in FAMILIES:
                kept = self._chains(before[family])
                lines = self.layout.chain_script(
                    before[family],
                    specs.values(),
                    lambda jail, family=family, kept=kept: self._jail_rules(
                        family, jail, kept.get(jail.name, {})
                    ),
                )
                self._restore(family, lines)
        except EnforcerError:
            self._undo_chains(before)
            raise
        self._jails = specs
        log.info("iptables: chain %s ready for jails %s", self.layout.main, ", ".join(specs))

    def reconcile(self, bans: Sequence[Ban], now: float) -> None:
        """Rebuild every jail chain with exactly ``bans`` (the active ones): one restore per
        family, which also restores the main chain and the jump rule if someone removed them."""
        if not self._jails:
            raise EnforcerError("iptables: setup() must run before reconcile() rebuilds chains")
        wanted = self._group(bans, now)
        for family in FAMILIES:
            chains = wanted.get(family.version, {})
            self._check_limit(family, chains)
            lines = self.layout.chain_script(
                self._read(family),
                self._jails.values(),
                lambda jail, family=family, chains=chains: self._jail_rules(
                    family, jail, chains.get(jail.name, {})
                ),
            )
            self._restore(family, lines)
        log.info("iptables: reconciled %d bans", len(bans))

    def ban(self, bans: Sequence[Ban], now: float) -> None:
        """Add bans that have not ended yet; one read and one restore per family touched."""
        added = self._group(bans, now)
        changed = {}
        for version, new in added.items():
            family = _BY_VERSION[version]
            table = self._read(family)
            chains = self._chains(table)
            for jail, entries in new.items():
                chains.setdefault(jail, {}).update(entries)
            touched = {jail: chains[jail] for jail in new}
            self._check_limit(family, touched)
            changed[family] = (table, touched)
        for family, (table, touched) in changed.items():
            self._restore(family, self._rebuild(family, table, touched))
        if changed:
            log.info("iptables: banned %s", describe_bans(bans))

    def unban(self, bans: Sequence[Ban]) -> None:
        """Remove bans; ones that are not there are not an error (and run nothing)."""
        removed = self._group(bans, None)
        for version, gone in removed.items():
            family = _BY_VERSION[version]
            table = self._read(family)
            chains = self._chains(table)
            touched = {}
            for jail, entries in gone.items():
                current = chains.get(jail, {})
                if any(entry in current for entry in entries):
                    touched[jail] = {e: None for e in current if e not in entries}
            if touched:
                self._restore(family, self._rebuild(family, table, touched))
        log.info("iptables: unbanned %s", describe_bans(bans))

    def teardown(self) -> None:
        """Remove the jump rule and every own chain (and nothing else); idempotent."""
        self._remove_chains()
        self._jails = {}
        log.info("iptables: chains %s removed", self.layout.main)

    # -- rules ---------------------------------------------------------------------------

    def _jail_rules(self, family: Family, jail: XtJail, entries: dict[str, None]) -> list[str]:
        rules = jail.passes(family)
        rules += [f"-s {allowed} -j RETURN" for allowed in jail.allowed(family.version)]
        return rules + [jail.block(f"-s {entry}", self.blocktype) for entry in entries]

    def _rebuild(self, family: Family, table: Table, chains: Chains) -> list[str]:
        """Lines that rebuild the jail chains in ``chains`` (and create them if missing)."""
        lines = []
        for jail_name, entries in chains.items():
            chain = self.layout.jail_chain(jail_name)
            if chain not in table.chains:
                lines.append(f"-N {chain}")
            lines.append(f"-F {chain}")
            rules = self._jail_rules(family, self._jails[jail_name], entries)
            lines += [f"-A {chain} {rule}" for rule in rules]
        return lines

    def _chains(self, table: Table) -> Chains:
        """The bans each own jail chain holds now, read back from ``iptables -S``."""
        chains: Chains = {}
        head = self.layout.main + "-"
        for chain in table.own_chains(self.layout):
            if not chain.startswith(head):
                continue  # the main chain: jumps only
            entries = chains.setdefault(chain.removeprefix(head), {})
            for rule in table.rules_in(chain):
                found = _BAN_RULE.match(rule)
                if found:
                    entries[parse_target(found["source"]).text] = None
        return chains

    def _group(self, bans: Sequence[Ban], now: float | None) -> dict[int, Chains]:
        """Validate ``bans``; group entries by family and jail (ended ones left out if
        ``now`` is given)."""
        grouped: dict[int, Chains] = {}
        for ban in bans:
            target = parse_target(ban.ip)
            self._jail(ban.jail)  # raises if the jail is not set up
            if now is not None and not ban.until > now:
                continue
            entries = grouped.setdefault(target.version, {}).setdefault(ban.jail, {})
            entries.update(dict.fromkeys(target_parts(target)))
        return grouped

    def _check_limit(self, family: Family, chains: Chains) -> None:
        for jail, entries in chains.items():
            if len(entries) > MAX_BANS_PER_JAIL:
                raise EnforcerError(
                    f"iptables: jail {jail} would hold {len(entries)} IPv{family.version} bans;"
                    f" the iptables enforcer takes at most {MAX_BANS_PER_JAIL:,} per jail"
                    " (every packet walks them one by one): use the ipset or nftables enforcer"
                )
