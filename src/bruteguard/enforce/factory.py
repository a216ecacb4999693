"""Builds the configured enforcers, so the daemon and the CLI agree on what enforces bans.

Each enforcer's module is imported only when it is configured: a host running nftables
never pays for the others.
"""

from __future__ import annotations

from collections.abc import Callable

from bruteguard.config import Config
from bruteguard.enforce import Enforcer
from bruteguard.errors import ConfigError, EnforcerError

__all__ = ["make_enforcers"]


def _nftables(config: Config) -> Enforcer:
    from bruteguard.enforce.nftables import NftablesEnforcer

    return NftablesEnforcer(table=config.nftables_table)


def _ipset(config: Config) -> Enforcer:
    from bruteguard.enforce.ipset import IpsetEnforcer

    return IpsetEnforcer(prefix=config.iptables_prefix)


def _iptables(config: Config) -> Enforcer:
    from bruteguard.enforce.iptables import IptablesEnforcer

    return IptablesEnforcer(prefix=config.iptables_prefix)


def _hosts_deny(config: Config) -> Enforcer:
    from bruteguard.enforce.hostsdeny import HostsDenyEnforcer

    return HostsDenyEnforcer(config.hostsdeny_path, daemons=config.hostsdeny_daemons)


def _route(config: Config) -> Enforcer:
    from bruteguard.enforce.route import RouteEnforcer

    return RouteEnforcer()


def _pf(config: Config) -> Enforcer:
    from bruteguard.enforce.pf import PfEnforcer

    return PfEnforcer(config.pf_table_prefix)


def _ipfw(config: Config) -> Enforcer:
    from bruteguard.enforce.ipfw import IpfwEnforcer

    return IpfwEnforcer(config.ipfw_table_base, tables=config.ipfw_tables)


def _command(config: Config) -> Enforcer:
    from bruteguard.enforce.command import CommandEnforcer

    if not config.command_ban or not config.command_unban:
        raise EnforcerError("the command enforcer needs command_ban and command_unban argv lists")
    return CommandEnforcer(
        config.command_ban,
        config.command_unban,
        setup_argv=config.command_setup or None,
        teardown_argv=config.command_teardown or None,
    )


def _dry_run(config: Config) -> Enforcer:
    from bruteguard.enforce.dryrun import DryRunEnforcer

    return DryRunEnforcer()


# Config name → builder, and the setting its errors are about.
_BUILDERS: dict[str, tuple[Callable[[Config], Enforcer], str]] = {
    "nftables": (_nftables, "nftables_table"),
    "ipset": (_ipset, "iptables_prefix"),
    "iptables": (_iptables, "iptables_prefix"),
    "hosts.deny": (_hosts_deny, "hostsdeny_daemons"),
    "route": (_route, "enforcers"),
    "pf": (_pf, "pf_table_prefix"),
    "ipfw": (_ipfw, "ipfw_tables"),
    "command": (_command, "command_ban"),
    "dry-run": (_dry_run, "enforcers"),
}


def make_enforcers(config: Config) -> list[Enforcer]:
    """One enforcer per name in ``config.enforcers``, in order; several may run at once."""
    if {"ipset", "iptables"} <= set(config.enforcers):
        raise ConfigError(
            "enforcers: ipset and iptables both own the chains named by iptables_prefix; choose one"
        )
    enforcers: list[Enforcer] = []
    for name in config.enforcers:
        builder = _BUILDERS.get(name)
        if builder is None:
            known = ", ".join(sorted(_BUILDERS))
            raise ConfigError(f"enforcers: unknown enforcer {name!r} (known: {known})")
        build, setting = builder
        try:
            enforcers.append(build(config))
        except EnforcerError as error:
            raise ConfigError(f"{setting}: {error}") from None
    return enforcers
