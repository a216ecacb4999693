"""``bruteguard run``: the asyncio wiring of sources → matcher → detector → store → enforcers.

Order of a decision, the rule everything else bends to: a ban is committed to the store
*before* any firewall hears of it, and on start the firewall is reconciled from the store,
so a crash between the two loses nothing. Stopping the daemon leaves bans in place (they
carry their own timeouts in the firewall); ``bruteguard stop --unban`` lifts them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import gc
import ipaddress
import itertools
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from typing import Any

import msgspec

from bruteguard.abuse.desk import AbuseDesk, desk_settings
from bruteguard.allow import AllowList
from bruteguard.bounds import split_listen
from bruteguard.config import Config, JailConfig, load_config
from bruteguard.control import MAX_REQUEST, peer_uid, socket_directory
from bruteguard.detect import Detector, LedgerRead, local_addresses
from bruteguard.duration import format_duration, parse_duration
from bruteguard.enforce import Enforcer
from bruteguard.enforce.factory import make_enforcers
from bruteguard.errors import BruteguardError, ControlError, EnforcerError, StoreError
from bruteguard.identity import canonical_target
from bruteguard.identity.sessions import live_admin_addresses
from bruteguard.identity.stage import IdentityStage
from bruteguard.match.engine import Hit, Matcher, NamedHit, Stream
from bruteguard.match.imported import ImportedStream
from bruteguard.metrics import Metrics, count_outcomes, serve_metrics
from bruteguard.model import Ban, BanRow, Failure, SourcePosition, Unattributed, ban_view
from bruteguard.notify import Notifier
from bruteguard.slow_lane import SlowLane
from bruteguard.sources import LineBatch, Source, health_of
from bruteguard.sources.files import FileSource
from bruteguard.sources.select import plan_sources, resolve_sources
from bruteguard.store.retention import Retention
from bruteguard.store.sqlite import SqliteStore
from bruteguard.systemd import notify

__all__ = ["Daemon", "run_daemon"]

log = logging.getLogger("bruteguard")

_HOUSEKEEPING = 30.0
STOP_WITHIN = 5.0
"""Seconds from SIGTERM (or SIGINT) to the process's end, whatever is still running then."""
_GIVE_UP_AFTER = STOP_WITHIN - 0.5  # the rest is for leaving: closing files, the kernel's part
_SAVE_EVERY = 0.1  # seconds read lines may wait to be saved with later ones
_SAVE_LINES = 5_000  # ... or until this many wait (a save of more holds the loop too long)
_SAVE_WITH_BANS = 200  # lines that may wait for a ban's commit and go in it (~1 ms more)
# A trickling source is read at most once per this many seconds: lines that come meanwhile
# wait and are read together. Each read costs CPU whatever it brings, and a log written a
# line at a time would otherwise cost that per line (issue 18: at 1,000 lines/s the reads
# were most of the daemon's CPU). A line after a quiet moment is read at once; 8 ms more
# at most keeps the 20 ms p99 line-to-ban floor: at 1,000 lines/s 5 ms gave 8.3 CPU-s per
# 100 k lines and a p99 of 8.6 ms, 8 ms 7.6 and 11.6 ms, 12 ms 7.3 and 15.3 ms, 15 ms 7.0
# and 20.1 ms (one quiet machine, 2026-12-06; docs/benchmarks.md).
_GATHER = 0.008
_GATHER_BELOW = 4096  # bytes: a batch this small (~40 lines) is a trickle
_BANS_PAGE = 10_000  # bans per streamed line of the control socket's `bans` answer
_SESSIONS_FRESH = 1.0  # seconds the live admin sessions read for the lock-out guard are reused
# `status` names a jail's newest bans up to this many and counts the rest (`bans` lists all).
STATUS_BANNED_SHOWN = 50


class Daemon:
    """One running bruteguard. ``run()`` returns when stopped (SIGTERM or ``stop``)."""

    def __init__(self, config_path: str | None, since: float | None = None) -> None:
        self.config_path = config_path
        self.config: Config = load_config(config_path)
        self.since = since
        self.store = SqliteStore(self.config.store)
        self.enforcers: list[Enforcer] = make_enforcers(self.config)
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._unban_on_stop = False
        self._tasks: list[asyncio.Task[None]] = []
        self._sources: list[Source] = []
        # Imported filters, each matched on a thread of its own (per source).
        self._lanes: list[SlowLane] = []
        # Per source key: the jails it feeds, the lines read, when the last came, and why it
        # stopped, if it failed: what `status` and the log say about each jail's protection.
        self._feeds: dict[str, frozenset[str]] = {}
        self._lines_read: dict[str, int] = {}
        self._last_line: dict[str, float] = {}
        self._failed: dict[str, str] = {}
        self._told_degraded: frozenset[str] | None = None
        self._lock = asyncio.Lock()
        self.detector: Detector
        self.identity: IdentityStage | None = None
        self.started = time.time()
        self.counters: dict[str, dict[str, int]] = {}
        # Lines read but not saved yet, and where their sources stand (see _save).
        self._unsaved: list[Failure] = []
        self._unsaved_positions: dict[str, SourcePosition] = {}
        self._save_timer: asyncio.TimerHandle | None = None
        self._saved_sources: set[str] = set()  # sources whose position this run has saved
        # Decided and stored bans on their way to the firewall (see _firewall_worker).
        self._to_enforce: list[Ban] = []
        self._enforce_wanted = asyncio.Event()
        self._enforce_idle = asyncio.Event()
        self._enforce_idle.set()
        # Up to when firewalls without timeouts were told which bans expired.
        self._expiry_checked = 0.0
        self._lifts: list[tuple[str, float]] = []
        # Firewall calls running in worker threads: stop waits for them before it says so.
        self._firewall_work: set[asyncio.Future[Any]] = set()
        self._stopped = asyncio.Event()
        self._stop_requests: set[asyncio.Task[Any]] = set()
        self.desk: AbuseDesk | None = None
        self.notifier = Notifier(self.config.notify.urls)
        if self.config.abuse.enabled:
            desk_settings(self.config)  # refuse bad desk settings before any firewall work
        self._background: set[asyncio.Task[Any]] = set()
        # Batches a file's reading waits for (they needed the lock or the guard's sessions).
        self._deliveries: set[asyncio.Task[None]] = set()
        self._deadline: threading.Timer | None = None
        self.allowed = _allow_list(self.config)
        self._admins: tuple[float, frozenset[str]] = (-math.inf, frozenset())
        self._knock: asyncio.DatagramTransport | None = None
        # What [metrics] serves (bruteguard.metrics), besides the counters above.
        self.metrics = Metrics(self)
        self._streams: dict[str, Stream] = {}
        self._enforcer_errors: collections.Counter[str] = collections.Counter()
        self._identity_outcomes: collections.Counter[str] = collections.Counter()
        self._fleet_pollers: dict[str, Any] = {}

    # -- life cycle --------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            # Not loop.add_signal_handler: its handler waits for the loop, and a stop must
            # not depend on the loop being free (a blocking call, a stuck firewall command).
            signal.signal(signum, lambda *_: self._stop_by_signal(loop))
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        _refuse_if_running(self.config.socket)  # before touching the firewall
        await self._refresh_allowed()
        jails = self._rules()
        self.detector = self._new_detector()
        with _collector_paused(freeze=True):
            await self._reconcile(jails)
        await self._load_blocklists()
        await self._start_knock()
        server: asyncio.AbstractServer | None = None
        metrics: asyncio.AbstractServer | None = None
        try:
            # Sources first, control socket second: once `bruteguard status` answers (and
            # systemd hears READY=1) every log is being followed, so no line written after
            # that moment can be skipped by a source that had not yet found its end.
            await self._start_pipeline()
            server = await self._serve_control()
            metrics = await self._serve_metrics()
            self._tell_protection(jails, first=True)
            while not self._stop.is_set():
                stop = asyncio.create_task(self._stop.wait())
                reload = asyncio.create_task(self._reload.wait())
                await asyncio.wait({stop, reload}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                reload.cancel()
                if self._reload.is_set() and not self._stop.is_set():
                    self._reload.clear()
                    await self._do_reload()
        finally:
            notify("STOPPING=1")
            self._stop_knock()
            if metrics is not None:
                metrics.close()
            if server is not None:
                server.close()
                with contextlib.suppress(OSError):
                    os.unlink(self.config.socket)
            await self._stop_pipeline()
            await self._firewall_settled()
            if self._unban_on_stop:
                await self._lift_everything()
            else:
                await self._stamp_firewalls()
            self.store.close()
            log.info("stopped%s", " and lifted every ban" if self._unban_on_stop else "")
            self._stopped.set()
            if self._stop_requests:  # `stop` replies once the work is done
                await asyncio.wait(self._stop_requests, timeout=5)

    def _new_detector(self) -> Detector:
        """A detector for the current configuration, before the ledger is read into it
        (``_reconcile`` tells it who is banned, ``_start_pipeline`` the rest)."""
        config = self.config
        return Detector(
            config.enabled_jails(),
            self.allowed.networks,
            local_addresses() if config.ignoreself else (),
        )

    def _rules(self) -> list[JailConfig]:
        """The enabled jails as the firewalls take them: each allowing the whole allow
        list (resolved names, files, admins), not only the addresses written in the file."""
        texts = self.allowed.texts
        return [
            msgspec.structs.replace(jail, global_ignoreip=texts)
            for jail in self.config.enabled_jails()
        ]

    async def _refresh_allowed(self) -> bool:
        """Resolve the allow list's names and read its files and sessions again; True if
        it changed (at start: whether anything beyond the written addresses was found)."""
        changed = await asyncio.to_thread(self.allowed.refresh)
        if changed:
            admins = self.allowed.admin_addresses
            log.info(
                "allow list: %s%s",
                ", ".join(self.allowed.texts) or "empty",
                f" (admin sessions from {', '.join(admins)})" if admins else "",
            )
        return changed

    async def _reallow(self) -> None:
        """The allow list changed: the detector and every firewall take the new one (the
        firewalls' rules and allow sets are rebuilt; bans stay)."""
        self.detector.allow(self.allowed.networks)
        rules = self._rules()
        for enforcer in self.enforcers:
            try:
                await self._in_thread(enforcer.setup, rules)
            except EnforcerError as error:
                log.error("%s did not take the new allow list: %s", enforcer.name, error)
                self._needs_reconcile = True

    # -- keeping the admin in ----------------------------------------------------------

    def _sshd_ports(self) -> tuple[int, ...]:
        ports = {p for j in self.config.enabled_jails() if j.filter == "sshd" for p in j.ports}
        return tuple(sorted(ports)) or (22,)

    async def _live_admins(self) -> frozenset[str]:
        """Addresses with an authenticated SSH session now (read in a thread, at most once
        a second). A failure to read is logged and finds no one: the guard must never stop
        a ban pipeline."""
        read, admins = self._admins
        now = time.monotonic()
        if now - read < _SESSIONS_FRESH:
            return admins
        try:
            admins = await asyncio.to_thread(live_admin_addresses, self._sshd_ports())
        except Exception as error:  # netlink, /proc: whatever it is, ban as before
            log.error("lock-out guard: cannot read the SSH sessions: %s", error)
            admins = frozenset()
        self._admins = (time.monotonic(), admins)
        return admins

    def _fresh_admins(self) -> frozenset[str] | None:
        """The live sessions read within the last second, or None: reading them is due."""
        read, admins = self._admins
        return admins if time.monotonic() - read < _SESSIONS_FRESH else None

    async def _lockout(self, target: str) -> str | None:
        """The live admin session a ban of ``target`` would cut off, or None."""
        return _session_cut_off(target, await self._live_admins())

    async def _keep_admins_in(self, bans: list[Ban]) -> list[Ban]:
        """The lock-out guard: ``bans`` less those that would cover an address with a live
        SSH session (refused, logged, and forgotten by the detector: it counts afresh)."""
        if not bans:
            return bans
        return self._spare_admins(bans, await self._live_admins())

    def _spare_admins(self, bans: list[Ban], admins: frozenset[str]) -> list[Ban]:
        """``_keep_admins_in`` with the live sessions already read."""
        if not admins:
            return bans
        kept = []
        for ban in bans:
            admin = _session_cut_off(ban.ip, admins)
            if admin is None:
                kept.append(ban)
                continue
            log.warning(
                "lock-out guard: ban of %s in %s refused: %s has a live SSH session",
                ban.ip,
                ban.jail,
                admin,
            )
            self.detector.forget(ban.ip)
        return kept

    async def _start_knock(self) -> None:
        """The knock listener, when a jail is behind a knock (docs/knock.md)."""
        from bruteguard.knock.keys import read_key
        from bruteguard.knock.listener import KnockListener, listen

        settings = self.config.knock
        ports = {p for j in self.config.enabled_jails() if j.knock for p in j.ports}
        if settings is None or not ports:
            return
        key = read_key(settings.key_file)
        protocol = KnockListener(key, float(settings.window), ports, self._open_for)
        try:
            self._knock = await listen(settings.listen, settings.port, protocol)
        except OSError as error:
            raise BruteguardError(
                f"knock: cannot listen on {settings.listen} port {settings.port}: {error}"
            ) from None
        log.info("knock: listening on udp port %d for ports %s", settings.port, sorted(ports))

    def _stop_knock(self) -> None:
        if self._knock is not None:
            self._knock.close()
            self._knock = None

    async def _open_for(self, knock: Any) -> None:
        """A verified knock: its sender may open new connections to the jails behind a
        knock on its port, for ``open_for``."""
        settings = self.config.knock
        if settings is None:
            return
        jails = [j.name for j in self.config.enabled_jails() if j.knock and knock.port in j.ports]
        for enforcer in self.enforcers:
            opener = getattr(enforcer, "open_for", None)
            if opener is None:
                continue
            try:
                await self._in_thread(opener, jails, knock.address, float(settings.open_for))
            except EnforcerError as error:
                log.error("knock from %s not let in by %s: %s", knock.address, enforcer.name, error)

    async def _reconcile(self, jails: Sequence[JailConfig]) -> None:
        """Make every firewall hold exactly the ledger's active bans, and the detector learn
        what it must know after a restart (who is banned, how often each target was, what
        recidive counts, which bans were lifted by hand), from one read of the ledger in
        pages: with a million bans neither the list nor the nft script ever sits in memory
        whole.

        An enforcer that takes the ledger's rows (``reconcile_rows``) streams the active
        ones page by page as they are read and learned, no ``Ban`` made of each; any other
        gets a list of bans. Only a second enforcer reads again.

        A firewall that proves it still holds what the ledger says (``resumes``: the stamp
        of a clean stop, docs/enforcers.md) is only set up, not reloaded; the ledger is then
        read for the detector alone. Sets are sized from the ledger's counts first.
        """
        now = time.time()
        self._expiry_checked = now
        ledger = LedgerRead(now, now - self._replay_horizon())
        count = 0
        take = getattr(self.store, "take_restart_stamps", None)
        stamps: dict[str, str] = await asyncio.to_thread(take) if take is not None else {}

        def learned() -> Iterator[list[tuple[Any, ...]]]:
            nonlocal count
            for rows in self.store.ban_rows():
                active = self.detector.remember_ledger(rows, ledger)
                count += len(active)
                yield active

        first: Iterator[tuple[Any, ...]] = itertools.chain.from_iterable(learned())
        rows = first  # the first firewall to fill takes the read the detector learns from
        for enforcer in self.enforcers:
            stamp, resumes = stamps.get(enforcer.name), getattr(enforcer, "resumes", None)
            warm = stamp is not None and resumes is not None
            warm = warm and await self._in_thread(resumes, stamp, jails)
            if not warm:
                await self._expect_bans(now, [enforcer])
            await self._in_thread(enforcer.setup, jails)
            if warm:
                log.info(
                    "%s: the firewall still holds the ledger's bans: not reloaded", enforcer.name
                )
                continue
            await self._load_bans(enforcer, rows, now)
            rows = _active(self.store.ban_rows(), now)  # read only if a firewall takes it
        # What no firewall read (all warm), or a failed fill left, still teaches the detector.
        await asyncio.to_thread(collections.deque, first, 0)
        self.detector.prime_recidive(ledger.recidive_starts)
        self._lifts = ledger.lifted()  # for prime: the replay must not revive them
        log.info("firewall reconciled: %d active bans from %s", count, self.config.store)

    async def _load_bans(
        self, enforcer: Enforcer, rows: Iterable[tuple[Any, ...]], now: float
    ) -> None:
        """``enforcer`` made to hold exactly the active bans of ``rows`` (the ledger's rows,
        streamed). A set declared smaller than its bans (the ledger counted a ban in another
        shape than the firewall files it) refuses elements: then once more from a fresh read
        of the ledger, and from now on with no sizes at all."""
        try:
            await self._in_thread(_fill, enforcer, rows, now)
        except EnforcerError as error:
            if not _set_full(error) or not hasattr(enforcer, "expect_bans"):
                raise
            log.warning(
                "%s: a set was sized too small (%s): reloading unsized", enforcer.name, error
            )
            enforcer.expect_bans(None)
            await self._in_thread(_fill, enforcer, _active(self.store.ban_rows(), now), now)

    async def _reload_firewalls(self, now: float) -> None:
        """Housekeeping after a firewall failed: each one reloaded with the ledger's active
        bans, streamed as at start (a list of a million bans would not fit the memory
        floor); one still failing is tried again at the next round."""
        self._needs_reconcile = False
        await self._expect_bans(now)
        for enforcer in self.enforcers:
            try:
                await self._load_bans(enforcer, _active(self.store.ban_rows(), now), now)
            except EnforcerError as error:
                log.error("%s still failing: %s", enforcer.name, error)
                self._needs_reconcile = True

    async def _expect_bans(self, now: float, enforcers: Sequence[Enforcer] = ()) -> None:
        """Tell the firewalls (``enforcers``, else all) that size their sets how many bans
        of each shape the ledger holds (before a reconcile fills them)."""
        shapes = getattr(self.store, "active_ban_shapes", None)
        takers = [e.expect_bans for e in enforcers or self.enforcers if hasattr(e, "expect_bans")]
        if shapes is None or not takers:
            return
        counts = await asyncio.to_thread(shapes, now)
        for take in takers:
            take(counts)

    async def _stamp_firewalls(self) -> None:
        """A clean stop: each firewall that can marks itself as holding exactly the
        ledger's active bans, and the ledger keeps the stamp, so the next start need not
        reload them. Only when that is so: no ban waiting for a firewall, no firewall out
        of step. Any later change of the ledger's bans deletes the stamp (its triggers)."""
        if self._needs_reconcile or self._to_enforce:
            return
        keep = getattr(self.store, "set_restart_stamp", None)
        for enforcer in self.enforcers if keep is not None else ():
            make = getattr(enforcer, "restart_stamp", None)
            if make is None:
                continue
            try:
                stamp = await self._in_thread(make)
                if stamp is not None:
                    await asyncio.to_thread(keep, enforcer.name, stamp)
            except (EnforcerError, StoreError) as error:
                log.warning(
                    "%s: no restart stamp (the next start reloads): %s", enforcer.name, error
                )

    async def _in_thread(self, call: Callable[..., Any], *args: Any) -> Any:
        """Firewall work in a worker thread, tracked: a caller cancelled by ``stop`` leaves
        the thread running, and stop waits for it before it says "stopped". The executor's
        future itself, not a task around ``to_thread``: a ban round takes fewer turns of the
        loop (each a wake-up and an epoll call)."""
        work = asyncio.get_running_loop().run_in_executor(None, call, *args)
        self._firewall_work.add(work)
        work.add_done_callback(self._firewall_done)
        return await asyncio.shield(work)

    def _firewall_done(self, work: asyncio.Future[Any]) -> None:
        """Forget finished work; its error (the caller, if still waiting, gets it through
        the shield) is marked as seen, so a caller cancelled by stop leaves no warning."""
        self._firewall_work.discard(work)
        if not work.cancelled():
            work.exception()

    async def _firewall_settled(self) -> None:
        if self._firewall_work:
            await asyncio.wait(set(self._firewall_work))

    def _stop_by_signal(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ask the loop to stop cleanly, and make sure the process ends within
        ``STOP_WITHIN`` seconds even if it cannot: every ban is in the store before any firewall
        hears of it, and the next start reconciles the firewall, so nothing is lost."""
        with contextlib.suppress(RuntimeError):  # the loop is already closed: stopping anyway
            loop.call_soon_threadsafe(self._stop.set)
        if self._deadline is None:
            self._deadline = threading.Timer(_GIVE_UP_AFTER, _stop_now)
            self._deadline.daemon = True
            self._deadline.start()

    def disarm(self) -> None:
        """The clean stop has finished: no forced exit."""
        if self._deadline is not None:
            self._deadline.cancel()

    def _replay_horizon(self) -> float:
        """How far back a start replays failures (and the lifts among them): the longest
        findtime of the jails that read logs."""
        return max((float(j.findtime) for j in self.config.log_jails()), default=0.0)

    async def _start_pipeline(self) -> None:
        config = self.config
        now = time.time()
        readers = config.log_jails()
        primed = self.store.failures_since(now - self._replay_horizon())
        self.detector.prime(((f.time, f.ip, f.user, f.jail, f.line) for f in primed), self._lifts)
        self._start_fleet()
        jails = readers
        if not jails:
            return
        matcher = Matcher(
            {jail.name: jail.filter for jail in jails},
            {jail.name: jail.breakin_weight for jail in jails},
        )
        # A dry run changes no firewall: not even the connection-tracking rule.
        firewall = any(name != "dry-run" for name in config.enforcers)
        stage = IdentityStage(config.identity, jails, firewall)
        if self.identity is not None and self.identity.same_as(stage):
            stage = self.identity  # a reload: its evidence of the last minutes stays whole
        else:
            if self.identity is not None:
                await self.identity.close()
            await asyncio.to_thread(stage.start)
            stage.start_reader()
        self.identity = stage
        start = "start" if self.since is not None else "end"
        plans = plan_sources(jails, self.store.get_position, start)
        for source, jail_names in plans.values():
            self._sources.append(source)
            wanted = self._feeds[source.key] = frozenset(jail_names)
            stream = self._streams[source.key] = matcher.stream(keep_lines=True)
            lanes = [self._lane(imported, wanted) for imported in stream.imported_streams]
            lanes = [lane for lane in lanes if wanted.intersection(lane.jails)]
            self._lanes += lanes
            self._tasks += [asyncio.create_task(lane.run()) for lane in lanes]
            task = asyncio.create_task(self._pump(source, stream, wanted, lanes))
            self._tasks.append(task)
        self._tasks.append(asyncio.create_task(self._housekeeping()))
        self._tasks.append(asyncio.create_task(self._allow_refresher()))
        self._tasks.append(asyncio.create_task(self._firewall_worker()))
        self._start_desk()
        # A source opens its log and fixes where it starts (saved position, end of file,
        # journal tail) in the first step of its generator, before it ever waits. Yielding
        # once lets every pump take that step, so "started" means "positioned": a line
        # appended from now on is read, whether we are starting or reloading.
        await asyncio.sleep(0)

    def _start_fleet(self) -> None:
        """With ``[fleet]``: queue what this host shares, publish it, apply the fleet's bans
        (docs/fleet.md). Without: queue nothing, exactly as a single host."""
        from bruteguard.fleet import outbox

        fleet = self.config.fleet
        if fleet is None:
            outbox.disable(self.store)
            return
        from bruteguard.fleet.leader import Leader
        from bruteguard.fleet.publisher import Publisher
        from bruteguard.fleet.subscriber import Subscriber

        outbox.enable(self.store, fleet.share, fleet.samples)
        publisher = Publisher(fleet, self.store)
        self._tasks.append(asyncio.create_task(publisher.run()))
        subscriber = Subscriber(fleet, self.store, self._apply_fleet)
        self._tasks.append(asyncio.create_task(subscriber.run()))
        self._fleet_pollers = {"publisher": publisher, "subscriber": subscriber}
        leader = Leader(fleet, lambda: self.config.enabled_jails())
        self._tasks.append(asyncio.create_task(leader.run()))

    async def _apply_fleet(self, changes: Sequence[Any]) -> None:
        """The fleet's bans and unbans (``fleet.subscriber``), store first as always; never
        this host's ignoreip or own addresses, never announced (the deciding host did)."""
        from bruteguard.fleet.apply import plan

        config = self.config
        now = time.time()
        jails = {jail.name: jail for jail in config.enabled_jails()}
        own = local_addresses() if config.ignoreself else ()
        assert config.fleet is not None  # the subscriber runs only with [fleet]
        local = plan(changes, jails, self.allowed.texts, own, now, config.fleet.host)
        for target in local.refused:
            log.warning("fleet ban of %s not applied here: allow list or own address", target)
        async with self._lock:
            local.bans = await self._keep_admins_in(local.bans)
            # A longer ban of the same target here stays as it is (not replaced, not shortened).
            local.bans = [
                ban
                for ban in local.bans
                if not any(
                    here.jail == ban.jail and here.until >= ban.until
                    for here in self.store.active_bans_of(ban.ip, now)
                )
            ]
            if local.bans:
                self.detector.remember_fleet_bans(local.bans)
                await self._apply(local.bans, announce=False)
            lifted = [
                ban
                for origin, lifts in local.lifts.items()
                for ban in self.store.lift_from(origin, lifts, now)
            ]
            if lifted:
                still = {(ban.ip, ban.jail) for ban in self.store.active_bans(now)}
                ended = [ban for ban in lifted if (ban.ip, ban.jail) not in still]
                for ban in ended:
                    log.warning("fleet unban of %s (from %s)", ban.ip, ban.origin or "here")
                for enforcer in self.enforcers:
                    try:
                        await asyncio.to_thread(enforcer.unban, ended)
                    except EnforcerError as error:
                        log.error("%s could not lift fleet bans: %s", enforcer.name, error)
                        self._needs_reconcile = True

    def _start_desk(self) -> None:
        """The abuse desk, if configured: it runs beside the pipeline and is handed each
        ban only after the firewall has it."""
        self.desk = None
        if not self.config.abuse.enabled:
            return
        notify = self._notify if self.notifier.enabled else None
        self.desk = AbuseDesk(desk_settings(self.config), self.store, self._block, notify)
        self._tasks.append(asyncio.create_task(self.desk.run()))

    async def _block(self, bans: list[Ban]) -> None:
        """The desk's network blocks: remembered, stored and enforced like manual bans."""
        async with self._lock:
            bans = await self._keep_admins_in(bans)
            self.detector.remember_bans(bans)
            await self._apply(bans, announce=False)

    async def _notify(self, title: str, body: str) -> None:
        await self.notifier.send(title, body)

    def _after_enforcing(self, bans: Sequence[Ban]) -> None:
        """Bans the firewall now holds go to the abuse desk (which notifies the admin with
        its lookup); the admin hears of the others directly."""
        others = self.desk.submit(bans) if self.desk is not None else list(bans)
        if not (self.notifier.enabled and self.config.notify.bans):
            return
        from bruteguard.notify import ban_message

        for ban in others:
            task = asyncio.create_task(self._notify(*ban_message(ban, None)))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _stop_pipeline(self, *, keep_identity: bool = False) -> None:
        """Stop the sources and tasks; the identity stage too unless ``keep_identity`` (a
        reload, which keeps it when nothing it depends on changed)."""
        for source in self._sources:
            with contextlib.suppress(Exception):
                await source.aclose()
        if self._deliveries:  # the last batches read are decided before they are saved
            await asyncio.wait(set(self._deliveries))
        async with self._lock:  # what was read is saved before a reload or a stop
            if self._unsaved or self._unsaved_positions:
                self._save([])
            elif self._save_timer is not None:
                self._save_timer.cancel()
                self._save_timer = None
        await self._enforced_all()  # decided bans reach the firewall before its worker ends
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for lane in self._lanes:
            lane.close()
        self._lanes.clear()
        self._tasks.clear()
        self._sources.clear()
        self._feeds.clear()
        self._failed.clear()
        self._streams.clear()
        self._fleet_pollers = {}
        if self.identity is not None and not keep_identity:
            await self.identity.close()
            self.identity = None

    async def _do_reload(self) -> None:
        notify("RELOADING=1")
        try:
            config = load_config(self.config_path)
            allowed = _allow_list(config)
            enforcers = make_enforcers(config)
            notifier = Notifier(config.notify.urls)
            if config.abuse.enabled:
                desk_settings(config)  # unreadable password files, mailbox settings
            for jail in config.log_jails():  # what opening the sources would refuse
                resolve_sources(jail)
        except BruteguardError as error:
            log.error("reload refused, keeping the running configuration: %s", error)
            notify("READY=1")
            return
        await self._stop_pipeline(keep_identity=True)
        await self._firewall_settled()
        self._stop_knock()
        self.config, self.enforcers, self.notifier = config, enforcers, notifier
        self.allowed = allowed
        await self._refresh_allowed()
        gc.unfreeze()  # the start's learning back to the collector: what a reload drops goes
        async with self._lock:  # a ban by hand meanwhile waits for the new detector
            self.detector = self._new_detector()
            with _collector_paused(freeze=False):
                await self._reconcile(self._rules())
        await self._load_blocklists()
        try:
            await self._start_knock()
        except BruteguardError as error:
            log.error("knock not started: %s", error)
        await self._start_pipeline()
        log.info("configuration reloaded (%s)", config.read_from)
        self._told_degraded = None
        self._tell_protection(config.enabled_jails(), first=True)

    # -- the pipeline ------------------------------------------------------------------

    async def _pump(
        self, source: Source, stream: Stream, jails: frozenset[str], lanes: Sequence[SlowLane]
    ) -> None:
        """Read a source: the compiled pass here, on the loop (it is C and fast), each
        imported filter handed the same batch on its lane's thread. A file is read in the
        loop's own callbacks (``FileSource.follow``), and a batch that needs no wait is
        dealt with in the callback that read it: one turn of the loop per read."""
        key = source.key

        def deliver(batch: LineBatch) -> asyncio.Task[None] | None:
            self._lines_read[key] = self._lines_read.get(key, 0) + batch.data.count(b"\n")
            self._last_line[key] = time.time()
            hits = self._own(stream.feed(batch.data, imported=False), jails)
            named = self._own(stream.take_named(imported=False), jails)
            rest = self._handle_now(hits, batch.position)
            if rest is None:
                self._pass_on(named, batch.data, lanes)
                return None
            task = asyncio.create_task(self._deliver_later(rest, named, batch, lanes))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
            return task

        try:
            if isinstance(source, FileSource):
                # A trickle waits out the rest of _GATHER; a busy source (and a backlog) is
                # read batch after batch, letting `status` (and the other sources) in
                # between so it can say how far the reading is. (Gathering 10 ms at 50 k
                # lines/s on a loaded machine: 9 k lines/s kept up with instead of 39 k.)
                await source.follow(deliver, _GATHER, _GATHER_BELOW)
                return
            async for batch in source.batches():
                began = time.monotonic()
                pending = deliver(batch)
                if pending is not None:
                    await pending
                trickle = len(batch.data) < _GATHER_BELOW
                await asyncio.sleep(max(0.0, began + _GATHER - time.monotonic()) if trickle else 0)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._failed[key] = f"failed: {error}"
            log.exception("source %s failed; restart bruteguard to resume it", key)
            self._tell_protection(self.config.enabled_jails())

    def _lane(self, imported: ImportedStream, jails: frozenset[str]) -> SlowLane:
        """A lane for one imported filter of a source feeding ``jails``."""

        async def handle(hits: list[Hit], named: list[NamedHit]) -> None:
            await self._take(hits, named, jails)

        def changed() -> None:
            self._tell_protection(self.config.enabled_jails())

        return SlowLane(imported, handle, changed)

    async def _take(self, hits: list[Hit], named: list[NamedHit], jails: frozenset[str]) -> None:
        """An imported filter's attempts for its own jails (since ``--since``): those naming
        an address decided now, the named ones handed to the identity stage. (A batch's
        position is saved with the compiled pass's attempts, in ``_pump``.)"""
        hits, named = self._own(hits, jails), self._own(named, jails)
        if hits:
            await self._handle(hits, None)
        self._pass_on(named)

    def _own(self, hits: list[Any], jails: frozenset[str]) -> list[Any]:
        """The attempts of a source's own jails (since ``--since``)."""
        since = self.since
        return [h for h in hits if h[3] in jails and (since is None or h[0] >= since)]

    def _pass_on(
        self, named: list[NamedHit], data: bytes = b"", lanes: Sequence[SlowLane] = ()
    ) -> None:
        """After a batch's own attempts: the named ones to the identity stage, the lines to
        the imported filters' lanes."""
        if named and self.identity is not None:
            # Evidence is read now; DNS, if it is needed, runs in the background.
            self.identity.submit(named, self._handle_attributed)
        for lane in lanes:
            lane.submit(data)

    async def _deliver_later(
        self,
        rest: Coroutine[Any, Any, None],
        named: list[NamedHit],
        batch: LineBatch,
        lanes: Sequence[SlowLane],
    ) -> None:
        await rest
        self._pass_on(named, batch.data, lanes)

    async def _handle(self, hits: list, position: SourcePosition | None) -> None:
        async with self._lock:
            bans = await self._keep_admins_in(self.detector.observe(hits))
            self._keep(hits, bans, position)

    def _handle_now(
        self, hits: list, position: SourcePosition | None
    ) -> Coroutine[Any, Any, None] | None:
        """``_handle`` in the callback that read the lines, as far as it needs no wait:
        None when done; else what is left, to be awaited: all of it while the lock is taken,
        or the lock-out guard and the rest when a ban needs the live sessions read again
        (the lines are observed already: as if they had come a moment before the lock was
        taken, which they may as well have)."""
        if self._lock.locked():
            return self._handle(hits, position)
        bans = self.detector.observe(hits)
        admins = self._fresh_admins() if bans else frozenset()
        if admins is None:
            return self._guard_and_keep(hits, bans, position)
        self._keep(hits, self._spare_admins(bans, admins), position)
        return None

    async def _guard_and_keep(
        self, hits: list, bans: list[Ban], position: SourcePosition | None
    ) -> None:
        async with self._lock:
            self._keep(hits, await self._keep_admins_in(bans), position)

    def _keep(self, hits: list, bans: list[Ban], position: SourcePosition | None) -> None:
        """A batch decided: its attempts counted and kept to be saved, its bans stored and
        handed to the firewall worker."""
        self._count_failures(hits)
        self._unsaved += [Failure(t, ip, jail, user, line) for t, ip, user, jail, line in hits]
        if position is not None:
            self._unsaved_positions[position.key] = position
        first = position is not None and position.key not in self._saved_sources
        if first or len(self._unsaved) >= _SAVE_LINES:
            # A source's first position is saved at once, with the bans: with none
            # saved, a restart would start at the log's end and skip the lines not saved.
            self._save(bans)
        elif bans and len(self._unsaved) <= _SAVE_WITH_BANS:
            # Few lines wait: saved with the bans in their one durable commit, which
            # spares the next save (a commit) for little more latency.
            self._save(bans)
        elif bans:
            # Stored (fsynced) alone, before the firewall hears of them: a ban's latency
            # does not pay for the lines waiting to be saved. A crash before those are
            # saved re-reads them, and the ban stored already keeps them from deciding
            # it again.
            self.store.add_bans(bans)
        self._hand_to_firewall(bans)
        if (self._unsaved or self._unsaved_positions) and self._save_timer is None:
            loop = asyncio.get_running_loop()
            self._save_timer = loop.call_later(_SAVE_EVERY, self._save_later)

    def _save(self, bans: Sequence[Ban], failures: Sequence[Failure] = ()) -> None:
        """The lines read since the last save and their sources' positions (and ``bans``,
        ``failures``) in one transaction: a crash before it re-reads those lines, after it
        never counts one twice. Lines wait up to ``_SAVE_EVERY`` (or ``_SAVE_LINES``) to be
        saved together: a commit per small batch was most of the daemon's CPU at a thousand
        lines a second."""
        if self._save_timer is not None:
            self._save_timer.cancel()
            self._save_timer = None
        unsaved, self._unsaved = self._unsaved, []
        positions, self._unsaved_positions = self._unsaved_positions, {}
        try:
            self.store.record_batch([*unsaved, *failures], bans, positions.values())
            self._saved_sources.update(positions)
        except BaseException:  # kept for the next save: nothing read is forgotten
            self._unsaved[:0] = unsaved
            self._unsaved_positions = {**positions, **self._unsaved_positions}
            raise

    def _save_later(self) -> None:
        self._save_timer = None
        task = asyncio.create_task(self._save_unsaved())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _save_unsaved(self) -> None:
        async with self._lock:
            if not (self._unsaved or self._unsaved_positions):
                return
            try:
                self._save([])
            except BruteguardError as error:
                log.error(
                    "store: %d lines not saved yet (tried again): %s", len(self._unsaved), error
                )
                loop = asyncio.get_running_loop()
                self._save_timer = self._save_timer or loop.call_later(
                    _SAVE_EVERY, self._save_later
                )

    def _count_failures(self, hits: list[Hit]) -> None:
        # A plain loop: a Counter per batch cost more than the rest of the counting (a
        # batch is a few lines, ~140 a second at 1,000 lines/s).
        counters = self.counters
        for hit in hits:
            counts = counters.get(hit[3])
            if counts is None:
                counts = counters[hit[3]] = {"failures": 0, "bans": 0, "unattributed": 0}
            counts["failures"] += 1

    async def _handle_attributed(self, hits: list[Hit], unattributed: list[Unattributed]) -> None:
        """Named failures the identity stage decided: the attributed ones count like any
        other (their lines' positions were saved with their batch), the rest are kept for
        ``status``."""
        async with self._lock:
            self._count_failures(hits)
            count_outcomes(self._identity_outcomes, len(hits), unattributed)
            for failure in unattributed:
                self._count(failure.jail, "unattributed")
            bans = await self._keep_admins_in(self.detector.observe(hits))
            # With the batches read before them: a crash must not re-read a line whose
            # attributed failure is saved (it would count twice).
            self._save(bans, [Failure(t, ip, jail, user, line) for t, ip, user, jail, line in hits])
            if unattributed:
                self.store.add_unattributed(unattributed)
            if bans:
                self._hand_to_firewall(bans)

    async def _apply(self, bans: Sequence[Ban], *, announce: bool = True) -> None:
        """Store first, then every enforcer (after the bans decided before these: a later
        ban of the same target must be the one the firewall keeps)."""
        self.store.add_bans(bans)
        await self._enforced_all()
        await self._enforce(bans, announce=announce)

    def _hand_to_firewall(self, bans: Sequence[Ban]) -> None:
        """Stored bans for the firewall worker: the pump goes on reading while nft runs."""
        if not bans:
            return
        self._to_enforce += bans
        self._enforce_idle.clear()
        self._enforce_wanted.set()

    async def _firewall_worker(self) -> None:
        """Every ban decided since its last round, to the enforcers in one round (one nft
        transaction): under a flood, bans of many batches share a firewall call, and the
        pump never waits for one (the store already holds them: a crash loses nothing)."""
        while True:
            await self._enforce_wanted.wait()
            self._enforce_wanted.clear()
            bans, self._to_enforce = self._to_enforce, []
            try:
                if bans:
                    await self._enforce(bans)
            except Exception:  # a bug, not a firewall refusal: the next housekeeping retries
                log.exception("%d bans did not reach the firewall", len(bans))
                self._needs_reconcile = True
            finally:
                if not self._to_enforce:
                    self._enforce_idle.set()

    async def _enforced_all(self) -> None:
        """Wait until the firewall worker has passed on every ban handed to it (before an
        unban, a manual ban, a stop: the firewall then holds what the store says)."""
        await self._enforce_idle.wait()

    async def _enforce(self, bans: Sequence[Ban], *, announce: bool = True) -> None:
        """Stored bans to every enforcer; an enforcer failure is logged and retried.
        ``announce``: pass them on to the desk and the admin (not the desk's own blocks,
        which it announces once per escalation)."""
        now = time.time()
        live = [ban for ban in bans if ban.until > now]
        for ban in bans:
            self._count(ban.jail, "bans")
            log.warning(
                "ban %s in %s until %s (%s)",
                ban.ip,
                ban.jail,
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ban.until)),
                ban.reason,
            )
        for enforcer in self.enforcers:
            try:
                began = time.perf_counter()
                await self._in_thread(enforcer.ban, live, now)
                self.metrics.enforced(enforcer.name, time.perf_counter() - began)
            except EnforcerError as error:
                self._enforcer_errors[enforcer.name] += 1
                log.error(
                    "%s could not apply %d bans (%s); retrying with the next housekeeping run",
                    enforcer.name,
                    len(live),
                    error,
                )
                self._needs_reconcile = True
        if announce:
            self._after_enforcing(live)

    _needs_reconcile = False

    async def _load_blocklists(self) -> None:
        """Every configured blocklist into every enforcer that can hold one (streamed: a
        list of millions never sits in this process's memory)."""
        from bruteguard.blocklist import BlocklistError, BlocklistReader

        for name, blocklist in self.config.blocklists.items():
            now = time.time()
            until = self.store.blocklist_loaded(name, now) + float(blocklist.bantime)
            for enforcer in self.enforcers:
                load = getattr(enforcer, "load_blocklist", None)
                if load is None:
                    log.warning(
                        "blocklist %s: the %s enforcer cannot hold one", name, enforcer.name
                    )
                    continue
                reader = BlocklistReader(blocklist.path)
                try:
                    if until <= now:
                        await asyncio.to_thread(enforcer.drop_blocklist, name)
                        log.info("blocklist %s: its time is up; dropped", name)
                        continue
                    count = await asyncio.to_thread(load, name, iter(reader), until, now)
                except (BlocklistError, EnforcerError) as error:
                    log.error("blocklist %s not loaded into %s: %s", name, enforcer.name, error)
                    continue
                log.info(
                    "blocklist %s: %d entries in %s until %s%s",
                    name,
                    count,
                    enforcer.name,
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(until)),
                    f"; {reader.bad} bad lines skipped (first: line {reader.examples[0][0]}"
                    f" {reader.examples[0][1]!r})"
                    if reader.bad
                    else "",
                )

    async def _unban_expired(self, now: float) -> None:
        """Firewalls without timeouts (iptables, hosts.deny, routes, pf, ipfw) learn here
        that a ban's time is up; a newer ban of the same target and jail stays. The ledger
        finds the bans that ran out since the last run through its index on their end:
        nothing is reloaded, and with only timed firewalls (nftables) nothing is read."""
        lagging = [e for e in self.enforcers if not getattr(e, "expires", True)]
        if not lagging:
            return
        expired = self.store.expired_bans(self._expiry_checked, now)
        self._expiry_checked = now
        if not expired:
            return
        for enforcer in lagging:
            try:
                await self._in_thread(enforcer.unban, expired)
            except EnforcerError as error:
                log.error(
                    "%s could not lift %d expired bans: %s", enforcer.name, len(expired), error
                )
                self._needs_reconcile = True

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(_HOUSEKEEPING)
            now = time.time()
            self._tell_protection(self.config.enabled_jails())
            if self.identity is not None:
                self.identity.tick()
            await self._retain()
            async with self._lock:
                self.detector.expire(now)
                await self._unban_expired(now)
                if self._needs_reconcile:
                    await self._reload_firewalls(now)

    async def _allow_refresher(self) -> None:
        """Every ``allow_refresh``: names resolved, files and sessions read again; a change
        reaches the detector and the firewalls."""
        while True:
            await asyncio.sleep(float(self.config.allow_refresh))
            if await self._refresh_allowed():
                async with self._lock:
                    await self._reallow()

    async def _retain(self) -> None:
        """Failures past ``[store]`` retention deleted and the file shrunk, in a thread: the
        store has its own lock, so batches wait for one short transaction at most."""
        retention = Retention(self.config.store_settings, self.config.enabled_jails(), time.time)
        try:
            done = await asyncio.to_thread(retention.run, self.store)
        except BruteguardError as error:
            log.error("store retention failed (tried again in %gs): %s", _HOUSEKEEPING, error)
            return
        if done.expired or done.trimmed or done.freed_pages:
            log.info(
                "store: forgot %d expired failures and %d over the per-address cap; %d pages freed",
                done.expired,
                done.trimmed,
                done.freed_pages,
            )

    def _protection(self, jails: Sequence[JailConfig]) -> dict[str, dict[str, Any]]:
        """Per jail: what each of its sources reads (or waits for), how many lines came and
        when the last did, and whether the jail is protected (one source reading) or
        degraded (none: it bans no one; or its imported filter is over its time budget and
        drops lines: ``matching``)."""
        by_jail: dict[str, list[dict[str, Any]]] = {jail.name: [] for jail in jails}
        for source in self._sources:
            health = health_of(source)
            failed = self._failed.get(source.key)
            view = {
                "key": source.key,
                "reading": health.reading and failed is None,
                "detail": f"{health.detail}: {failed}" if failed else health.detail,
                "lines": self._lines_read.get(source.key, 0),
                "last_line": self._last_line.get(source.key),
            }
            if health.progress is not None:
                view["read_bytes"], view["size_bytes"] = health.progress
            for name in self._feeds.get(source.key, ()):
                if name in by_jail:
                    by_jail[name].append(view)
        result = {}
        for jail in jails:
            sources = by_jail[jail.name]
            if not jail.from_logs:
                sources = [{"key": "bans", "reading": True, "detail": "bruteguard's own bans"}]
            protected = any(view["reading"] for view in sources)
            result[jail.name] = {"state": "protected" if protected else "degraded"}
            lanes = [lane for lane in self._lanes if jail.name in lane.jails]
            if lanes:
                over = any(lane.budget.over for lane in lanes)
                result[jail.name]["matching"] = {
                    "over_budget": over,
                    "budget_seconds": lanes[0].budget.seconds,
                    "dropped_lines": sum(lane.budget.dropped for lane in lanes),
                }
                if over:
                    result[jail.name]["state"] = "degraded"
            result[jail.name]["sources"] = sources
        return result

    def _tell_protection(self, jails: Sequence[JailConfig], *, first: bool = False) -> None:
        """Say, in the log and to systemd (STATUS=, with READY=1 the first time), which
        jails protect nothing: at start, and whenever that changes (a missing log
        appeared, a source failed)."""
        protection = self._protection(jails)
        degraded = frozenset(
            name for name, view in protection.items() if view["state"] != "protected"
        )
        slow = frozenset(_over_budget(protection))
        if not first and degraded == self._told_degraded:
            return
        before, self._told_degraded = self._told_degraded or frozenset(), degraded
        for name, view in protection.items():
            details = "; ".join(source["detail"] for source in view["sources"]) or "no source"
            if name in slow:
                log.warning(
                    "jail %s degraded: its filter is over its time budget (%.2f s a batch); "
                    "the lines it cannot match in time are dropped (%d so far), other jails "
                    "go on",
                    name,
                    view["matching"]["budget_seconds"],
                    view["matching"]["dropped_lines"],
                )
            elif name in degraded:
                log.warning("jail %s protects nothing: %s", name, details)
            elif first or name in before:
                log.info("jail %s reads %s", name, details)
        protected = [name for name in protection if name not in degraded]
        status = f"protecting {', '.join(protected) or 'nothing'}"
        if degraded - slow:
            status += f"; DEGRADED (no readable log): {', '.join(sorted(degraded - slow))}"
        if slow:
            status += f"; DEGRADED (filter over its time budget): {', '.join(sorted(slow))}"
        log.info("%s", status)
        notify(*(["READY=1"] if first else []), f"STATUS={status}")

    def _count(self, jail: str, what: str) -> None:
        counters = self.counters.setdefault(jail, {"failures": 0, "bans": 0, "unattributed": 0})
        counters[what] += 1

    async def _lift_everything(self) -> None:
        """``stop --unban``: every active ban ends in the ledger (one statement) while each
        enforcer drops its own tables whole (no element-by-element delete). Side by side:
        with a million bans both take seconds, and a crash between them loses nothing (a
        ban still in the ledger is enforced again on start, one gone from it is lifted)."""
        await asyncio.gather(
            asyncio.to_thread(self.store.lift_all, time.time()),
            *(self._teardown(enforcer) for enforcer in self.enforcers),
        )

    @staticmethod
    async def _teardown(enforcer: Enforcer) -> None:
        try:
            await asyncio.to_thread(enforcer.teardown)
        except EnforcerError as error:
            log.error("%s could not be removed: %s", enforcer.name, error)

    # -- metrics -----------------------------------------------------------------------

    async def _serve_metrics(self) -> asyncio.AbstractServer | None:
        """``[metrics] listen``: /metrics on this loop (a change needs a restart)."""
        listen = self.config.metrics.listen
        if not listen:
            return None
        host, port = split_listen(listen)
        server = await serve_metrics(self.metrics, host, port)
        log.info("metrics on http://%s/metrics", listen)
        return server

    def metrics_view(self, now: float) -> dict[str, Any]:
        """The daemon's own counters for ``bruteguard.metrics`` (as ``status`` has them)."""
        jails = self.config.enabled_jails()
        protection = self._protection(jails)
        sources: dict[str, dict[str, Any]] = {}
        for source in self._sources:
            health = health_of(source)
            stream = self._streams.get(source.key)
            stats = stream.stats if stream is not None else None
            lag = None
            if health.progress is not None:
                lag = max(0, health.progress[1] - health.progress[0])
            sources[source.key] = {
                "lines": self._lines_read.get(source.key, 0),
                "last_line": self._last_line.get(source.key),
                "lag_bytes": lag,
                "reading": health.reading and source.key not in self._failed,
                "skipped": {
                    "too_long": getattr(source, "skipped_long_lines", 0),
                    "bad_time": stats.bad_time if stats else 0,
                    "match_error": stats.match_errors if stats else 0,
                },
            }
        desk = None
        if self.desk is not None:
            with self.store.read("count abuse cases") as db:
                cases = dict(db.execute("SELECT state, count(*) FROM cases GROUP BY state"))
            desk = {"queue": self.desk.waiting(), "cases": cases}
        return {
            "started": self.started,
            "sources": sources,
            "jails": {jail.name: self.counters.get(jail.name, {}) for jail in jails},
            "degraded": {n for n, v in protection.items() if v["state"] != "protected"},
            "active_bans": self.store.active_ban_counts(now),
            "enforcers": [enforcer.name for enforcer in self.enforcers],
            "enforcer_errors": dict(self._enforcer_errors),
            "identity": dict(self._identity_outcomes),
            "desk": desk,
            "fleet": {
                role: {"last_ok": poller.last_ok, "down": poller.down}
                for role, poller in self._fleet_pollers.items()
            },
        }

    # -- control socket ----------------------------------------------------------------

    async def _serve_control(self) -> asyncio.AbstractServer:
        path = self.config.socket
        socket_directory(path)
        _refuse_if_running(path)
        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(self._client, path=path, limit=MAX_REQUEST)
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        return server

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            uid = peer_uid(sock)
            # Read the (bounded) request even from a caller we refuse: closing on unread
            # data makes the caller's send fail (EPIPE) before it can read why.
            line = await asyncio.wait_for(reader.readline(), timeout=10)
            if uid not in (0, os.geteuid()):
                reply: dict[str, Any] = {"ok": False, "error": "the control socket is root only"}
            else:
                try:
                    message = msgspec.json.decode(line)  # once: the command reads it as is
                    if isinstance(message, dict) and message.get("command") == "bans":
                        await self._stream_bans(writer)  # streamed, not one reply
                        return
                    reply = {"ok": True, "result": await self._command(message)}
                except (BruteguardError, ValueError, KeyError, TypeError) as error:
                    # ValueError: msgspec.DecodeError (not JSON) is one
                    reply = {"ok": False, "error": str(error)}
            writer.write(msgspec.json.encode(reply) + b"\n")
            await writer.drain()
        except (TimeoutError, OSError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def _command(self, message: dict[str, Any]) -> Any:
        if not isinstance(message, dict):
            raise ControlError("a request is a JSON object")
        command = message.get("command")
        now = time.time()
        if command == "status":
            return self._status(message.get("jail"), now)
        if command == "ban":
            return await self._manual_ban(message, now)
        if command == "unban":
            return await self._unban(str(message.get("ip", "")), now)
        if command == "stop":
            # The reply comes when the daemon has stopped (its firewall work done, the
            # bans lifted if asked): whoever asked may start another one right after.
            self._unban_on_stop = bool(message.get("unban"))
            self._stop.set()
            task = asyncio.current_task()
            if task is not None:
                self._stop_requests.add(task)
            await self._stopped.wait()
            return {"stopping": True, "stopped": True, "unban": self._unban_on_stop}
        if command == "reload":
            self._reload.set()
            return {"reloading": True}
        if command == "abuse-poll":
            if self.desk is None:
                raise ControlError("the abuse desk is not enabled ([abuse] enabled = true)")
            return dataclasses.asdict(await self.desk.poll())
        raise ControlError(f"unknown command {command!r}")

    async def _stream_bans(self, writer: asyncio.StreamWriter) -> None:
        """``bans`` as streamed JSON lines (see ``control``): one page of the ledger at a
        time, each written and drained before the next is read, so a million bans never
        sit in memory as one reply nor hold the event loop for the whole list."""
        now = time.time()
        writer.write(b'{"ok":true,"stream":true}\n')
        count = 0
        try:
            for page in self.store.active_ban_pages(now, _BANS_PAGE):
                writer.write(msgspec.json.encode([ban_view(ban, now) for ban in page]) + b"\n")
                count += len(page)
                await writer.drain()
        except BruteguardError as error:
            writer.write(msgspec.json.encode({"end": False, "error": str(error)}) + b"\n")
        else:
            writer.write(msgspec.json.encode({"end": True, "count": count}) + b"\n")
        await writer.drain()

    def _status(self, jail_name: str | None, now: float) -> dict[str, Any]:
        jails = self.config.enabled_jails()
        if jail_name is not None:
            jails = [j for j in jails if j.name == jail_name]
            if not jails:
                raise ControlError(f"no enabled jail named {jail_name!r}")
        counts = self.store.active_ban_counts(now)
        protection = self._protection(jails)
        return {
            "since": self.started,
            "enforcers": [e.name for e in self.enforcers],
            "sources": [s.key for s in self._sources],
            "degraded": sorted(
                name for name, view in protection.items() if view["state"] != "protected"
            ),
            "over_budget": _over_budget(protection),
            "identity": self.identity.describe() if self.identity is not None else None,
            "jails": [
                {
                    "name": jail.name,
                    "filter": jail.filter,
                    "maxretry": jail.maxretry,
                    "findtime": format_duration(jail.findtime),
                    "bantime": format_duration(jail.bantime),
                    "ports": list(jail.ports),
                    "failures": self.counters.get(jail.name, {}).get("failures", 0),
                    "bans_made": self.counters.get(jail.name, {}).get("bans", 0),
                    "unattributed": self.counters.get(jail.name, {}).get("unattributed", 0),
                    "banned_now": counts.get(jail.name, 0),
                    "banned": sorted(
                        self.store.newest_active_bans(now, jail.name, STATUS_BANNED_SHOWN)
                    ),
                    **protection[jail.name],
                }
                for jail in jails
            ],
            "unattributed": [
                {
                    "time": failure.time,
                    "jail": failure.jail,
                    "name": failure.name,
                    "candidates": list(failure.candidates),
                    "reason": failure.reason,
                    "user": failure.user,
                }
                for failure in self.store.recent_unattributed(10)
                if jail_name is None or failure.jail == jail_name
            ],
        }

    async def _manual_ban(self, message: dict[str, Any], now: float) -> dict[str, Any]:
        address = canonical_target(str(message.get("ip", "")))
        if address is None:
            raise ControlError(f"not an IP address or CIDR network: {message.get('ip')!r}")
        jails = {j.name: j for j in self.config.enabled_jails()}
        jail_name = message.get("jail") or next(iter(jails), None)
        if jail_name not in jails:
            raise ControlError(f"no enabled jail named {jail_name!r}")
        duration = message.get("for")
        seconds = parse_duration(duration) if duration else float(jails[jail_name].bantime)
        ban = Ban(address, jail_name, now, now + seconds, 0, "banned by hand")
        allowed = self.allowed.covering(address)
        admin = await self._lockout(address)
        if not message.get("force"):
            if admin is not None:
                log.warning(
                    "lock-out guard: ban of %s by hand refused: %s has a live SSH session",
                    address,
                    admin,
                )
                raise ControlError(
                    f"{address} covers {admin}, which has a live SSH session (an admin would"
                    " be locked out): use --force to ban it anyway"
                )
            if allowed is not None:
                raise ControlError(
                    f"{address} is on the allow list ({allowed}): use --force to ban it"
                    " anyway (the allowed addresses themselves stay let in)"
                )
        elif allowed is not None or admin is not None:
            log.warning("ban of %s by hand forced over the allow list / a live session", address)
        async with self._lock:
            self.detector.remember_bans([ban])
            await self._apply([ban])
        return ban_view(ban, now)

    async def _unban(self, text: str, now: float) -> dict[str, Any]:
        """Lift ``text`` (an address or a network) in every jail and enforcer, and every
        active ban that covers it (the /64 of an IPv6 address, a /24, a wider network):
        whoever is unbanned can connect again."""
        target = canonical_target(text)
        if target is None:
            raise ControlError(f"not an IP address or CIDR network: {text!r}")
        wanted = ipaddress.ip_network(target, strict=False)
        async with self._lock:
            await self._enforced_all()  # no ban decided before the unban lands after it
            covering = {
                ban.ip
                for ban in self.store.active_bans(now)
                if _covers(ipaddress.ip_network(ban.ip, strict=False), wanted)
            }
            targets = sorted({target, *covering})
            lifted = self.store.lift_bans(targets, now)
            for lifted_target in targets:
                self.detector.forget(lifted_target)
            # Remove them from every jail's set, even if only the firewall still had them.
            everywhere = [
                Ban(each, jail.name, now, now)
                for each in targets
                for jail in self.config.enabled_jails()
            ]
            for enforcer in self.enforcers:
                await asyncio.to_thread(enforcer.unban, everywhere)
        return {"ip": target, "lifted": len(lifted), "targets": targets}


def _allow_list(config: Config) -> AllowList:
    return AllowList(config.ignoreip, config.ignoreip_file, config.allow_admin)


def _over_budget(protection: dict[str, dict[str, Any]]) -> list[str]:
    """The jails whose imported filter drops lines it cannot match in time."""
    return sorted(
        name for name, view in protection.items() if view.get("matching", {}).get("over_budget")
    )


@contextlib.contextmanager
def _collector_paused(freeze: bool) -> Iterator[None]:
    """No cyclic garbage collection while the ledger is learned; with ``freeze``, what was
    made meanwhile is frozen after (``gc.freeze``: never walked again). A start with a
    million bans makes millions of objects that live as long as their bans (the detector's
    lists and dict entries, none of them in a cycle): the collector walked them again and
    again as they were made (about 1 CPU-s of a cold start) and would in every full
    collection after. A reload does not freeze: its ``gc.unfreeze`` gives the start's
    objects back to the collector, so what it drops is collected as ever."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()


def _active(pages: Iterable[list[tuple[Any, ...]]], now: float) -> Iterator[tuple[Any, ...]]:
    """The rows of ``pages`` (``ban_rows``) whose bans are still in force at ``now``."""
    for rows in pages:
        yield from (row for row in rows if row[8] is None and row[3] > now)


def _fill(enforcer: Enforcer, rows: Iterable[tuple[Any, ...]], now: float) -> None:
    """``enforcer.reconcile`` with the bans of the ledger's ``rows`` (``BanRow``'s fields):
    the rows themselves, streamed, where it takes them (``reconcile_rows``)."""
    take = getattr(enforcer, "reconcile_rows", None)
    if take is not None:
        take(rows, now)
    else:
        enforcer.reconcile([BanRow(*row).ban() for row in rows], now)


def _session_cut_off(target: str, admins: frozenset[str]) -> str | None:
    """The address in ``admins`` a ban of ``target`` would cut off, or None."""
    if not admins:
        return None
    network = ipaddress.ip_network(target, strict=False)
    return next((a for a in sorted(admins) if ipaddress.ip_address(a) in network), None)


def _set_full(error: EnforcerError) -> bool:
    """Whether nft refused elements for a full set: ENFILE for each, or ENOBUFS when so many
    were refused that their error replies overflowed nft's netlink socket."""
    return any(
        words in str(error) for words in ("Too many open files", "No buffer space available")
    )


def _covers(banned: ipaddress.IPv4Network | ipaddress.IPv6Network, wanted: Any) -> bool:
    """Whether lifting ``banned`` is part of unbanning ``wanted`` (it overlaps it)."""
    return banned.version == wanted.version and (
        wanted.subnet_of(banned) or banned.subnet_of(wanted)
    )


def _refuse_if_running(path: str) -> None:
    """Raise if a daemon answers on ``path``; remove a stale socket left by a crash."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except FileNotFoundError:
        return
    except ConnectionRefusedError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    finally:
        probe.close()
    raise BruteguardError(f"another bruteguard is already running on {path}")


def _stop_now() -> None:
    """The clean stop is about to overrun ``STOP_WITHIN``: leave now. Written straight to
    stderr, not through ``logging``, whose lock the stuck thread may hold."""
    message = (
        f"bruteguard: not stopped {_GIVE_UP_AFTER:g}s after the signal; exiting now (the bans are"
        " in the store: the next start puts the firewall in line with it)\n"
    )
    with contextlib.suppress(OSError):
        os.write(sys.stderr.fileno(), message.encode())
    os._exit(1)


def run_daemon(config_path: str | None, since: float | None) -> int:
    """Run in the foreground until stopped; ``since``: replay lines newer than this time."""
    daemon = Daemon(config_path, since)
    profile = os.environ.get("BRUTEGUARD_PROFILE")
    profiler = None
    if profile:  # where the time goes under load (bench/flood.py --profile)
        import cProfile

        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
    try:
        asyncio.run(daemon.run())
    finally:
        daemon.disarm()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
    return 0
