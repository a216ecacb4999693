"""Loading: a TOML file (or nothing) → the checked ``Config``, with errors that name the
file, the key and what is wrong."""

from __future__ import annotations

import glob
import os
import re
import socket
from pathlib import Path
from typing import Any, get_args

import msgspec

from bruteguard.allow import split_allow
from bruteguard.bounds import check_absolute
from bruteguard.config import root
from bruteguard.config.builtin import AUTO, BUILTIN_JAILS, INSTALLED
from bruteguard.config.jail import RECIDIVE, JailConfig
from bruteguard.config.root import NO_FILE, Config, EnforcerName
from bruteguard.config.sections import DEFAULT_STORE, BlocklistConfig
from bruteguard.duration import Seconds, SecondsOrNever, parse_duration
from bruteguard.enforce.names import NAME_FORM, is_safe_name
from bruteguard.errors import BruteguardError, ConfigError
from bruteguard.match.imported import FAIL2BAN_PREFIX, imported_filter, is_imported
from bruteguard.match.signatures import FILTERS
from bruteguard.model import Network

__all__ = ["config_from_dict", "load_config"]

_JAIL_KEYS = frozenset(JailConfig.__struct_fields__) - {"name", "global_ignoreip"}


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is SecondsOrNever:
        zero = isinstance(value, str) and re.fullmatch(r"0+(?:\.0*)?[smhdw]?", value.strip())
        if (value == 0 and not isinstance(value, bool)) or zero:
            return SecondsOrNever(0)
        return SecondsOrNever(_dec_hook(Seconds, value))
    if kind is Seconds:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return Seconds(parse_duration(value))
        raise ValueError(f"expected a duration like 90s, 10m, 1h or 7d, got {value!r}")
    raise NotImplementedError(kind)


def _networks_only(texts: list[Any]) -> list[Network]:
    """The networks of a global ``ignoreip`` (bad entries are the Config check's to report)."""
    try:
        return split_allow(texts)[0]
    except (ValueError, AttributeError, TypeError):
        return []


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


# Settings a release removed, and what to do instead.
_REMOVED = {
    "identity.firewall_log": "removed: connections are read from conntrack (identity.conntrack)",
    "identity.firewall_log_group": "removed: no nflog group is used any more; delete it",
    "identity.window": "removed: each service's own logging delay is used; delete it",
}


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
    if is_imported(jail.filter):
        name = jail.filter.removeprefix(FAIL2BAN_PREFIX).partition("[")[0].strip()
        if "/" in name or name.endswith((".conf", ".local")):  # a file, not a filter's name
            try:
                check_absolute("filter", os.path.expanduser(name))
            except ValueError as error:
                raise ConfigError(f"{origin}: {where}.{error}") from None
        try:
            imported = imported_filter(jail.filter)
        except (BruteguardError, OSError) as error:
            raise ConfigError(f"{origin}: {where}.filter: {error}") from None
        if not jail.journalmatch and imported.journalmatch:
            jail.journalmatch = [" ".join(imported.journalmatch)]  # "+": or
    elif jail.filter not in FILTERS and jail.filter != RECIDIVE:
        known = ", ".join(sorted(FILTERS))
        raise ConfigError(
            f"{origin}: {where}.filter: unknown filter {jail.filter!r} (built-in filters:"
            f' {known}; a fail2ban filter is "fail2ban:NAME" or a path)'
        )
    return jail


def _log_exists(logpath: list[str]) -> bool:
    """Whether any of a jail's log files (or glob patterns) is on this host now, as a file:
    a directory of that name is neither a log nor proof that its service is installed."""
    return any(
        os.path.isfile(found)
        for path in logpath
        for found in (glob.glob(path) if glob.has_magic(path) else [path])
    )


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
        _check_jail_name(name, origin)
        own = _jail_table(tables.get(name, {}), where, origin)
        # A built-in jail's own settings beat [defaults] (recidive's week beats a default
        # hour), as jail.conf's do fail2ban's [DEFAULT]; the file's jail table beats both.
        settings = {**defaults, **BUILTIN_JAILS.get(name, {}), **own, "name": name}
        # Names are the daemon's to resolve: a jail's own list holds networks only.
        settings["global_ignoreip"] = [str(n) for n in _networks_only(global_ignoreip)]
        # Where a built-in jail's log is not a file of its own (pure-ftpd writes to syslog):
        # the files that show the service is installed.
        installed = settings.pop(INSTALLED, None)
        if settings.get("enabled") == AUTO:
            # A service's built-in jail runs where the service's log is (checked at load:
            # a reload picks up a service installed since).
            logpath = settings.get("logpath", [])
            logpath = [logpath] if isinstance(logpath, str) else logpath
            # The built-in logpath written out again (the default file does) is no change.
            builtin_log = BUILTIN_JAILS.get(name, {}).get("logpath")
            own_log = own.get("logpath") not in (None, [], builtin_log)
            settings["enabled"] = _log_exists(installed if installed and not own_log else logpath)
        jails[name] = _jail(settings, where, origin)
    return jails


def _check_jail_name(name: str, origin: str) -> None:
    """A jail's name becomes part of firewall object names (nftables sets ``NAME_v4``,
    ``NAME_v6n64``, …; ipset, iptables chains, pf tables), so it is checked when the file is
    loaded, not first when the firewall is set up."""
    if not is_safe_name(name):
        raise ConfigError(
            f"{origin}: jails.{name!r}: a jail name is {NAME_FORM} (it names the jail's"
            " firewall sets)"
        )


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
        dotted = ".".join(part for part in parts if part)
        message = _REMOVED.get(dotted) or _unknown(
            parts[-1], fields - {"name", "source_path", "store_settings"}
        )
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


def _check_abuse(config: Config, origin: str) -> None:
    """What the abuse desk needs from the rest of the file: real addresses to sign with and
    a jail to hold its network blocks."""
    abuse = config.abuse
    if not abuse.enabled:
        return
    # Only here: the e-mail modules cost a replay (the desk off) a tenth of its start-up.
    from bruteguard.abuse.complaint import UnsafeHeader, check_header_text, check_mailbox

    try:
        check_mailbox(abuse.sender, "sender")
        if abuse.contact:
            check_mailbox(abuse.contact, "contact")
        check_header_text(abuse.org, "org")
    except UnsafeHeader as error:
        raise ConfigError(f"{origin}: abuse: {error}") from None
    block_jail = config.jails.get(abuse.block_jail)
    if block_jail is None or not block_jail.enabled:
        raise ConfigError(
            f"{origin}: abuse.block_jail: {abuse.block_jail!r} is not an enabled jail"
            " (the desk's network blocks go into its firewall set)"
        )
    mailbox = abuse.mailbox
    if mailbox is not None and mailbox.kind != "imap" and not mailbox.path:
        raise ConfigError(f"{origin}: abuse.mailbox.path: a {mailbox.kind} needs its path")
    if mailbox is not None and mailbox.kind == "imap" and not mailbox.host:
        raise ConfigError(f"{origin}: abuse.mailbox.host: an IMAP mailbox needs its host")


def config_from_dict(raw: dict[str, Any], origin: str = NO_FILE) -> Config:
    """Validate a parsed TOML document (or ``{}`` for the defaults)."""
    raw = dict(raw)
    jails = _jails(raw, origin)
    blocklists = _blocklists(raw.pop("blocklists", {}), origin)
    _check_enforcers(raw, origin)
    for derived in ("source_path", "store_settings"):  # set here, never written in a file
        if derived in raw:
            raise ConfigError(f"{origin}: {derived}: unknown setting")
    if isinstance(raw.get("store"), dict):  # [store] path, keep_failures, …
        raw["store_settings"] = raw["store"]
        raw["store"] = raw["store"].get("path", DEFAULT_STORE)
    try:
        config = msgspec.convert(raw, Config, dec_hook=_dec_hook)
    except msgspec.ValidationError as error:
        explained = str(_explain(error, origin))  # [store] is read as store_settings
        raise ConfigError(explained.replace(": store_settings.", ": store.", 1)) from None
    config.store_settings.path = config.store
    config.jails = jails
    config.blocklists = blocklists
    _check_abuse(config, origin)
    _check_knock(config, origin)
    config.source_path = origin
    return config


def _check_knock(config: Config, origin: str) -> None:
    """A jail behind a knock needs ``[knock]``, its own ports, and nftables (whose sets
    time the knocks out)."""
    for jail in config.enabled_jails():
        if not jail.knock:
            continue
        where = f"{origin}: jails.{jail.name}.knock"
        if config.knock is None:
            raise ConfigError(f"{where}: needs a [knock] section (key_file, port, open_for)")
        if not jail.ports:
            raise ConfigError(f"{where}: the jail has no ports to close")
        if "nftables" not in config.enforcers:
            raise ConfigError(f"{where}: only the nftables enforcer can open a port for a knock")


def load_config(path: str | Path | None = None) -> Config:
    """Load ``path`` (or the default file); with no file at all, the built-in defaults.

    An explicitly named file that does not exist is an error; the default file may be absent.
    """
    explicit = path is not None
    file = Path(path) if explicit else root.DEFAULT_CONFIG_PATH  # read now: tests move it
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{file}: no such configuration file") from None
        return config_from_dict({})
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{file}: cannot read: {error}") from None
    import tomllib  # only when there is a file: a scan on the defaults does not parse TOML

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{file}: not valid TOML: {error}") from None
    return config_from_dict(raw, str(file))
