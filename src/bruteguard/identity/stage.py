"""The daemon's identity stage: named failures in, attributed hits and unattributed records out.

Evidence is taken the moment a batch arrives (who is connected now, who connected just
before), because that is what ties a line to a connection; only the DNS that tells several
candidates apart is awaited, in a task of its own. Lines that carry an address never come
here, so they never wait on DNS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from bruteguard.config import IdentityConfig, JailConfig
from bruteguard.errors import BruteguardError
from bruteguard.identity.attribution import Attribution, Attributor, Evidence
from bruteguard.identity.firewall_log import ConnectionLog, ConnectionLogRule
from bruteguard.identity.resolver import Resolver
from bruteguard.identity.socket_table import connected_peers
from bruteguard.match.engine import Hit, NamedHit
from bruteguard.model import Unattributed
from bruteguard.safe_text import printable

__all__ = ["Deliver", "IdentityStage"]

log = logging.getLogger("bruteguard")

# Attribution tasks in flight at most; past this (a flood of named lines while DNS is
# slow) new ones are recorded unattributed at once rather than queued without bound.
_MAX_PENDING = 256

# A named line older than the evidence window (a replay, a source that fell behind) can't
# be tied to who is connected now.
_LATE = 5.0
_STALE = "too old to tie to a connection (replayed or delayed line)"

Deliver = Callable[[list[Hit], list[Unattributed]], Awaitable[None]]


class IdentityStage:
    """Ties named failures of ``jails`` to real connections (see ``attribution``)."""

    def __init__(
        self, config: IdentityConfig, jails: Sequence[JailConfig], firewall: bool = True
    ) -> None:
        """``firewall`` false (only the dry-run enforcer): no kernel rule is installed."""
        self.config = config
        self._firewall = firewall and config.firewall_log
        self._ports = {jail.name: jail.ports for jail in jails}
        self._resolver = Resolver(config.nameservers, config.dns_port, float(config.dns_timeout))
        self._attributor = Attributor(self._resolver)
        self._log: ConnectionLog | None = None
        self._rule: ConnectionLogRule | None = None
        self._evidence = Evidence(connected_peers, None, float(config.window))
        self._pending: set[asyncio.Task[None]] = set()
        self.counts = {"attributed": 0, "unattributed": 0}

    def start_rule(self) -> None:
        """Open the firewall log and install its rule (blocking: run it in a thread).

        Without them (no nft, no privileges) the socket table alone is the evidence, and
        the log says so.
        """
        ports = sorted({port for ports in self._ports.values() for port in ports})
        if not self._firewall or not ports:
            return
        rule = ConnectionLogRule(group=self.config.firewall_log_group)
        reader = ConnectionLog(group=self.config.firewall_log_group)
        try:
            reader.open()
            rule.setup(ports)
        except BruteguardError as error:
            reader.close()
            log.warning(
                "no kernel firewall log of new connections (%s): hostnames in logs are tied"
                " to connections through the socket table only",
                error,
            )
            return
        self._rule, self._log = rule, reader
        self._evidence = Evidence(connected_peers, reader.seen, float(self.config.window))

    def start_reader(self) -> None:
        """Read the firewall log as packets arrive (on the running event loop)."""
        if self._log is not None:
            asyncio.get_running_loop().add_reader(self._log.fileno(), self._log.drain)

    async def close(self) -> None:
        """Finish nothing half-way: pending attributions are cancelled, the rule removed."""
        for task in list(self._pending):
            task.cancel()
        for task in list(self._pending):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._log is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._log.fileno())
            self._log.close()
            self._log = None
        if self._rule is not None:
            try:
                await asyncio.to_thread(self._rule.teardown)
            except BruteguardError as error:
                log.error("could not remove the connection-log rule: %s", error)
            self._rule = None

    def submit(self, named: list[NamedHit], deliver: Deliver) -> None:
        """Take the evidence for ``named`` now; decide and ``deliver`` in the background."""
        if not named:
            return
        now = time.time()
        if self._log is not None:
            self._log.drain()  # packets the event loop has not handed over yet
        cases: list[tuple[NamedHit, frozenset[str]]] = []
        stale: list[Unattributed] = []
        seen: dict[tuple[int, ...], set[str]] = {}
        for hit in named:
            if now - hit[0] > self._evidence.window + _LATE:
                moment, name, user, jail, line = hit
                stale.append(Unattributed(moment, jail, name, (), _STALE, user, line))
                continue
            ports = self._ports.get(hit[3], ())
            if ports not in seen:
                seen[ports] = set(self._evidence.candidates(ports, hit[0], now))
            else:  # the same ports: the table was just read; only the log window differs
                seen[ports] |= self._evidence.candidates(ports, hit[0], now)
            cases.append((hit, frozenset(seen[ports])))
        self.counts["unattributed"] += len(stale)
        if len(self._pending) >= _MAX_PENDING:
            task = asyncio.ensure_future(self._give_up(cases, deliver, stale))
        else:
            task = asyncio.ensure_future(self._decide(cases, deliver, stale))
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("attribution failed", exc_info=task.exception())

    async def _decide(
        self,
        cases: list[tuple[NamedHit, frozenset[str]]],
        deliver: Deliver,
        unattributed: list[Unattributed],
    ) -> None:
        verdicts: dict[tuple[str, frozenset[str]], Attribution] = {}
        for hit, candidates in cases:
            key = (hit[1], candidates)
            if key not in verdicts:
                verdicts[key] = await self._attributor.attribute(hit[1], candidates)
        hits: list[Hit] = []
        for hit, candidates in cases:
            verdict = verdicts[(hit[1], candidates)]
            moment, name, user, jail, line = hit
            if verdict.address is None:
                unattributed.append(
                    Unattributed(moment, jail, name, verdict.candidates, verdict.method, user, line)
                )
                continue
            hits.append((moment, verdict.address, user, jail, line))
        for verdict in verdicts.values():
            if verdict.address is not None:
                log.info(
                    "%s is %s (%s; connected: %s)",
                    printable(verdict.name[:255]),
                    verdict.address,
                    verdict.method,
                    ", ".join(verdict.candidates),
                )
            else:
                log.warning(
                    "failure from %s not attributed: %s (connected: %s)",
                    printable(verdict.name[:255]),
                    verdict.method,
                    ", ".join(verdict.candidates) or "nobody",
                )
        self.counts["attributed"] += len(hits)
        self.counts["unattributed"] += len(unattributed)
        await deliver(hits, unattributed)

    async def _give_up(
        self,
        cases: list[tuple[NamedHit, frozenset[str]]],
        deliver: Deliver,
        unattributed: list[Unattributed],
    ) -> None:
        unattributed += [
            Unattributed(moment, jail, name, tuple(sorted(c)), "overloaded", user, line)
            for (moment, name, user, jail, line), c in cases
        ]
        self.counts["unattributed"] += len(cases)
        await deliver([], unattributed)
