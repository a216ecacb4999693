"""Bans as blackhole routes: the kernel cannot answer a banned address, on any port.

A blackhole route drops every packet *to* the address, so the server's replies (TCP SYN-ACK,
ICMP, UDP answers) never leave: no connection can be made from a banned address. Ports and
protocol do not matter: a route ban blocks the whole host, for every service. (A UDP
request still arrives; only the answer is lost.) Use it where no packet filter is available.

Layout, per jail, so that jails never undo each other's bans:

    table  <table_base + crc32(jail) % 65536>   one routing table per jail, holding
             blackhole <banned address or network>   proto 98
             throw     <allowed network>             proto 98
    rule   from all lookup <that table> pref <priority> proto 98   (IPv4 and IPv6)

A lookup walks the rules in order: each jail's table is consulted, a blackhole drops the
packet, a ``throw`` (or no match) goes on to the next rule and finally to ``main``. The
longest prefix wins inside a table, so an allowed host's ``throw`` inside a banned network
makes it reachable ("allow wins"), and one jail's unban leaves another jail's ban in place.

Every route and rule carries protocol number 98 (``RTPROT_BRUTEGUARD``; free in the kernel
and in iproute2's rt_protos, ``echo "98 bruteguard" > /etc/iproute2/rt_protos.d/bruteguard.conf``
names it in ``ip route`` output). bruteguard lists, changes and removes only routes and
rules with that number. Routes have no timeouts: the daemon unbans expired bans and
reconciles on start. All changes of one call go through one netlink socket (pyroute2).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

from bruteguard.enforce import JailRule, describe_bans
from bruteguard.enforce.command import TableJail, active_targets, allow_networks
from bruteguard.enforce.nftables import validate_name
from bruteguard.errors import EnforcerError
from bruteguard.model import Ban, Network

__all__ = ["DEFAULT_PRIORITY", "DEFAULT_TABLE_BASE", "RTPROT_BRUTEGUARD", "RouteEnforcer"]

log = logging.getLogger(__name__)

RTPROT_BRUTEGUARD = 98
DEFAULT_TABLE_BASE = 0x62670000  # "bg" << 16: far from the admin's usual 1-252
DEFAULT_PRIORITY = 900  # after "local" (0), before "main" (32766) and most policy rules
_FAMILIES = (socket.AF_INET, socket.AF_INET6)
_RESERVED_TABLES = {0, 253, 254, 255}
_ESRCH, _ENOENT, _EEXIST, _EPERM = 3, 2, 17, 1
_CAP_NET_ADMIN = 12

# (table, family, destination text, prefix length, route type)
RouteKey = tuple[int, int, str, int, str]


def _family(network: Network) -> int:
    return socket.AF_INET if network.version == 4 else socket.AF_INET6


class RouteEnforcer:
    """Blackhole routes in one routing table per jail; see the module docstring.

    ``netns`` runs every change in that named network namespace (tests, containers);
    None is the current one.
    """

    name = "route"
    expires = False  # no timeouts here: the daemon unbans expired bans

    def __init__(
        self,
        *,
        table_base: int = DEFAULT_TABLE_BASE,
        priority: int = DEFAULT_PRIORITY,
        proto: int = RTPROT_BRUTEGUARD,
        netns: str | None = None,
    ) -> None:
        if not isinstance(table_base, int) or not 256 <= table_base <= 0xFFFFFFFF - 0xFFFF:
            raise EnforcerError(f"route_table_base must be 256 to {0xFFFFFFFF - 0xFFFF}")
        if not isinstance(priority, int) or not 1 <= priority < 32766:
            raise EnforcerError("route_priority must be 1 to 32765 (before the main table)")
        if not isinstance(proto, int) or not 5 <= proto <= 255:
            raise EnforcerError("route_proto must be 5 to 255 (1-4 belong to the kernel)")
        self.table_base = table_base
        self.priority = priority
        self.proto = proto
        self.netns = netns
        self._jails: dict[str, TableJail[int]] = {}

    def table(self, jail: str) -> int:
        """The routing table of ``jail``: stable across restarts and config order."""
        return self.table_base + zlib.crc32(validate_name(jail).encode()) % 0x10000

    # -- Enforcer protocol ---------------------------------------------------------------

    def setup(self, jails: Sequence[JailRule]) -> None:
        """Add each jail's rules (if missing) and its allow ``throw`` routes; keep bans.

        Throw routes for networks no longer allowed are removed. If anything fails, the
        rules and routes this call added are removed again.
        """
        specs: dict[str, TableJail[int]] = {}
        owners: dict[int, str] = {}
        for rule in jails:
            table = self.table(rule.name)
            if table in _RESERVED_TABLES or owners.get(table, rule.name) != rule.name:
                raise EnforcerError(
                    f"jails {owners.get(table)!r} and {rule.name!r} map to the same routing"
                    f" table {table}: rename one of them or change route_table_base"
                )
            owners[table] = rule.name
            specs[rule.name] = TableJail(rule.name, table, allow_networks(rule))
        added_rules: list[tuple[int, int]] = []
        added_routes: list[RouteKey] = []
        with self._socket() as ipr:
            try:
                present = self._own_rules(ipr)
                for jail in specs.values():
                    for family in _FAMILIES:
                        if (family, jail.table, self.priority) not in present:
                            self._rule(ipr, "add", family, jail.table, self.priority)
                            added_rules.append((family, jail.table))
                routes = self._own_routes(ipr)
                wanted = {key for jail in specs.values() for key in self._throws(jail)}
                for key in routes:
                    if key[4] == "throw" and key[0] in owners and key not in wanted:
                        self._route(ipr, "del", key)
                for key in sorted(wanted - set(routes)):
                    self._route(ipr, "replace", key)
                    added_routes.append(key)
            except BaseException:
                for key in added_routes:
                    with contextlib.suppress(EnforcerError):
                        self._route(ipr, "del", key)
                for family, table in added_rules:
                    with contextlib.suppress(EnforcerError):
                        self._rule(ipr, "del", family, table, self.priority)
                raise
        self._jails = specs
        log.info("route: tables %s", ", ".join(f"{j.name}={j.table}" for j in specs.values()))

    def reconcile(self, bans: Sequence[Ban], now: float) -> None:
        """Make the own routes exactly the active bans plus the allow throws (a diff).

        Routes and rules of tables that no jail uses any more are removed.
        """
        blackholes = self._blackholes(bans, now)
        wanted = set(blackholes)
        for jail in self._jails.values():
            wanted.update(self._throws(jail))
        tables = {jail.table for jail in self._jails.values()}
        with self._socket() as ipr:
            present = self._own_routes(ipr)
            for key in present:
                if key not in wanted:
                    self._route(ipr, "del", key)
            for key in sorted(wanted - set(present)):
                self._route(ipr, "replace", key)
            for family, table, priority in self._own_rules(ipr):
                if table not in tables or priority != self.priority:
                    self._rule(ipr, "del", family, table, priority)
        log.info("route: reconciled %d bans", len(blackholes))

    def ban(self, bans: Sequence[Ban], now: float) -> None:
        keys = self._blackholes(bans, now)
        if keys:
            with self._socket() as ipr:
                for key in keys:
                    self._route(ipr, "replace", key)
            log.info("route: banned %s", describe_bans(bans))

    def unban(self, bans: Sequence[Ban]) -> None:
        """Delete the bans' blackhole routes; missing ones are not an error."""
        keys = self._blackholes(bans, None)
        if keys:
            with self._socket() as ipr:
                for key in keys:
                    self._route(ipr, "del", key, missing_ok=True)
            log.info("route: unbanned %s", describe_bans(bans))

    def teardown(self) -> None:
        """Delete every route and rule with bruteguard's protocol number, and nothing else."""
        with self._socket() as ipr:
            for key in self._own_routes(ipr):
                self._route(ipr, "del", key, missing_ok=True)
            for family, table, priority in self._own_rules(ipr):
                self._rule(ipr, "del", family, table, priority, missing_ok=True)
        self._jails = {}

    def check(self) -> str | None:
        """pyroute2, CAP_NET_ADMIN and policy routing (IPv4 and IPv6); changes nothing."""
        if not _has_net_admin():
            return "the route enforcer needs root (CAP_NET_ADMIN) to change routes"
        try:
            with self._socket() as ipr:
                self._own_rules(ipr)
        except EnforcerError as error:
            return str(error)
        return None

    # -- what the routes should be -------------------------------------------------------

    def _blackholes(self, bans: Sequence[Ban], now: float | None) -> list[RouteKey]:
        """Validated blackhole routes for ``bans``; expired (if ``now``) and allowed left out."""
        keys: dict[RouteKey, None] = {}
        for _, jail, _, network in active_targets(bans, self._jails, now, "route"):
            key = (jail.table, _family(network), str(network.network_address),
                   network.prefixlen, "blackhole")  # fmt: skip
            keys[key] = None
        return list(keys)

    def _throws(self, jail: TableJail[int]) -> list[RouteKey]:
        return [
            (jail.table, _family(n), str(n.network_address), n.prefixlen, "throw")
            for n in jail.allow
        ]

    # -- netlink -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _socket(self) -> Iterator[Any]:
        try:
            from pyroute2 import IPRoute
        except ImportError:
            raise EnforcerError(
                "the route enforcer needs pyroute2 (pip install pyroute2; Debian: python3-pyroute2)"
            ) from None
        try:
            ipr = IPRoute(netns=self.netns) if self.netns else IPRoute()
        except OSError as error:
            raise EnforcerError(f"cannot open a netlink socket: {error}") from None
        try:
            yield ipr
        finally:
            ipr.close()

    def _own_routes(self, ipr: Any) -> list[RouteKey]:
        keys = []
        for family in _FAMILIES:
            for route in self._call(ipr.route, "dump", family=family):
                if route.get("proto") != self.proto:
                    continue
                dst = route.get("dst") or ("0.0.0.0" if family == socket.AF_INET else "::")
                kind = {6: "blackhole", 9: "throw"}.get(route.get("type"), str(route.get("type")))
                keys.append((route.get("table"), family, dst, route.get("dst_len"), kind))
        return keys

    def _own_rules(self, ipr: Any) -> set[tuple[int, int, int]]:
        """(family, table, priority) of every rule with bruteguard's protocol number."""
        rules = set()
        for family in _FAMILIES:
            for rule in self._call(ipr.get_rules, family=family):
                if rule.get("protocol") == self.proto:
                    rules.add((family, rule.get("table"), rule.get("priority") or 0))
        return rules

    def _route(self, ipr: Any, command: str, key: RouteKey, missing_ok: bool = False) -> None:
        table, family, dst, dst_len, kind = key
        kwargs: dict[str, Any] = {
            "dst": dst, "dst_len": dst_len, "family": family, "table": table, "type": kind,
        }  # fmt: skip
        if command != "del":
            kwargs["proto"] = self.proto
        self._call(ipr.route, command, missing_ok=missing_ok, **kwargs)

    def _rule(
        self,
        ipr: Any,
        command: str,
        family: int,
        table: int,
        priority: int,
        missing_ok: bool = False,
    ) -> None:
        self._call(
            ipr.rule, command, missing_ok=missing_ok, family=family, table=table,
            priority=priority, protocol=self.proto,
        )  # fmt: skip

    def _call(self, method: Any, *args: Any, missing_ok: bool = False, **kwargs: Any) -> list[Any]:
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            return list(method(*args, **kwargs) or ())
        except NetlinkError as error:
            if missing_ok and error.code in (_ESRCH, _ENOENT):
                return []
            if error.code == _EPERM:
                raise EnforcerError(
                    "route: operation not permitted: changing routes needs root (CAP_NET_ADMIN)"
                ) from None
            what = f"{args[0] if args else 'dump'} {kwargs.get('dst', '')}".strip()
            raise EnforcerError(f"route: netlink refused {what}: {error}") from None


def _has_net_admin() -> bool:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_NET_ADMIN & 1)
    except (OSError, ValueError):
        pass
    return False
