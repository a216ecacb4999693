"""The abuse desk from a ban to a case, a complaint, its bounce and the escalation.

Real parts throughout: a real RDAP registry on loopback (abusekit.RdapServer) whose
answers the tests write, a real SMTP relay (aiosmtpd) that is down or up, a real SQLite
store, a real Maildir the bounces are delivered into, and bounces written the way Postfix
writes them. Only time is the tests' own (the desk's clock), so "a day later" is instant.
"""

from __future__ import annotations

import asyncio
import email
import json
import mailbox
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.policy import default
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from abusekit import (
    UNREACHABLE_WHOIS,
    RdapServer,
    SmtpSink,
    bootstrap,
    postfix_bounce,
    reply_to,
)
from bruteguard.abuse.case import CaseState
from bruteguard.abuse.desk import AbuseDesk, desk_settings
from bruteguard.config import config_from_dict
from bruteguard.model import Ban, Failure
from bruteguard.store.sqlite import SqliteStore

T0 = 1_795_420_800.0  # 2026-11-23 08:00 UTC
NET = "198.51.100.0/25"  # EXAMPLE-NET, NL, abuse@example.net
A1, A2 = "198.51.100.7", "198.51.100.8"
ALLOWED = "198.51.100.9"  # in EXAMPLE-NET, but in the jail's ignoreip
QUIET = "198.51.100.200"  # QUIET-NET 198.51.100.128/25, US, no abuse contact
DEAD = "203.0.113.5"  # DEAD-NET 203.0.113.0/24, DE, no abuse contact
CONTACT = "abuse@example.net"


@dataclass
class Env:
    desk: AbuseDesk
    store: SqliteStore
    rdap: RdapServer
    relay: SmtpSink
    maildir: Path
    blocks: list[Ban] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    now: list[float] = field(default_factory=lambda: [T0])
    epoch: float = T0

    def at(self, seconds: float) -> None:
        self.now[0] = self.epoch + seconds

    def run(self, coroutine: Any) -> Any:
        return asyncio.run(coroutine)

    def deliver(self, raw: bytes) -> None:
        mailbox.Maildir(self.maildir, create=True).add(raw)

    def lookups(self) -> list[str]:
        return [path for _, path in self.rdap.requests if path.startswith("/rdap/ip/")]

    def mails(self) -> list[tuple[list[str], email.message.Message]]:
        return list(self.relay.received)


def _ban(address: str, start: float = T0, failures: int = 5, jail: str = "sshd") -> Ban:
    return Ban(address, jail, start, start + 3600, failures, f"{failures} failures in 10m")


def _failures(store: SqliteStore) -> None:
    """Each attacker's lines, and a line from A2 whose user name names A1 (a framing
    attempt): it belongs to A2's report, never to A1's."""
    lines = []
    for n, address in enumerate((A1, A2, A1, A2, ALLOWED, QUIET, DEAD)):
        lines.append(
            Failure(
                T0 - 300 + n,
                address,
                "sshd",
                "root",
                f"Nov 23 07:55:0{n} host sshd[{100 + n}]: Failed password for root from"
                f" {address} port 4{n}000 ssh2",
            )
        )
    lines.append(
        Failure(
            T0 - 100,
            A2,
            "sshd",
            f"x from {A1}",
            f"Nov 23 07:58:20 host sshd[200]: Failed password for invalid user x from {A1}"
            f" from {A2} port 40200 ssh2",
        )
    )
    store.add_failures(lines)


def _config(tmp: Path, rdap: RdapServer, relay: SmtpSink, mode: str, **abuse: Any) -> Any:
    return config_from_dict(
        {
            "store": str(tmp / "bruteguard.db"),
            "enforcers": ["dry-run"],
            "jails": {"sshd": {"ignoreip": [ALLOWED], "backend": "file", "logpath": ["/x"]}},
            "abuse": {
                "enabled": True,
                "mode": mode,
                "sender": "bruteguard@example.org",
                "org": "Example Hosting",
                "phone": "+31 20 555 0100",
                "hold": "10m",
                "smtp": {"host": "127.0.0.1", "port": relay.port, "starttls": "off"},
                "lookup": {
                    "bootstrap": f"{rdap.url}/bootstrap/",
                    "whois": UNREACHABLE_WHOIS,
                    "timeout": "2s",
                    "deadline": "5s",
                },
                "mailbox": {"kind": "maildir", "path": str(tmp / "Maildir")},
                **abuse,
            },
        }
    )


@pytest.fixture
def make_env(tmp_path: Path) -> Iterator[Any]:
    opened: list[Any] = []

    def make(mode: str = "send", relay_up: bool = True, epoch: float = T0, **abuse: Any) -> Env:
        rdap = RdapServer()
        rdap.routes.update(bootstrap(f"{rdap.url}/rdap/", ["198.51.100.0/24", "203.0.113.0/24"]))
        rdap.add_network(
            NET, [A1, A2, ALLOWED], name="EXAMPLE-NET", country="NL",
            email_address=CONTACT, phone="+31 20 555 0199",
        )  # fmt: skip
        rdap.add_network("198.51.100.128/25", [QUIET], name="QUIET-NET", country="US",
                         phone="+1 555 0100", port43="whois.arin.net")  # fmt: skip
        rdap.add_network("203.0.113.0/24", [DEAD], name="DEAD-NET", country="DE")
        rdap.__enter__()
        opened.append(rdap)
        relay = SmtpSink()
        if relay_up:
            relay.start()
        opened.append(relay)
        config = _config(tmp_path, rdap, relay, mode, **abuse)
        store = SqliteStore(config.store, clock=lambda: env.now[0])
        opened.append(store)
        _failures(store)
        env = Env(None, store, rdap, relay, tmp_path / "Maildir", now=[epoch], epoch=epoch)  # type: ignore[arg-type]

        async def block(bans: list[Ban]) -> None:
            store.add_bans(bans)
            env.blocks.extend(bans)

        async def notify(title: str, body: str) -> None:
            env.notes.append((title, body))

        env.desk = AbuseDesk(desk_settings(config), store, block, notify)
        return env

    yield make
    for thing in reversed(opened):
        if isinstance(thing, RdapServer):
            thing.__exit__(None, None, None)
        elif isinstance(thing, SmtpSink):
            thing.stop()
        else:
            thing.close()


def _xarf(message: email.message.Message) -> list[dict[str, Any]]:
    return [
        json.loads(part.get_content())
        for part in message.walk()
        if part.get_content_type() == "application/json"
    ]


def _text(message: email.message.Message) -> str:
    return next(p for p in message.walk() if p.get_content_type() == "text/plain").get_content()


def test_two_addresses_of_one_contact_make_one_complaint_with_only_their_lines(
    make_env: Any,
) -> None:
    env = make_env("send")
    first = env.run(env.desk.report(_ban(A1)))
    env.at(60)
    second = env.run(env.desk.report(_ban(A2, T0 + 60)))
    assert first == second, "addresses sharing a contact fold into one case"
    env.at(300)
    env.run(env.desk.tick())
    assert env.mails() == [], "the case collects for `hold` before it is sent"

    env.at(601)
    env.run(env.desk.tick())
    (rcpts, message), *more = env.mails()
    assert not more and rcpts == [CONTACT]
    case = env.desk.book.get(first[0])
    assert case.state is CaseState.SENT
    assert message["Message-ID"] == f"<bg-{case.id}@example.org>"
    assert message["X-Bruteguard-Case"] == case.id
    assert case.id in message["Subject"] and "EXAMPLE-NET" in message["Subject"]
    reports = {r["source_identifier"]: r for r in _xarf(message)}
    assert set(reports) == {A1, A2}
    assert all(
        r["type"] == "login_attack" and r["category"] == "connection" for r in reports.values()
    )
    import base64

    evidence = {
        a: base64.b64decode(r["evidence"][0]["payload"]).decode() for a, r in reports.items()
    }
    assert "port 40000" in evidence[A1] and "port 42000" in evidence[A1]
    assert f"user x from {A1}" not in evidence[A1], "a line naming A1 is A2's, not A1's"
    assert f"user x from {A1}" in evidence[A2]
    assert ALLOWED not in _text(message) and QUIET not in _text(message)
    # The admin heard of each ban with the lookup's summary.
    assert len(env.notes) == 2
    title, body = env.notes[0]
    assert A1 in title and "EXAMPLE-NET" in body and CONTACT in body and case.id in body


def test_draft_mode_writes_the_case_and_sends_nothing_until_the_admin_says_so(
    make_env: Any,
) -> None:
    env = make_env("draft")
    (case_id,) = env.run(env.desk.report(_ban(A1)))
    env.at(601)
    env.run(env.desk.tick())
    case = env.desk.book.get(case_id)
    assert case.state is CaseState.DRAFT and case.message is not None
    draft = email.message_from_bytes(case.message, policy=default)
    assert draft["To"] == CONTACT
    assert parsedate_to_datetime(draft["Date"]).timestamp() == T0 + 601
    env.at(7200)
    env.run(env.desk.tick())
    assert env.mails() == [], "a draft is never sent on its own"

    assert env.run(env.desk.send_case(case_id, drafts=True)) is CaseState.SENT
    assert env.run(env.desk.send_case(case_id, drafts=True)) is None, "a sent case is sent once"
    ((_, sent),) = env.mails()
    assert parsedate_to_datetime(sent["Date"]).timestamp() == T0 + 7200, "dated when sent"


def test_an_allow_listed_address_is_never_reported_or_even_looked_up(make_env: Any) -> None:
    env = make_env("send", hold="0s")
    assert env.run(env.desk.report(_ban(ALLOWED))) == []
    env.at(10)
    env.run(env.desk.tick())
    assert env.lookups() == [] and env.mails() == []
    assert env.desk.book.cases() == []


def test_an_address_is_reported_once_per_period_and_a_contact_hears_once_per_period(
    make_env: Any,
) -> None:
    env = make_env("send", hold="0s")
    (case_id,) = env.run(env.desk.report(_ban(A1)))
    env.run(env.desk.tick())
    assert len(env.mails()) == 1
    env.at(3600)
    assert env.run(env.desk.report(_ban(A1, T0 + 3600))) == [case_id], "same address, same day"
    (later,) = env.run(env.desk.report(_ban(A2, T0 + 3600)))
    assert later != case_id
    env.run(env.desk.tick())
    assert len(env.mails()) == 1, "the contact heard from us today: the next mail waits"
    env.at(86400 + 1)
    env.run(env.desk.tick())
    assert len(env.mails()) == 2
    assert [r["source_identifier"] for r in _xarf(env.mails()[1][1])] == [A2]


def test_lookups_come_from_the_store_while_fresh(make_env: Any) -> None:
    env = make_env("draft")
    env.run(env.desk.report(_ban(A1)))
    env.run(env.desk.report(_ban(A2)))
    assert env.lookups() == [f"/rdap/ip/{A1}"], "A2 is in the network already looked up"
    env.at(8 * 86400)
    env.run(env.desk.contact_of(A2))
    assert env.lookups()[-1] == f"/rdap/ip/{A2}", "a week later the answer is stale"


@pytest.mark.parametrize("years", [-25, 0, 75])
def test_a_cached_contact_ages_by_the_desk_clock_whatever_the_calendar_says(
    make_env: Any, years: int
) -> None:
    """The store's clock stamps a lookup and judges its age: with that clock decades away
    from the wall clock, a fresh entry is still used and a stale one still looked up again
    (a lookup stamped by the wall clock would be stale at once, or fresh for decades)."""
    epoch = T0 + years * 365 * 86400
    env = make_env("draft", epoch=epoch)
    env.run(env.desk.report(_ban(A1, start=epoch)))
    env.run(env.desk.contact_of(A2))
    assert env.lookups() == [f"/rdap/ip/{A1}"], "fresh: A2's network is in the store"
    (contact,) = [env.desk.book.cached_contact(A1, epoch)]
    assert contact is not None and contact.looked_up == epoch
    env.at(8 * 86400)
    env.run(env.desk.contact_of(A2))
    assert env.lookups()[-1] == f"/rdap/ip/{A2}", "a week later the answer is stale"


def test_relay_down_queues_the_complaint_across_a_restart_and_sends_it_once(
    make_env: Any,
) -> None:
    env = make_env("send", relay_up=False, hold="0s")
    (case_id,) = env.run(env.desk.report(_ban(A1)))
    env.run(env.desk.tick())
    case = env.desk.book.get(case_id)
    assert case.state is CaseState.QUEUED and case.attempts == 1 and "relay" in case.error.lower()

    # A restart: a new desk on the same store; the relay comes back.
    settings, store = env.desk.settings, env.store
    sent: list[Ban] = []

    async def block(bans: list[Ban]) -> None:
        sent.extend(bans)

    desk = AbuseDesk(settings, store, block)  # the store carries the tests' clock
    desk.recover()
    env.relay.start()
    env.at(30)
    env.run(desk.tick())
    assert env.mails() == [], "the retry waits for its time"
    env.at(61)
    env.run(desk.tick())
    env.at(4000)
    env.run(desk.tick())
    env.run(desk.tick())
    assert len(env.mails()) == 1, "sent after the relay returned, and never twice"
    assert desk.book.get(case_id).state is CaseState.SENT


def test_a_crash_while_sending_leaves_the_case_unsure_and_unsent(make_env: Any) -> None:
    env = make_env("send", hold="0s")
    (case_id,) = env.run(env.desk.report(_ban(A1)))
    case = env.desk.book.get(case_id)
    env.desk.finalise(case, env.now[0])
    # The process died right after claiming the case for the relay.
    assert env.desk.book.transition(case_id, [CaseState.QUEUED], state=CaseState.SENDING)
    env.desk.recover()
    env.at(3600)
    env.run(env.desk.tick())
    case = env.desk.book.get(case_id)
    assert case.state is CaseState.UNSURE and "unsure" in case.flags
    assert env.mails() == []


def test_two_senders_racing_for_one_case_send_it_once(make_env: Any) -> None:
    env = make_env("draft", hold="0s")
    (case_id,) = env.run(env.desk.report(_ban(A1)))
    env.run(env.desk.tick())

    async def race() -> list[Any]:
        return await asyncio.gather(*(env.desk.send_case(case_id, drafts=True) for _ in range(5)))

    results = env.run(race())
    assert results.count(CaseState.SENT) == 1 and results.count(None) == 4
    assert len(env.mails()) == 1


def test_no_abuse_contact_blocks_the_network_for_30_days(make_env: Any) -> None:
    env = make_env("send", hold="0s")
    (case_id,) = env.run(env.desk.report(_ban(DEAD)))
    case = env.desk.book.get(case_id)
    assert case.state is CaseState.NO_CONTACT and case.contact is None
    (block,) = env.blocks
    assert block.ip == "203.0.113.0/24" and block.jail == "recidive"
    assert block.until - block.start == 30 * 86400 and block.failures == 0
    assert env.mails() == []
    assert any("203.0.113.0/24" in body for _, body in env.notes)


def test_no_abuse_contact_in_a_call_first_country_is_a_call_not_a_block(make_env: Any) -> None:
    env = make_env("send", hold="0s")
    (case_id,) = env.run(env.desk.report(_ban(QUIET)))
    case = env.desk.book.get(case_id)
    assert env.blocks == []
    assert "call" in case.flags and "report" in case.flags  # ARIN takes inaccuracy reports
    events = " ".join(e.detail for e in env.desk.book.events(case_id))
    assert "+1 555 0100" in events


def _sent_case(env: Env) -> tuple[str, bytes]:
    (case_id,) = env.run(env.desk.report(_ban(A1)))
    env.at(601)
    env.run(env.desk.tick())
    return case_id, env.desk.book.get(case_id).message


def test_a_dead_contact_needs_two_bounces_from_separate_complaints_to_escalate(
    make_env: Any,
) -> None:
    env = make_env("send")
    case_id, sent = _sent_case(env)
    env.deliver(postfix_bounce(sent, CONTACT, "5.1.1"))
    result = env.run(env.desk.poll())
    assert (result.read, result.matched) == (1, 1)
    assert env.desk.book.get(case_id).state is CaseState.BOUNCED
    # One bounce is one signal: no block, no postmaster notice, the next complaint still goes.
    assert env.blocks == []
    assert [c for c in env.desk.book.cases() if c.kind == "notice"] == []
    assert "dead_once" in [e.kind for e in env.desk.book.events(case_id)]
    env.deliver(postfix_bounce(sent, CONTACT, "5.1.1"))  # the same bounce again: same case
    env.run(env.desk.poll())
    assert env.blocks == []

    # A period later, a new complaint to the same contact bounces too: the second signal.
    env.at(86400 + 60)
    (second,) = env.run(env.desk.report(_ban(A2, T0 + 86400 + 60)))
    assert second != case_id
    env.at(86400 + 700)
    env.run(env.desk.tick())
    again = env.desk.book.get(second).message
    env.deliver(postfix_bounce(again, CONTACT, "5.1.1"))
    env.run(env.desk.poll())
    (block,) = env.blocks
    assert block.ip == NET and block.until - block.start == 30 * 86400
    notices = [c for c in env.desk.book.cases() if c.kind == "notice"]
    assert len(notices) == 1 and notices[0].contact == "postmaster@example.net"
    env.at(86400 + 800)
    env.run(env.desk.tick())
    to_postmaster = [m for rcpts, m in env.mails() if rcpts == ["postmaster@example.net"]]
    assert len(to_postmaster) == 1 and CONTACT in _text(to_postmaster[0])

    # The dead contact gets no more complaints.
    env.at(3 * 86400)
    assert env.run(env.desk.report(_ban(A1, T0 + 3 * 86400))) == []


FULL = "552 5.2.2 <{rcpt}>: Mailbox full, quota exceeded"


def _complaint_after(env: Env, day: float, address: str) -> tuple[str, bytes]:
    """A new complaint to CONTACT about ``address``, ``day`` days in, sent."""
    env.at(day * 86400 + 60)
    (case_id,) = env.run(env.desk.report(_ban(address, T0 + day * 86400 + 60)))
    env.at(day * 86400 + 700)
    env.run(env.desk.tick())
    return case_id, env.desk.book.get(case_id).message


def test_a_full_mailbox_pauses_the_contact_and_blocks_nothing(make_env: Any) -> None:
    env = make_env("send")
    case_id, sent = _sent_case(env)
    env.deliver(postfix_bounce(sent, CONTACT, "5.2.2", FULL))
    env.run(env.desk.poll())
    assert env.desk.book.get(case_id).state is CaseState.BOUNCED
    assert env.blocks == []
    assert [c for c in env.desk.book.cases() if c.kind == "notice"] == []
    assert "full_once" in [e.kind for e in env.desk.book.events(case_id)]
    # No complaint to the full mailbox for mailbox_full_pause (30 days) ...
    env.at(29 * 86400)
    assert env.run(env.desk.report(_ban(A2, T0 + 29 * 86400))) == []
    # ... and the first one after it is sent as usual.
    second, _ = _complaint_after(env, 31, A2)
    assert env.desk.book.get(second).state is CaseState.SENT
    assert env.blocks == []


@pytest.mark.parametrize(
    ("status", "diagnostic", "postmaster"),
    [("5.2.2", FULL, False), ("5.1.1", "550 5.1.1 <{rcpt}>: User unknown", True)],
)
def test_full_then_unreachable_again_after_the_pause_escalates(
    make_env: Any, status: str, diagnostic: str, postmaster: bool
) -> None:
    """A full mailbox is a first sign; the complaint after the pause bouncing full or dead is
    the second: a block, and a postmaster notice only when a bounce said "dead"."""
    env = make_env("send")
    _, sent = _sent_case(env)
    env.deliver(postfix_bounce(sent, CONTACT, "5.2.2", FULL))
    env.run(env.desk.poll())
    _, again = _complaint_after(env, 31, A2)
    env.deliver(postfix_bounce(again, CONTACT, status, diagnostic))
    env.run(env.desk.poll())
    (block,) = env.blocks
    assert block.ip == NET and block.until - block.start == 30 * 86400
    notices = [c.contact for c in env.desk.book.cases() if c.kind == "notice"]
    assert notices == (["postmaster@example.net"] if postmaster else [])
    assert env.desk.book.held(f"contact:{CONTACT}", env.now[0]) is not None


def test_a_dead_sign_then_a_full_mailbox_escalates_as_dead(make_env: Any) -> None:
    env = make_env("send")
    _, sent = _sent_case(env)
    env.deliver(postfix_bounce(sent, CONTACT, "5.1.1"))
    env.run(env.desk.poll())
    assert env.blocks == []
    _, again = _complaint_after(env, 1, A2)
    env.deliver(postfix_bounce(again, CONTACT, "5.2.2", FULL))
    env.run(env.desk.poll())
    (block,) = env.blocks
    assert block.ip == NET
    notices = [c.contact for c in env.desk.book.cases() if c.kind == "notice"]
    assert notices == ["postmaster@example.net"]


def test_a_human_reply_ends_the_case_and_an_auto_reply_does_not(make_env: Any) -> None:
    env = make_env("send")
    case_id, sent = _sent_case(env)
    env.deliver(reply_to(sent, "We received your report (ticket 4711).", auto=True))
    env.run(env.desk.poll())
    assert env.desk.book.get(case_id).state is CaseState.SENT
    env.deliver(reply_to(sent, "Thanks, the machine has been shut down."))
    env.run(env.desk.poll())
    case = env.desk.book.get(case_id)
    assert case.state is CaseState.ANSWERED and not case.is_open
    assert any("shut down" in e.detail for e in env.desk.book.events(case_id))
    assert env.blocks == []


def test_a_network_ban_reports_the_addresses_that_failed_in_it(make_env: Any) -> None:
    env = make_env("draft", hold="0s")
    touched = env.run(env.desk.report(_ban("198.51.100.0/28", T0)))
    (case_id,) = set(touched)
    assert {a.address for a in env.desk.book.addresses(case_id)} == {A1, A2}


@pytest.mark.parametrize(
    ("status", "diagnostic", "flag"),
    [
        (
            "5.7.1",
            "554 5.7.1 Service unavailable; Client host [192.0.2.25] blocked using"
            " zen.spamhaus.org",
            "refused",
        ),
        (
            "5.7.26",
            "550 5.7.26 Unauthenticated email is not accepted due to domain's DMARC policy",
            "refused",
        ),
        ("5.0.0", "550 Requested action not taken", "decide"),
        ("4.4.1", "connect to mx.example.net[192.0.2.30]:25: Connection timed out", None),
        ("2.0.0", "250 2.0.0 Ok: queued", None),
    ],
)
def test_a_bounce_that_is_not_a_dead_contact_never_blocks_or_tells_postmaster(
    make_env: Any, status: str, diagnostic: str, flag: str | None
) -> None:
    env = make_env("send")
    case_id, sent = _sent_case(env)
    env.deliver(postfix_bounce(sent, CONTACT, status, diagnostic))
    env.run(env.desk.poll())
    env.deliver(postfix_bounce(sent, CONTACT, status, diagnostic))  # twice: still nothing
    env.run(env.desk.poll())
    case = env.desk.book.get(case_id)
    assert env.blocks == []
    assert [c for c in env.desk.book.cases() if c.kind == "notice"] == []
    assert env.desk.book.held(f"contact:{CONTACT}", env.now[0]) is None, "never blamed"
    told = [title for title, _ in env.notes if title.startswith("bruteguard: abuse desk")]
    if flag is None:
        assert case.state is CaseState.SENT and told == []
    else:
        assert case.state is CaseState.BOUNCED and flag in case.flags
        assert told == [f"bruteguard: abuse desk: case {case_id}"], "the admin is told once"


def test_our_mail_refused_pauses_the_relay_until_the_period_ends(make_env: Any) -> None:
    env = make_env("send")
    _, sent = _sent_case(env)
    env.deliver(postfix_bounce(sent, CONTACT, "5.7.1", "554 5.7.1 blocked using zen.spamhaus.org"))
    env.run(env.desk.poll())
    assert env.desk.relay_paused(env.now[0]) is not None
    # Another complaint, to another contact, waits while the relay is paused.
    env.rdap.add_network("198.51.100.128/25", [QUIET], name="QUIET-NET", country="NL",
                         email_address="abuse@quiet.example")  # fmt: skip
    (other,) = env.run(env.desk.report(_ban(QUIET, T0 + 700)))
    env.at(2000)
    env.run(env.desk.tick())
    assert env.desk.book.get(other).state is CaseState.QUEUED
    assert [rcpts for rcpts, _ in env.mails()] == [[CONTACT]], "nothing more went out"
    env.at(86400 + 2000)  # the pause ends with the period, then the queue moves
    assert env.desk.relay_paused(env.now[0]) is None
    env.run(env.desk.tick())
    assert env.desk.book.get(other).state is CaseState.SENT
    assert [rcpts for rcpts, _ in env.mails()] == [[CONTACT], ["abuse@quiet.example"]]


def test_the_mailbox_is_the_files_settings_with_the_password_from_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "imap.password"
    secret.write_text("s3cret imap\n", encoding="utf-8")
    mailbox = {
        "kind": "imap",
        "host": "imap.example.org",
        "port": 143,
        "tls": "starttls",
        "username": "abuse",
        "password_file": str(secret),
        "folder": "Replies",
    }
    config = config_from_dict(
        {
            "store": str(tmp_path / "bruteguard.db"),
            "abuse": {
                "enabled": True,
                "sender": "bruteguard@example.org",
                "org": "Example Hosting",
                "smtp": {"host": "127.0.0.1", "port": 2525, "starttls": "off"},
                "mailbox": mailbox,
            },
        }
    )
    box = desk_settings(config).mailbox
    assert (box.kind, box.host, box.port, box.tls, box.username, box.folder) == (
        "imap", "imap.example.org", 143, "starttls", "abuse", "Replies",
    )  # fmt: skip
    assert box.password == "s3cret imap" and "s3cret" not in repr(box)
