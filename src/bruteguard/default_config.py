"""The default configuration file, every setting commented out, as fail2ban's jail.conf.

Generated from the config model's own defaults and ``BUILTIN_JAILS`` (never written by
hand), so it cannot drift from what bruteguard does with no file at all. A setting line is
``#key = value`` and a table line ``#[table]``: removing the ``#`` gives valid TOML that
means exactly the defaults. Explanations start with ``# `` (or are a bare ``#``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from bruteguard.config import (
    AUTO,
    BUILTIN_JAILS,
    INSTALLED,
    AbuseConfig,
    Config,
    IdentityConfig,
    JailConfig,
    LookupConfig,
    MetricsConfig,
    NotifyConfig,
    ReportConfig,
    SmtpConfig,
    StoreConfig,
)
from bruteguard.dashboard.config import DashboardConfig
from bruteguard.duration import Seconds, SecondsOrNever, format_duration

__all__ = ["commented_defaults"]

_HEADER = """\
# bruteguard configuration, written by `bruteguard install` (README.md, docs/).
#
# Every setting below is commented out and shows its built-in default: this file as
# written changes nothing. To change a setting, remove the '#' before it and before its
# [table] line. A jail's own settings beat [defaults]; durations are 90s, 10m, 1h, 7d.
# `bruteguard doctor` checks the result.
"""

# Tables of the file, in order, with what they hold. Blocklists and the abuse mailbox have
# no default: they are shown as explained examples.
_TABLES: list[tuple[str, type[msgspec.Struct], str]] = [
    ("store", StoreConfig, "The ledger (docs/store.md): where it is, what it keeps how long."),
    ("identity", IdentityConfig, "How a failure naming a host is tied to a real connection."),
    ("notify", NotifyConfig, "Messages to the admin (apprise URLs; the `notify` extra)."),
    ("abuse", AbuseConfig, "The abuse desk (docs/abuse.md): off unless enabled."),
    (
        "metrics",
        MetricsConfig,
        "Prometheus /metrics (docs/metrics.md): off unless listen is set, loopback unless public.",
    ),
    (
        "report",
        ReportConfig,
        "Your MaxMind files for report --html's countries and ASes (docs/report.md).",
    ),
    ("dashboard", DashboardConfig, "`bruteguard dashboard` (docs/dashboard.md): the web UI."),
]
_NESTED = {"smtp", "lookup", "mailbox"}  # AbuseConfig's own tables
_TOP_TABLES = {
    "store",
    "store_settings",
    "identity",
    "notify",
    "abuse",
    "metrics",
    "report",
    "blocklists",
    "fleet",
    "knock",
    "dashboard",
    "jails",
    "source_path",
}
# Jail settings that belong to one jail, not to [defaults].
_PER_JAIL = ("enabled", "filter", "logpath", "journalmatch", "port")
_NOT_WRITTEN = {"name", "global_ignoreip"}

# Settings whose default cannot be written as a value ("not set"): said in words instead.
_UNSET = {
    "maxtime": "maxtime: unset, a ban grows to a week (or bantime if longer)",
}

_BARE_KEY = re.compile(r"\A[A-Za-z0-9_-]+\Z")


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name)


def _value(value: Any) -> str:
    """One TOML value. A JSON string (ASCII escapes) is also a valid TOML basic string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Seconds):
        return json.dumps(format_duration(value)) if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML spelling for {type(value).__name__}")


def _setting(name: str, value: Any) -> str:
    if isinstance(value, Seconds) and not value and not isinstance(value, SecondsOrNever):
        return f"# {_UNSET[name]}"
    return f"#{_key(name)} = {_value(value)}"


def _defaults_of(kind: type[msgspec.Struct]) -> dict[str, Any]:
    """A struct's fields and their default values, in declaration order."""
    found: dict[str, Any] = {}
    for field in msgspec.structs.fields(kind):
        if field.default is not msgspec.NODEFAULT:
            found[field.name] = field.default
        elif field.default_factory is not msgspec.NODEFAULT:
            found[field.name] = field.default_factory()
    return found


def _table(name: str, values: dict[str, Any], about: str) -> list[str]:
    lines = ["", f"# {about}", f"#[{name}]"]
    lines += [_setting(key, value) for key, value in values.items()]
    return lines


def _jail_lines(name: str, builtin: dict[str, Any]) -> list[str]:
    enabled = builtin.get("enabled", True)
    when = {
        AUTO: "on where its log (or the service) is on this host",
        True: "on",
        False: "off until enabled",
    }[enabled]
    lines = ["", f"# jail {name}: {when}", f"#[jails.{_key(name)}]"]
    lines.append(_setting("enabled", enabled))
    lines += [
        _setting(key, value) for key, value in builtin.items() if key not in ("enabled", INSTALLED)
    ]
    return lines


def commented_defaults() -> str:
    """The whole default file: every global setting, table, default and built-in jail."""
    top = _defaults_of(Config)
    lines = [_HEADER.rstrip("\n"), "", "# Global settings (before any [table])."]
    lines += [_setting(key, value) for key, value in top.items() if key not in _TOP_TABLES]
    for name, kind, about in _TABLES:
        values = _defaults_of(kind)
        lines += _table(name, {k: v for k, v in values.items() if k not in _NESTED}, about)
        if kind is AbuseConfig:
            lines += _table("abuse.smtp", _defaults_of(SmtpConfig), "Its mail relay.")
            lines += _table("abuse.lookup", _defaults_of(LookupConfig), "Its RDAP/whois lookups.")
            lines += [
                "",
                "# Where replies and bounces arrive (none by default), e.g.:",
                '#   [abuse.mailbox]  kind = "maildir"  path = "/var/mail/abuse/"',
            ]
    lines += [
        "",
        "# fleet: none, this host alone on its ledger. Hosts sharing bans through one",
        "# PostgreSQL (docs/fleet.md; the `fleet` extra), e.g.:",
        '#   [fleet]  dsn = "host=db.example.org dbname=bruteguard user=web1 sslmode=verify-full"',
        '#            password_file = "/etc/bruteguard/fleet.password"',
        "# knock: none, no jail closed behind a knock. One signed UDP packet opening sshd",
        "# for its sender (docs/knock.md; `bruteguard knock --new-key` makes the key), e.g.:",
        '#   [knock]  key_file = "/etc/bruteguard/knock.key"',
        '#            open_for = "30s"',
        "#   and in [jails.sshd]: knock = true",
    ]
    lines += [
        "",
        "# Blocklists (none by default): files of addresses and networks blocked on every",
        "# port, e.g.:",
        '#   [blocklists.drop]  path = "/etc/bruteguard/drop.txt"  bantime = "30d"',
    ]
    jail_defaults = {
        key: value
        for key, value in _defaults_of(JailConfig).items()
        if key not in _PER_JAIL and key not in _NOT_WRITTEN
    }
    lines += _table("defaults", jail_defaults, "Every jail's settings unless it says otherwise.")
    lines += [
        "",
        "# Built-in jails: only what differs from [defaults]. A jail of your own is a",
        '# [jails.NAME] table with at least filter = "..." (or "fail2ban:NAME") and logpath.',
    ]
    for name, builtin in BUILTIN_JAILS.items():
        lines += _jail_lines(name, builtin)
    return "\n".join(lines) + "\n"
