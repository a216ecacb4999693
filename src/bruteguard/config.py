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
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

from bruteguard.duration import parse_duration
from bruteguard.errors import ConfigError

__all__ = [
    "BUILTIN_JAILS",
    "DEFAULT_CONFIG_PATH",
    "Config",
    "JailConfig",
    "Network",
    "Seconds",
    "config_from_dict",
    "load_config",
    "parse_networks",
]

DEFAULT_CONFIG_PATH = Path("/etc/bruteguard/bruteguard.toml")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    port: list[int | str] = msgspec.field(default_factory=lambda: ["ssh"])
    protocol: Literal["tcp", "udp"] = "tcp"

    def __post_init__(self) -> None:
        if self.maxretry < 1:
            raise ValueError("maxretry: must be at least 1")
        parse_networks(self.ignoreip, "ignoreip")
        if not self.filter:
            self.filter = self.name

    @property
    def ports(self) -> tuple[int, ...]:
        """Port numbers (service names resolved when the config was loaded)."""
        return tuple(int(p) for p in self.port)


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The whole configuration: global settings, jail defaults already applied, jails."""

    store: str = "/var/lib/bruteguard/bruteguard.db"
    socket: str = "/run/bruteguard/control.sock"
    enforcers: list[Literal["nftables", "dry-run"]] = msgspec.field(
        default_factory=lambda: ["nftables"]
    )
    nftables_table: str = "bruteguard"
    ignoreip: list[str] = []
    ignoreself: bool = True
    jails: dict[str, JailConfig] = {}
    source_path: str = ""

    def __post_init__(self) -> None:
        parse_networks(self.ignoreip, "ignoreip")

    def enabled_jails(self) -> list[JailConfig]:
        return [jail for jail in self.jails.values() if jail.enabled]


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
}

_JAIL_KEYS = frozenset(JailConfig.__struct_fields__) - {"name"}


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
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{key}: {text!r} is not an IP address or CIDR network") from None
    return networks


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


def _merge_jails(raw: dict[str, Any], origin: str) -> dict[str, Any]:
    defaults = raw.pop("defaults", {}) or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{origin}: [defaults] must be a table of jail settings")
    unknown = set(defaults) - _JAIL_KEYS
    if unknown:
        raise ConfigError(f"{origin}: defaults.{sorted(unknown)[0]}: unknown jail setting")
    jails = raw.get("jails", {}) or {}
    if not isinstance(jails, dict):
        raise ConfigError(f"{origin}: [jails] must be a table of jails")
    names = list(BUILTIN_JAILS) + [name for name in jails if name not in BUILTIN_JAILS]
    merged: dict[str, Any] = {}
    for name in names:
        own = jails.get(name, {})
        if not isinstance(own, dict):
            raise ConfigError(f"{origin}: jails.{name} must be a table")
        jail = {**BUILTIN_JAILS.get(name, {}), **defaults, **own, "name": name}
        if isinstance(jail.get("logpath"), str):
            jail["logpath"] = [jail["logpath"]]
        _resolve_ports(jail, f"{origin}: jails.{name}")
        merged[name] = jail
    raw["jails"] = merged
    return raw


def _explain(error: msgspec.ValidationError, origin: str, prefix: str = "") -> ConfigError:
    """Turn msgspec's ``msg - at `$.a.b``` into ``origin: prefix.a.b: msg``."""
    message, _, path = str(error).partition(" - at `$")
    key = ".".join(part for part in (prefix, path.rstrip("`").lstrip(".")) if part)
    message = message.replace("Object contains unknown field", "unknown setting")
    message = message[:1].lower() + message[1:]
    return ConfigError(f"{origin}: {key}: {message}" if key else f"{origin}: {message}")


def config_from_dict(raw: dict[str, Any], origin: str = "<defaults>") -> Config:
    """Validate a parsed TOML document (or ``{}`` for the defaults)."""
    merged = _merge_jails(dict(raw), origin)
    jails: dict[str, JailConfig] = {}
    for name, jail in merged.pop("jails").items():
        try:
            jails[name] = msgspec.convert(jail, JailConfig, dec_hook=_dec_hook)
        except msgspec.ValidationError as error:
            raise _explain(error, origin, f"jails.{name}") from None
    try:
        config = msgspec.convert(merged, Config, dec_hook=_dec_hook)
    except msgspec.ValidationError as error:
        raise _explain(error, origin) from None
    config.jails = jails
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
