"""What the ipset and iptables enforcers share: running the tools and their chain layout.

Both put one jump rule at the top of ``INPUT`` (``-j BRUTEGUARD``, the prefix upper-cased)
and own every chain named ``BRUTEGUARD`` or ``BRUTEGUARD-<jail>``. The main chain sends a
jail's protocol and ports to the jail's chain; the jail chain RETURNs the jail's ``allow``
networks first (so "allow wins" for this jail only) and then blocks. What blocks is up to the
enforcer: ipset set matches, or one rule per ban.

Changes go through ``iptables-restore --noflush``: one process and one atomic commit per
family, and nothing outside the own chains (and the one jump rule) is named in a script.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from bruteguard.enforce import JailRule
from bruteguard.enforce.command import run_argv
from bruteguard.enforce.nftables import Target, check_jail_rule, parse_target, validate_name
from bruteguard.errors import EnforcerError

__all__ = [
    "CHAIN_MAX",
    "FAMILIES",
    "Family",
    "Layout",
    "Runner",
    "Table",
    "XtEnforcer",
    "XtJail",
    "read_table",
    "restore",
    "run",
    "target_parts",
    "teardown_script",
    "undo_script",
    "validate_prefix",
]

log = logging.getLogger(__name__)

Runner = Callable[[Sequence[str], Sequence[str], "str | None", float, str], str]

# No "-" in a prefix: then "<prefix>-" ends exactly where the prefix does, and teardown of
# prefix "bg" can never mistake the objects of a prefix "bg-x" for its own.
_PREFIX = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,19}\Z")
# Upper-cased prefixes that would clash with a built-in chain or a standard target.
_RESERVED = {
    "INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING",
    "ACCEPT", "DROP", "RETURN", "QUEUE", "REJECT", "LOG", "NFQUEUE",
}  # fmt: skip
CHAIN_MAX = 28  # xtables: 29 bytes with the terminating NUL
_MULTIPORT_MAX = 15


def run(
    argv_prefix: Sequence[str],
    argv: Sequence[str],
    stdin: str | None,
    timeout: float,
    package_hint: str,
) -> str:
    """Run ``argv`` (after ``argv_prefix``) with ``stdin``; its stdout, or an EnforcerError
    that says what to do: install ``package_hint``, run as root, or what the tool said."""
    return run_argv(
        argv,
        stdin,
        timeout=timeout,
        package=f"the Debian package {package_hint} or choose another enforcer",
        argv_prefix=argv_prefix,
        label=argv[0] if argv else None,
    )


class Family(NamedTuple):
    """One address family and the commands that handle it."""

    version: int
    iptables: str
    restore: str
    ipset: str  # ipset's name for it


FAMILIES = (
    Family(4, "iptables", "iptables-restore", "inet"),
    Family(6, "ip6tables", "ip6tables-restore", "inet6"),
)


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if chains and sets may be named after it, else raise EnforcerError."""
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise EnforcerError(
            f"prefix {prefix!r} cannot be used: use 1-20 letters, digits or '_',"
            " starting with a letter or '_'"
        )
    if prefix.upper() in _RESERVED:
        raise EnforcerError(f"prefix {prefix!r} would name a built-in chain or target")
    return prefix


def _network_parts(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    """A /0 as two /1 halves: ipset's hash:net cannot hold a zero-length prefix."""
    if network.prefixlen == 0:
        return [str(half) for half in network.subnets(1)]
    return [str(network)]


def target_parts(target: Target) -> list[str]:
    """The texts a firewall command takes for ``target`` (an address, or 1-2 networks)."""
    return [target.text] if target.network is None else _network_parts(target.network)


@dataclass(frozen=True, slots=True)
class XtJail:
    """A jail, validated for xtables/ipset names: ports, protocol and its allow networks."""

    name: str
    ports: tuple[int, ...]
    protocol: str
    allow: tuple[Target, ...]

    @classmethod
    def from_rule(cls, rule: JailRule, layout: Layout) -> XtJail:
        name = validate_name(rule.name)
        room = CHAIN_MAX - len(layout.main) - 1
        if len(name) > room:
            raise EnforcerError(
                f"jail name {name!r} is too long for chain and ipset names with prefix"
                f" {layout.prefix!r}: at most {room} characters (choose a shorter prefix)"
            )
        name, ports = check_jail_rule(rule)
        allow = tuple(parse_target(str(item)) for item in getattr(rule, "allow", ()))
        return cls(name, ports, rule.protocol, allow)

    def allowed(self, version: int) -> list[str]:
        """This jail's allow entries of one family, as firewall texts."""
        return [
            part for target in self.allow if target.version == version
            for part in target_parts(target)
        ]  # fmt: skip

    def port_matches(self) -> list[str]:
        """Match texts for the jail's ports: multiport takes 15 ports, so one per 15. A jail
        with no ports matches everything: every port of every protocol (recidive)."""
        if not self.ports:
            return [""]
        ports = sorted(set(self.ports))
        return [
            f"-p {self.protocol} -m multiport --dports "
            + ",".join(map(str, ports[i : i + _MULTIPORT_MAX]))
            for i in range(0, len(ports), _MULTIPORT_MAX)
        ]

    def block(self, match: str, blocktype: str) -> str:
        """A blocking rule body for ``match``: a TCP reset (refused at once), an ICMP
        port-unreachable for UDP, or a silent drop. With no ports, any protocol: one ICMP
        port-unreachable refuses a TCP connect at once too, and one rule per ban is what
        the plain iptables enforcer can afford."""
        if blocktype == "drop":
            target = "-j DROP"
        elif self.protocol == "tcp" and self.ports:
            target = "-j REJECT --reject-with tcp-reset"
        else:
            target = "-j REJECT"
        if not self.ports:
            return f"{match} {target}"
        return f"{match} -p {self.protocol} {target}"

    def passes(self, family: Family) -> list[str]:
        """Rule bodies that RETURN before any ban rule: for a jail with no ports, IPv6
        neighbour discovery (blocking it only breaks address resolution with an on-link
        neighbour, which then needs seconds to recover once unbanned)."""
        if self.ports or family.version != 6:
            return []
        return [
            f"-p ipv6-icmp -m icmp6 --icmpv6-type {kind} -j RETURN"
            for kind in ("neighbour-solicitation", "neighbour-advertisement")
        ]


class Layout:
    """The chain names a prefix gives: ``PREFIX`` (main) and ``PREFIX-<jail>``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = validate_prefix(prefix)
        self.main = prefix.upper()
        self.jump = f"-A INPUT -j {self.main}"
        self._own = re.compile(rf"\A{re.escape(self.main)}(?:-[A-Za-z_][A-Za-z0-9_-]*)?\Z")

    def jail_chain(self, jail: str) -> str:
        return f"{self.main}-{jail}"

    def owns(self, chain: str) -> bool:
        return bool(self._own.match(chain))

    def chain_script(
        self,
        table: Table,
        jails: Iterable[XtJail],
        jail_rules: Callable[[XtJail], list[str]],
    ) -> list[str]:
        """Lines (without ``*filter``/``COMMIT``) that make the main chain send each jail's
        ports to its chain, rebuild the jail chains with ``jail_rules`` and add the jump.

        Chains of jails no longer configured are left alone (unreferenced, bans kept) until
        ``teardown``, as the nftables enforcer keeps their set elements.
        """
        jails = list(jails)
        chains = [self.main, *(self.jail_chain(jail.name) for jail in jails)]
        lines = [f"-N {chain}" for chain in chains if chain not in table.chains]
        lines += [f"-F {chain}" for chain in chains]
        for jail in jails:
            chain = self.jail_chain(jail.name)
            lines += [
                " ".join(filter(None, ["-A", self.main, match, "-j", chain]))
                for match in jail.port_matches()
            ]
            lines += [f"-A {chain} {rule}" for rule in jail_rules(jail)]
        if self.jump not in table.rules:
            lines.append(f"-I INPUT 1 -j {self.main}")
        return lines


class Table(NamedTuple):
    """The ``filter`` table as ``iptables -S`` prints it: chain names and ``-A`` rules."""

    chains: frozenset[str]
    rules: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Table:
        chains, rules = set(), []
        for line in text.splitlines():
            if line.startswith("-N "):
                chains.add(line[3:].strip())
            elif line.startswith("-A "):
                rules.append(line.rstrip())
        return cls(frozenset(chains), tuple(rules))

    def own_chains(self, layout: Layout) -> list[str]:
        return sorted(chain for chain in self.chains if layout.owns(chain))

    def rules_in(self, chain: str) -> list[str]:
        head = f"-A {chain} "
        return [rule for rule in self.rules if rule.startswith(head)]


def read_table(runner: Runner, argv_prefix: Sequence[str], family: Family, timeout: float) -> Table:
    """The family's filter table (``iptables -S``: reads, changes nothing)."""
    return Table.parse(runner(argv_prefix, [family.iptables, "-S"], None, timeout, "iptables"))


def restore(
    runner: Runner,
    argv_prefix: Sequence[str],
    family: Family,
    lines: Sequence[str],
    timeout: float,
) -> None:
    """Apply ``lines`` to the filter table in one ``iptables-restore --noflush`` commit."""
    script = "\n".join(["*filter", *lines, "COMMIT", ""])
    runner(argv_prefix, [family.restore, "--noflush"], script, timeout, "iptables")


def teardown_script(layout: Layout, table: Table) -> list[str]:
    """Lines that remove the jump rule(s) and every own chain; empty if none is there."""
    own = table.own_chains(layout)
    lines = ["-D INPUT -j " + layout.main for rule in table.rules if rule == layout.jump]
    lines += [f"-F {chain}" for chain in own]
    lines += [f"-X {chain}" for chain in own]
    return lines


def undo_script(layout: Layout, before: Table, after: Table) -> list[str]:
    """Lines that put the own chains back as ``before`` had them (a failed setup's undo).

    Own chains hold only bruteguard's rules, so ``-S`` lines replay exactly.
    """
    lines = []
    if layout.jump in after.rules and layout.jump not in before.rules:
        lines.append("-D INPUT -j " + layout.main)
    lines += [f"-F {chain}" for chain in after.own_chains(layout)]
    lines += [f"-X {chain}" for chain in after.own_chains(layout) if chain not in before.chains]
    lines += [f"-N {chain}" for chain in before.own_chains(layout) if chain not in after.chains]
    for chain in before.own_chains(layout):
        lines += before.rules_in(chain)
    return lines


class XtEnforcer:
    """What the ipset and iptables enforcers share: options, own chains in both families,
    reading and restoring them, teardown of the chains and the ``check``.

    ``argv_prefix`` goes before every command (``["ip", "netns", "exec", "NS"]`` targets a
    network namespace); ``runner`` runs them (``run``; tests wrap it to count).
    """

    name = "xtables"

    def __init__(
        self,
        prefix: str = "bruteguard",
        blocktype: Literal["reject", "drop"] = "reject",
        *,
        argv_prefix: Sequence[str] = (),
        timeout: float = 60.0,
        runner: Runner = run,
    ) -> None:
        self.layout = Layout(prefix)
        self.prefix = prefix
        if blocktype not in ("reject", "drop"):
            raise EnforcerError(f"blocktype must be 'reject' or 'drop', not {blocktype!r}")
        self.blocktype = blocktype
        self.argv_prefix = tuple(argv_prefix)
        self.timeout = timeout
        self._runner = runner
        self._jails: dict[str, XtJail] = {}

    def check(self) -> str | None:
        """Why this enforcer cannot work here, or None: only reads, changes nothing."""
        try:
            self._probe()
        except EnforcerError as error:
            return str(error)
        return None

    def is_available(self) -> bool:
        return self.check() is None

    def _probe(self) -> None:
        """Read what ``check`` needs to read (here: both families' filter tables)."""
        self._read_all()

    def _specs(self, jails: Sequence[JailRule]) -> dict[str, XtJail]:
        """The jails, validated, by name."""
        return {spec.name: spec for spec in (XtJail.from_rule(r, self.layout) for r in jails)}

    def _jail(self, name: str) -> XtJail:
        jail = self._jails.get(name)
        if jail is None:
            validate_name(name)
            raise EnforcerError(f"jail {name!r} is not set up in {self.name} (run setup() with it)")
        return jail

    def _read(self, family: Family) -> Table:
        return read_table(self._runner, self.argv_prefix, family, self.timeout)

    def _read_all(self) -> dict[Family, Table]:
        return {family: self._read(family) for family in FAMILIES}

    def _restore(self, family: Family, lines: list[str]) -> None:
        restore(self._runner, self.argv_prefix, family, lines, self.timeout)

    def _remove_chains(self) -> None:
        """Remove the jump rule and every own chain in both families (nothing else)."""
        for family in FAMILIES:
            lines = teardown_script(self.layout, self._read(family))
            if lines:
                self._restore(family, lines)

    def _undo_chains(self, before: dict[Family, Table]) -> None:
        """Put the own chains back as ``before`` had them (after a failed setup).

        Each family is tried even if one fails (the setup's own error is what is raised).
        """
        for family in FAMILIES:
            try:
                lines = undo_script(self.layout, before[family], self._read(family))
                if lines:
                    self._restore(family, lines)
            except EnforcerError as error:
                log.error(
                    "%s: could not undo a failed setup (IPv%d): %s",
                    self.name,
                    family.version,
                    error,
                )
