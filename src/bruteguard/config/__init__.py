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

One module per part of the file: ``jail`` (a jail), ``sections`` (store, identity, notify,
metrics, report, blocklists), ``abuse_desk`` (``[abuse]``), ``root`` (the whole ``Config``),
``builtin`` (the built-in jails) and ``load`` (file → checked ``Config``).
"""

from __future__ import annotations

from bruteguard.config.abuse_desk import AbuseConfig, LookupConfig, MailboxSettings, SmtpConfig
from bruteguard.config.builtin import AUTO, BUILTIN_JAILS, INSTALLED
from bruteguard.config.jail import (
    RECIDIVE,
    RECIDIVE_JAIL,
    JailConfig,
    check_journalmatch,
    parse_networks,
)
from bruteguard.config.load import config_from_dict, load_config
from bruteguard.config.root import DEFAULT_CONFIG_PATH, Config
from bruteguard.config.sections import (
    BlocklistConfig,
    IdentityConfig,
    MetricsConfig,
    NotifyConfig,
    ReportConfig,
    StoreConfig,
)

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
    "MetricsConfig",
    "NotifyConfig",
    "ReportConfig",
    "SmtpConfig",
    "StoreConfig",
    "check_journalmatch",
    "config_from_dict",
    "load_config",
    "parse_networks",
]
