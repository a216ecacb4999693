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

import glob
import ipaddress
import os
import re
import socket
from pathlib import Path
from typing import Any, Literal, get_args

import msgspec

from bruteguard.abuse.national_servers import NATIONAL_WHOIS
from bruteguard.allow import as_network, split_allow
from bruteguard.bounds import (
    MAX_BAN,
    MAX_COUNT,
    MAX_IPFW_TABLE,
    MAX_NETWORK_WAIT,
    MAX_PORT,
    MAX_WINDOW,
    check_absolute,
    check_duration,
    check_range,
    split_listen,
)
from bruteguard.dashboard.config import DashboardConfig
from bruteguard.duration import Seconds, SecondsOrNever, parse_duration
from bruteguard.enforce.names import NAME_FORM, is_safe_name
from bruteguard.errors import BruteguardError, ConfigError
from bruteguard.fleet.config import FleetConfig
from bruteguard.knock.config import KnockConfig
from bruteguard.match.imported import FAIL2BAN_PREFIX, imported_filter, is_imported
from bruteguard.match.signatures import FILTERS
from bruteguard.model import Network

__all__ = [
    "AUTO",
    "BUILTIN_JAILS",
    "DEFAULT_CONFIG_PATH",
    "INSTALLED",
    "RECIDIVE",
    "RECIDIVE_JAIL",
    "AbuseConfig",
    "BlocklistConfig",
    "Config",
    "IdentityConfig",
    "JailConfig",
    "LookupConfig",
    "MailboxSettings",
    "Network",
    "NotifyConfig",
    "Seconds",
    "SmtpConfig",
    "StoreConfig",
    "check_journalmatch",
    "config_from_dict",
    "load_config",
    "parse_networks",
]

DEFAULT_CONFIG_PATH = Path("/etc/bruteguard/bruteguard.toml")
DEFAULT_STORE = "/var/lib/bruteguard/bruteguard.db"
_NO_FILE = "<defaults>"  # the origin of a configuration no file was read for

EnforcerName = Literal[
    "nftables", "ipset", "iptables", "hosts.deny", "route", "pf", "ipfw", "command", "dry-run"
]


# The filter of the jail fed from bruteguard's own bans instead of a log, and its jail.
RECIDIVE = "recidive"
RECIDIVE_JAIL = "recidive"


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
    # The abuse desk for this jail's bans: "" follows [abuse] mode; "off", "draft", "send".
    abuse: Literal["", "off", "draft", "send"] = ""
    # Fleet-wide thresholds (docs/fleet.md; 0: off): an address whose failures on all the
    # fleet's hosts within fleet_findtime reach fleet_maxretry, or come from fleet_hosts
    # hosts, is banned fleet-wide by the leader.
    fleet_maxretry: int = 0
    fleet_findtime: Seconds = Seconds(3600)
    fleet_hosts: int = 0
    # Closed to all but the allow list and those who knocked ([knock], docs/knock.md).
    knock: bool = False
    # The global ignoreip, copied in when the file is loaded (never written in a jail).
    global_ignoreip: list[str] = []

    def __post_init__(self) -> None:
        check_range("maxretry", self.maxretry, 1, MAX_COUNT)
        check_duration("findtime", self.findtime, MAX_WINDOW)
        check_duration("bantime", self.bantime, MAX_BAN)
        check_duration("maxtime", self.maxtime, MAX_BAN, zero=True)
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
        check_range("subnet_maxretry", self.subnet_maxretry, 0, MAX_COUNT)
        check_duration("subnet_findtime", self.subnet_findtime, MAX_WINDOW)
        check_range("fleet_maxretry", self.fleet_maxretry, 0, MAX_COUNT)
        check_duration("fleet_findtime", self.fleet_findtime, MAX_WINDOW)
        check_range("fleet_hosts", self.fleet_hosts, 0, MAX_COUNT)
        for path in self.logpath:
            check_absolute("logpath", path)
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

    def __post_init__(self) -> None:
        check_absolute("path", self.path)
        check_duration("bantime", self.bantime, MAX_BAN)


class IdentityConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How a failure that names a host (not an address) is tied to a real connection.

    ``nameservers`` empty: the system's resolver, the one the services ask (docs/identity.md
    says why that matters). ``conntrack``: read the kernel's connection tracking events for
    the jails' ports (and install the ``inet bruteguard_conntrack`` rule that switches
    tracking on); off, named failures are never attributed.
    """

    nameservers: list[str] = []
    dns_port: int = 53
    dns_timeout: Seconds = Seconds(2)
    conntrack: bool = True

    def __post_init__(self) -> None:
        for server in self.nameservers:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise ValueError(f"nameservers: {server!r} is not an IP address") from None
        check_range("dns_port", self.dns_port, 1, MAX_PORT)
        if not 0 < self.dns_timeout <= 30:
            raise ValueError("dns_timeout: must be a positive duration of at most 30s")


class SmtpConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The relay complaints leave by (``abuse.smtp.Relay``); a password only over STARTTLS.

    ``password_file`` keeps the secret out of a file many people may read.
    """

    host: str = "localhost"
    port: int = 25
    starttls: Literal["required", "optional", "off"] = "required"
    username: str = ""
    password: str = ""
    password_file: str = ""
    timeout: Seconds = Seconds(30)

    def __post_init__(self) -> None:
        check_range("port", self.port, 1, MAX_PORT)
        check_absolute("password_file", self.password_file)
        if self.password and self.password_file:
            raise ValueError("password: give password or password_file, not both")
        if (self.password or self.password_file) and not self.username:
            raise ValueError("username: a password needs a username")
        if self.username and self.starttls == "off":
            raise ValueError("starttls: a password is never sent without STARTTLS")
        check_duration("timeout", self.timeout, MAX_NETWORK_WAIT)


class LookupConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where abuse-contact lookups go (``abuse.lookup.Servers``) and how long answers count.

    ``rdap``: registry → RDAP base URL; ``whois``: registry → ``host:port``, overriding
    the registries' own servers (tests, or a local mirror).
    """

    bootstrap: str = "https://data.iana.org/rdap/"
    rdap: dict[str, str] = {}
    whois: dict[str, str] = {}
    timeout: Seconds = Seconds(10)
    deadline: Seconds = Seconds(30)
    cache: Seconds = Seconds(7 * 86400)  # a registry's answer
    cache_fallback: Seconds = Seconds(86400)  # an RFC 2142 guess or "no contact"
    cache_failure: Seconds = Seconds(3600)  # nothing learnt at all (network trouble)

    def __post_init__(self) -> None:
        registries = {"ARIN", "RIPE", "APNIC", "LACNIC", "AFRINIC"}
        national = set(NATIONAL_WHOIS)  # whois only: APNIC/LACNIC refer there
        for key in (*self.rdap, *self.whois):
            if key not in registries | (national if key in self.whois else set()):
                raise ValueError(f"rdap/whois: unknown registry {key!r} (one of ARIN, RIPE, ...)")
        for registry, endpoint in self.whois.items():
            host, colon, port = endpoint.rpartition(":")
            if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"whois: the entry {registry} = {endpoint!r} is not host:port")
        check_duration("timeout", self.timeout, MAX_NETWORK_WAIT)
        check_duration("deadline", self.deadline, MAX_NETWORK_WAIT)
        check_duration("cache", self.cache, MAX_WINDOW)
        check_duration("cache_fallback", self.cache_fallback, MAX_WINDOW)
        check_duration("cache_failure", self.cache_failure, MAX_WINDOW)


class MailboxSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where replies and bounces to complaints arrive (``abuse.mailbox``)."""

    kind: Literal["maildir", "mbox", "imap"]
    path: str = ""
    host: str = ""
    port: int = 993
    tls: Literal["implicit", "starttls", "off"] = "implicit"
    username: str = ""
    password: str = ""
    password_file: str = ""
    folder: str = "INBOX"

    def __post_init__(self) -> None:
        check_range("port", self.port, 1, MAX_PORT)
        check_absolute("path", self.path)
        check_absolute("password_file", self.password_file)


class AbuseConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The abuse desk (docs/abuse.md): report banned addresses to their network's abuse
    contact, read what comes back, escalate against networks nobody answers for.

    ``mode`` "draft" writes each complaint to its case for ``bruteguard abuse show`` and
    ``abuse send``; "send" mails it. A jail's own ``abuse`` setting beats ``mode``.
    """

    enabled: bool = False
    mode: Literal["draft", "send"] = "draft"
    sender: str = ""
    org: str = ""
    contact: str = ""
    phone: str = ""
    name: str = ""
    # One complaint per address per period; a contact hears from us at most once a period.
    period: Seconds = Seconds(86400)
    # How long a new case collects further addresses of the same contact before it is sent.
    hold: SecondsOrNever = SecondsOrNever(600)
    # The jail whose (every-port) set holds the desk's network blocks.
    block_jail: str = RECIDIVE_JAIL
    dead_contact_block: SecondsOrNever = SecondsOrNever(
        30 * 86400
    )  # 0: never block for a dead contact
    # A first full-mailbox bounce: no complaint to that contact this long, nothing blocked.
    mailbox_full_pause: SecondsOrNever = SecondsOrNever(30 * 86400)
    call_first: list[str] = msgspec.field(default_factory=lambda: ["US", "CA"])
    postmaster_notice: bool = True
    # A network block never spans more than this; wider registry ranges are cut to the
    # prefix of this size around the address.
    largest_block_ipv4: int = 16
    largest_block_ipv6: int = 32
    poll_interval: Seconds = Seconds(300)
    smtp: SmtpConfig = msgspec.field(default_factory=SmtpConfig)
    lookup: LookupConfig = msgspec.field(default_factory=LookupConfig)
    mailbox: MailboxSettings | None = None

    def __post_init__(self) -> None:
        if self.enabled and (not self.sender or not self.org):
            raise ValueError("sender: the abuse desk needs sender and org to sign complaints")
        for country in self.call_first:
            if not re.fullmatch(r"[A-Z]{2}", country):
                raise ValueError(f"call_first: {country!r} is not an ISO country code like US")
        if not 8 <= self.largest_block_ipv4 <= 32 or not 16 <= self.largest_block_ipv6 <= 128:
            raise ValueError("largest_block_ipv4: must be 8 to 32 (largest_block_ipv6: 16 to 128)")
        check_duration("period", self.period, MAX_WINDOW)
        check_duration("poll_interval", self.poll_interval, 86400)
        check_duration("hold", self.hold, 86400, zero=True)
        check_duration("dead_contact_block", self.dead_contact_block, MAX_BAN, zero=True)
        check_duration("mailbox_full_pause", self.mailbox_full_pause, MAX_BAN, zero=True)


class NotifyConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Tell the admin (apprise URLs: ``mailto://``, ``json://``, …; extra ``notify``)."""

    urls: list[str] = []
    bans: bool = True  # a message per ban (with the abuse lookup when the desk runs)
    abuse: bool = True  # a message per abuse-desk escalation (blocks, calls to make)


class StoreConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[store]``: where the ledger lives and how long its evidence is kept (docs/store.md).

    Failure lines are evidence (for reports and complaints) and the memory the detector is
    rebuilt from after a restart; bans are kept apart and never removed by these settings.
    """

    path: str = DEFAULT_STORE
    # Failures older than this are deleted (the longest log jail's findtime is always kept).
    keep_failures: Seconds = Seconds(30 * 86400)
    # The newest lines kept per address (never fewer than the largest maxretry).
    evidence_per_address: int = 1000

    def __post_init__(self) -> None:
        if not 3600 <= self.keep_failures <= 3650 * 86400:
            raise ValueError("keep_failures: must be 1h to 10 years")
        if not 10 <= self.evidence_per_address <= 1_000_000:
            raise ValueError("evidence_per_address: must be 10 to 1000000")


class MetricsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[metrics]``: Prometheus metrics (docs/metrics.md). Off unless ``listen`` is set;
    a non-loopback address must be asked for with ``public = true``: the numbers tell an
    attacker which of their addresses are banned and how far the logs lag."""

    listen: str = ""  # "127.0.0.1:9797", "[::1]:9797"; empty: no metrics
    public: bool = False

    def __post_init__(self) -> None:
        if not self.listen:
            return
        host, port = split_listen(self.listen)
        if not self.public and not ipaddress.ip_address(host).is_loopback:
            raise ValueError(
                f"listen: {host} is not a loopback address (set public = true to serve it)"
            )
        check_range("listen port", port, 1, 65535)


class ReportConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[report]``: the admin's MaxMind databases for countries and ASes in ``report
    --html`` (docs/report.md); empty: the data geoip2fast ships."""

    geoip_country: str = ""  # GeoLite2-Country.mmdb (or City)
    geoip_asn: str = ""  # GeoLite2-ASN.mmdb

    def __post_init__(self) -> None:
        for name in ("geoip_country", "geoip_asn"):
            if getattr(self, name):
                check_absolute(name, getattr(self, name))


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
        if self.source_path in ("", _NO_FILE):
            return "built-in defaults: no configuration file was read"
        return self.source_path

    def where_to_set(self, setting: str) -> str:
        """How to change ``setting``: in the file read, or in the file to write."""
        if self.source_path in ("", _NO_FILE):
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


_SSHD_JOURNAL = [
    "_SYSTEMD_UNIT=ssh.service",
    "_SYSTEMD_UNIT=sshd.service",
    "_COMM=sshd",
    "_COMM=sshd-session",
]

# ``enabled = "auto"``: the jail runs when one of its logpath files exists.
AUTO = "auto"
# A key of BUILTIN_JAILS tables only (never of a file's jail, nor written into the sample
# config): files that say the service is here (its binary, its own config). Never a
# directory: one under /var/log outlives the package that made it.
INSTALLED = "installed"

# Built-in jails: what a jail gets before the file says anything about it. A service's jail
# is "auto": on where its log is, off elsewhere.
BUILTIN_JAILS: dict[str, dict[str, Any]] = {
    "sshd": {
        "filter": "sshd",
        "port": ["ssh"],
        "journalmatch": _SSHD_JOURNAL,
    },
    # sshd connections that never tried a password (no identification string, failed key
    # exchange, pre-auth timeouts): scanners and floods. Stricter than sshd: fewer, longer.
    "sshd-ddos": {
        "filter": "sshd-ddos",
        "port": ["ssh"],
        "journalmatch": _SSHD_JOURNAL,
        "maxretry": 4,
        "findtime": "10m",
        "bantime": "1d",
    },
    # pure-ftpd logs through syslog's ftp facility: Debian's rsyslog writes it to syslog.
    "pure-ftpd": {
        "filter": "pure-ftpd",
        "enabled": AUTO,
        "port": ["ftp"],
        "logpath": ["/var/log/syslog"],
        "journalmatch": ["_COMM=pure-ftpd"],
        INSTALLED: ["/usr/sbin/pure-ftpd"],
    },
    "vsftpd": {
        "filter": "vsftpd",
        "enabled": AUTO,
        "port": ["ftp", "ftp-data", "ftps", "ftps-data"],
        "logpath": ["/var/log/vsftpd.log"],
        "journalmatch": ["_COMM=vsftpd"],
    },
    "proftpd": {
        "filter": "proftpd",
        "enabled": AUTO,
        "port": ["ftp", "ftp-data", "ftps", "ftps-data"],
        "logpath": ["/var/log/proftpd/proftpd.log"],
        "journalmatch": ["_COMM=proftpd"],
    },
    "postfix": {
        "filter": "postfix",
        "enabled": AUTO,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/mail.log"],
        "journalmatch": ["_SYSTEMD_UNIT=postfix@-.service"],
    },
    # Refused clients (recipient probes, relay attempts, spamware), off until the admin
    # turns it on: a real mail server is refused now and then, and banning it loses mail.
    "postfix-reject": {
        "filter": "postfix-reject",
        "enabled": False,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/mail.log"],
        "journalmatch": ["_SYSTEMD_UNIT=postfix@-.service"],
        "maxretry": 10,
    },
    # One line per connection says how many attempts it made ("auth failed, 3 attempts").
    "dovecot": {
        "filter": "dovecot",
        "enabled": AUTO,
        "port": ["imap2", "imaps", "pop3", "pop3s", "submission", 465, 4190],
        "logpath": ["/var/log/mail.log"],
        "journalmatch": ["_SYSTEMD_UNIT=dovecot.service"],
    },
    "exim": {
        "filter": "exim",
        "enabled": AUTO,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/exim4/mainlog"],
    },
    "exim-reject": {
        "filter": "exim-reject",
        "enabled": False,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/exim4/mainlog"],
        "maxretry": 10,
    },
    "courier": {
        "filter": "courier",
        "enabled": AUTO,
        "port": ["imap2", "imaps", "pop3", "pop3s", "smtp", 465, "submission"],
        "logpath": ["/var/log/mail.log"],
    },
    "courier-reject": {
        "filter": "courier-reject",
        "enabled": False,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/mail.log"],
        "maxretry": 10,
    },
    # Sendmail (Debian: syslog facility mail); on where Sendmail is installed.
    "sendmail": {
        "filter": "sendmail",
        "enabled": AUTO,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/mail.log"],
        "journalmatch": ["_SYSTEMD_UNIT=sendmail.service"],
        INSTALLED: ["/etc/mail/sendmail.cf"],
    },
    # Refused clients (relay attempts, recipient probes, floods, EXPN/VRFY), off until the
    # admin turns it on: a real mail server is refused now and then, and banning it loses mail.
    "sendmail-reject": {
        "filter": "sendmail-reject",
        "enabled": False,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/mail.log"],
        "journalmatch": ["_SYSTEMD_UNIT=sendmail.service"],
        "maxretry": 10,
    },
    # OpenSMTPD (Debian: syslog facility mail); on where OpenSMTPD is installed.
    "opensmtpd": {
        "filter": "opensmtpd",
        "enabled": AUTO,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/mail.log"],
        "journalmatch": ["_SYSTEMD_UNIT=opensmtpd.service"],
        INSTALLED: ["/etc/smtpd.conf"],
    },
    # Cyrus IMAP/POP3 (Debian: syslog facility mail); on where Cyrus is installed.
    "cyrus-imap": {
        "filter": "cyrus-imap",
        "enabled": AUTO,
        "port": ["imap2", "imaps", "pop3", "pop3s"],
        "logpath": ["/var/log/mail.log"],
        "journalmatch": ["_SYSTEMD_UNIT=cyrus-imapd.service"],
        INSTALLED: ["/etc/cyrus.conf", "/etc/imapd.conf"],
    },
    "nginx-http-auth": {
        "filter": "nginx-http-auth",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/nginx/error.log"],
    },
    # A flood of 401/403 answers: a password or path sweep. Many fast, then banned.
    "nginx-http-flood": {
        "filter": "nginx-http-flood",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/nginx/access.log"],
        "maxretry": 20,
        "findtime": "1m",
    },
    # nginx's mail proxy writes its refused logins at level info: on where its module is.
    "nginx-mail": {
        "filter": "nginx-mail",
        "enabled": AUTO,
        "port": ["imap2", "imaps", "pop3", "pop3s", "smtp", 465, "submission"],
        "logpath": ["/var/log/nginx/error.log"],
        INSTALLED: ["/usr/lib/nginx/modules/ngx_mail_module.so"],
    },
    "apache-auth": {
        "filter": "apache-auth",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/apache2/error.log"],
    },
    "apache-http-flood": {
        "filter": "apache-http-flood",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/apache2/access.log"],
        "maxretry": 20,
        "findtime": "1m",
    },
    "plesk-panel": {
        "filter": "plesk-panel",
        "enabled": AUTO,
        "port": [8443, 8880],
        "logpath": ["/var/log/plesk/panel.log"],
    },
    # Failed TLS handshakes no browser makes, in nginx's error log: scanners and probes.
    "nginx-tls-probe": {
        "filter": "nginx-tls-probe",
        "enabled": AUTO,
        "port": ["https"],
        "logpath": ["/var/log/nginx/error.log"],
        "maxretry": 10,
    },
    "sw-cp-server": {
        "filter": "sw-cp-server",
        "enabled": AUTO,
        "port": [8443, 8880],
        "logpath": ["/var/log/sw-cp-server/error_log"],
        "maxretry": 10,
    },
    "mysqld": {
        "filter": "mysqld",
        "enabled": AUTO,
        "port": [3306],
        "logpath": ["/var/log/mysql/error.log"],
        "journalmatch": ["_COMM=mariadbd", "_COMM=mysqld"],
    },
    # dropbear: syslog's authpriv (auth.log) as its init script runs it, or -EF under
    # Debian's dropbear.service: the journal, facility daemon (syslog). On where it is.
    "dropbear": {
        "filter": "dropbear",
        "enabled": AUTO,
        "port": ["ssh"],
        "logpath": ["/var/log/auth.log", "/var/log/syslog"],
        "journalmatch": ["_COMM=dropbear"],
        INSTALLED: ["/usr/sbin/dropbear"],
    },
    # Cockpit's web console: pam_unix's lines under cockpit-session (authpriv: auth.log).
    "cockpit": {
        "filter": "cockpit",
        "enabled": AUTO,
        "port": [9090],
        "logpath": ["/var/log/auth.log"],
        "journalmatch": ["_COMM=cockpit-session"],
        INSTALLED: ["/usr/lib/cockpit/cockpit-ws"],
    },
    # Proxmox VE's web UI and API (pveproxy, 8006): pvedaemon's syslog lines as rsyslog
    # writes them. Not the journal: its daemons are perl processes that rename themselves,
    # which the journal source never vouches for (PVE 8 needs rsyslog installed).
    "proxmox": {
        "filter": "proxmox",
        "enabled": AUTO,
        "port": [8006],
        "logpath": ["/var/log/syslog"],
        INSTALLED: ["/usr/bin/pvedaemon"],
    },
    # OpenVPN servers (UDP by default, as OpenVPN's; a TCP server needs protocol = "tcp"):
    # syslog or the journal (/var/log/syslog), or log-append's file. On where a server's
    # configuration is.
    "openvpn": {
        "filter": "openvpn",
        "enabled": AUTO,
        "port": [1194],
        "protocol": "udp",
        "logpath": ["/var/log/syslog", "/var/log/openvpn/openvpn.log"],
        "journalmatch": ["_COMM=openvpn"],
        INSTALLED: ["/etc/openvpn/server.conf", "/etc/openvpn/server/*.conf"],
    },
    # BIND's refused queries (mostly UDP, whose source may be forged: a reflection attack's
    # victim), transfers and updates: bans DNS over UDP; a second jail with protocol "tcp"
    # bans TCP too (docs/signatures/named.md).
    "named-refused": {
        "filter": "named-refused",
        "enabled": AUTO,
        "port": ["domain"],
        "protocol": "udp",
        "logpath": ["/var/log/syslog"],
        "journalmatch": ["_SYSTEMD_UNIT=named.service", "_SYSTEMD_UNIT=bind9.service"],
        "maxretry": 10,
        INSTALLED: ["/etc/bind/named.conf"],
    },
    # Samba's auth audit in syslog (it takes `logging = syslog@2`, docs/signatures/samba.md).
    "samba": {
        "filter": "samba",
        "enabled": AUTO,
        "port": ["microsoft-ds", "netbios-ssn"],
        "logpath": ["/var/log/syslog"],
        "journalmatch": ["_SYSTEMD_UNIT=smbd.service", "_COMM=smbd"],
        INSTALLED: ["/etc/samba/smb.conf"],
    },
    # Gitea/Forgejo: web sign-ins (3000, or behind a proxy on 80/443) and the built-in SSH
    # server's refused keys (2222 by default in the docs' examples, or 22). Gitea 1.20+
    # logs to the console (journal) unless a file log is configured.
    "gitea": {
        "filter": "gitea",
        "enabled": AUTO,
        "port": ["http", "https", 3000, "ssh", 2222],
        "logpath": [
            "/var/lib/gitea/log/gitea.log",
            "/var/log/gitea/gitea.log",
            "/var/lib/forgejo/log/forgejo.log",
            "/var/log/forgejo/forgejo.log",
        ],
        "journalmatch": [
            "_SYSTEMD_UNIT=gitea.service",
            "_SYSTEMD_UNIT=forgejo.service",
            "_COMM=gitea",
            "_COMM=forgejo",
        ],
    },
    # GitLab (Omnibus): failed sign-ins and Rack::Attack throttles/bans.
    "gitlab": {
        "filter": "gitlab",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": [
            "/var/log/gitlab/gitlab-rails/application_json.log",
            "/var/log/gitlab/gitlab-rails/auth_json.log",
        ],
    },
    # Grafana's remote_addr is the X-Real-IP / X-Forwarded-For header of any client: off
    # unless a reverse proxy sets X-Real-IP (docs/signatures/grafana.md).
    "grafana": {
        "filter": "grafana",
        "enabled": False,
        "port": ["http", "https", 3000],
        "logpath": ["/var/log/grafana/grafana.log"],
        "journalmatch": ["_SYSTEMD_UNIT=grafana-server.service", "_COMM=grafana"],
    },
    "roundcube": {
        "filter": "roundcube",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/roundcube/errors.log", "/var/log/roundcube/userlogins.log"],
    },
    # WordPress login floods as the web server's access log shows them: on where WordPress
    # is installed (Debian's package, or the usual document roots).
    "wordpress": {
        "filter": "wordpress",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/nginx/access.log", "/var/log/apache2/access.log"],
        "maxretry": 10,
        "findtime": "10m",
        INSTALLED: [
            "/usr/share/wordpress/wp-login.php",
            "/var/www/html/wp-login.php",
            "/var/www/wordpress/wp-login.php",
            "/srv/www/wordpress/wp-login.php",
        ],
    },
    # The WP fail2ban plugin's lines (facility auth).
    "wp-fail2ban": {
        "filter": "wp-fail2ban",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/auth.log"],
        INSTALLED: [
            "/usr/share/wordpress/wp-content/plugins/wp-fail2ban/wp-fail2ban.php",
            "/var/www/html/wp-content/plugins/wp-fail2ban/wp-fail2ban.php",
            "/var/www/wordpress/wp-content/plugins/wp-fail2ban/wp-fail2ban.php",
            "/srv/www/wordpress/wp-content/plugins/wp-fail2ban/wp-fail2ban.php",
        ],
    },
    # 404s on well-known probe paths: 6 in 10 minutes is a scanner, never a typo.
    "web-scanner": {
        "filter": "web-scanner",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/nginx/access.log", "/var/log/apache2/access.log"],
        "maxretry": 6,
        "findtime": "10m",
    },
    # Every port: a scanner that knocks on closed ones is banned from the open ones too.
    "kernel-firewall": {
        "filter": "kernel-firewall",
        "enabled": AUTO,
        "port": [],
        "logpath": ["/var/log/kern.log", "/var/log/ufw.log"],
        "journalmatch": ["_TRANSPORT=kernel"],
        "maxretry": 10,
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


def parse_networks(texts: list[str], key: str = "ignoreip") -> list[Network]:
    """Addresses and CIDRs as networks; ValueError names the bad entry."""
    networks: list[Network] = []
    for text in texts:
        network = as_network(text)
        if network is None:
            raise ValueError(f"{key}: {text!r} is not an IP address or CIDR network")
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


def config_from_dict(raw: dict[str, Any], origin: str = _NO_FILE) -> Config:
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
    file = Path(path) if explicit else DEFAULT_CONFIG_PATH
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
