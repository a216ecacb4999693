"""Builds the configured enforcers, so the daemon and the CLI agree on what enforces bans."""

from __future__ import annotations

from bruteguard.config import Config
from bruteguard.enforce import Enforcer
from bruteguard.enforce.dryrun import DryRunEnforcer
from bruteguard.enforce.nftables import NftablesEnforcer
from bruteguard.errors import ConfigError, EnforcerError

__all__ = ["make_enforcers"]


def make_enforcers(config: Config) -> list[Enforcer]:
    """One enforcer per name in ``config.enforcers``, in order."""
    enforcers: list[Enforcer] = []
    for name in config.enforcers:
        if name == "nftables":
            try:
                enforcers.append(NftablesEnforcer(table=config.nftables_table))
            except EnforcerError as error:
                raise ConfigError(f"nftables_table: {error}") from None
        elif name == "dry-run":
            enforcers.append(DryRunEnforcer())
        else:
            raise ConfigError(f"enforcers: unknown enforcer {name!r} (use 'nftables' or 'dry-run')")
    return enforcers
