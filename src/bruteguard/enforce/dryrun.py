"""An enforcer that changes nothing: it logs what it would do and remembers the result.

For trying a configuration without root, and for ``bruteguard bans``-style checks: it keeps
the same view of active bans a firewall would have, and validates jails and addresses the
same way the nftables enforcer does, so a setup that works here works there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bruteguard.enforce import JailRule
from bruteguard.enforce.nftables import parse_target, validate_name
from bruteguard.errors import EnforcerError
from bruteguard.model import Ban

__all__ = ["DryRunEnforcer"]

log = logging.getLogger(__name__)


class DryRunEnforcer:
    """Records every call in ``actions`` and keeps the bans a firewall would now hold."""

    name = "dry-run"
    expires = True  # its view drops expired bans by itself (``active``)

    def __init__(self) -> None:
        self.jails: tuple[str, ...] = ()
        self.actions: list[tuple[str, tuple[str, ...]]] = []
        self._bans: dict[tuple[str, str], Ban] = {}

    def setup(self, jails: Sequence[JailRule]) -> None:
        self.jails = tuple(validate_name(jail.name) for jail in jails)
        self._record("setup", self.jails)

    def reconcile(self, bans: Sequence[Ban], now: float) -> None:
        keyed = self._keyed(bans)
        self._bans = {key: ban for key, ban in keyed.items() if ban.until > now}
        self._record("reconcile", tuple(f"{jail} {ip}" for jail, ip in self._bans))

    def ban(self, bans: Sequence[Ban], now: float) -> None:
        keyed = {key: ban for key, ban in self._keyed(bans).items() if ban.until > now}
        self._bans.update(keyed)
        self._record("ban", tuple(f"{jail} {ip}" for jail, ip in keyed))

    def unban(self, bans: Sequence[Ban]) -> None:
        keys = tuple(self._keyed(bans))
        for key in keys:
            self._bans.pop(key, None)
        self._record("unban", tuple(f"{jail} {ip}" for jail, ip in keys))

    def teardown(self) -> None:
        self._bans.clear()
        self.jails = ()
        self._record("teardown", ())

    def active(self, now: float) -> list[Ban]:
        """The bans a firewall would still hold at ``now`` (expired ones have timed out)."""
        return [ban for ban in self._bans.values() if ban.until > now]

    def _keyed(self, bans: Sequence[Ban]) -> dict[tuple[str, str], Ban]:
        """Validate like the real enforcer; key by jail and canonical address."""
        keyed: dict[tuple[str, str], Ban] = {}
        for ban in bans:
            if ban.jail not in self.jails:
                validate_name(ban.jail)
                raise EnforcerError(f"jail {ban.jail!r} is not set up in the dry-run enforcer")
            keyed[(ban.jail, parse_target(ban.ip).text)] = ban
        return keyed

    def _record(self, action: str, details: tuple[str, ...]) -> None:
        self.actions.append((action, details))
        shown = ", ".join(details[:10]) + (
            f" … (+{len(details) - 10})" if len(details) > 10 else ""
        )
        log.info("dry-run: would %s %s", action, shown or "(nothing)")
