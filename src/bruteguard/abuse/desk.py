"""The abuse desk: from a ban to a case, a complaint, its replies and the escalation.

It runs beside the daemon's pipeline and never holds it up: the daemon enforces a ban
first and only then hands it to :meth:`AbuseDesk.submit`, which queues it. Everything
the desk decides is in the store (``store/cases.py``) before it acts, so a restart resumes
where it stopped; a mail that was being handed to the relay when the process died is
marked "unsure" for the admin rather than sent a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import msgspec

from bruteguard.abuse.bounce import Classified, MailKind, classify
from bruteguard.abuse.case import Case, CaseAddress, CaseEvent, CaseState, new_case_id
from bruteguard.abuse.complaint import (
    Offence,
    Reporter,
    UnsafeHeader,
    render_complaint,
    render_postmaster_notice,
)
from bruteguard.abuse.contact import NetworkContact
from bruteguard.abuse.lookup import DEFAULT_WHOIS, Servers, lookup
from bruteguard.abuse.policy import Escalation, Policy, escalate
from bruteguard.abuse.smtp import Rejected, Relay, RelayUnavailable, send_async
from bruteguard.config import Config, LookupConfig
from bruteguard.errors import ConfigError
from bruteguard.model import Ban, Network
from bruteguard.safe_text import printable
from bruteguard.store.cases import CaseBook
from bruteguard.store.sqlite import SqliteStore

__all__ = ["AbuseDesk", "DeskSettings", "PollResult", "desk_settings", "lookup_servers"]

log = logging.getLogger("bruteguard.abuse")

_RETRY = (60.0, 300.0, 900.0, 3600.0)  # relay down: try again after these, then hourly
_LOOKUPS_AT_ONCE = 4
_TICK = 5.0


@dataclass(frozen=True)
class DeskSettings:
    """Everything the desk reads from the configuration, resolved once."""

    reporter: Reporter
    relay: Relay
    servers: Servers
    policy: Policy
    mode: str
    period: float
    hold: float
    block_jail: str
    poll_interval: float
    cache: float
    cache_fallback: float
    cache_failure: float
    jail_modes: Mapping[str, str]  # jail → "off" | "draft" | "send"
    allow: Mapping[str, tuple[Network, ...]]  # jail → never reported
    ports: Mapping[str, tuple[int, ...]]
    protocols: Mapping[str, str]
    findtime: Mapping[str, float]
    mailbox: object | None = None  # abuse.mailbox.MailboxConfig
    notify_bans: bool = True  # [notify] bans: a message per ban, with its lookup
    notify_abuse: bool = True  # [notify] abuse: a message per escalation


def _secret(password: str, password_file: str, what: str) -> str | None:
    """The secret from ``password_file`` (kept out of the main file), else ``password``."""
    if password_file:
        try:
            return Path(password_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"{what}.password_file: cannot read: {error.strerror}") from None
    return password or None


def lookup_servers(settings: LookupConfig) -> Servers:
    """``[abuse.lookup]`` as the lookup's ``Servers`` (whois overrides on the defaults)."""
    whois = dict(DEFAULT_WHOIS)
    for registry, endpoint in settings.whois.items():
        host, _, port = endpoint.rpartition(":")
        whois[registry] = (host.strip("[]"), int(port))
    return Servers(
        bootstrap=settings.bootstrap,
        rdap=dict(settings.rdap),
        whois=whois,
        timeout=float(settings.timeout),
        deadline=float(settings.deadline),
    )


def desk_settings(config: Config) -> DeskSettings:
    """The ``[abuse]`` table (and the jails) as the desk's parts."""
    abuse = config.abuse
    smtp = abuse.smtp
    relay = Relay(
        host=smtp.host,
        port=smtp.port,
        starttls=smtp.starttls,  # type: ignore[arg-type]
        username=smtp.username or None,
        password=_secret(smtp.password, smtp.password_file, "abuse.smtp"),
        timeout=float(smtp.timeout),
    )
    lookup_cfg = abuse.lookup
    servers = lookup_servers(lookup_cfg)
    mailbox = None
    if abuse.mailbox is not None:
        from bruteguard.abuse.mailbox import MailboxConfig

        # The file's settings are the mailbox's, field for field, but for the password,
        # which may come from a file.
        box = msgspec.structs.asdict(abuse.mailbox)
        password = _secret(box.pop("password"), box.pop("password_file"), "abuse.mailbox")
        mailbox = MailboxConfig(**box, password=password or "")
    jails = config.enabled_jails()
    return DeskSettings(
        reporter=Reporter(
            sender=abuse.sender,
            org=abuse.org,
            contact=abuse.contact or None,
            phone=abuse.phone or None,
            name=abuse.name or None,
        ),
        relay=relay,
        servers=servers,
        policy=Policy(
            dead_contact_block=float(abuse.dead_contact_block),
            mailbox_full_pause=float(abuse.mailbox_full_pause),
            call_first=frozenset(abuse.call_first),
            postmaster_notice=abuse.postmaster_notice,
            largest_block_ipv4=abuse.largest_block_ipv4,
            largest_block_ipv6=abuse.largest_block_ipv6,
        ),
        mode=abuse.mode,
        period=float(abuse.period),
        hold=float(abuse.hold),
        block_jail=abuse.block_jail,
        poll_interval=float(abuse.poll_interval),
        cache=float(lookup_cfg.cache),
        cache_fallback=float(lookup_cfg.cache_fallback),
        cache_failure=float(lookup_cfg.cache_failure),
        jail_modes={j.name: ("off" if not j.from_logs else (j.abuse or abuse.mode)) for j in jails},
        allow={j.name: j.allow for j in jails},
        ports={j.name: j.ports for j in jails},
        protocols={j.name: j.protocol for j in jails},
        findtime={j.name: float(j.findtime) for j in jails},
        mailbox=mailbox,
        notify_bans=config.notify.bans,
        notify_abuse=config.notify.abuse,
    )


@dataclass
class PollResult:
    """What one read of the mailbox found (``bruteguard abuse poll`` prints it)."""

    read: int = 0
    matched: int = 0
    unrelated: int = 0
    escalated: int = 0
    kinds: dict[str, int] | None = None


class AbuseDesk:
    """Files bans into cases, sends or drafts complaints, reads replies, escalates.

    ``block`` stores and enforces the desk's network blocks (the daemon's own path, so
    they are in the ledger before any firewall hears of them); ``notify`` tells the admin.
    """

    def __init__(
        self,
        settings: DeskSettings,
        store: SqliteStore,
        block: Callable[[list[Ban]], Awaitable[None]],
        notify: Callable[[str, str], Awaitable[object]] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.book = CaseBook(store)
        self.block = block
        self.notify = notify
        self.clock = store.clock  # one clock for the desk, its cases and its lookups
        self._queue: asyncio.Queue[Ban] = asyncio.Queue()
        self._limit = asyncio.Semaphore(_LOOKUPS_AT_ONCE)
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()  # one bounce or tick at a time

    # -- intake ------------------------------------------------------------------------

    def takes(self, ban: Ban) -> bool:
        """Whether ``ban`` is reported: decided from failures in a jail that reports."""
        return ban.failures > 0 and self.settings.jail_modes.get(ban.jail, "off") != "off"

    def submit(self, bans: Iterable[Ban]) -> list[Ban]:
        """Queue the bans the desk reports (never waits); returns the others."""
        others = []
        for ban in bans:
            if self.takes(ban):
                self._queue.put_nowait(ban)
            else:
                others.append(ban)
        return others

    def waiting(self) -> int:
        """Bans queued or being looked up (the desk's queue, for metrics)."""
        return self._queue.qsize() + len(self._tasks)

    async def run(self) -> None:
        """Lookups as bans arrive, due cases every few seconds, the mailbox every
        ``poll_interval``; until cancelled."""
        self.recover()
        loops = [self._intake(), self._ticker()]
        if self.settings.mailbox is not None:
            loops.append(self._poller())
        try:
            await asyncio.gather(*loops)
        finally:
            for task in self._tasks:
                task.cancel()

    async def _intake(self) -> None:
        while True:
            ban = await self._queue.get()
            task = asyncio.create_task(self._report_guarded(ban))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(_TICK)
            try:
                await self.tick()
            except Exception:
                log.exception("abuse desk: a scheduled step failed; trying again shortly")

    async def _poller(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                await self.poll()
            except Exception as error:
                log.error("abuse desk: reading the mailbox failed: %s", error)

    async def _report_guarded(self, ban: Ban) -> None:
        async with self._limit:
            try:
                await self.report(ban)
            except Exception:
                log.exception("abuse desk: reporting %s failed", ban.ip)

    def recover(self) -> None:
        """After a crash: a case caught handing its mail to the relay may have gone out;
        it is never resent on its own. The admin looks (``abuse followups``)."""
        now = self.clock()
        for case in self.book.cases(states=[CaseState.SENDING]):
            self.book.transition(
                case.id,
                [CaseState.SENDING],
                CaseEvent(now, "unsure", "stopped while handing the mail to the relay"),
                state=CaseState.UNSURE,
                flags=(*case.flags, "unsure"),
            )

    # -- from a ban to a case ----------------------------------------------------------

    def addresses_of(self, ban: Ban) -> list[str]:
        """The addresses a ban is about: itself, or for a network ban the addresses in it
        that failed within the jail's window."""
        if "/" not in ban.ip:
            return [ban.ip]
        network = ipaddress.ip_network(ban.ip, strict=False)
        since = ban.start - self.settings.findtime.get(ban.jail, 600.0)
        seen: dict[str, None] = {}
        for failure in self.store.failures_since(since):
            if failure.jail == ban.jail and failure.time <= ban.start:
                with contextlib.suppress(ValueError):
                    if ipaddress.ip_address(failure.ip) in network:
                        seen[failure.ip] = None
        return list(seen)

    def allowed(self, address: str, jail: str) -> bool:
        """An allow-listed address is never reported, whatever banned it."""
        ip = ipaddress.ip_address(address)
        return any(ip in network for network in self.settings.allow.get(jail, ()))

    async def contact_of(self, address: str, *, fresh: bool = False) -> NetworkContact:
        """The lookup, from the store's cache while it is fresh."""
        now = self.clock()
        if not fresh:
            cached = self.book.cached_contact(address, now)
            if cached is not None:
                return cached
        found = await lookup(address, self.settings.servers, self.clock)
        if found.source in ("rdap", "whois"):
            ttl = self.settings.cache
        elif found.network is not None:
            ttl = self.settings.cache_fallback
        else:
            ttl = self.settings.cache_failure
        self.book.cache_contact(found, found.looked_up + ttl)
        return found

    async def report(self, ban: Ban) -> list[str]:
        """File each address of ``ban`` into a case; returns the case ids touched."""
        touched: list[str] = []
        first_contact: NetworkContact | None = None
        for address in self.addresses_of(ban):
            if self.allowed(address, ban.jail):
                log.info("abuse desk: %s is allow-listed; not reported", address)
                continue
            contact = await self.contact_of(address)
            first_contact = first_contact or contact
            case_id = await self._file(address, ban, contact)
            if case_id:
                touched.append(case_id)
        if self.notify is not None and self.settings.notify_bans:
            from bruteguard.notify import ban_message

            case = self.book.get(touched[0]) if touched else None
            title, body = ban_message(
                ban, first_contact, case.id if case else None, str(case.state) if case else None
            )
            await self.notify(title, body)
        return touched

    async def _file(self, address: str, ban: Ban, contact: NetworkContact) -> str | None:
        settings = self.settings
        async with self._lock:
            now = self.clock()
            already = self.book.reported_in(address, now - settings.period)
            if already:
                log.info("abuse desk: %s was reported in case %s this period", address, already)
                return already
            entry = self._entry(address, ban)
            mode = settings.jail_modes.get(ban.jail, settings.mode)
            if contact.abuse_email is None:
                return await self._no_contact(contact, entry, mode, now)
            email_address = contact.abuse_email
            held = self.book.held(f"contact:{email_address}", now)
            if held is not None:
                log.info(
                    "abuse desk: not writing to %s about %s until %s (%s)",
                    email_address,
                    address,
                    _utc(held[0]),
                    held[1],
                )
                return None
            case = self.book.collecting_for(email_address, "complaint", mode)
            if case is not None:
                self.book.add_addresses(case.id, [entry])
                self.book.add_event(case.id, CaseEvent(now, "address", f"added {address}"))
                return case.id
            last = self.book.last_sent(email_address)
            due = now + settings.hold
            if last is not None:
                due = max(due, last + settings.period)  # one mail per contact per period
            case = Case(
                id=new_case_id(now),
                mode=mode,  # type: ignore[arg-type]
                contact=email_address,
                lookup=contact,
                opened=now,
                updated=now,
                due=due,
            )
            self.book.open_case(case, [entry])
            log.info("abuse desk: case %s opened for %s to %s", case.id, address, email_address)
            return case.id

    def _entry(self, address: str, ban: Ban) -> CaseAddress:
        ports = self.settings.ports.get(ban.jail, ())
        return CaseAddress(
            address=address,
            jail=ban.jail,
            first=ban.start,
            last=ban.start,
            attempts=ban.failures,
            port=ports[0] if ports else None,
        )

    async def _no_contact(
        self, contact: NetworkContact, entry: CaseAddress, mode: str, now: float
    ) -> str:
        """Nobody to write to: one case per network per period, escalated at once."""
        key = f"nocontact:{contact.network or entry.address}"
        held = self.book.held(key, now)
        if held is not None and self.book.get(held[1]) is not None:
            self.book.add_addresses(held[1], [entry])
            return held[1]
        case = Case(
            id=new_case_id(now),
            state=CaseState.NO_CONTACT,
            mode=mode,  # type: ignore[arg-type]
            lookup=contact,
            opened=now,
            updated=now,
            due=now,
        )
        self.book.open_case(case, [entry])
        self.book.hold(key, now + self.settings.period, case.id)
        cause = "the registries name no usable abuse contact"
        await self._escalate(
            case, escalate(contact, [entry.address], self.settings.policy, cause=cause)
        )
        return case.id

    # -- drafts, queue, sending --------------------------------------------------------

    async def tick(self) -> None:
        """Close collecting cases whose time has come (render: draft or queue) and hand
        queued ones to the relay."""
        async with self._lock:
            now = self.clock()
            for case in self.book.due(CaseState.COLLECTING, now):
                self.finalise(case, now)
        if self.relay_paused(self.clock()) is not None:
            return  # our mail was refused: nothing goes out until the pause ends
        for case in self.book.due(CaseState.QUEUED, self.clock()):
            await self.send_case(case.id)

    def finalise(self, case: Case, now: float) -> None:
        """Render a collecting case: a draft, or queued for the relay (by its mode)."""
        try:
            message = self._render(case, now)
        except (UnsafeHeader, ValueError) as error:
            self.book.transition(
                case.id,
                [CaseState.COLLECTING],
                CaseEvent(now, "refused", printable(str(error))[:300]),
                state=CaseState.CLOSED,
                error=str(error),
            )
            return
        state = CaseState.QUEUED if case.mode == "send" else CaseState.DRAFT
        self.book.transition(
            case.id,
            [CaseState.COLLECTING],
            CaseEvent(now, str(state), f"complaint to {case.contact} rendered"),
            state=state,
            message=message.as_bytes(),
            due=now,
        )

    def _render(self, case: Case, now: float) -> EmailMessage:
        addresses = self.book.addresses(case.id)
        since = case.opened - self.settings.period
        offences: list[Offence] = []
        lines: list[tuple[str, str]] = []
        for entry in addresses:
            failures = [f for f in self.store.failures_of(entry.address, since) if f.time <= now]
            first = min((f.time for f in failures), default=entry.first)
            last = max((f.time for f in failures), default=entry.last)
            offences.append(
                Offence(
                    address=entry.address,
                    first_seen=_utc(first),
                    last_seen=_utc(last),
                    attempts=max(len(failures), entry.attempts),
                    service=entry.jail,
                    port=entry.port,
                    protocol=self.settings.protocols.get(entry.jail, "tcp"),
                )
            )
            lines += [(f.ip, f.line) for f in failures]
        contact = case.lookup
        return render_complaint(
            reporter=self.settings.reporter,
            contact=case.contact or "",
            offences=offences,
            log_lines=lines,
            case_id=case.id,
            network=_network_label(contact),
            now=_utc(now),
        )

    async def send_case(self, case_id: str, *, drafts: bool = False) -> CaseState | None:
        """Hand one case's mail to the relay, once: the claim (queued, or a draft when the
        admin says so, → sending) is a compare-and-set in the store. Returns the new state,
        or ``None`` if the case was not there to send."""
        case = self.book.get(case_id)
        if case is None or case.message is None:
            return None
        expect = [CaseState.QUEUED, CaseState.DRAFT] if drafts else [CaseState.QUEUED]
        now = self.clock()
        claimed = self.book.transition(
            case_id,
            expect,
            CaseEvent(now, "sending", f"to the relay {self.settings.relay.host}"),
            state=CaseState.SENDING,
            attempts=case.attempts + 1,
        )
        if not claimed:
            return None
        message = email.message_from_bytes(case.message, policy=email.policy.default)
        try:
            await send_async(message, self.settings.relay, now=_utc(now))  # type: ignore[arg-type]
        except RelayUnavailable as error:
            delay = _RETRY[min(case.attempts, len(_RETRY) - 1)]
            self.book.transition(
                case_id,
                [CaseState.SENDING],
                CaseEvent(self.clock(), "retry", f"{error}; next try in {delay:.0f}s"),
                state=CaseState.QUEUED,
                due=self.clock() + delay,
                error=str(error),
            )
            log.warning("abuse desk: case %s: relay unavailable (%s); will retry", case_id, error)
            return CaseState.QUEUED
        except Rejected as error:
            # The relay's refusal may be our own relay's policy: the admin decides.
            self.book.transition(
                case_id,
                [CaseState.SENDING],
                CaseEvent(self.clock(), "rejected", str(error)),
                state=CaseState.REJECTED,
                error=str(error),
            )
            log.error("abuse desk: case %s refused by the relay: %s", case_id, error)
            return CaseState.REJECTED
        self.book.transition(
            case_id,
            [CaseState.SENDING],
            CaseEvent(self.clock(), "sent", f"to {case.contact}"),
            state=CaseState.SENT,
            sent=self.clock(),
            error="",
        )
        log.info("abuse desk: case %s sent to %s", case_id, case.contact)
        return CaseState.SENT

    # -- replies and bounces -----------------------------------------------------------

    async def poll(self) -> PollResult:
        """Read new mail from the mailbox and act on each reply and bounce."""
        from bruteguard.abuse.mailbox import fetch

        result = PollResult(kinds={})
        mailbox = self.settings.mailbox
        if mailbox is None:
            return result
        fetched = await asyncio.to_thread(fetch, mailbox, self.book.mail_seen)  # type: ignore[arg-type]
        for item in fetched:
            result.read += 1
            classified = classify(item.message)
            kind = str(classified.kind)
            result.kinds[kind] = result.kinds.get(kind, 0) + 1  # type: ignore[index]
            if await self.handle_mail(classified):
                result.matched += 1
            else:
                result.unrelated += 1
            self.book.mark_mail_seen(item.key, self.clock())
        return result

    async def handle_mail(self, mail: Classified) -> bool:
        """Record ``mail`` on its case and escalate; False if it answers no case of ours."""
        case = self.book.get(mail.case_id) if mail.case_id else None
        if case is None or mail.kind is MailKind.UNRELATED:
            return False
        async with self._lock:
            now = self.clock()
            detail = mail.summary + (f"\n{mail.text}" if mail.text else "")
            event = CaseEvent(now, str(mail.kind), detail)
            if case.kind == "notice" or mail.kind in (MailKind.TRANSIENT, MailKind.AUTO_REPLY):
                self.book.add_event(case.id, event)
                return True
            if mail.kind is MailKind.HUMAN_REPLY:
                if not self.book.transition(case.id, _ANSWERABLE, event, state=CaseState.ANSWERED):
                    self.book.add_event(case.id, event)
                return True
            if not self.book.transition(case.id, _BOUNCEABLE, event, state=CaseState.BOUNCED):
                self.book.add_event(case.id, event)  # escalated already
                return True
            if mail.kind is MailKind.OUR_MAIL_REFUSED:
                await self._our_mail_refused(case, mail, now)
                return True
            if mail.kind is not MailKind.DEAD_CONTACT and mail.kind is not MailKind.MAILBOX_FULL:
                await self._admin_decides(case, mail, now)  # UNKNOWN: never a block
                return True
            evidence = self._second_unreachable_signal(case, mail, now)
            if evidence is None:
                return True
            contact = case.lookup or NetworkContact(
                "0.0.0.0", None, None, None, None, None, case.contact, None, "none", now
            )
            addresses = [a.address for a in self.book.addresses(case.id)]
            decision = escalate(
                contact,
                addresses,
                self.settings.policy,
                cause=mail.summary or str(mail.kind),
                full=evidence == "full",
                bounced=case.contact,
            )
            await self._escalate(case, decision, bounce=mail.summary)
        return True

    def _second_unreachable_signal(self, case: Case, mail: Classified, now: float) -> str | None:
        """Whether a dead-contact or mailbox-full bounce is the second independent sign that
        its contact cannot be reached: ``"dead"`` (a dead-contact bounce among the two),
        ``"full"`` (two full mailboxes), or None for a first sign, which is only remembered.

        One bounce may be a passing misconfiguration or a mailbox that fills for a day; a
        network block needs the contact found unreachable again by a later, separate
        complaint (another case). A first dead sign is remembered for three periods. A
        first full one also pauses complaints to the contact for ``mailbox_full_pause``
        and is remembered for that long and three periods more: the first complaint after
        the pause is the one that can confirm it. Nothing is blocked on a first sign.
        """
        full = mail.kind is MailKind.MAILBOX_FULL
        contact = case.contact
        signs = {kind: self.book.held(f"{kind}:{contact}", now) for kind in ("dead", "full")}
        others = {kind for kind, held in signs.items() if held and held[1] != case.id}
        if others:
            return "full" if full and "dead" not in others else "dead"
        if any(signs.values()):
            return None  # this case's own first sign, noted already
        pause = self.settings.policy.mailbox_full_pause if full else 0.0
        remember = now + pause + 3 * self.settings.period
        self.book.hold(f"{'full' if full else 'dead'}:{contact}", remember, case.id)
        if pause and contact:
            why = f"abuse mailbox full ({mail.summary})"
            self.book.hold(f"contact:{contact}", now + pause, why)
        if full:
            paused = f"no complaint to it for {pause / 86400:g} days, " if pause else ""
            said = (
                f"first sign that {contact} is full: {paused}nothing blocked; a block needs"
                " a full or dead bounce of a later complaint"
            )
        else:
            said = (
                f"first sign that {contact} is dead; a block needs a second one"
                " (the next complaint's bounce)"
            )
        self.book.add_event(case.id, CaseEvent(now, "full_once" if full else "dead_once", said))
        log.info("abuse desk: case %s: %s", case.id, said)
        return None

    async def _our_mail_refused(self, case: Case, mail: Classified, now: float) -> None:
        """Our own mail was refused: the admin is told and the relay paused for a period;
        the recipient is never blamed (no block, no postmaster notice, no contact hold)."""
        relay = self.settings.relay
        key = f"relay:{relay.host}:{relay.port}"
        until = now + self.settings.period
        self.book.hold(key, until, f"case {case.id}: {mail.summary}"[:300])
        said = [
            f"our mail was refused ({mail.summary})",
            f"no complaint goes through the relay {relay.host} until {_utc(until):%Y-%m-%d %H:%M}"
            " UTC (fix the cause, then `bruteguard abuse send CASE` sends by hand)",
        ]
        await self._tell_admin(case, "refused", said)

    async def _admin_decides(self, case: Case, mail: Classified, now: float) -> None:
        """A failure not understood: shown in `abuse followups`, nothing automatic."""
        said = [f"a bounce not understood; decide by hand ({mail.summary})"]
        await self._tell_admin(case, "decide", said)

    async def _tell_admin(self, case: Case, flag: str, said: list[str]) -> None:
        fresh = self.book.get(case.id) or case
        self.book.update(
            case.id,
            CaseEvent(self.clock(), flag, "; ".join(said)),
            flags=tuple(dict.fromkeys((*fresh.flags, flag))),
        )
        log.warning("abuse desk: case %s: %s", case.id, "; ".join(said))
        if self.notify is not None and self.settings.notify_abuse:
            from bruteguard.notify import escalation_message

            await self.notify(*escalation_message(f"abuse desk: case {case.id}", said))

    def relay_paused(self, now: float) -> tuple[float, str] | None:
        """Until when, and why, the desk sends nothing through its relay on its own."""
        relay = self.settings.relay
        return self.book.held(f"relay:{relay.host}:{relay.port}", now)

    async def _escalate(self, case: Case, decision: Escalation, bounce: str = "") -> None:
        now = self.clock()
        said: list[str] = [decision.reason]
        if decision.block:
            until = now + decision.block_for
            bans = [
                Ban(
                    target,
                    self.settings.block_jail,
                    now,
                    until,
                    0,
                    f"abuse desk: {decision.reason}; case {case.id}",
                )
                for target in decision.block
            ]
            await self.block(bans)
            said.append(f"blocked {', '.join(decision.block)} until {_utc(until):%Y-%m-%d}")
        if decision.pause_contact_for and case.contact:
            self.book.hold(
                f"contact:{case.contact}", now + decision.pause_contact_for, decision.reason
            )
            said.append(
                f"no complaint to {case.contact} for {decision.pause_contact_for / 86400:g} days"
            )
        flags = list(case.flags)
        if decision.call is not None:
            flags.append("call")
            said.append(f"call first: {decision.call or 'no phone number known'}")
        if decision.report_form:
            flags.append("report")
            said.append(f"report the inaccurate contact: {decision.report_form}")
        self.book.update(
            case.id,
            CaseEvent(now, "escalated", "; ".join(said)),
            flags=tuple(dict.fromkeys(flags)),
        )
        if decision.postmaster and case.contact:
            self._postmaster_notice(case, decision.postmaster, bounce or decision.reason, now)
        log.warning("abuse desk: case %s: %s", case.id, "; ".join(said))
        if self.notify is not None and self.settings.notify_abuse:
            from bruteguard.notify import escalation_message

            await self.notify(*escalation_message(f"abuse desk: case {case.id}", said))

    def _postmaster_notice(self, case: Case, domain: str, why: str, now: float) -> None:
        """One notice per domain a year: its abuse mailbox is broken (RFC 2142)."""
        key = f"postmaster:{domain}"
        if self.book.held(key, now) is not None:
            return
        notice_id = new_case_id(now)
        try:
            message = render_postmaster_notice(
                reporter=self.settings.reporter,
                domain=domain,
                broken=case.contact or "",
                why=why,
                case_id=notice_id,
                now=_utc(now),
            )
        except UnsafeHeader as error:
            log.warning("abuse desk: no postmaster notice to %s: %s", printable(domain), error)
            return
        self.book.hold(key, now + 365 * 86400, f"notice {notice_id}")
        state = CaseState.QUEUED if self.settings.mode == "send" else CaseState.DRAFT
        self.book.open_case(
            Case(
                id=notice_id,
                kind="notice",
                state=state,
                mode=self.settings.mode,  # type: ignore[arg-type]
                contact=f"postmaster@{domain}",
                lookup=case.lookup,
                opened=now,
                updated=now,
                due=now,
                message=message.as_bytes(),
            )
        )
        self.book.add_event(case.id, CaseEvent(now, "notice", f"postmaster notice {notice_id}"))


_ANSWERABLE = [CaseState.SENT, CaseState.UNSURE, CaseState.SENDING, CaseState.BOUNCED]
_BOUNCEABLE = [CaseState.SENT, CaseState.UNSURE, CaseState.SENDING, CaseState.ANSWERED]


def _utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


def _network_label(contact: NetworkContact | None) -> str | None:
    """``NAME (CIDR)`` for the subject, from values the lookup already validated."""
    if contact is None:
        return None
    parts = [p for p in (contact.name, contact.network) if p]
    if not parts:
        return None
    label = parts[0] if len(parts) == 1 else f"{parts[0]} ({parts[1]})"
    return label[:120]
