"""Bans as addresses in pf tables (OpenBSD, FreeBSD, macOS): one pfctl per jail per call.

Each jail has one table, ``<prefix>-<jail>`` (default ``bruteguard-sshd``), holding IPv4 and
IPv6 addresses and networks. The admin declares the tables and the rules that use them in
pf.conf, once::

    table <bruteguard-sshd> persist
    block in quick proto tcp from <bruteguard-sshd> to any port 22

Addresses go to pfctl on stdin (``pfctl -q -t TABLE -T add -f -``), so 100,000 bans are one
process and never hit the argument-length limit. ``reconcile`` is ``-T replace``: atomic.

"Allow wins" uses pf's negated table entries: the jail's allowed networks are kept in its
table as ``!198.51.100.7``; pf matches the longest prefix, so an allowed host inside a
banned network does not match the table.

pf tables have no per-entry timeouts: the daemon unbans expired bans and reconciles on
start. ``teardown`` flushes the tables (``-T flush``) and does not kill them: they are
declared in the admin's pf.conf, and a killed table loses its ``persist`` flag.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from bruteguard.enforce import JailRule
from bruteguard.enforce.command import (
    Runner,
    TableJail,
    allow_networks,
    argv_runner,
    entry_text,
    targets_by_jail,
)
from bruteguard.enforce.nftables import validate_name
from bruteguard.errors import EnforcerError
from bruteguard.model import Ban

__all__ = ["PfEnforcer"]

log = logging.getLogger(__name__)

_TABLE_NAME_MAX = 31  # PF_TABLE_NAME_SIZE (32) less the terminating NUL


class PfEnforcer:
    """One pf table per jail, changed with ``pfctl -T add|delete|replace|flush -f -``.

    ``runner(argv, stdin) -> stdout`` runs pfctl (default: a subprocess with ``timeout``).
    """

    name = "pf"
    expires = False  # no timeouts here: the daemon unbans expired bans

    def __init__(
        self,
        table_prefix: str = "bruteguard",
        *,
        pfctl: str = "pfctl",
        runner: Runner | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.table_prefix = validate_name(table_prefix, "pf table prefix")
        self.pfctl = pfctl
        self.timeout = timeout
        self._runner = runner or argv_runner(timeout, "pf (OpenBSD, FreeBSD or macOS only)")
        self._jails: dict[str, TableJail[str]] = {}

    def table(self, jail: str) -> str:
        """The pf table for ``jail``: ``<prefix>-<jail>``, at most 31 characters."""
        name = f"{self.table_prefix}-{validate_name(jail)}"
        if len(name) > _TABLE_NAME_MAX:
            raise EnforcerError(
                f"pf table name {name!r} is longer than {_TABLE_NAME_MAX} characters:"
                " shorten the jail name or pf_table_prefix"
            )
        return name

    # -- Enforcer protocol ---------------------------------------------------------------

    def setup(self, jails: Sequence[JailRule]) -> None:
        """Put each jail's allowed networks into its table as negated entries; keep bans.

        Tables missing from the running ruleset are created by pfctl, but no rule uses them
        yet: that is logged, with the pf.conf lines to add.
        """
        specs = {
            rule.name: TableJail(rule.name, self.table(rule.name), allow_networks(rule))
            for rule in jails
        }
        present = set(self._run(["-s", "Tables"], None).split())
        for jail in specs.values():
            if jail.table not in present:
                log.warning(
                    "pf: table <%s> is not in the loaded ruleset: add to pf.conf"
                    " 'table <%s> persist' and a block rule using it",
                    jail.table,
                    jail.table,
                )
            if jail.allow:
                self._table_command(jail.table, "add", (f"!{entry_text(n)}" for n in jail.allow))
        self._jails = specs

    def reconcile(self, bans: Sequence[Ban], now: float) -> None:
        """Replace every jail table with its active bans (and allow entries), atomically."""
        grouped = self._group(bans, now)
        for jail in self._jails.values():
            entries = [*grouped.get(jail.name, ()), *(f"!{entry_text(n)}" for n in jail.allow)]
            self._table_command(jail.table, "replace", entries)
        log.info("pf: reconciled %d bans", sum(map(len, grouped.values())))

    def ban(self, bans: Sequence[Ban], now: float) -> None:
        for jail, entries in self._group(bans, now).items():
            self._table_command(self._jails[jail].table, "add", entries)

    def unban(self, bans: Sequence[Ban]) -> None:
        """Delete the addresses; pfctl does not fail for ones that are not in the table."""
        for jail, entries in self._group(bans, None).items():
            self._table_command(self._jails[jail].table, "delete", entries)

    def teardown(self) -> None:
        """Flush every table named ``<prefix>-*`` in the running ruleset (nothing else)."""
        prefix = f"{self.table_prefix}-"
        for table in self._run(["-s", "Tables"], None).split():
            if table.startswith(prefix):
                self._run(["-q", "-t", table, "-T", "flush"], None)
        self._jails = {}

    def check(self) -> str | None:
        """pfctl exists and can read the ruleset's tables (needs root; changes nothing)."""
        try:
            self._run(["-s", "Tables"], None)
        except EnforcerError as error:
            return str(error)
        return None

    # -- helpers -------------------------------------------------------------------------

    def _group(self, bans: Sequence[Ban], now: float | None) -> dict[str, list[str]]:
        """Validated entries per jail; expired (if ``now``) and allowed ones left out."""
        return targets_by_jail(bans, self._jails, now, "pf")

    def _table_command(self, table: str, command: str, entries: Iterable[str]) -> None:
        lines = "".join(f"{entry}\n" for entry in entries)
        self._run(["-q", "-t", table, "-T", command, "-f", "-"], lines)

    def _run(self, args: list[str], stdin: str | None) -> str:
        return self._runner([self.pfctl, *args], stdin)
