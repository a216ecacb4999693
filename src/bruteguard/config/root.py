"""The whole configuration: its global settings and every section's model, in one struct."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec

from bruteguard.allow import split_allow
from bruteguard.bounds import (
    MAX_IPFW_TABLE,
    MAX_WINDOW,
    check_absolute,
    check_duration,
    check_range,
)
from bruteguard.config.abuse_desk import AbuseConfig
from bruteguard.config.jail import JailConfig
from bruteguard.config.sections import (
    DEFAULT_STORE,
    BlocklistConfig,
    IdentityConfig,
    MetricsConfig,
    NotifyConfig,
    ReportConfig,
    StoreConfig,
)
from bruteguard.dashboard.config import DashboardConfig
from bruteguard.duration import Seconds
from bruteguard.fleet.config import FleetConfig
from bruteguard.knock.config import KnockConfig
from bruteguard.model import Network

__all__ = ["DEFAULT_CONFIG_PATH", "NO_FILE", "Config", "EnforcerName"]

DEFAULT_CONFIG_PATH = Path("/etc/bruteguard/bruteguard.toml")

NO_FILE = "<defaults>"  # the origin of a configuration no file was read for

EnforcerName = Literal[
    "nftables", "ipset", "iptables", "hosts.deny", "route", "pf", "ipfw", "command", "dry-run"
]


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The whole configuration: global settings, jail defaults already applied, jails.

    ``store`` is the ledger's path, written ``store = "PATH"`` or as ``[store] path``;
    ``store_settings`` holds the whole ``[store]`` table (retention).
    """

    store: str = DEFAULT_STORE
    store_settings: StoreConfig = msgspec.field(default_factory=StoreConfig)
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
    # Allow list (docs/allow.md): addresses, CIDRs and DNS names; files of addresses; the
    # admins' own SSH client addresses; names, files and sessions read every allow_refresh.
    ignoreip: list[str] = []
    ignoreip_file: list[str] = []
    allow_admin: bool = True
    allow_refresh: Seconds = Seconds(300)
    ignoreself: bool = True
    knock: KnockConfig | None = None
    identity: IdentityConfig = msgspec.field(default_factory=IdentityConfig)
    blocklists: dict[str, BlocklistConfig] = {}
    abuse: AbuseConfig = msgspec.field(default_factory=AbuseConfig)
    notify: NotifyConfig = msgspec.field(default_factory=NotifyConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    report: ReportConfig = msgspec.field(default_factory=ReportConfig)
    fleet: FleetConfig | None = None  # none: one host alone on its SQLite ledger
    dashboard: DashboardConfig = msgspec.field(default_factory=DashboardConfig)
    jails: dict[str, JailConfig] = {}
    source_path: str = ""

    def __post_init__(self) -> None:
        split_allow(self.ignoreip, "ignoreip")
        for path in self.ignoreip_file:
            check_absolute("ignoreip_file", path)
        check_duration("allow_refresh", self.allow_refresh, MAX_WINDOW)
        check_absolute("store", self.store)
        check_absolute("socket", self.socket)
        check_absolute("hostsdeny_path", self.hostsdeny_path)
        check_range("ipfw_table_base", self.ipfw_table_base, 0, MAX_IPFW_TABLE)
        for jail, table in self.ipfw_tables.items():
            check_range(f"ipfw_tables.{jail}", table, 0, MAX_IPFW_TABLE)

    @property
    def read_from(self) -> str:
        """Where these settings came from, for a message: the file, or plainly none."""
        if self.source_path in ("", NO_FILE):
            return "built-in defaults: no configuration file was read"
        return self.source_path

    def where_to_set(self, setting: str) -> str:
        """How to change ``setting``: in the file read, or in the file to write."""
        if self.source_path in ("", NO_FILE):
            return (
                f"no configuration file was read (built-in defaults): write {setting} to"
                f" {DEFAULT_CONFIG_PATH} (or a file given with --config)"
            )
        return f"set {setting} in {self.source_path}"

    @property
    def ignore_networks(self) -> list[Network]:
        """The global ``ignoreip``'s addresses and networks (its DNS names left out: they
        are resolved by the daemon's allow list, ``bruteguard.allow``)."""
        return split_allow(self.ignoreip)[0]

    def enabled_jails(self) -> list[JailConfig]:
        return [jail for jail in self.jails.values() if jail.enabled]

    def log_jails(self) -> list[JailConfig]:
        """Enabled jails that read logs (all but recidive)."""
        return [jail for jail in self.enabled_jails() if jail.from_logs]
