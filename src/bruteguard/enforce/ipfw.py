"""Bans as entries of ipfw lookup tables (FreeBSD): one table number per jail.

Each jail gets a table number: ``tables[jail]`` if configured, otherwise ``table_base`` plus
its position among the remaining jails sorted by name (logged by ``setup``; pin them with
the mapping when your ipfw rules name numbers). Banned addresses and networks have the
value 1, the jail's allowed networks the value 0, so one rule per jail does the job::

    ipfw table 1 create type addr
    ipfw add 100 deny tcp from 'table(1,1)' to me 22

ipfw looks up the longest prefix and ``table(1,1)`` matches only entries whose value is 1:
an allowed host inside a banned network finds its value-0 entry and is not denied ("allow
wins"). Entries go to ipfw as arguments, ``chunk`` of them per process
(``ipfw -q table 1 add ADDR 1 ADDR 1 …``); ``-q`` makes adding an existing entry update it
and deleting a missing one no error.

ipfw tables have no timeouts: the daemon unbans expired bans and reconciles on start.
``reconcile`` flushes a table and adds its entries again (two commands: a moment without
bans, once, at start). ``teardown`` flushes the jails' tables; it never destroys them,
since the admin's rules refer to them. The default ``net.inet.ip.fw.tables_max`` is 128.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

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

__all__ = ["ALLOW_VALUE", "BAN_VALUE", "IpfwEnforcer"]

log = logging.getLogger(__name__)

BAN_VALUE = 1
ALLOW_VALUE = 0
_TABLE_MAX = 65534


def _table_number(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _TABLE_MAX:
        raise EnforcerError(f"{what}: ipfw table number must be 0 to {_TABLE_MAX}, not {value!r}")
    return value


class IpfwEnforcer:
    """One ipfw table per jail; see the module docstring for the rule the admin adds."""

    name = "ipfw"
    expires = False  # no timeouts here: the daemon unbans expired bans

    def __init__(
        self,
        table_base: int = 1,
        *,
        tables: Mapping[str, int] | None = None,
        ipfw: str = "ipfw",
        runner: Runner | None = None,
        timeout: float = 60.0,
        chunk: int = 1000,
    ) -> None:
        self.table_base = _table_number(table_base, "ipfw_table_base")
        self.tables = {
            validate_name(jail): _table_number(number, f"ipfw_tables.{jail}")
            for jail, number in (tables or {}).items()
        }
        if len(set(self.tables.values())) != len(self.tables):
            raise EnforcerError("ipfw_tables: two jails share one table number")
        if chunk < 1:
            raise EnforcerError(f"ipfw chunk must be at least 1, not {chunk!r}")
        self.ipfw = ipfw
        self.timeout = timeout
        self.chunk = chunk
        self._runner = runner or argv_runner(timeout, "ipfw (FreeBSD only)")
        self._jails: dict[str, TableJail[int]] = {}

    def table_numbers(self, jail_names: Iterable[str]) -> dict[str, int]:
        """Table number per jail: the configured mapping, then ``table_base`` upwards."""
        names = sorted({validate_name(name) for name in jail_names})
        numbers = {name: self.tables[name] for name in names if name in self.tables}
        taken = set(self.tables.values())
        candidate = self.table_base
        for name in names:
            if name in numbers:
                continue
            while candidate in taken:
                candidate += 1
            numbers[name] = _table_number(candidate, f"jail {name}")
            taken.add(candidate)
        return numbers

    # -- Enforcer protocol ---------------------------------------------------------------

    def setup(self, jails: Sequence[JailRule]) -> None:
        """Create each jail's table if missing and add its allowed networks; keep bans."""
        numbers = self.table_numbers(rule.name for rule in jails)
        specs = {
            rule.name: TableJail(rule.name, numbers[rule.name], allow_networks(rule))
            for rule in jails
        }
        for jail in specs.values():
            self._run(["-q", "table", str(jail.table), "create", "type", "addr", "missing"])
            self._add(jail.table, ((entry_text(n), ALLOW_VALUE) for n in jail.allow))
            log.info("ipfw: jail %s uses table %d", jail.name, jail.table)
        self._jails = specs

    def reconcile(self, bans: Sequence[Ban], now: float) -> None:
        """Flush each jail's table, then add its allow entries and active bans."""
        grouped = self._group(bans, now)
        for jail in self._jails.values():
            self._run(["-q", "table", str(jail.table), "flush"])
            entries = [(entry_text(n), ALLOW_VALUE) for n in jail.allow]
            entries += [(text, BAN_VALUE) for text in grouped.get(jail.name, ())]
            self._add(jail.table, entries)
        log.info("ipfw: reconciled %d bans", sum(map(len, grouped.values())))

    def ban(self, bans: Sequence[Ban], now: float) -> None:
        for jail, texts in self._group(bans, now).items():
            self._add(self._jails[jail].table, ((text, BAN_VALUE) for text in texts))

    def unban(self, bans: Sequence[Ban]) -> None:
        for jail, texts in self._group(bans, None).items():
            table = str(self._jails[jail].table)
            for start in range(0, len(texts), self.chunk):
                self._run(["-q", "table", table, "delete", *texts[start : start + self.chunk]])

    def teardown(self) -> None:
        """Flush the tables of the jails set up (and of the configured mapping)."""
        numbers = {jail.table for jail in self._jails.values()} | set(self.tables.values())
        for number in sorted(numbers):
            self._run(["-q", "table", str(number), "flush"])
        self._jails = {}

    def check(self) -> str | None:
        """ipfw exists and can list its tables (needs root; changes nothing)."""
        try:
            self._run(["table", "all", "info"])
        except EnforcerError as error:
            return str(error)
        return None

    # -- helpers -------------------------------------------------------------------------

    def _group(self, bans: Sequence[Ban], now: float | None) -> dict[str, list[str]]:
        """Validated entries per jail; expired (if ``now``) and allowed ones left out."""
        return targets_by_jail(bans, self._jails, now, "ipfw")

    def _add(self, table: int, entries: Iterable[tuple[str, int]]) -> None:
        pairs = [word for text, value in entries for word in (text, str(value))]
        step = 2 * self.chunk
        for start in range(0, len(pairs), step):
            self._run(["-q", "table", str(table), "add", *pairs[start : start + step]])

    def _run(self, args: list[str]) -> str:
        return self._runner([self.ipfw, *args], None)
