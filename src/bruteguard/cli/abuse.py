"""``bruteguard abuse …``: the admin's side of the abuse desk (docs/abuse.md).

Everything here reads and writes the same store the daemon uses; sending claims a case
with a compare-and-set, so running ``abuse send`` while the daemon runs sends it once.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from bruteguard.cli.group import command_group
from bruteguard.config import Config, load_config
from bruteguard.errors import BruteguardError, NotRunningError
from bruteguard.safe_text import printable

__all__ = ["AbuseCommandError", "add_abuse_commands", "send_now"]


def _run(awaitable: Any) -> Any:
    """asyncio, imported when an abuse command runs: every other command starts without it."""
    import asyncio

    return asyncio.run(awaitable)


class AbuseCommandError(BruteguardError):
    """An ``abuse`` command cannot do what was asked."""


def _when(moment: float | None) -> str:
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _desk(config: Config, *, need_enabled: bool = True) -> Any:
    """An offline desk on the configured store; its network blocks go to the store only
    (the daemon enforces them when it next starts or reconciles)."""
    from bruteguard.abuse.desk import AbuseDesk, desk_settings
    from bruteguard.store.sqlite import SqliteStore

    if need_enabled and not config.abuse.enabled:
        raise AbuseCommandError(
            f"the abuse desk is not enabled: {config.where_to_set('[abuse] enabled = true')}"
        )
    store = SqliteStore(config.store)

    async def store_only(bans: list[Any]) -> None:
        store.add_bans(bans)

    return AbuseDesk(desk_settings(config), store, store_only)


def _book(config: Config) -> Any:
    from bruteguard.store.cases import CaseBook
    from bruteguard.store.sqlite import SqliteStore

    if not Path(config.store).exists():
        raise AbuseCommandError(f"no store at {config.store}: nothing has been reported yet")
    return CaseBook(SqliteStore(config.store))


def _contact_view(contact: Any) -> dict[str, Any]:
    return msgspec.structs.asdict(contact)


def _cmd_lookup(args: argparse.Namespace) -> int:
    from bruteguard.abuse.desk import lookup_servers
    from bruteguard.abuse.lookup import lookup

    config = load_config(args.config)
    if config.abuse.enabled and not args.no_cache:
        desk = _desk(config)
        contact = _run(desk.contact_of(args.address, fresh=args.fresh))
    else:
        contact = _run(lookup(args.address, lookup_servers(config.abuse.lookup)))
    if args.json:
        print(msgspec.json.encode(_contact_view(contact)).decode())
        return 0
    rows = [
        ("address", contact.address),
        ("network", contact.network),
        ("name", contact.name),
        ("country", contact.country),
        ("ASN", f"AS{contact.asn}" if contact.asn else None),
        ("registry", contact.registry),
        ("abuse e-mail", contact.abuse_email or "none usable"),
        ("abuse phone", contact.abuse_phone),
        ("found by", {"none": "nothing: no usable contact"}.get(contact.source, contact.source)),
        ("looked up", _when(contact.looked_up)),
    ]
    for label, value in rows:
        print(f"{label + ':':<14}{printable(str(value)) if value is not None else '-'}")
    return 0


def _cmd_cases(args: argparse.Namespace) -> int:
    from bruteguard.abuse.case import OPEN_STATES

    book = _book(load_config(args.config))
    cases = book.cases(states=OPEN_STATES if args.open else None, limit=args.limit)
    if args.json:
        print(msgspec.json.encode([_case_view(book, c, full=False) for c in cases]).decode())
        return 0
    if not cases:
        print("no open cases" if args.open else "no cases")
        return 0
    print(f"{'CASE':<18} {'STATE':<10} {'OPENED':<21} {'ADDRESSES':>9}  CONTACT / NETWORK")
    for case in cases:
        network = case.lookup.network if case.lookup else None
        flags = f" [{', '.join(case.flags)}]" if case.flags else ""
        print(
            f"{case.id:<18} {case.state!s:<10} {_when(case.opened):<21} "
            f"{len(book.addresses(case.id)):>9}  {case.contact or 'nobody'}"
            f" ({printable(network or '?')}){flags}"
        )
    return 0


def _case_view(book: Any, case: Any, *, full: bool) -> dict[str, Any]:
    view = {
        "id": case.id,
        "kind": case.kind,
        "state": str(case.state),
        "mode": case.mode,
        "contact": case.contact,
        "opened": case.opened,
        "due": case.due,
        "sent": case.sent,
        "attempts": case.attempts,
        "error": case.error,
        "flags": list(case.flags),
        "lookup": _contact_view(case.lookup) if case.lookup else None,
        "addresses": [msgspec.structs.asdict(a) for a in book.addresses(case.id)],
    }
    if full:
        view["events"] = [msgspec.structs.asdict(e) for e in book.events(case.id)]
        view["message"] = case.message.decode("utf-8", "replace") if case.message else None
    return view


def _get_case(book: Any, case_id: str) -> Any:
    case = book.get(case_id)
    if case is None:
        raise AbuseCommandError(f"no case {printable(case_id)!r} (see `bruteguard abuse cases`)")
    return case


def _cmd_show(args: argparse.Namespace) -> int:
    book = _book(load_config(args.config))
    case = _get_case(book, args.case)
    if args.raw:
        if case.message is None:
            raise AbuseCommandError(f"case {case.id} has no message yet ({case.state})")
        sys.stdout.buffer.write(case.message)
        return 0
    view = _case_view(book, case, full=True)
    if args.json:
        print(msgspec.json.encode(view).decode())
        return 0
    print(f"case {case.id}: {case.kind} to {case.contact or 'nobody'}, {case.state} ({case.mode})")
    if case.lookup:
        c = case.lookup
        print(
            f"  network {printable(c.network or '?')} {printable(c.name or '')}"
            f" {c.country or ''} {('AS' + str(c.asn)) if c.asn else ''} via {c.source}"
            f"{', phone ' + printable(c.abuse_phone) if c.abuse_phone else ''}"
        )
    if case.flags:
        print(f"  to do: {', '.join(case.flags)}")
    for entry in book.addresses(case.id):
        print(f"  address {entry.address} ({entry.jail}), banned {_when(entry.first)}")
    print("history:")
    for event in book.events(case.id):
        detail = printable(event.detail).replace("\\n", "\n      ")
        print(f"  {_when(event.time)}  {event.kind}: {detail}")
    if case.message:
        print(
            "message"
            + (" (draft: `bruteguard abuse send " + case.id + "`)" if case.state == "draft" else "")
            + ":"
        )
        print(case.message.decode("utf-8", "replace"))
    return 0


async def send_now(config: Config, case_id: str) -> str:
    """Send a draft (or a queued case) now: ``abuse send`` and the dashboard's button. The
    state it reached (``sent``; ``queued`` when the relay failed and the daemon will retry)."""
    desk = _desk(config)
    case = _get_case(desk.book, case_id)
    if case.state == "collecting":
        desk.finalise(case, desk.clock())  # render it now instead of at its due time
    state = await desk.send_case(case.id, drafts=True)
    if state is None:
        case = desk.book.get(case.id)
        raise AbuseCommandError(f"case {case.id} is {case.state}: there is nothing to send")
    return str(state)


def _cmd_send(args: argparse.Namespace) -> int:
    state = _run(send_now(load_config(args.config), args.case))
    print(f"case {args.case}: {state}" + (" (the daemon will retry)" if state == "queued" else ""))
    return 0 if state == "sent" else 1


def _cmd_followups(args: argparse.Namespace) -> int:
    from bruteguard.abuse.policy import INACCURACY_FORMS

    book = _book(load_config(args.config))
    todo: list[dict[str, Any]] = []
    for case in book.cases(limit=1000):
        lookup = case.lookup
        if "call" in case.flags:
            todo.append({
                "case": case.id,
                "what": "call",
                "phone": lookup.abuse_phone if lookup else None,
                "network": lookup.network if lookup else None,
                "name": lookup.name if lookup else None,
                "country": lookup.country if lookup else None,
            })  # fmt: skip
        if "report" in case.flags and lookup is not None:
            todo.append({
                "case": case.id,
                "what": "report",
                "form": INACCURACY_FORMS.get(lookup.registry or ""),
                "object": lookup.network,
                "invalid": case.contact or "no abuse contact",
                "remarks": (case.error or _last_bounce(book, case.id))[:250],
            })  # fmt: skip
        if "refused" in case.flags:
            todo.append({
                "case": case.id,
                "what": "refused",
                "contact": case.contact,
                "remarks": _last_bounce(book, case.id)[:250],
            })  # fmt: skip
        if "decide" in case.flags:
            todo.append({
                "case": case.id,
                "what": "decide",
                "contact": case.contact,
                "remarks": _last_bounce(book, case.id)[:250],
            })  # fmt: skip
        if case.state in ("draft", "unsure", "rejected"):
            todo.append({"case": case.id, "what": str(case.state), "contact": case.contact})
        elif case.state == "sending":
            # A sender (daemon or `abuse send`) is at it now, or was killed mid-way: only the
            # daemon's restart turns the latter into "unsure", so the admin sees it here.
            todo.append({
                "case": case.id, "what": "sending", "contact": case.contact,
                "since": case.updated,
            })  # fmt: skip
    if args.json:
        print(msgspec.json.encode(todo).decode())
        return 0
    if not todo:
        print("nothing to follow up")
    for item in todo:
        what = item["what"]
        if what == "call":
            print(
                f"call {item['phone'] or '(no number known)'} about {item['network']}"
                f" {printable(item['name'] or '')} {item['country'] or ''}: case {item['case']}"
            )
        elif what == "report":
            print(
                f"report the inaccurate contact of {item['object']} ({item['invalid']}) at"
                f" {item['form']}: case {item['case']}\n    remarks: {printable(item['remarks'])}"
            )
        elif what == "refused":
            print(
                f"our mail to {item['contact']} was refused (our relay, not their fault);"
                f" sending is paused: case {item['case']}"
                f"\n    remarks: {printable(item['remarks'])}"
            )
        elif what == "decide":
            print(
                f"a bounce from {item['contact']} was not understood; decide by hand:"
                f" case {item['case']}\n    remarks: {printable(item['remarks'])}"
            )
        elif what == "draft":
            print(f"draft to {item['contact']}: `bruteguard abuse show {item['case']}`, then send")
        elif what == "unsure":
            print(
                f"case {item['case']} may or may not have reached {item['contact']} (stopped while"
                " sending): check the relay's log; `bruteguard abuse send` would send it again"
            )
        elif what == "sending":
            print(
                f"case {item['case']} has been handed to the relay for {item['contact']} since"
                f" {_when(item['since'])}: if no `bruteguard abuse send` or daemon is sending it"
                " now, it was stopped mid-way: check the relay's log (the daemon's next start"
                " marks it unsure)"
            )
        else:
            print(f"case {item['case']}: the relay refused the mail to {item['contact']}")
    return 0


def _last_bounce(book: Any, case_id: str) -> str:
    for event in reversed(book.events(case_id)):
        if event.kind in ("dead_contact", "mailbox_full", "our_mail_refused", "unknown"):
            return printable(event.detail.split("\n", 1)[0])
    return ""


def _cmd_poll(args: argparse.Namespace) -> int:
    from bruteguard.control import request

    config = load_config(args.config)
    try:
        result = request(config.socket, "abuse-poll")
        where = ""
    except NotRunningError:
        desk = _desk(config)
        if desk.settings.mailbox is None:
            raise AbuseCommandError("no [abuse.mailbox] is configured") from None
        import dataclasses

        result = dataclasses.asdict(_run(desk.poll()))
        where = " (bruteguard is not running: network blocks take effect when it starts)"
    kinds = ", ".join(f"{n} {k}" for k, n in sorted((result.get("kinds") or {}).items()))
    print(
        f"read {result['read']} new messages: {result['matched']} about our cases,"
        f" {result['unrelated']} unrelated" + (f" ({kinds})" if kinds else "") + where
    )
    return 0


def add_abuse_commands(command: Any, config_help: str = "configuration file") -> None:
    """``abuse`` and its subcommands, on the main parser's ``command`` factory."""
    abuse = command("abuse", "the abuse desk: lookups, cases, complaints, follow-ups", None)
    action = command_group(abuse, "abuse_command", config_help)

    lookup = action("lookup", "who runs ADDR's network and its abuse contact", _cmd_lookup)
    lookup.add_argument("address", metavar="ADDR", help="an IPv4 or IPv6 address")
    lookup.add_argument("--json", action="store_true", help="the contact as one JSON object")
    lookup.add_argument("--fresh", action="store_true", help="ignore the cached answer")
    lookup.add_argument("--no-cache", action="store_true", help="neither read nor write the store")

    cases = action("cases", "the cases, newest first", _cmd_cases)
    cases.add_argument("--open", action="store_true", help="only those still open")
    cases.add_argument(
        "--limit", type=int, default=100, metavar="N", help="at most N cases (default 100)"
    )
    cases.add_argument("--json", action="store_true", help="the cases as a JSON array")

    show = action("show", "one case: addresses, history and the message", _cmd_show)
    show.add_argument("case", metavar="CASE", help="the case's id (see `abuse cases`)")
    show.add_argument("--raw", action="store_true", help="only the message, as RFC 5322 bytes")
    show.add_argument(
        "--json", action="store_true", help="the case, its history and message as JSON"
    )

    send = action("send", "send a draft (or a queued case) now", _cmd_send)
    send.add_argument("case", metavar="CASE", help="the case's id (see `abuse cases`)")

    followups = action(
        "followups", "what needs a person: calls, registry reports, drafts", _cmd_followups
    )
    followups.add_argument("--json", action="store_true", help="the to-do list as a JSON array")

    action("poll", "read the mailbox for replies and bounces now", _cmd_poll)
