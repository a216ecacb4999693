"""Run the user's own commands to ban and unban, and the argv runner the BSD enforcers share.

``CommandEnforcer`` is the escape hatch for firewalls bruteguard does not know: each ban runs
``ban_argv`` with placeholders filled in. Templates are argv lists, never shell lines: a
placeholder is replaced *inside* one argv element, so no value can ever add, split or quote
an argument. Values are validated before they are substituted (addresses by
``parse_target``, jail names by ``validate_name``), so ``$(touch /tmp/x)`` never gets there.

Placeholders (``{{`` and ``}}`` write literal braces):

    {ip}        the address or CIDR network (canonical: IPv4-mapped IPv6 becomes IPv4)
    {jail}      the jail name
    {until}     POSIX seconds when the ban ends, or 0 for a permanent ban
    {seconds}   whole seconds left (at least 1), or 0 for a permanent ban
    {ports}     the jail's ports, comma-separated ("22,2222"), or "all"
    {protocol}  tcp or udp

One process runs per ban here (it is the user's command, with its own cost), each bounded by
``timeout`` and killed with its whole process group when it overruns.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Generic, Protocol, TypeVar

from bruteguard.enforce import JailRule
from bruteguard.enforce.nftables import Target, check_jail_rule, parse_target, validate_name
from bruteguard.errors import EnforcerError
from bruteguard.model import Ban, Network

__all__ = [
    "BAN_PLACEHOLDERS",
    "CommandEnforcer",
    "Runner",
    "TableJail",
    "active_targets",
    "allow_networks",
    "allowed_pieces",
    "argv_runner",
    "entry_text",
    "is_allowed",
    "live_targets",
    "run_argv",
    "targets_by_jail",
]

log = logging.getLogger(__name__)

# ``runner(argv, stdin_text) -> stdout``: how the pf and ipfw enforcers run their tool
# (tests inject one that records argv, since pfctl and ipfw cannot run on Linux).
Runner = Callable[[Sequence[str], "str | None"], str]

BAN_PLACEHOLDERS = ("ip", "jail", "until", "seconds", "ports", "protocol")
_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_ESCAPES = {"{{": "{", "}}": "}"}
_STDERR_LIMIT = 2000
_DENIED = ("Operation not permitted", "Permission denied", "you must be root")


def run_argv(
    argv: Sequence[str],
    stdin: str | None = None,
    *,
    timeout: float = 60.0,
    package: str | None = None,
    argv_prefix: Sequence[str] = (),
    label: str | None = None,
) -> str:
    """Run ``argv`` (never a shell) and return its stdout, or raise a clear EnforcerError.

    The one command runner of the enforcers (``_commands.run`` and ``nftables.run_nft`` wrap
    it). The program is looked up on PATH only: PATH is how an administrator (and a test)
    says which tools exist, so a missing one is an error, never a guess. ``argv_prefix``
    (``ip netns exec NS``) goes before it unchanged. The child gets its own process group,
    so a timeout kills everything it started. ``package`` names what to install when the
    program is missing; ``label`` names the command in messages (default: the argv itself).
    """
    argv = list(argv)
    shown = label or shlex.join(argv[:6]) + (" …" if len(argv) > 6 else "")
    path = shutil.which(argv[0]) if argv else None
    if path is None:
        hint = f": install {package}" if package else ""
        raise EnforcerError(f"command {argv[0] if argv else ''!r} not found{hint}")
    full = [*argv_prefix, path, *argv[1:]]
    try:
        process = subprocess.Popen(
            full,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as error:
        raise EnforcerError(f"cannot run {full[0]!r}: {error.strerror}") from None
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise EnforcerError(f"{shown} did not finish within {timeout:g}s (killed)") from None
    if process.returncode != 0:
        stderr = stderr.strip()
        if len(stderr) > _STDERR_LIMIT:
            stderr = stderr[:_STDERR_LIMIT] + " …"
        if any(marker in stderr for marker in _DENIED):
            raise EnforcerError(
                f"{shown}: operation not permitted: changing the firewall needs root"
                f" (or CAP_NET_ADMIN): {stderr}"
            )
        raise EnforcerError(f"{shown} failed (exit {process.returncode}): {stderr}")
    return stdout


def allow_networks(rule: JailRule) -> tuple[Network, ...]:
    """The jail's allow-list (``ignoreip``) as networks, IPv4-mapped IPv6 made IPv4."""
    networks = []
    for item in getattr(rule, "allow", ()) or ():
        target = parse_target(str(item))
        networks.append(target.network or ipaddress.ip_network(target.text))
    return tuple(networks)


def is_allowed(network: Network, allow: Iterable[Network]) -> bool:
    """True if an allowed network covers all of ``network`` (so it is never banned)."""
    return any(
        network.version == allowed.version and network.subnet_of(allowed) for allowed in allow
    )


def allowed_pieces(network: Network, allow: Iterable[Network]) -> list[Network]:
    """``network`` minus every allowed network: the CIDRs that may really be banned.

    Empty when an allowed network covers all of it; ``[network]`` when none overlaps.
    """
    pieces = [network]
    for allowed in allow:
        if allowed.version != network.version:
            continue
        next_pieces: list[Network] = []
        for piece in pieces:
            if piece.subnet_of(allowed):
                continue
            if allowed.subnet_of(piece):
                next_pieces.extend(piece.address_exclude(allowed))
            else:
                next_pieces.append(piece)
        pieces = next_pieces
    return sorted(pieces, key=lambda piece: (piece.network_address, piece.prefixlen))


def entry_text(network: Network) -> str:
    """A network as a firewall entry: a plain address for a single host, else CIDR."""
    return str(network.network_address) if network.num_addresses == 1 else str(network)


class _HasAllow(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def allow(self) -> tuple[Network, ...]: ...


J = TypeVar("J", bound=_HasAllow)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TableJail(Generic[T]):
    """A jail of an enforcer that keeps one table per jail (pf, ipfw, route)."""

    name: str
    table: T
    allow: tuple[Network, ...]


def live_targets(
    bans: Iterable[Ban], jails: Mapping[str, J], now: float | None, enforcer: str
) -> Iterator[tuple[Ban, J, Target, Network]]:
    """(ban, its jail, target, network) of each ban, validated; ended ones left out if
    ``now`` is given (``unban`` passes None: expired bans still have to be removed)."""
    for ban in bans:
        jail = jails.get(ban.jail)
        if jail is None:
            validate_name(ban.jail)
            raise EnforcerError(f"jail {ban.jail!r} is not set up in the {enforcer} enforcer")
        target = parse_target(ban.ip)
        if now is not None and not ban.until > now:
            continue
        yield ban, jail, target, target.network or ipaddress.ip_network(target.text)


def active_targets(
    bans: Iterable[Ban], jails: Mapping[str, J], now: float | None, enforcer: str
) -> Iterator[tuple[Ban, J, Target, Network]]:
    """``live_targets`` without those an allowed network covers (logged: "allow wins")."""
    for ban, jail, target, network in live_targets(bans, jails, now, enforcer):
        if is_allowed(network, jail.allow):
            log.info("%s: %s is allowed in jail %s: not banned", enforcer, target.text, jail.name)
            continue
        yield ban, jail, target, network


def targets_by_jail(
    bans: Iterable[Ban], jails: Mapping[str, J], now: float | None, enforcer: str
) -> dict[str, list[str]]:
    """Canonical texts of ``active_targets`` per jail name, first-seen order, no repeats."""
    grouped: dict[str, dict[str, None]] = {}
    for _, jail, target, _ in active_targets(bans, jails, now, enforcer):
        grouped.setdefault(jail.name, {})[target.text] = None
    return {jail: list(texts) for jail, texts in grouped.items()}


def argv_runner(timeout: float, package: str) -> Runner:
    """The default ``Runner`` of the pf and ipfw enforcers: ``run_argv`` with a timeout."""
    return partial(run_argv, timeout=timeout, package=package)


def _template(argv: Sequence[str] | None, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    """Validate an argv template: a non-empty list of strings with only known placeholders."""
    if isinstance(argv, str | bytes) or not argv:
        raise EnforcerError(
            f"{what}: give a non-empty list of arguments (an argv list, not a shell command line)"
        )
    for index, element in enumerate(argv):
        if not isinstance(element, str) or "\0" in element:
            raise EnforcerError(f"{what}: argument {index} must be text, not {element!r}")
        for match in _FIELD.finditer(element):
            name = match.group(1)
            if name is None:
                continue
            if index == 0:
                raise EnforcerError(f"{what}: the program ({element!r}) cannot be a placeholder")
            if name not in allowed:
                known = ", ".join(f"{{{key}}}" for key in allowed) or "none"
                raise EnforcerError(
                    f"{what}: unknown placeholder {{{name}}} in {element!r} (known: {known};"
                    " write {{ and }} for literal braces)"
                )
    return tuple(argv)


def _fill(template: Sequence[str], values: dict[str, str]) -> list[str]:
    """Each element with its placeholders replaced in one pass (a value is never re-read)."""

    def replace(match: re.Match[str]) -> str:
        literal = _ESCAPES.get(match.group(0))
        return literal if literal is not None else values[match.group(1)]

    return [_FIELD.sub(replace, element) for element in template]


@dataclass(frozen=True, slots=True)
class _Jail:
    name: str
    ports: str
    protocol: str
    allow: tuple[Network, ...]


class CommandEnforcer:
    """Runs ``ban_argv`` per ban and ``unban_argv`` per unban; see the module docstring.

    ``setup_argv`` and ``teardown_argv`` (no placeholders) run once each. ``reconcile`` cannot
    ask a command what it holds: it runs teardown, setup, then a ban per active ban; without
    a ``teardown_argv`` it can only re-ban, not remove stale bans.
    """

    name = "command"
    expires = False  # no timeouts here: the daemon unbans expired bans

    def __init__(
        self,
        ban_argv: Sequence[str],
        unban_argv: Sequence[str],
        *,
        setup_argv: Sequence[str] | None = None,
        teardown_argv: Sequence[str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.ban_argv = _template(ban_argv, BAN_PLACEHOLDERS, "ban command")
        self.unban_argv = _template(unban_argv, BAN_PLACEHOLDERS, "unban command")
        self.setup_argv = _template(setup_argv, (), "setup command") if setup_argv else None
        self.teardown_argv = (
            _template(teardown_argv, (), "teardown command") if teardown_argv else None
        )
        if not timeout > 0:
            raise EnforcerError(f"command timeout must be positive, not {timeout!r}")
        self.timeout = float(timeout)
        self._jails: dict[str, _Jail] = {}

    # -- Enforcer protocol ---------------------------------------------------------------

    def setup(self, jails: Sequence[JailRule]) -> None:
        specs = {}
        for rule in jails:
            name, numbers = check_jail_rule(rule)
            ports = ",".join(map(str, numbers)) or "all"
            specs[name] = _Jail(name, ports, rule.protocol, allow_networks(rule))
        if self.setup_argv:
            self._run(list(self.setup_argv))
        self._jails = specs

    def reconcile(self, bans: Sequence[Ban], now: float) -> None:
        """Teardown, setup, ban everything still active (see the class docstring)."""
        jobs = self._jobs(bans, now)
        if self.teardown_argv:
            self._run(list(self.teardown_argv))
        else:
            log.warning("command: no teardown command: reconcile can add bans, not remove any")
        if self.setup_argv:
            self._run(list(self.setup_argv))
        self._run_all(self.ban_argv, jobs, "ban")

    def ban(self, bans: Sequence[Ban], now: float) -> None:
        self._run_all(self.ban_argv, self._jobs(bans, now), "ban")

    def unban(self, bans: Sequence[Ban]) -> None:
        self._run_all(self.unban_argv, self._jobs(bans, None), "unban")

    def teardown(self) -> None:
        if self.teardown_argv:
            self._run(list(self.teardown_argv))

    def check(self) -> str | None:
        """Every configured program exists and is executable (nothing is run)."""
        for template in (self.ban_argv, self.unban_argv, self.setup_argv, self.teardown_argv):
            if template and shutil.which(template[0]) is None:
                return f"command {template[0]!r} not found or not executable"
        return None

    # -- helpers -------------------------------------------------------------------------

    def _jobs(self, bans: Sequence[Ban], now: float | None) -> list[dict[str, str]]:
        """Placeholder values per command to run: validated, deduplicated, allow-list applied.

        ``now`` None (unban) keeps expired bans: they still have to be removed.
        """
        longest: dict[tuple[str, str], float] = {}
        for ban, jail, _, network in live_targets(bans, self._jails, now, self.name):
            for piece in allowed_pieces(network, jail.allow):
                key = (jail.name, entry_text(piece))
                longest[key] = max(ban.until, longest.get(key, -math.inf))
        clock = time.time() if now is None else now
        jobs = []
        for (jail_name, text), until in longest.items():
            jail = self._jails[jail_name]
            permanent = math.isinf(until)
            jobs.append(
                {
                    "ip": text,
                    "jail": jail_name,
                    "until": "0" if permanent else str(math.ceil(until)),
                    "seconds": "0" if permanent else str(max(1, math.ceil(until - clock))),
                    "ports": jail.ports,
                    "protocol": jail.protocol,
                }
            )
        return jobs

    def _run_all(self, template: Sequence[str], jobs: list[dict[str, str]], what: str) -> None:
        """Run every job; report all failures together so one bad ban does not hide others."""
        failures = []
        for values in jobs:
            try:
                self._run(_fill(template, values))
            except EnforcerError as error:
                failures.append(f"{values['jail']} {values['ip']}: {error}")
        if failures:
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            raise EnforcerError(f"command: {what} failed for {failures[0]}{more}")
        if jobs:
            log.info("command: %s ran for %d targets", what, len(jobs))

    def _run(self, argv: list[str]) -> None:
        run_argv(argv, timeout=self.timeout)
