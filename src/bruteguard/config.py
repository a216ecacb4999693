"""The one configuration model: TOML file → validated ``Config``; all defaults live here.

A file looks like::

    store = "/var/lib/bruteguard/bruteguard.db"
    enforcers = ["nftables"]

    [defaults]            # applies to every jail
    bantime = "1h"
    ignoreip = ["192.0.2.0/24"]

    [jails.sshd]          # built-in jail: only what differs needs saying
    maxretry = 3

Errors name the file, the key and what is wrong. With no file at all, the built-in defaults
protect sshd.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args

import msgspec

from bruteguard.duration import parse_duration
from bruteguard.errors import ConfigError
from bruteguard.match.signatures import FILTERS

__all__ = [
    "BUILTIN_JAILS",
    "DEFAULT_CONFIG_PATH",
    "RECIDIVE",
    "BlocklistConfig",
    "Config",
    "IdentityConfig",
    "JailConfig",
    "Network",
    "Seconds",
    "check_journalmatch",
    "config_from_dict",
    "load_config",
    "parse_networks",
]

DEFAULT_CONFIG_PATH = Path("/etc/bruteguard/bruteguard.toml")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
EnforcerName = Literal[
    "nftables", "ipset", "iptables", "hosts.deny", "route", "pf", "ipfw", "command", "dry-run"
]


class Seconds(float):
    """A duration in seconds, written in the file as ``90s``/``10m``/``1h``/``7d`` or a number."""


class JailConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One jail, in the words fail2ban users know."""

    name: str = ""
    enabled: bool = True
    filter: str = ""
    backend: Literal["auto", "file", "journal", "stdin"] = "auto"
    logpath: list[str] = []
    journalmatch: list[str] = []
    maxretry: int = 5
    findtime: Seconds = Seconds(600)
    bantime: Seconds = Seconds(3600)
    ignoreip: list[str] = []
    port: list[int | str] = []  # none: every port (a built-in jail names its service's)
    protocol: Literal["tcp", "udp"] = "tcp"
    # sshd's "POSSIBLE BREAK-IN ATTEMPT!" says reverse DNS is broken, not that anyone failed
    # to log in: it counts as this many failures (0: none).
    breakin_weight: int = 0
    # Growing ban times: the n-th ban of one address in this jail lasts
    # bantime * bantime_factor^(n-1), at most maxtime (1: every ban lasts bantime). maxtime
    # unset: a week, or bantime if that is longer.
    bantime_factor: float = 2.0
    maxtime: Seconds = Seconds(0)
    # IPv6 attackers own whole prefixes: failures count per /ipv6_prefix (128: per address).
    ipv6_prefix: int = 64
    # subnet_maxretry addresses of one IPv4 /ipv4_prefix banned within subnet_findtime →
    # the whole prefix is banned (0: never).
    subnet_maxretry: int = 5
    subnet_findtime: Seconds = Seconds(86400)
    ipv4_prefix: int = 24
    # New connections to the jail's ports from one source beyond "HITS/DURATION" (e.g.
    # "4/3m") are dropped by the kernel before the service sees them (nftables).
    ratelimit: str = ""
    # The global ignoreip, copied in when the file is loaded (never written in a jail).
    global_ignoreip: list[str] = []

    def __post_init__(self) -> None:
        if self.maxretry < 1:
            raise ValueError(f"maxretry: must be at least 1, got {self.maxretry}")
        if not 0 <= self.breakin_weight <= 1000:
            raise ValueError(f"breakin_weight: must be 0 to 1000, got {self.breakin_weight}")
        if not 1.0 <= self.bantime_factor <= 100.0:
            raise ValueError(f"bantime_factor: must be 1 to 100, got {self.bantime_factor}")
        if self.maxtime and self.maxtime < self.bantime:
            raise ValueError("maxtime: must be at least bantime")
        if not 16 <= self.ipv6_prefix <= 128:
            raise ValueError(f"ipv6_prefix: must be 16 to 128, got {self.ipv6_prefix}")
        if not 8 <= self.ipv4_prefix <= 32:
            raise ValueError(f"ipv4_prefix: must be 8 to 32, got {self.ipv4_prefix}")
        if self.subnet_maxretry < 0:
            raise ValueError(f"subnet_maxretry: must be 0 or more, got {self.subnet_maxretry}")
        if self.ratelimit:
            _parse_ratelimit(self.ratelimit)
        parse_networks(self.ignoreip, "ignoreip")
        check_journalmatch(self.journalmatch)
        if not self.filter:
            self.filter = self.name

    @property
    def ports(self) -> tuple[int, ...]:
        """Port numbers (service names resolved when the config was loaded)."""
        return tuple(int(p) for p in self.port)

    @property
    def longest_ban(self) -> float:
        """``maxtime``, or its default: a week, or ``bantime`` if that is longer."""
        return float(self.maxtime) if self.maxtime else max(float(self.bantime), 7 * 86400.0)

    @property
    def allow(self) -> tuple[Network, ...]:
        """Networks this jail never blocks, even inside a banned network (``ignoreip``, the
        global list included): what enforcers exempt."""
        return tuple(parse_networks([*self.global_ignoreip, *self.ignoreip]))

    @property
    def from_logs(self) -> bool:
        """False for the recidive jail, which is fed from bruteguard's own bans."""
        return self.filter != RECIDIVE

    @property
    def rate(self) -> tuple[int, float] | None:
        """``ratelimit`` as (hits, seconds), or None."""
        return _parse_ratelimit(self.ratelimit) if self.ratelimit else None


def _parse_ratelimit(text: str) -> tuple[int, float]:
    hits, slash, duration = text.partition("/")
    if not slash or not hits.strip().isdigit() or not 0 < int(hits) <= 1000:
        raise ValueError(f"ratelimit: expected HITS/DURATION like 4/3m, got {text!r}")
    seconds = parse_duration(duration.strip())
    if not 1 <= seconds <= 86400:
        raise ValueError(f"ratelimit: the duration must be 1s to 1d, got {duration!r}")
    return int(hits), seconds


class BlocklistConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A file of addresses and CIDR networks (one per line, ``#`` comments) blocked on every
    port for ``bantime`` from when it is loaded (start, reload, ``bruteguard block``)."""

    path: str
    bantime: Seconds = Seconds(30 * 86400)


class IdentityConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How a failure that names a host (not an address) is tied to a real connection.

    ``nameservers`` empty: the system's resolver. ``firewall_log``: install a kernel rule
    that reports new connections to the jails' ports (nflog ``group``) as evidence beside
    the socket table; ``window``: how long before a line such a connection still counts.
    """

    nameservers: list[str] = []
    dns_port: int = 53
    dns_timeout: Seconds = Seconds(2)
    firewall_log: bool = True
    firewall_log_group: int = 7301
    window: Seconds = Seconds(30)

    def __post_init__(self) -> None:
        for server in self.nameservers:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise ValueError(f"nameservers: {server!r} is not an IP address") from None
        if not 0 < self.dns_port < 65536:
            raise ValueError(f"dns_port: must be 1 to 65535, got {self.dns_port}")
        if not 0 < self.firewall_log_group < 65536:
            raise ValueError(
                f"firewall_log_group: must be 1 to 65535, got {self.firewall_log_group}"
            )
        if self.dns_timeout <= 0 or self.window <= 0:
            raise ValueError("dns_timeout and window: must be positive durations")


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The whole configuration: global settings, jail defaults already applied, jails."""

    store: str = "/var/lib/bruteguard/bruteguard.db"
    socket: str = "/run/bruteguard/control.sock"
    enforcers: list[EnforcerName] = msgspec.field(default_factory=lambda: ["nftables"])
    nftables_table: str = "bruteguard"
    # The other enforcers' own objects (docs/enforcers.md).
    iptables_prefix: str = "bruteguard"
    hostsdeny_path: str = "/etc/hosts.deny"
    hostsdeny_daemons: dict[str, str] = {}  # jail → daemon list (default ALL)
    pf_table_prefix: str = "bruteguard"
    ipfw_table_base: int = 1
    ipfw_tables: dict[str, int] = {}  # jail → table; others from the base, by jail name
    # argv templates: {ip} {jail} {until} {seconds} {ports} {protocol}, never a shell
    command_ban: list[str] = []
    command_unban: list[str] = []
    command_setup: list[str] = []
    command_teardown: list[str] = []
    ignoreip: list[str] = []
    ignoreself: bool = True
    identity: IdentityConfig = msgspec.field(default_factory=IdentityConfig)
    blocklists: dict[str, BlocklistConfig] = {}
    jails: dict[str, JailConfig] = {}
    source_path: str = ""

    def __post_init__(self) -> None:
        parse_networks(self.ignoreip, "ignoreip")

    def enabled_jails(self) -> list[JailConfig]:
        return [jail for jail in self.jails.values() if jail.enabled]

    def log_jails(self) -> list[JailConfig]:
        """Enabled jails that read logs (all but recidive)."""
        return [jail for jail in self.enabled_jails() if jail.from_logs]


# The filter of the jail fed from bruteguard's own bans instead of a log.
RECIDIVE = "recidive"

# Built-in jails: what a jail gets before the file says anything about it.
BUILTIN_JAILS: dict[str, dict[str, Any]] = {
    "sshd": {
        "filter": "sshd",
        "port": ["ssh"],
        "journalmatch": [
            "_SYSTEMD_UNIT=ssh.service",
            "_SYSTEMD_UNIT=sshd.service",
            "_COMM=sshd",
            "_COMM=sshd-session",
        ],
    },
    # Repeat offenders: banned maxretry times (in any jail) within findtime → banned on
    # every port for bantime.
    "recidive": {
        "filter": RECIDIVE,
        "maxretry": 5,
        "findtime": "1d",
        "bantime": "7d",
        "maxtime": "28d",
        "port": [],
    },
}

_JAIL_KEYS = frozenset(JailConfig.__struct_fields__) - {"name", "global_ignoreip"}


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Seconds:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return Seconds(parse_duration(value))
        raise ValueError(f"expected a duration like 90s, 10m, 1h or 7d, got {value!r}")
    raise NotImplementedError(kind)


def parse_networks(texts: list[str], key: str = "ignoreip") -> list[Network]:
    """Addresses and CIDRs as networks; ValueError names the bad entry."""
    networks: list[Network] = []
    for text in texts:
        try:
            network = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{key}: {text!r} is not an IP address or CIDR network") from None
        mapped = network.network_address.ipv4_mapped if network.version == 6 else None
        if mapped is not None and network.prefixlen >= 96:
            # Addresses reach the detector canonical (::ffff:192.0.2.1 is 192.0.2.1), so
            # an ignoreip entry written the mapped way must cover the IPv4 form too.
            network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
        networks.append(network)
    return networks


_JOURNAL_TERM = re.compile(r"\A[A-Z0-9_]+=.*\Z", re.DOTALL)


def check_journalmatch(matches: list[str]) -> None:
    """Each match is ``FIELD=value`` terms (ANDed) and ``+`` (OR), as journalctl takes them."""
    for match in matches:
        for term in match.split():
            if term != "+" and not _JOURNAL_TERM.match(term):
                raise ValueError(f"journalmatch: {term!r} is not FIELD=value")


def _resolve_ports(jail: dict[str, Any], where: str) -> None:
    ports = jail.get("port")
    if ports is None:
        return
    if isinstance(ports, str | int):
        ports = [ports]
    resolved: list[int] = []
    protocol = jail.get("protocol", "tcp")
    for port in ports:
        if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
            resolved.append(port)
        elif isinstance(port, str) and port.isdigit() and 0 < int(port) < 65536:
            resolved.append(int(port))
        elif isinstance(port, str):
            try:
                resolved.append(socket.getservbyname(port, protocol))
            except OSError:
                raise ConfigError(f"{where}.port: unknown service name {port!r}") from None
        else:
            raise ConfigError(f"{where}.port: expected a port number or service name, got {port!r}")
    jail["port"] = resolved


def _unknown(key: str, known: frozenset[str]) -> str:
    """``unknown setting``, with the closest known spelling when there is one."""
    import difflib  # only for a mistyped key

    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f"unknown setting (did you mean {close[0]!r}?)" if close else "unknown setting"


def _jail_table(value: Any, where: str, origin: str) -> dict[str, Any]:
    """A jail's (or ``[defaults]``') own settings, checked for unknown keys, logpath listed."""
    if not isinstance(value, dict):
        raise ConfigError(f"{origin}: {where}: must be a table of jail settings")
    for key in value:
        if key not in _JAIL_KEYS:
            raise ConfigError(f"{origin}: {where}.{key}: {_unknown(key, _JAIL_KEYS)}")
    table = dict(value)
    if isinstance(table.get("logpath"), str):
        table["logpath"] = [table["logpath"]]
    return table


def _jail(settings: dict[str, Any], where: str, origin: str) -> JailConfig:
    """Validate merged settings; errors are reported under ``where`` (``jails.NAME``)."""
    _resolve_ports(settings, f"{origin}: {where}")
    try:
        jail = msgspec.convert(settings, JailConfig, dec_hook=_dec_hook)
    except msgspec.ValidationError as error:
        raise _explain(error, origin, where, JailConfig) from None
    if jail.filter not in FILTERS and jail.filter != RECIDIVE:
        known = ", ".join(sorted(FILTERS))
        raise ConfigError(
            f"{origin}: {where}.filter: unknown filter {jail.filter!r} (built-in filters: {known})"
        )
    return jail


def _jails(raw: dict[str, Any], origin: str) -> dict[str, JailConfig]:
    """Built-in jails, then ``[defaults]``, then each ``[jails.NAME]`` table, in that order.

    ``[defaults]`` is validated on its own first, so a bad default is reported as
    ``defaults.KEY`` rather than under every jail that inherits it.
    """
    defaults = _jail_table(raw.pop("defaults", {}), "defaults", origin)
    if defaults:
        _jail({"filter": "sshd", **defaults, "name": "defaults"}, "defaults", origin)
    tables = raw.pop("jails", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{origin}: jails: must be a table of jails ([jails.NAME])")
    names = list(BUILTIN_JAILS) + [name for name in tables if name not in BUILTIN_JAILS]
    global_ignoreip = raw.get("ignoreip", [])
    if not isinstance(global_ignoreip, list):
        global_ignoreip = []  # reported by the Config check
    jails: dict[str, JailConfig] = {}
    for name in names:
        where = f"jails.{name}"
        own = _jail_table(tables.get(name, {}), where, origin)
        # A built-in jail's own settings beat [defaults] (recidive's week beats a default
        # hour), as jail.conf's do fail2ban's [DEFAULT]; the file's jail table beats both.
        settings = {**defaults, **BUILTIN_JAILS.get(name, {}), **own, "name": name}
        settings["global_ignoreip"] = global_ignoreip
        jails[name] = _jail(settings, where, origin)
    return jails


def _explain(
    error: msgspec.ValidationError, origin: str, prefix: str = "", kind: type = Config
) -> ConfigError:
    """Turn msgspec's ``msg - at `$.a.b``` into ``origin: prefix.a.b: msg``.

    Checks in ``__post_init__`` carry no path; they start their message with the field's
    name (``maxretry: must be …``), which is moved into the key.
    """
    message, _, path = str(error).partition(" - at `$")
    parts = [prefix, path.rstrip("`").lstrip(".")]
    fields = frozenset(kind.__struct_fields__)
    field, colon, rest = message.partition(": ")
    unknown = message.removeprefix("Object contains unknown field `")
    if unknown != message:
        parts.append(unknown.rstrip("`"))
        message = _unknown(parts[-1], fields - {"name", "source_path"})
    elif colon and ((field in fields and not parts[1]) or (parts[1] and field.isidentifier())):
        # a nested table's own check (``identity``) names its field the same way
        parts.append(field)
        message = rest
    key = ".".join(part for part in parts if part)
    message = message[:1].lower() + message[1:]
    return ConfigError(f"{origin}: {key}: {message}" if key else f"{origin}: {message}")


def _check_enforcers(raw: dict[str, Any], origin: str) -> None:
    """Name the unknown enforcer and the ones there are (msgspec would only say "enum")."""
    names = raw.get("enforcers")
    known = get_args(EnforcerName)
    for index, name in enumerate(names if isinstance(names, list) else ()):
        if isinstance(name, str) and name not in known:
            raise ConfigError(
                f"{origin}: enforcers[{index}]: unknown enforcer {name!r} "
                f"(known: {', '.join(sorted(known))})"
            )


def _blocklists(tables: Any, origin: str) -> dict[str, BlocklistConfig]:
    """Each ``[blocklists.NAME]`` validated on its own, so errors name it."""
    if not isinstance(tables, dict):
        raise ConfigError(f"{origin}: blocklists: must be a table of blocklists")
    found: dict[str, BlocklistConfig] = {}
    for name, table in tables.items():
        where = f"blocklists.{name}"
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,15}", name):
            raise ConfigError(
                f"{origin}: {where}: a blocklist name is 1-16 letters, digits or '_',"
                " starting with a letter"
            )
        try:
            found[name] = msgspec.convert(table, BlocklistConfig, dec_hook=_dec_hook)
        except msgspec.ValidationError as error:
            raise _explain(error, origin, where, BlocklistConfig) from None
    return found


def config_from_dict(raw: dict[str, Any], origin: str = "<defaults>") -> Config:
    """Validate a parsed TOML document (or ``{}`` for the defaults)."""
    raw = dict(raw)
    jails = _jails(raw, origin)
    blocklists = _blocklists(raw.pop("blocklists", {}), origin)
    _check_enforcers(raw, origin)
    if "source_path" in raw:  # set from where the file was read, never written in it
        raise ConfigError(f"{origin}: source_path: unknown setting")
    try:
        config = msgspec.convert(raw, Config, dec_hook=_dec_hook)
    except msgspec.ValidationError as error:
        raise _explain(error, origin) from None
    config.jails = jails
    config.blocklists = blocklists
    config.source_path = origin
    return config


def load_config(path: str | Path | None = None) -> Config:
    """Load ``path`` (or the default file); with no file at all, the built-in defaults.

    An explicitly named file that does not exist is an error; the default file may be absent.
    """
    explicit = path is not None
    file = Path(path) if explicit else DEFAULT_CONFIG_PATH
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{file}: no such configuration file") from None
        return config_from_dict({})
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{file}: cannot read: {error}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{file}: not valid TOML: {error}") from None
    return config_from_dict(raw, str(file))
