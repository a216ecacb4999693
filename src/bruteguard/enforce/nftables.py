"""The default enforcer: bans are timed elements of sets in bruteguard's own nftables tables.

bruteguard owns exactly two tables, ``inet <table>`` (default ``inet bruteguard``) for the
jails and ``inet <table>_bl`` for blocklists, and never touches any other. Per jail the
first one keeps::

    <jail>_v4     ipv4_addr, flags timeout            single IPv4 addresses (hash: fast, exact)
    <jail>_v6     ipv6_addr, flags timeout            single IPv6 addresses
    <jail>_v4n24  ipv4_addr, flags timeout            IPv4 /24 networks, one set per prefix
    <jail>_v6n64  ipv6_addr, flags timeout            IPv6 /64 networks    length in use
    <jail>_a4     ipv4_addr, flags interval           allowed networks ("allow wins")
    <jail>_a6     ipv6_addr, flags interval
    <jail>_r4     ipv4_addr, dynamic, timeout         per-source rate-limit state (ratelimit)
    <jail>_r6     ipv6_addr, dynamic, timeout         (only for jails with a ratelimit)
    <jail>_k4     ipv4_addr, flags timeout            knockers let in for a while (knock)
    <jail>_k6     ipv6_addr, flags timeout            (only for jails with knock = true)

and a base chain ``input`` at priority ``filter - 1`` (before the admin's own filter chains)
with one rule per ban set, e.g.
``ip saddr @sshd_v4 ip saddr != @sshd_a4 tcp dport { 22 } counter reject with tcp reset`` or
``ip6 saddr & ffff:ffff:ffff:ffff:: @sshd_v6n64 ip6 saddr != @sshd_a6 …`` for a network set.
A jail with no ports (recidive) bans every port of every protocol: its rules match any
packet from a banned source and ``goto block``, a chain that lets IPv6 neighbour discovery
pass and rejects (or drops) the rest, as the blocklists' ``block`` chain does.
The allow check sits in every rule (not in an earlier ``accept``/``return`` rule): a verdict
in a base chain would end the chain for *all* jails, not just this one.

A jail with ``knock = true`` is closed (docs/knock.md): after its ban rules, one rule per
family refuses every *new* connection to its ports from a source in neither its allow set
nor its knock set, e.g. ``tcp dport { 22 } tcp flags & (syn | ack) == syn ip saddr !=
@sshd_a4 ip saddr != @sshd_k4 counter reject with tcp reset``. Only new connections: a
session opened while the knock lasted outlives it. The knock sets are never flushed by
``setup`` (a new allow list keeps who is let in), and ``reconcile``, which rebuilds the
table, reads them first and puts every knocker back with the rest of its time. A ban still
wins over a knock (its rule comes first), an allow entry over both.

Set sizes: told the ledger's counts (``expect_bans``), every ban set is declared with
``size`` = twice its bans (steps of 65,536, never below 65,536 nor below what it has), so
the kernel does not grow hash tables while one transaction fills them (half of a million-ban
load was ``rhashtable_insert_slow``). ``size`` is also the most a set takes, so a ban that
would take a set past three quarters of it raises the size in the same transaction.

Restart stamp (``restart_stamp``/``resumes``): a clean stop puts a random token into the
one-element set ``restart_stamp`` and gives the daemon ``token:generation:layout:counts``
for its ledger, the generation being the kernel's ruleset generation id right after (it counts every
committed transaction in the namespace, by anyone). The next start skips the reconcile only
if the generation, the token and the jail layout are unchanged and the ledger still has the
stamp (its triggers delete it with any change of the bans): then the sets provably hold
what they held at the stop. docs/enforcers.md has the whole argument.

Why networks live in hash sets, one per prefix length, and not in one interval set: nft
1.0.6 reads every element of every interval set in the ruleset before it adds a single
element anywhere (its cache, for overlap checks), so with 200,000 /64s in an interval set
each ban -- even of one IPv4 address -- cost seconds of kernel time. A hash set keyed by the
network address, matched as ``saddr & mask``, is never read: a ban is one element add,
whatever the sets hold. It also drops the interval set's rule that elements must not
overlap: a /16 and a /24 inside it are two elements in two sets, each with its own timeout,
and an address is banned while any element covers it. The sets and their rules appear when
a jail first bans a network of that length (usually /64 and /24, so a few rules per jail).

Rate limit (a jail's ``ratelimit = "HITS/DURATION"``, the nftables form of ``iptables -m
recent --hitcount HITS --seconds DURATION``): new connections to the jail's ports are
counted per source in a meter set, a token bucket per source of HITS tokens that refills
at HITS per DURATION (``update @sshd_r4 { ip saddr timeout 3m limit rate over 80/hour
burst 4 packets }``). The approximation, and why it is this one: HITS connections back to
back pass and the next one is refused, and after DURATION of quiet the full allowance is
back, exactly as asked; a source that keeps coming gets one more connection every
DURATION/HITS instead of waiting out a whole window, so at most 2 x HITS pass in any
window of DURATION (nft has no exact sliding-window counter: an element's counter cannot
be compared in a rule). Refused attempts cost no tokens. A source's state lives until it
has been quiet for DURATION (the element timeout). IPv6 sources are counted per /64, so
one host cannot dodge the limit by rotating addresses through its /64 (nor fill the meter).
Each meter holds 65,536 sources per family; when it is full, new sources go unlimited
rather than refused (fail open: never lock out the innocent). "New connection" is a TCP
SYN without ACK (stateless, so the rate limit does not switch on connection tracking) or,
for UDP, conntrack's ``ct state new``.

Blocklists live in the second table so that ``reconcile`` (which deletes and rebuilds the
jail table) never loses them; see ``NftablesEnforcer.load_blocklist``.

Every change is one ``nft -f -`` script, so it is one atomic transaction: it applies fully or
not at all; a ban round of elements alone is the same transaction sent as one nfnetlink
batch (``nfnetlink.py``, a fifth of the CPU), as atomic. Element timeouts do the
unbanning; the kernel expires them on time even while bruteguard is stopped. Addresses and
networks are validated with ``ipaddress``/``inet_pton`` and names with an anchored pattern
before any text enters a script.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import re
import secrets
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from bruteguard.enforce import JailRule, describe_bans
from bruteguard.enforce.libnft import LIBRARY
from bruteguard.enforce.names import NAME_FORM, is_safe_name
from bruteguard.enforce.nfnetlink import MOST_ELEMENTS
from bruteguard.enforce.nftexec import NftRunner, Transaction, run_nft
from bruteguard.errors import EnforcerError
from bruteguard.model import Ban, Network

__all__ = [
    "NftablesEnforcer",
    "Target",
    "check_jail_rule",
    "nft_duration",
    "parse_target",
    "run_nft",
    "validate_name",
]

log = logging.getLogger(__name__)

Blocktype = Literal["reject", "drop"]

# An nft identifier starts with a letter or "_" (a leading digit or "-" is a syntax error).
_FAMILIES = (("ip", "v4", "ipv4_addr"), ("ip6", "v6", "ipv6_addr"))
_SOCKET_FAMILIES = ((socket.AF_INET, 4), (socket.AF_INET6, 6))
# nft writes a rate as an integer per named unit; the longest unit gives the finest step.
_RATE_UNITS = (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400), ("week", 604800))
_METER_SIZE = 65536  # sources tracked per family and rate-limited jail (a few MB of kernel memory)
_METER_KEYS = {"ip": "ip saddr", "ip6": "ip6 saddr & ffff:ffff:ffff:ffff::"}  # IPv6: per /64
_CHUNK = 8192  # blocklist elements per ``add element`` line: all the script Python ever holds
# Ban set sizes (see "Set sizes" above): HEADROOM x the bans expected, never below the
# kernel's own default hash size hint (so a small set costs what it did without a size),
# raised again when a set passes GROW_AT of its size.
_MIN_SET_SIZE = 65536
_HEADROOM = 2
_GROW_AT = 0.75
_STAMP_SET = "restart_stamp"  # one element, its comment the token of a clean stop
# Blocklists run first: before the connection-tracking rule (identity, filter - 2), the
# jails (filter - 1) and the admin's filter chains (filter).
_BLOCKLIST_HOOK = "{ type filter hook input priority filter - 3; policy accept; }"
_MAPPED_PREFIX = bytes(10) + b"\xff\xff"
# A timeout under this many milliseconds is written as one plain number (nft takes at most
# 8 digits per unit: ``_timeout``); ``reconcile_rows`` writes that case inline, for the
# seconds left under _PLAIN_TIMEOUT (whose milliseconds, rounded up, stay under it).
_PLAIN_MS = 100_000_000
_PLAIN_TIMEOUT = _PLAIN_MS / 1000 - 1


def validate_name(name: str, what: str = "jail name") -> str:
    """Return ``name`` if it is safe as an nft identifier part, else raise EnforcerError."""
    if not is_safe_name(name):
        raise EnforcerError(f"{what} {name!r} cannot be used in nftables: use {NAME_FORM}")
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


@dataclass(frozen=True, slots=True)
class _Jail:
    name: str
    ports: tuple[int, ...]
    protocol: str
    allow: tuple[Network, ...] = ()
    ratelimit: tuple[int, float] | None = None
    knock: bool = False

    @classmethod
    def from_rule(cls, rule: JailRule) -> _Jail:
        name, ports = check_jail_rule(rule)
        allow = _allow_networks(getattr(rule, "allow", ()) or (), f"jail {name}: allow")
        knock = bool(getattr(rule, "knock", False))
        if knock and not ports:
            raise EnforcerError(f"jail {name}: knock needs the jail's ports (it has none)")
        return cls(name, ports, rule.protocol, allow, _rule_ratelimit(rule, name), knock)


def check_jail_rule(rule: JailRule) -> tuple[str, tuple[int, ...]]:
    """The jail's name and ports, checked as every enforcer needs them (an identifier that
    is safe in any firewall's names, tcp or udp, ports 1-65535); EnforcerError if not."""
    name = validate_name(rule.name)
    if rule.protocol not in ("tcp", "udp"):
        raise EnforcerError(f"jail {name}: protocol must be tcp or udp, not {rule.protocol!r}")
    ports = tuple(rule.ports)
    for port in ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise EnforcerError(f"jail {name}: {port!r} is not a port number")
    return name, ports


def _allow_networks(items: Iterable[object], what: str = "allow") -> tuple[Network, ...]:
    """Allowed addresses/networks as disjoint CIDRs, IPv4-mapped IPv6 made IPv4.

    Collapsed so an interval set takes them without overlap errors (``192.0.2.0/24`` and
    ``192.0.2.7`` become one element).
    """
    networks: list[Network] = []
    for item in items:
        try:
            network = ipaddress.ip_network(item, strict=False)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise EnforcerError(f"{what}: {item!r} is not an IP address or CIDR network") from None
        mapped = getattr(network.network_address, "ipv4_mapped", None)
        if mapped is not None and network.prefixlen >= 96:
            network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
        networks.append(network)
    collapsed: list[Network] = []
    for version in (4, 6):
        same = [network for network in networks if network.version == version]
        collapsed.extend(ipaddress.collapse_addresses(same))  # type: ignore[arg-type]
    return tuple(collapsed)


def _rule_ratelimit(rule: JailRule, name: str) -> tuple[int, float] | None:
    """The jail's (hits, seconds): ``rule.rate`` (JailConfig) or a ``rule.ratelimit`` tuple."""
    value = getattr(rule, "rate", None)
    if value is None:
        value = getattr(rule, "ratelimit", None)
    if value is None or value == "":
        return None
    try:
        hits, seconds = value  # type: ignore[misc]
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise EnforcerError(
            f"jail {name}: ratelimit must be (hits, seconds), not {value!r}"
        ) from None
    if isinstance(hits, bool) or not isinstance(hits, int) or not 1 <= hits <= 100_000:
        raise EnforcerError(f"jail {name}: ratelimit hits must be 1 to 100000, not {hits!r}")
    if not 0.001 <= seconds <= 7 * 86400:
        raise EnforcerError(
            f"jail {name}: ratelimit window must be 1 ms to 1 week, not {seconds!r}"
        )
    return hits, seconds


def _limit(hits: int, seconds: float) -> str:
    """``limit rate over R/UNIT burst HITS packets``: a token bucket of ``hits`` tokens that
    refills at hits/seconds (exact when some unit makes the rate whole, else the nearest
    whole number per week, off by at most half a connection a week)."""
    per_second = hits / seconds
    unit, length = _RATE_UNITS[-1]
    for name, size in _RATE_UNITS:
        exact = per_second * size
        if exact >= 1 and math.isclose(exact, round(exact), rel_tol=1e-9):
            unit, length = name, size
            break
    rate = max(1, round(per_second * length))
    return f"limit rate over {rate}/{unit} burst {hits} packets"


def _timeout(until: float, now: float) -> str | None:
    """`` timeout 1d2h3m4s5ms`` for the time left, ``""`` for a permanent ban, None if expired."""
    milliseconds = _milliseconds_left(until, now)
    return None if milliseconds == 0 else _timeout_text(milliseconds)


def _milliseconds_left(until: float, now: float) -> int | None:
    """The time left in whole milliseconds (rounded up), None for a permanent ban, 0 if
    it has ended."""
    if math.isinf(until) and until > 0:
        return None
    remaining = until - now
    if not remaining > 0:
        return 0
    return math.ceil(remaining * 1000)


def _timeout_text(milliseconds: int | None) -> str:
    """`` timeout …`` of an element's milliseconds; ``""`` for None (never times out)."""
    if milliseconds is None:
        return ""
    if milliseconds < _PLAIN_MS:  # the common case, fast
        return f" timeout {milliseconds}ms"
    return f" timeout {nft_duration(milliseconds)}"


def nft_duration(milliseconds: int) -> str:
    """``milliseconds`` as nft writes a time: ``1d2h3m4s5ms``.

    Not one big ``<n>ms`` number: nft 1.0.6 refuses more than 8 digits per unit ("value too
    large"), so a plain ``ms`` count fails for anything over 27.7 hours.
    """
    parts = []
    rest = max(1, milliseconds)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    if rest:
        parts.append(f"{rest}ms")
    return "".join(parts)


def _new_connection(protocol: str) -> str:
    """What counts as a new connection for the rate limit.

    TCP: a SYN without ACK, matched statelessly, so the rate limit does not switch on
    connection tracking (and its table, which a flood can fill) on a host that does not use
    it. UDP has no handshake to match, so there it is conntrack's ``ct state new``.
    """
    return "tcp flags & (syn | ack) == syn" if protocol == "tcp" else "ct state new"


def _cidr(text: str) -> tuple[int, str, int] | None:
    """(version, first address, prefix length) of a CIDR already in canonical form (what
    the ledger holds), by ``inet_pton`` alone; None for anything else, which
    ``parse_target`` decides (host bits set, mapped IPv4, a full-length or zero prefix, odd
    spellings)."""
    address, _, length = text.partition("/")
    if not (length.isascii() and length.isdigit() and len(length) <= 3):
        return None
    family, bits, version = (socket.AF_INET6, 128, 6) if ":" in address else (socket.AF_INET, 32, 4)
    try:
        packed = socket.inet_pton(family, address)
    except (OSError, ValueError):
        return None
    prefix = int(length)
    if not 0 < prefix < bits or (version == 6 and packed.startswith(_MAPPED_PREFIX)):
        return None
    if (
        int.from_bytes(packed) % (1 << (bits - prefix))
        or socket.inet_ntop(family, packed) != address
    ):
        return None
    return version, address, prefix


def _element(text: str) -> tuple[int, str, int]:
    """(IP version, element text, prefix length or -1 for one address) of a ban target. The
    ledger's text as it is when it is canonical (checked by ``inet_pton``/``inet_ntop``, so
    nothing else can enter a script): a restart reads a million; anything else (mapped
    IPv4, host bits, odd spellings) takes ``parse_target``, exact, or its EnforcerError."""
    if type(text) is str:
        if "/" in text:
            cidr = _cidr(text)
            if cidr is not None:
                return cidr
        elif ":" not in text:
            try:
                if socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, text)) == text:
                    return 4, text, -1
            except (OSError, ValueError):
                pass  # parse_target says what is wrong
    target = parse_target(text)
    if target.network is not None:
        return target.version, str(target.network.network_address), target.network.prefixlen
    return target.version, text if target.text == text else target.text, -1


def _packed(text: str) -> bytes:
    """An element's key as the kernel holds it: the address's 4 or 16 bytes (``text`` is an
    element text of ``_element``: one canonical address)."""
    return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)


def _element_text(network: Network) -> str:
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


def _port_match(jail: _Jail) -> str:
    """`` tcp dport { 22 }``, or ``""`` for a jail with no ports (every port)."""
    if not jail.ports:
        return ""
    return f" {jail.protocol} dport {{ {', '.join(map(str, jail.ports))} }}"


_NETWORK_SET = re.compile(r"\A(?P<jail>.+)_v(?P<version>[46])n(?P<prefix>[0-9]{1,3})\Z")


class _NetworkSet(NamedTuple):
    """One jail's hash set for networks of one prefix length: ``sshd_v6n64``."""

    jail: str
    version: int
    prefix: int

    @classmethod
    def of(cls, jail: str, target: Target) -> _NetworkSet | None:
        """The set that holds ``target``, or None for a single address."""
        if target.network is None:
            return None
        return cls(jail, target.version, target.network.prefixlen)

    @classmethod
    def parse(cls, name: str) -> _NetworkSet | None:
        """The network set a set name stands for, or None for any other set."""
        found = _NETWORK_SET.match(name)
        if found is None:
            return None
        version, prefix = int(found["version"]), int(found["prefix"])
        if prefix >= (32 if version == 4 else 128):
            return None
        return cls(found["jail"], version, prefix)

    @property
    def name(self) -> str:
        return f"{self.jail}_v{self.version}n{self.prefix}"

    @property
    def mask(self) -> str:
        """The prefix as an address mask, as ``saddr & mask`` needs it."""
        network = ipaddress.ip_network(("::" if self.version == 6 else "0.0.0.0", self.prefix))
        return str(network.netmask)


@dataclass(slots=True)
class _Filling:
    """One ban set as ``reconcile_rows`` fills it: its elements so far (element → until,
    for duplicates) and those not yet written."""

    name: str
    network_set: _NetworkSet | None
    seen: dict[str, float] = field(default_factory=dict)
    buffer: list[str] = field(default_factory=list)


class NftablesEnforcer:
    """Bans in ``inet <table>`` sets, blocklists in ``inet <table>_bl``; one nft
    transaction per call, through libnftables in this process when it loads (``library``;
    None: always the ``nft`` command) and ``nft -f -`` otherwise (``nftexec.py``).

    ``argv_prefix`` is put before every nft argv: ``["ip", "netns", "exec", "NS"]`` targets a
    network namespace (the tests do this; the library then works from a thread inside it).
    ``nft`` names the binary: naming another than ``nft`` always runs it.
    """

    name = "nftables"
    expires = True  # element timeouts: the kernel lifts bans on time

    def __init__(
        self,
        table: str = "bruteguard",
        blocktype: Blocktype = "reject",
        *,
        nft: str = "nft",
        argv_prefix: Sequence[str] = (),
        timeout: float = 60.0,
        library: str | None = LIBRARY,
    ) -> None:
        self.table = validate_name(table, "nftables table name")
        self.blocklist_table = f"{self.table}_bl"
        if blocktype not in ("reject", "drop"):
            raise EnforcerError(f"blocktype must be 'reject' or 'drop', not {blocktype!r}")
        self.blocktype: Blocktype = blocktype
        self.nft = nft
        self.argv_prefix = tuple(argv_prefix)
        self.timeout = timeout
        self._runner = NftRunner(nft, self.argv_prefix, timeout, library)
        self._jails: dict[str, _Jail] = {}
        # The network sets (jail, IP version, prefix length) the table holds, with their rules.
        self._network_sets: set[_NetworkSet] = set()
        self._is_set_up = False
        # Per ban set: the bans the ledger holds for it (``expect_bans``), the ``size`` the
        # kernel was given, and how many elements it holds at most (counted as they go in;
        # expiry is not subtracted, so this errs high and a set grows a little early).
        self._expected: dict[str, int] | None = None
        self._sized = True  # until a set sized from the ledger's count proved too small
        self._sizes: dict[str, int] = {}
        self._counts: dict[str, int] = {}

    # -- Enforcer protocol ---------------------------------------------------------------

    def setup(self, jails: Sequence[JailRule]) -> None:
        """Create the tables, sets and chains if missing; rebuild the rules and allow sets.

        Ban elements and loaded blocklists are kept, so a restart or a second instance does
        not unban anyone; ``reconcile`` is what replaces bans. The network sets already in
        the table (listed without their elements) get their rules back. The blocklists'
        allow sets get the union of every jail's ``allow``; rate-limit state starts afresh.
        """
        specs = {spec.name: spec for spec in map(_Jail.from_rule, jails)}
        allow = _allow_networks(network for spec in specs.values() for network in spec.allow)
        present = {each for each in self._listed_network_sets() if each.jail in specs}
        if self._expected is not None and not self._counts:  # the table as the ledger has it
            self._counts = dict(self._expected)
        self._apply(self._definition(specs.values(), present) + self._blocklist_base(allow))
        self._jails = specs
        self._network_sets = present
        self._is_set_up = True
        log.info("nftables: table inet %s ready for jails %s", self.table, ", ".join(specs))

    def reconcile(self, bans: Iterable[Ban], now: float) -> None:
        """Replace every set's contents with ``bans`` in one transaction (``reconcile_rows``)."""
        self.reconcile_rows(((ban.ip, ban.jail, ban.start, ban.until) for ban in bans), now)

    def reconcile_rows(self, rows: Iterable[Sequence[Any]], now: float) -> None:
        """Replace every set's contents in one transaction with the bans of ``rows``: tuples
        whose first fields are a ban's ``ip``, ``jail``, ``start``, ``until`` (``BanRow``'s
        order: the ledger's rows as ``ban_rows`` reads them, so a restart makes no ``Ban``
        per row).

        The table is deleted and rebuilt inside the transaction: dropping a set with 100,000
        elements is far cheaper for the kernel than flushing it element by element. ``rows``
        is read once, as the script is streamed to ``nft -f -`` in lines of ``_CHUNK``
        addresses (a restart with a million bans never builds the whole script); nft applies
        nothing before its input ends, so a bad ban still changes nothing. A network is an
        element (its first address) of its prefix length's set, made at its first element;
        the rules of those sets come last, once every ban is read. Of two bans of the same
        element the longer one wins.
        """
        if not self._is_set_up:
            raise EnforcerError("nftables: setup() must run before reconcile() rebuilds the table")
        table = f"inet {self.table}"
        fillings: dict[tuple[str, int, int], _Filling] = {}
        knockers = self._knockers()  # read before the table goes
        self._sizes, self._counts = {}, {}  # a new table: sized from the ledger's counts
        with self._runner.transaction() as stream:
            stream.write([f"add table {table}", f"delete table {table}"])
            stream.write(self._definition(self._jails.values(), ()))
            stream.write(knockers)
            for row in rows:
                text, jail, until = row[0], row[1], row[3]
                left = until - now
                if 0 < left < _PLAIN_TIMEOUT:  # the common case, inline: a million a restart
                    timeout = f" timeout {math.ceil(left * 1000)}ms"
                else:
                    timeout = _timeout(until, now)
                    if timeout is None:
                        continue  # expired
                version, text, prefix = _element(text)
                filling = fillings.get((jail, version, prefix))
                if filling is None:
                    filling = fillings[jail, version, prefix] = self._filling(jail, version, prefix)
                    if filling.network_set is not None:  # its set before its first element
                        stream.write([self._network_set_definition(filling.network_set)])
                seen, buffer = filling.seen, filling.buffer
                before = seen.get(text)
                if before is not None:  # the same element again: the longer ban wins
                    if before >= until:
                        continue
                    stream.write([self._element_line(filling.name, buffer)])
                    buffer.clear()
                    stream.write([f"delete element {table} {filling.name} {{ {text} }}"])
                seen[text] = until
                buffer.append(f"{text}{timeout}")
                if len(buffer) >= _CHUNK:
                    stream.write([self._element_line(filling.name, buffer)])
                    buffer.clear()
            stream.write([self._element_line(each.name, each.buffer) for each in fillings.values()])
            needed = {each.network_set for each in fillings.values() if each.network_set}
            stream.write(self._network_set_lines(needed))  # the rules, now that they are known
            stream.finish()
        self._network_sets = needed
        self._counts = {filling.name: len(filling.seen) for filling in fillings.values()}
        log.info("nftables: reconciled %d bans", sum(self._counts.values()))

    def _filling(self, jail: str, version: int, prefix: int) -> _Filling:
        """The set that elements of ``jail``'s bans of that version and prefix length
        (-1: an address) go to, empty (EnforcerError for a jail not set up)."""
        network_set = None if prefix < 0 else _NetworkSet(jail, version, prefix)
        return _Filling(self._set_name(jail, version, network_set), network_set)

    def ban(self, bans: Sequence[Ban], now: float) -> None:
        """Add or refresh bans in one transaction: only the elements of ``bans`` change.

        ``add element`` leaves an existing element's timeout alone on older kernels, so each
        target is added (so it surely exists), deleted and added again with its new
        timeout, all inside the same transaction. A network of a prefix length the jail has
        not banned before brings its set and rule along (and a set near its size grows):
        those rounds go as an nft script. A round of elements alone goes to the kernel as
        one netlink batch when it can (``_sent_directly``).
        """
        elements, needed = self._sort(bans, now)
        if not elements:
            return
        new_sets = needed - self._network_sets
        lines = self._network_set_lines(new_sets)
        sizes = dict(self._sizes)
        for set_name, members in elements.items():
            lines += self._grown(set_name, len(members))
        try:
            if lines or not self._sent_directly(elements):
                for set_name, members in elements.items():
                    texts = {text: _timeout_text(ms) for text, ms in members.items()}
                    lines += self._replace_elements(set_name, texts)
                self._apply(lines)
        except EnforcerError:
            self._sizes = sizes  # nothing of it applied
            raise
        self._network_sets |= new_sets
        for set_name, members in elements.items():
            self._counts[set_name] = self._counts.get(set_name, 0) + len(members)
        # debug: the daemon logs each ban already (a line per round cost ~0.1 ms each)
        log.debug("nftables: banned %s", describe_bans(bans))

    def _sent_directly(self, elements: dict[str, dict[str, int | None]]) -> bool:
        """Send a round of elements to sets that exist as one nfnetlink batch
        (``nfnetlink.py``): about a fifth of the CPU of the same script through libnftables.
        False when it goes as a script instead: on the nft command path, for a round too
        big for one netlink send, or when the kernel refused the batch or the socket failed
        (nothing was applied; the script then applies the round or raises nft's own error,
        the one the daemon reports)."""
        if sum(map(len, elements.values())) > MOST_ELEMENTS:
            return False
        channel = self._runner.netlink()
        if channel is None:
            return False
        sets = {
            set_name: [(_packed(text), ms) for text, ms in members.items()]
            for set_name, members in elements.items()
        }
        try:
            channel.replace(self.table, sets)
        except (OSError, EnforcerError) as error:
            log.debug("nftables: netlink batch not applied (%s): running it as a script", error)
            return False
        return True

    def expect_bans(self, shapes: Mapping[tuple[str, str], int] | None) -> None:
        """The ledger's bans in force per (jail, shape) (``SqliteStore.active_ban_shapes``:
        shape ``v4``, ``v6`` or ``v4n24``, ``v6n64`` …), told before ``setup`` and
        ``reconcile``: each ban set is then declared with room for its bans (see "Set
        sizes" above). Never told, sets are declared without a size, as nft's default;
        told None (a set was sized too small), never sized again by this enforcer."""
        if shapes is None or not self._sized:
            self._expected, self._sizes, self._sized = None, {}, False
            return
        expected: dict[str, int] = {}
        for (jail, shape), count in shapes.items():
            shape = {"v4n32": "v4", "v6n128": "v6"}.get(shape, shape)
            expected[f"{jail}_{shape}"] = expected.get(f"{jail}_{shape}", 0) + count
        self._expected = expected

    def _size(self, set_name: str, count: int = 0) -> int | None:
        """The size to declare ban set ``set_name`` with: HEADROOM x the most it is known
        to hold (the ledger's count, the count so far, ``count``), at least
        ``_MIN_SET_SIZE``, never less than it was given (a size below its elements would
        refuse every add); None before ``expect_bans``."""
        if self._expected is None:
            return None
        most = max(self._expected.get(set_name, 0), self._counts.get(set_name, 0), count)
        wanted = -(-_HEADROOM * most // _MIN_SET_SIZE) * _MIN_SET_SIZE  # whole 64 Ki steps
        return max(_MIN_SET_SIZE, self._sizes.get(set_name, 0), wanted)

    def _ban_set_line(self, set_name: str, version: int, count: int = 0) -> str:
        """``add set`` of a ban set, with its size (recorded) when one is known. On an
        existing set it changes nothing but the size (kernel 6.18 takes the new one)."""
        kind = "ipv4_addr" if version == 4 else "ipv6_addr"
        size = self._size(set_name, count)
        if size is None:
            return f"add set inet {self.table} {set_name} {{ type {kind}; flags timeout; }}"
        self._sizes[set_name] = size
        flags = f"flags timeout; size {size};"
        return f"add set inet {self.table} {set_name} {{ type {kind}; {flags} }}"

    def _grown(self, set_name: str, adding: int) -> list[str]:
        """The line that raises ``set_name``'s size, when ``adding`` elements would take it
        past ``_GROW_AT`` of it (in the same transaction as the elements: no moment
        without them); [] if it has room or no size."""
        size = self._sizes.get(set_name)
        count = self._counts.get(set_name, 0) + adding
        if size is None or count <= size * _GROW_AT:
            return []
        network_set = _NetworkSet.parse(set_name)
        version = network_set.version if network_set else int(set_name[-1])
        log.info("nftables: set %s nears its size %d: raised", set_name, size)
        return [self._ban_set_line(set_name, version, count)]

    def _knockers(self) -> list[str]:
        """``add element`` lines that let the knockers the table holds now back in for
        the rest of their time (to the second, rounded down): a rebuild of the table must
        not shut out whoever knocked. Read from the kernel, so checked as any input."""
        lines = []
        for jail in self._jails.values():
            for version in (4, 6) if jail.knock else ():
                set_name = f"{jail.name}_k{version}"
                try:
                    listing = json.loads(
                        self._runner.list_json(["set", "inet", self.table, set_name], elements=True)
                    )
                except (EnforcerError, ValueError):
                    continue  # no such set yet (a first start): nobody to keep
                elements = []
                for item in listing.get("nftables", []):
                    for element in (item.get("set") or {}).get("elem", []):
                        kept = _knocker(element, version)
                        if kept:
                            elements.append(kept)
                if elements:
                    body = ", ".join(elements)
                    lines.append(f"add element inet {self.table} {set_name} {{ {body} }}")
        return lines

    # -- restart stamp -------------------------------------------------------------------

    def restart_stamp(self) -> str | None:
        """At a clean stop: mark the table as holding exactly what the ledger says, and
        return the stamp for the ledger (``resumes`` checks it at the next start); None
        when nothing could prove it later (the nft command path cannot read the ruleset
        generation)."""
        if not self._is_set_up:
            return None
        token = secrets.token_hex(16)
        table = f"inet {self.table}"
        self._apply(
            [
                f"add set {table} {_STAMP_SET} {{ type mark; }}",
                f"flush set {table} {_STAMP_SET}",
                f'add element {table} {_STAMP_SET} {{ 1 comment "{token}" }}',
            ]
        )
        generation = self._runner.generation()
        if generation is None:
            return None
        counts = ",".join(f"{name}={count}" for name, count in sorted(self._counts.items()))
        return f"{token}:{generation}:{self._layout(self._jails.values())}:{counts}"

    def resumes(self, stamp: str, jails: Sequence[JailRule]) -> bool:
        """Whether the table still holds exactly what it held when ``stamp`` was made
        (``restart_stamp``), so a start needs ``setup`` alone, not a ``reconcile``: the
        ruleset generation is the one read right after the stamp went in (no transaction
        since, by anyone: no ``nft flush set``, no ``delete element``, no reboot's fresh
        ruleset), the table's stamp element carries the token, and the jails make the same
        sets and rules. Any doubt is False (then the full reconcile runs). Changes nothing
        in the kernel; when True, the sets' sizes are read and their counts taken from the
        stamp (``expect_bans`` is not needed then)."""
        token, generation, layout, counts = [*stamp.split(":", 3), "", "", ""][:4]
        try:
            if layout != self._layout(map(_Jail.from_rule, jails)):
                return False
            if str(self._runner.generation()) != generation:
                return False
            listing = json.loads(
                self._runner.list_json(["set", "inet", self.table, _STAMP_SET], elements=True)
            )
        except (EnforcerError, ValueError):
            return False
        comments = [
            element.get("elem", {}).get("comment") if isinstance(element, dict) else None
            for item in listing.get("nftables", [])
            for element in (item.get("set") or {}).get("elem", [])
        ]
        if not token or comments != [token]:
            return False
        try:
            sizes = self._listed_sizes()
        except EnforcerError:
            return False
        if self._sized:
            self._expected, self._sizes = {}, sizes
            for pair in filter(None, counts.split(",")):
                name, _, count = pair.partition("=")
                if count.isascii() and count.isdigit():
                    self._counts[name] = int(count)
        return True

    def _listed_sizes(self) -> dict[str, int]:
        """The ``size`` of each set in the jail table that has one."""
        try:
            items = json.loads(self._runner.list_json(["sets", "table", "inet", self.table]))
            return {
                item["set"]["name"]: int(item["set"]["size"])
                for item in items["nftables"]
                if "set" in item
                and (item["set"].get("family"), item["set"].get("table")) == ("inet", self.table)
                and "size" in item["set"]
            }
        except (ValueError, KeyError, TypeError) as error:
            raise EnforcerError(f"could not read the sets of inet {self.table}: {error}") from None

    def _layout(self, jails: Iterable[_Jail]) -> str:
        """A short digest of what shapes the table's sets and rules (the table, blocktype
        and every jail but its allow list, which ``setup`` refills anyway)."""
        shape = [self.table, self.blocktype]
        for jail in sorted(jails, key=lambda jail: jail.name):
            shape.append(repr((jail.name, jail.ports, jail.protocol, jail.ratelimit, jail.knock)))
        return hashlib.sha256("\n".join(shape).encode()).hexdigest()[:16]

    def unban(self, bans: Sequence[Ban]) -> None:
        """Remove bans in one transaction; targets that are not banned are not an error.

        ``delete element`` fails the whole transaction for a missing element, so each
        target is first added with a short timeout: then the delete always succeeds. A
        network ban removes that network's element only, not narrower bans inside it (the
        daemon's unban passes every stored ban that overlaps what it lifts).
        """
        members: dict[str, set[str]] = {}
        for ban in bans:
            target = parse_target(ban.ip)
            network_set = _NetworkSet.of(ban.jail, target)
            set_name = self._set_name(ban.jail, target.version, network_set)
            if network_set is not None and network_set not in self._network_sets:
                continue  # no set for that prefix length: nothing of that length is banned
            text = target.text if target.network is None else str(target.network.network_address)
            members.setdefault(set_name, set()).add(text)
        lines = []
        for set_name, texts in members.items():
            joined = ", ".join(sorted(texts))
            placeholders = ", ".join(f"{text} timeout 1s" for text in sorted(texts))
            lines.append(f"add element inet {self.table} {set_name} {{ {placeholders} }}")
            lines.append(f"delete element inet {self.table} {set_name} {{ {joined} }}")
        if lines:
            self._apply(lines)
            log.info("nftables: unbanned %s", describe_bans(bans))

    def open_for(self, jails: Iterable[str], address: str, seconds: float) -> None:
        """Let ``address`` open new connections to the ports of the knock ``jails`` for
        ``seconds`` (a knock accepted): one element per jail's knock set, timeout refreshed."""
        target = parse_target(address)
        if target.network is not None:
            raise EnforcerError(f"a knock opens for one address, not {address!r}")
        lines = []
        for name in jails:
            jail = self._jails.get(name)
            if jail is None or not jail.knock:
                raise EnforcerError(f"jail {name!r} has no knock set in table {self.table}")
            timeout = f" timeout {math.ceil(seconds * 1000)}ms"
            set_name = f"{name}_k{target.version}"
            lines += self._replace_elements(set_name, {target.text: timeout})
        if lines:
            self._apply(lines)
            log.info("nftables: %s let in to %s for %gs", target.text, ", ".join(jails), seconds)

    def teardown(self) -> None:
        """Delete ``inet <table>`` and ``inet <table>_bl`` (and nothing else); fine if gone."""
        lines = []
        for table in (self.table, self.blocklist_table):
            lines += [f"add table inet {table}", f"delete table inet {table}"]
        self._apply(lines)
        self._jails = {}
        self._network_sets = set()
        self._is_set_up = False
        log.info("nftables: tables inet %s and inet %s removed", self.table, self.blocklist_table)

    # -- blocklists ----------------------------------------------------------------------

    def load_blocklist(self, name: str, entries: Iterable[str], until: float, now: float) -> int:
        """Block every port for ``entries`` (addresses/CIDRs) until ``until``; the count loaded.

        Loading a name again replaces its list in the same transaction, so there is no moment
        with neither list (nor with both). The script is streamed to ``nft -f -`` in chunks
        of ``_CHUNK`` elements while ``entries`` is read: Python never holds the list, the
        kernel does. An invalid entry kills nft before it reads the end of the script, so
        nothing of the load is applied. Sources in any jail's ``allow`` are exempt.

        Four sets per list: ``bl_<name>_4`` / ``bl_<name>_6`` are hash sets for addresses and
        ``bl_<name>_4net`` / ``bl_<name>_6net`` interval sets (auto-merge) for CIDRs. Plain
        addresses stay out of interval sets because the kernel's interval tree is slow at
        this size: 1,000,000 addresses took 17 s to load and 75 s to replace as intervals,
        about 5 s either way as hash elements (kernel 6.18, nft 1.0.6). ``until`` finite:
        every element times out then (the sets' default timeout); ``math.inf``: they stay
        until dropped or replaced.
        """
        name = validate_name(name, "blocklist name")
        timeout = _timeout(until, now)
        if timeout is None:
            self.drop_blocklist(name)
            return 0
        table = f"inet {self.blocklist_table}"
        sets = {
            (v, net): f"bl_{name}_{v}{'net' if net else ''}"
            for v in (4, 6)
            for net in (False, True)
        }
        default = f"{timeout};" if timeout else ""  # "": the elements never time out
        with self._runner.transaction() as stream:
            stream.write(self._blocklist_base(None) + self._drop_lines(name))
            for (version, is_net), set_name in sets.items():
                kind = "ipv4_addr" if version == 4 else "ipv6_addr"
                flags = "interval, timeout; auto-merge" if is_net else "timeout"
                stream.write(
                    [f"add set {table} {set_name} {{ type {kind}; flags {flags};{default} }}"]
                )
            count = _stream_elements(stream, table, sets, name, entries)
            chain = f"{table} bl_{name}"
            stream.write([f"add chain {chain} {_BLOCKLIST_HOOK}"])
            for (version, _), set_name in sets.items():
                family = "ip" if version == 4 else "ip6"
                stream.write(
                    [
                        f"add rule {chain} {family} saddr @{set_name}"
                        f" {family} saddr != @allow{version} counter goto block"
                    ]
                )
            stream.finish()
        log.info("nftables: blocklist %s loaded with %d entries", name, count)
        return count

    def drop_blocklist(self, name: str) -> None:
        """Remove blocklist ``name`` (its chain and sets); fine if it is not loaded."""
        name = validate_name(name, "blocklist name")
        self._apply([f"add table inet {self.blocklist_table}", *self._drop_lines(name)])
        log.info("nftables: blocklist %s dropped", name)

    def _blocklist_base(self, allow: tuple[Network, ...] | None) -> list[str]:
        """The blocklist table's shared parts: the global allow sets (refilled unless
        ``allow`` is None) and the ``block`` chain every blocklist rule goes to."""
        table = f"inet {self.blocklist_table}"
        lines = [f"add table {table}"]
        for version, kind in ((4, "ipv4_addr"), (6, "ipv6_addr")):
            lines.append(f"add set {table} allow{version} {{ type {kind}; flags interval; }}")
            if allow is not None:
                lines.append(f"flush set {table} allow{version}")
                lines.append(self._allow_elements(table, f"allow{version}", allow, version))
        lines += [f"add chain {table} block", f"flush chain {table} block"]
        lines += [f"add rule {table} block {rule}" for rule in self._block_rules()]
        return [line for line in lines if line]

    def _block_rules(self) -> list[str]:
        """The ``block`` chain's rules: every port and protocol, for blocklists and jails
        with no ports. Neighbour discovery passes: blocking it only breaks address
        resolution with an on-link neighbour (which then needs seconds to recover once
        unblocked)."""
        rules = ["icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept"]
        if self.blocktype == "reject":
            return [*rules, "meta l4proto tcp reject with tcp reset", "reject"]
        return [*rules, "drop"]

    def _drop_lines(self, name: str) -> list[str]:
        """Delete blocklist ``name``'s chain and sets, whether they exist or not.

        ``delete`` fails on a missing object, so each is first added with the same type and
        flags (which does nothing when it exists); the chain goes first, so its rules no
        longer hold the sets.
        """
        table = f"inet {self.blocklist_table}"
        chain = f"{table} bl_{name}"
        lines = [
            f"add chain {chain} {_BLOCKLIST_HOOK}",
            f"flush chain {chain}",
            f"delete chain {chain}",
        ]
        for version, kind in ((4, "ipv4_addr"), (6, "ipv6_addr")):
            for suffix, flags in (("", "timeout"), ("net", "interval, timeout")):
                set_name = f"{table} bl_{name}_{version}{suffix}"
                lines.append(f"add set {set_name} {{ type {kind}; flags {flags}; }}")
                lines.append(f"delete set {set_name}")
        return lines

    @staticmethod
    def _allow_elements(table: str, set_name: str, allow: Iterable[Network], version: int) -> str:
        texts = [_element_text(network) for network in allow if network.version == version]
        return f"add element {table} {set_name} {{ {', '.join(texts)} }}" if texts else ""

    # -- health --------------------------------------------------------------------------

    def check(self) -> str | None:
        """A clear description of why this enforcer cannot work here, or None if it can.

        Runs ``nft --check`` on a script that would create the table: needs the binary and
        the privilege, changes nothing.
        """
        try:
            self._run(f"add table inet {self.table}\n", check=True)
        except EnforcerError as error:
            return str(error)
        return None

    def is_available(self) -> bool:
        return self.check() is None

    # -- script building -----------------------------------------------------------------

    def _definition(self, jails: Iterable[_Jail], network_sets: Iterable[_NetworkSet]) -> list[str]:
        """The jail table: sets (allow sets refilled, meters emptied), chain, rules.

        Ban rules come first and rate-limit rules after them, so a source that is banned
        anyway never spends its rate allowance.
        """
        table = f"inet {self.table}"
        lines = [f"add table {table}"]
        rules = []
        closed = []
        limits = []
        jails = list(jails)
        if not all(jail.ports for jail in jails):
            lines += [f"add chain {table} block", f"flush chain {table} block"]
            lines += [f"add rule {table} block {rule}" for rule in self._block_rules()]
        for jail in jails:
            for family, suffix, kind in _FAMILIES:
                allow_set = f"{jail.name}_a{suffix[1]}"
                lines.append(f"add set {table} {allow_set} {{ type {kind}; flags interval; }}")
                lines.append(f"flush set {table} {allow_set}")
                lines.append(self._allow_elements(table, allow_set, jail.allow, int(suffix[1])))
                set_name = f"{jail.name}_{suffix}"
                lines.append(self._ban_set_line(set_name, int(suffix[1])))
                rule = self._ban_rule(jail, int(suffix[1]), set_name)
                rules.append(f"add rule {table} input {rule}")
                if jail.knock:
                    knocked = f"{jail.name}_k{suffix[1]}"
                    lines.append(f"add set {table} {knocked} {{ type {kind}; flags timeout; }}")
                    closed.append(
                        f"add rule {table} input{_port_match(jail)}"
                        f" {_new_connection(jail.protocol)} {family} saddr != @{allow_set}"
                        f" {family} saddr != @{knocked} counter {self._verdict(jail)}"
                    )
                if jail.ratelimit is not None:
                    meter = f"{jail.name}_r{suffix[1]}"
                    lines.append(
                        f"add set {table} {meter}"
                        f" {{ type {kind}; size {_METER_SIZE}; flags dynamic, timeout; }}"
                    )
                    lines.append(f"flush set {table} {meter}")
                    limited = _port_match(jail) or f" meta l4proto {jail.protocol}"
                    unless_allowed = f"{family} saddr != @{allow_set}"
                    limits.append(
                        f"add rule {table} input{limited} {_new_connection(jail.protocol)}"
                        f" {unless_allowed} {self._meter_update(meter, family, jail.ratelimit)}"
                        f" counter {self._verdict(jail)}"
                    )
        lines.append(
            f"add chain {table} input"
            " { type filter hook input priority filter - 1; policy accept; }"
        )
        lines.append(f"flush chain {table} input")
        by_name = {jail.name: jail for jail in jails}
        for network_set in sorted(network_sets):
            if network_set.jail in by_name:
                lines.append(self._network_set_definition(network_set))
                rule = self._network_rule(by_name[network_set.jail], network_set)
                rules.append(f"add rule {table} input {rule}")
        return [line for line in lines if line] + rules + closed + limits

    def _verdict(self, jail: _Jail) -> str:
        """A jail with no ports bans every port of every protocol (recidive): its rules go
        to the shared ``block`` chain."""
        if not jail.ports:
            return "goto block"
        if self.blocktype == "reject":
            return "reject with tcp reset" if jail.protocol == "tcp" else "reject"
        return "drop"

    def _ban_rule(self, jail: _Jail, version: int, set_name: str, key: str = "") -> str:
        """The rule for one ban set: source in the set (``key``: ``& mask`` for a network
        set), not allowed, on the jail's ports."""
        family = "ip" if version == 4 else "ip6"
        return (
            f"{family} saddr{key} @{set_name} {family} saddr != @{jail.name}_a{version}"
            f"{_port_match(jail)} counter {self._verdict(jail)}"
        )

    def _network_set_definition(self, network_set: _NetworkSet) -> str:
        return self._ban_set_line(network_set.name, network_set.version)

    def _network_rule(self, jail: _Jail, network_set: _NetworkSet) -> str:
        return self._ban_rule(jail, network_set.version, network_set.name, f" & {network_set.mask}")

    def _network_set_lines(self, network_sets: Iterable[_NetworkSet]) -> list[str]:
        """Create network sets the table lacks, each with its rule at the top of the chain
        (``insert``: before the rate-limit rules, which a banned source must not reach)."""
        lines = []
        for network_set in sorted(network_sets):
            lines.append(self._network_set_definition(network_set))
            rule = self._network_rule(self._jails[network_set.jail], network_set)
            lines.append(f"insert rule inet {self.table} input {rule}")
        return lines

    def _listed_network_sets(self) -> set[_NetworkSet]:
        """The network sets in the jail table, listed without their elements (``-t``)."""
        try:
            output = self._runner.list_json(["sets", "table", "inet", self.table])
        except EnforcerError as error:
            if "No such file or directory" in str(error):
                return set()  # no table yet
            raise
        try:
            items = json.loads(output)["nftables"]
            # nft 1.0.6 lists the sets of every table here, whatever table is named.
            names = [
                item["set"]["name"]
                for item in items
                if "set" in item
                and (item["set"].get("family"), item["set"].get("table")) == ("inet", self.table)
            ]
        except (ValueError, KeyError, TypeError) as error:
            raise EnforcerError(f"could not read the sets of inet {self.table}: {error}") from None
        return {each for each in map(_NetworkSet.parse, names) if each is not None}

    @staticmethod
    def _meter_update(meter: str, family: str, ratelimit: tuple[int, float]) -> str:
        """The per-source token bucket: ``update`` (re)starts the element's timeout, so the
        state of a source lives until it has been quiet for the whole window."""
        hits, seconds = ratelimit
        key = f"{_METER_KEYS[family]} timeout {nft_duration(math.ceil(seconds * 1000))}"
        return f"update @{meter} {{ {key} {_limit(hits, seconds)} }}"

    def _set_name(self, jail: str, version: int, network_set: _NetworkSet | None) -> str:
        """The set a ban of ``jail`` goes to: its network set, or its address set."""
        if jail not in self._jails:
            validate_name(jail)
            raise EnforcerError(
                f"jail {jail!r} is not set up in nftables table {self.table} (run setup() with it)"
            )
        return f"{jail}_v{version}" if network_set is None else network_set.name

    def _sort(
        self, bans: Sequence[Ban], now: float
    ) -> tuple[dict[str, dict[str, int | None]], set[_NetworkSet]]:
        """Validate ``bans`` and group them by set (element text → milliseconds left, None
        for a permanent ban); also the network sets they need.

        Expired bans are left out; of two bans for the same target the longer one wins.
        """
        elements: dict[str, dict[str, int | None]] = {}
        untils: dict[tuple[str, str], float] = {}
        needed: set[_NetworkSet] = set()
        for set_name, network_set, text, until, milliseconds in self._targets(bans, now):
            if network_set is not None:
                needed.add(network_set)
            key = (set_name, text)
            if untils.get(key, -math.inf) < until:
                untils[key] = until
                elements.setdefault(set_name, {})[text] = milliseconds
        return elements, needed

    def _targets(
        self, bans: Iterable[Ban], now: float
    ) -> Iterator[tuple[str, _NetworkSet | None, str, float, int | None]]:
        """Validate ``bans`` as they come and leave out expired ones: (set, its network set
        or None, element text, until, milliseconds left or None) each; a network's element
        is its first address (``_element``)."""
        set_names: dict[tuple[str, int, int], tuple[str, _NetworkSet | None]] = {}
        for ban in bans:
            version, text, prefix = _element(ban.ip)
            kind = (ban.jail, version, prefix)
            named = set_names.get(kind)
            if named is None:
                network_set = None if prefix < 0 else _NetworkSet(ban.jail, version, prefix)
                set_name = self._set_name(ban.jail, version, network_set)
                named = set_names[kind] = (set_name, network_set)
            milliseconds = _milliseconds_left(ban.until, now)
            if milliseconds != 0:
                yield named[0], named[1], text, ban.until, milliseconds

    def _element_line(self, set_name: str, elements: list[str]) -> str:
        """``add element`` of ``elements`` (each ``text timeout …``); "" if there are none."""
        body = ", ".join(elements)
        return f"add element inet {self.table} {set_name} {{ {body} }}" if body else ""

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

    # -- running nft ---------------------------------------------------------------------

    def _apply(self, lines: list[str]) -> None:
        self._run("\n".join(lines) + "\n")

    def _run(self, script: str, **flags: bool) -> str:
        """Every small script goes through here (``flags``: ``NftRunner.run``'s)."""
        return self._runner.run(script, **flags)


def _knocker(element: object, version: int) -> str | None:
    """``ADDRESS timeout Ns`` of a knock set's element as ``nft -j`` lists it (a plain
    address, or ``{"elem": {"val": …, "expires": seconds}}``); None for one about to end
    or anything that is not one address of ``version``."""
    expires: object = None
    if isinstance(element, dict):
        inner = element.get("elem")
        if not isinstance(inner, dict):
            return None
        value, expires = inner.get("val"), inner.get("expires")
    else:
        value = element
    try:
        target = parse_target(value)  # type: ignore[arg-type]
    except EnforcerError:
        return None
    if target.network is not None or target.version != version:
        return None
    if expires is None:
        return target.text  # no timeout: let in until taken out
    if isinstance(expires, bool) or not isinstance(expires, int) or expires <= 0:
        return None
    return f"{target.text} timeout {nft_duration(expires * 1000)}"


def _blocklist_entry(entry: str, name: str, index: int) -> tuple[int, bool, str]:
    """(IP version, is a network, element text) of one blocklist entry, or EnforcerError.

    Entries arrive validated; this is the cheap second check that keeps anything else out
    of the script: ``inet_pton`` for addresses (it accepts nothing but address characters),
    one ``ipaddress`` parse for CIDRs. IPv4-mapped IPv6 becomes IPv4.
    """
    try:
        if "/" in entry:
            target = parse_target(entry)
            return target.version, target.network is not None, target.text
        if ":" in entry:
            packed = socket.inet_pton(socket.AF_INET6, entry)
            if packed.startswith(_MAPPED_PREFIX):
                return 4, False, socket.inet_ntop(socket.AF_INET, packed[12:])
            return 6, False, socket.inet_ntop(socket.AF_INET6, packed) if "." in entry else entry
        socket.inet_pton(socket.AF_INET, entry)
        return 4, False, entry
    except (OSError, ValueError, TypeError, EnforcerError):
        raise EnforcerError(
            f"blocklist {name}: entry {index + 1} is not an IP address or CIDR network:"
            f" {entry!r:.80}"
        ) from None


def _stream_elements(
    stream: Transaction,
    table: str,
    sets: dict[tuple[int, bool], str],
    name: str,
    entries: Iterable[str],
) -> int:
    """Validate ``entries`` and write them as ``add element`` lines of ``_CHUNK`` elements."""
    buffers: dict[tuple[int, bool], list[str]] = {key: [] for key in sets}
    count = 0
    for entry in entries:
        version, is_net, text = _blocklist_entry(entry, name, count)
        buffer = buffers[version, is_net]
        buffer.append(text)
        count += 1
        if len(buffer) >= _CHUNK:
            stream.write([f"add element {table} {sets[version, is_net]} {{ {', '.join(buffer)} }}"])
            buffer.clear()
    for key, buffer in buffers.items():
        if buffer:
            stream.write([f"add element {table} {sets[key]} {{ {', '.join(buffer)} }}"])
    return count
