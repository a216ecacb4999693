"""The default enforcer: bans are timed elements of sets in bruteguard's own nftables table.

bruteguard owns exactly one table, ``inet <table>`` (default ``inet bruteguard``), and never
touches any other. Per jail it keeps four sets::

    <jail>_v4     ipv4_addr, flags timeout            single IPv4 addresses (hash: fast, exact)
    <jail>_v6     ipv6_addr, flags timeout            single IPv6 addresses
    <jail>_v4net  ipv4_addr, flags interval, timeout  IPv4 networks (CIDR)
    <jail>_v6net  ipv6_addr, flags interval, timeout  IPv6 networks

and a base chain ``input`` at priority ``filter - 1`` (before the admin's own filter chains)
with one rule per set: ``ip saddr @<jail>_v4 tcp dport { 22 } counter reject with tcp reset``.

Why addresses and networks live apart: an interval set refuses overlapping elements, and a
subnet ban (``198.51.100.0/24``) usually arrives while some of its addresses are banned
already. In separate sets they never overlap. Networks that overlap each other are stored as
disjoint pieces, each carrying the longest ban that covers it (see ``disjoint_pieces``).

Every change is one ``nft -f -`` script, so it is one atomic transaction: it applies fully or
not at all. Element timeouts do the unbanning; the kernel expires them on time even while
bruteguard is stopped. Addresses and networks are validated with ``ipaddress`` and jail
names with an anchored pattern before any text enters a script.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
import shutil
import socket
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from bruteguard.enforce import JailRule
from bruteguard.errors import EnforcerError
from bruteguard.model import Ban

__all__ = [
    "NftablesEnforcer",
    "Target",
    "disjoint_pieces",
    "parse_target",
    "run_nft",
    "validate_name",
]

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Blocktype = Literal["reject", "drop"]

# An nft identifier starts with a letter or "_" (a leading digit or "-" is a syntax error).
_NAME = re.compile(r"\A[A-Za-z_][A-Za-z0-9_-]{0,29}\Z")
_STDERR_LIMIT = 2000
_FAMILIES = (("ip", "v4", "ipv4_addr"), ("ip6", "v6", "ipv6_addr"))
_SOCKET_FAMILIES = ((socket.AF_INET, 4), (socket.AF_INET6, 6))


def validate_name(name: str, what: str = "jail name") -> str:
    """Return ``name`` if it is safe as an nft identifier part, else raise EnforcerError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise EnforcerError(
            f"{what} {name!r} cannot be used in nftables: use 1-30 letters, digits, '_' or '-',"
            " starting with a letter or '_'"
        )
    return name


class Target(NamedTuple):
    """A validated ban target: one address (``network is None``) or one CIDR network."""

    version: int
    text: str
    network: Network | None = None


def parse_target(text: str) -> Target:
    """Validate an address or CIDR from the store; return its canonical form for a script.

    IPv4-mapped IPv6 becomes IPv4 and a full-length prefix (/32, /128) a plain address, so one
    host always lands in the same set element. Plain addresses take the C fast path
    (``inet_pton``/``inet_ntop``): reconciling 100,000 bans must not wait on Python parsing.
    """
    if not isinstance(text, str):
        raise EnforcerError(f"not an IP address or CIDR network: {text!r}")
    if "/" not in text:
        for family, version in _SOCKET_FAMILIES:
            try:
                canonical = socket.inet_ntop(family, socket.inet_pton(family, text))
            except (OSError, ValueError):
                continue
            if version == 6 and canonical.startswith("::ffff:") and "." in canonical:
                return Target(4, canonical.removeprefix("::ffff:"))
            return Target(version, canonical)
        raise EnforcerError(f"not an IP address or CIDR network: {text!r}")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise EnforcerError(f"not an IP address or CIDR network: {text!r}") from None
    mapped = getattr(network.network_address, "ipv4_mapped", None)
    if mapped is not None and network.prefixlen >= 96:
        network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    if network.num_addresses == 1:
        return Target(network.version, str(network.network_address))
    return Target(network.version, str(network), network)


def disjoint_pieces(bans: dict[Network, float]) -> list[tuple[Network, float]]:
    """Split overlapping networks into disjoint CIDRs, each with the longest covering ``until``.

    An interval set cannot hold ``198.51.0.0/16`` and ``198.51.100.0/24`` at once; storing
    the /16 minus the /24 plus the /24 keeps every address banned exactly as long as the
    longest ban that covers it. CIDRs either nest or are disjoint, so after sorting the
    work is done per nest (usually a single network).
    """
    ordered = sorted(bans.items(), key=lambda item: (item[0].network_address, item[0].prefixlen))
    nests: list[list[tuple[Network, float]]] = []
    for network, until in ordered:
        if nests and network.subnet_of(nests[-1][0][0]):
            nests[-1].append((network, until))
        else:
            nests.append([(network, until)])
    pieces: list[tuple[Network, float]] = []
    for nest in nests:
        placed: list[tuple[Network, float]] = []
        for network, until in sorted(nest, key=lambda item: -item[1]):
            parts = [network]
            for taken, _ in placed:
                parts = list(_subtract(parts, taken))
            placed.extend((part, until) for part in parts)
        pieces.extend(placed)
    return pieces


def _subtract(parts: Iterable[Network], taken: Network) -> Iterable[Network]:
    for part in parts:
        if part.subnet_of(taken):
            continue
        if taken.subnet_of(part):
            yield from part.address_exclude(taken)
        else:
            yield part


@dataclass(frozen=True, slots=True)
class _Jail:
    name: str
    ports: tuple[int, ...]
    protocol: str

    @classmethod
    def from_rule(cls, rule: JailRule) -> _Jail:
        name = validate_name(rule.name)
        if rule.protocol not in ("tcp", "udp"):
            raise EnforcerError(f"jail {name}: protocol must be tcp or udp, not {rule.protocol!r}")
        ports = tuple(rule.ports)
        for port in ports:
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise EnforcerError(f"jail {name}: {port!r} is not a port number")
        return cls(name, ports, rule.protocol)


def _timeout(until: float, now: float) -> str | None:
    """`` timeout <ms>ms`` for the time left, ``""`` for a permanent ban, None if expired."""
    if math.isinf(until) and until > 0:
        return ""
    remaining = until - now
    if not remaining > 0:
        return None
    return f" timeout {math.ceil(remaining * 1000)}ms"


def _element_text(network: Network) -> str:
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


class NftablesEnforcer:
    """Bans in ``inet <table>`` sets; one ``nft -f -`` transaction per call.

    ``argv_prefix`` is put before every nft argv: ``["ip", "netns", "exec", "NS"]`` targets a
    network namespace (the tests do this). ``nft`` names the binary.
    """

    name = "nftables"

    def __init__(
        self,
        table: str = "bruteguard",
        blocktype: Blocktype = "reject",
        *,
        nft: str = "nft",
        argv_prefix: Sequence[str] = (),
        timeout: float = 60.0,
    ) -> None:
        self.table = validate_name(table, "nftables table name")
        if blocktype not in ("reject", "drop"):
            raise EnforcerError(f"blocktype must be 'reject' or 'drop', not {blocktype!r}")
        self.blocktype: Blocktype = blocktype
        self.nft = nft
        self.argv_prefix = tuple(argv_prefix)
        self.timeout = timeout
        self._jails: dict[str, _Jail] = {}
        self._is_set_up = False

    # -- Enforcer protocol ---------------------------------------------------------------

    def setup(self, jails: Sequence[JailRule]) -> None:
        """Create the table, sets and chain if missing; rebuild the chain's rules.

        Set elements (active bans) are kept, so a restart or a second instance does not
        unban anyone; ``reconcile`` is what replaces them.
        """
        specs = {spec.name: spec for spec in map(_Jail.from_rule, jails)}
        self._apply(self._definition(specs.values()))
        self._jails = specs
        self._is_set_up = True
        log.info("nftables: table inet %s ready for jails %s", self.table, ", ".join(specs))

    def reconcile(self, bans: Sequence[Ban], now: float) -> None:
        """Replace every set's contents with ``bans`` in one transaction.

        The table is deleted and rebuilt inside the transaction: dropping a set with 100,000
        elements is far cheaper for the kernel than flushing it element by element.
        """
        if not self._is_set_up:
            raise EnforcerError("nftables: setup() must run before reconcile() rebuilds the table")
        addresses, networks = self._sort(bans, now)
        lines = [f"add table inet {self.table}", f"delete table inet {self.table}"]
        lines += self._definition(self._jails.values())
        for set_name, elements in addresses.items():
            lines.append(self._add_elements(set_name, elements.items()))
        for set_name, nets in networks.items():
            lines.append(self._add_networks(set_name, disjoint_pieces(nets), now))
        self._apply([line for line in lines if line])
        count = sum(map(len, addresses.values())) + sum(map(len, networks.values()))
        log.info("nftables: reconciled %d bans", count)

    def ban(self, bans: Sequence[Ban], now: float) -> None:
        """Add or refresh bans in one transaction.

        ``add element`` leaves an existing element's timeout alone on older kernels, so each
        address is added (so it surely exists), deleted and added again with its new
        timeout, all inside the same transaction. Network sets are read and rewritten.
        """
        addresses, networks = self._sort(bans, now)
        lines = []
        for set_name, elements in addresses.items():
            lines += self._replace_elements(set_name, elements)
        for set_name, nets in networks.items():
            merged = self._read_networks(set_name, now)
            merged.update(nets)
            lines += self._rewrite_networks(set_name, merged, now)
        if lines:
            self._apply(lines)
            log.info("nftables: banned %d targets", len(bans))

    def unban(self, bans: Sequence[Ban]) -> None:
        """Remove bans in one transaction; targets that are not banned are not an error.

        ``delete element`` fails the whole transaction for a missing element, so each
        address is first added with a short timeout: then the delete always succeeds.
        """
        addresses: dict[str, set[str]] = {}
        networks: dict[str, list[Network]] = {}
        for ban in bans:
            target = parse_target(ban.ip)
            set_name = self._set_name(ban.jail, target)
            if target.network is None:
                addresses.setdefault(set_name, set()).add(target.text)
            else:
                networks.setdefault(set_name, []).append(target.network)
        lines = []
        for set_name, members in addresses.items():
            joined = ", ".join(sorted(members))
            placeholders = ", ".join(f"{member} timeout 1s" for member in sorted(members))
            lines.append(f"add element inet {self.table} {set_name} {{ {placeholders} }}")
            lines.append(f"delete element inet {self.table} {set_name} {{ {joined} }}")
        for set_name, removed in networks.items():
            kept = {
                piece: until
                for piece, until in self._read_networks(set_name, 0.0).items()
                if not any(piece.subnet_of(gone) for gone in removed)
            }
            lines += self._rewrite_networks(set_name, kept, 0.0)
        if lines:
            self._apply(lines)
            log.info("nftables: unbanned %d targets", len(bans))

    def teardown(self) -> None:
        """Delete ``inet <table>`` (and nothing else); fine if it is already gone."""
        self._apply([f"add table inet {self.table}", f"delete table inet {self.table}"])
        self._jails = {}
        self._is_set_up = False
        log.info("nftables: table inet %s removed", self.table)

    # -- health --------------------------------------------------------------------------

    def check(self) -> str | None:
        """A clear description of why this enforcer cannot work here, or None if it can.

        Runs ``nft --check`` on a script that would create the table: needs the binary and
        the privilege, changes nothing.
        """
        try:
            self._run(["--check", "-f", "-"], f"add table inet {self.table}\n")
        except EnforcerError as error:
            return str(error)
        return None

    def is_available(self) -> bool:
        return self.check() is None

    # -- script building -----------------------------------------------------------------

    def _definition(self, jails: Iterable[_Jail]) -> list[str]:
        table = f"inet {self.table}"
        lines = [f"add table {table}"]
        rules = []
        for jail in jails:
            match = (
                f"{jail.protocol} dport {{ {', '.join(map(str, jail.ports))} }}"
                if jail.ports
                else f"meta l4proto {jail.protocol}"
            )
            verdict = "drop"
            if self.blocktype == "reject":
                verdict = "reject with tcp reset" if jail.protocol == "tcp" else "reject"
            for family, suffix, kind in _FAMILIES:
                for set_suffix, flags in (("", "timeout"), ("net", "interval, timeout")):
                    set_name = f"{jail.name}_{suffix}{set_suffix}"
                    lines.append(f"add set {table} {set_name} {{ type {kind}; flags {flags}; }}")
                    rule = f"{family} saddr @{set_name} {match} counter {verdict}"
                    rules.append(f"add rule {table} input {rule}")
        lines.append(
            f"add chain {table} input"
            " { type filter hook input priority filter - 1; policy accept; }"
        )
        lines.append(f"flush chain {table} input")
        return lines + rules

    def _set_name(self, jail: str, target: Target) -> str:
        if jail not in self._jails:
            validate_name(jail)
            raise EnforcerError(
                f"jail {jail!r} is not set up in nftables table {self.table} (run setup() with it)"
            )
        suffix = "v4" if target.version == 4 else "v6"
        return f"{jail}_{suffix}" if target.network is None else f"{jail}_{suffix}net"

    def _sort(
        self, bans: Sequence[Ban], now: float
    ) -> tuple[dict[str, dict[str, str]], dict[str, dict[Network, float]]]:
        """Validate ``bans`` and group them by set: addresses → timeout text, networks → until.

        Expired bans are left out; of two bans for the same address the longer one wins.
        """
        addresses: dict[str, dict[str, str]] = {}
        untils: dict[tuple[str, str], float] = {}
        networks: dict[str, dict[Network, float]] = {}
        set_names: dict[tuple[str, int, bool], str] = {}
        for ban in bans:
            target = parse_target(ban.ip)
            kind = (ban.jail, target.version, target.network is None)
            set_name = set_names.get(kind) or set_names.setdefault(
                kind, self._set_name(ban.jail, target)
            )
            timeout = _timeout(ban.until, now)
            if timeout is None:
                continue
            if target.network is not None:
                nets = networks.setdefault(set_name, {})
                nets[target.network] = max(ban.until, nets.get(target.network, ban.until))
                continue
            key = (set_name, target.text)
            if untils.get(key, -math.inf) < ban.until:
                untils[key] = ban.until
                addresses.setdefault(set_name, {})[target.text] = timeout
        return addresses, networks

    def _add_elements(self, set_name: str, elements: Iterable[tuple[str, str]]) -> str:
        body = ", ".join([f"{text}{timeout}" for text, timeout in elements])
        return f"add element inet {self.table} {set_name} {{ {body} }}" if body else ""

    def _replace_elements(self, set_name: str, elements: dict[str, str]) -> list[str]:
        texts = list(elements)
        return [
            self._add_elements(set_name, ((text, " timeout 1s") for text in texts)),
            f"delete element inet {self.table} {set_name} {{ {', '.join(texts)} }}",
            self._add_elements(set_name, elements.items()),
        ]

    def _add_networks(
        self, set_name: str, pieces: Iterable[tuple[Network, float]], now: float
    ) -> str:
        elements = []
        for network, until in pieces:
            timeout = _timeout(until, now)
            if timeout is not None:
                elements.append((_element_text(network), timeout))
        return self._add_elements(set_name, elements)

    def _rewrite_networks(self, set_name: str, nets: dict[Network, float], now: float) -> list[str]:
        lines = [f"flush set inet {self.table} {set_name}"]
        added = self._add_networks(set_name, disjoint_pieces(nets), now)
        return [*lines, added] if added else lines

    def _read_networks(self, set_name: str, now: float) -> dict[Network, float]:
        """The network set's current pieces with their expiry times (``now`` + expires)."""
        output = self._run(["-j", "list", "set", "inet", self.table, set_name], None)
        try:
            document = json.loads(output)
            found = [item["set"] for item in document["nftables"] if "set" in item]
            elements = found[0].get("elem", []) if found else []
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise EnforcerError(f"could not read nft set {set_name}: {error}") from None
        pieces: dict[Network, float] = {}
        for element in elements:
            # {"elem": {"val": …, "timeout": s, "expires": s}}, or the bare value if permanent.
            is_wrapped = isinstance(element, dict) and "elem" in element
            data = element["elem"] if is_wrapped else {"val": element}
            until = now + data["expires"] if "timeout" in data else math.inf
            for network in _json_networks(data["val"]):
                pieces[network] = until
        return pieces

    # -- running nft ---------------------------------------------------------------------

    def _apply(self, lines: list[str]) -> None:
        self._run(["-f", "-"], "\n".join(lines) + "\n")

    def _run(self, args: list[str], script: str | None) -> str:
        return run_nft(self.argv_prefix, self.nft, args, script, self.timeout)


def run_nft(
    argv_prefix: Sequence[str], nft: str, args: list[str], script: str | None, timeout: float
) -> str:
    """Run ``nft ARGS`` (``script`` on stdin); its stdout, or an ``EnforcerError`` that says
    what to do (install nftables, run as root) or what nft said."""
    if shutil.which(nft) is None:
        raise EnforcerError(
            f"nftables command {nft!r} not found: install the 'nftables' package"
            " or choose another enforcer"
        )
    argv = [*argv_prefix, nft, *args]
    try:
        result = subprocess.run(
            argv, input=script, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as error:
        raise EnforcerError(f"cannot run {argv[0]!r}: {error.strerror}") from None
    except subprocess.TimeoutExpired:
        raise EnforcerError(f"nft did not finish within {timeout:g}s") from None
    if result.returncode != 0:
        stderr = result.stderr.strip()
        if "Operation not permitted" in stderr:
            raise EnforcerError(
                "nft: operation not permitted: changing the firewall needs root (or CAP_NET_ADMIN)"
            )
        if len(stderr) > _STDERR_LIMIT:
            stderr = stderr[:_STDERR_LIMIT] + " …"
        raise EnforcerError(f"nft failed (exit {result.returncode}): {stderr}")
    return result.stdout


def _json_networks(value: object) -> list[Network]:
    """Networks of one element value in ``nft -j`` output: address, prefix or range."""
    if isinstance(value, str):
        return [ipaddress.ip_network(value)]
    if isinstance(value, dict) and "prefix" in value:
        prefix = value["prefix"]
        return [ipaddress.ip_network(f"{prefix['addr']}/{prefix['len']}")]
    if isinstance(value, dict) and "range" in value:
        first, last = map(ipaddress.ip_address, value["range"])
        return list(ipaddress.summarize_address_range(first, last))
    raise EnforcerError(f"unexpected element in nft output: {value!r}")
