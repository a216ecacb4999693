"""The daemon's commands: ``run`` it, and ask it over its control socket (``status``,
``bans``, ``ban``, ``unban``, ``stop``); with no daemon running, ``bans`` and ``stop --unban``
work from its ledger."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from bruteguard.cli.fleet import add_dsn_argument, fleet_bans, fleet_unban
from bruteguard.cli.group import Action
from bruteguard.cli.scan import _duration, _local
from bruteguard.config import load_config
from bruteguard.control import request, request_pages
from bruteguard.errors import BruteguardError, NotRunningError
from bruteguard.identity import canonical_target
from bruteguard.safe_text import printable

__all__ = ["add_daemon_commands"]


def _duration_text(text: str) -> str:
    """A duration checked here (bad usage, exit 2) but sent as written: the daemon parses it."""
    _duration(text)
    return text


def _target(text: str) -> str:
    target = canonical_target(text)
    if target is None:
        raise argparse.ArgumentTypeError(f"not an IP address or CIDR network: {text!r}")
    return target


def _cmd_run(args: argparse.Namespace) -> int:
    import logging  # the daemon's only: a replay doesn't pay for it

    from bruteguard.daemon import run_daemon

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(message)s"
        if _under_systemd()
        else "%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # pyroute2 (the lock-out guard's socket table) logs every netlink message at DEBUG.
    logging.getLogger("pyroute2").setLevel(logging.INFO)
    since = time.time() - args.since if args.since else None
    return run_daemon(args.config, since)


def _under_systemd() -> bool:
    return "INVOCATION_ID" in os.environ or "NOTIFY_SOCKET" in os.environ


def _socket(args: argparse.Namespace) -> str:
    return load_config(args.config).socket


def _cmd_status(args: argparse.Namespace) -> int:
    result = request(_socket(args), "status", jail=args.jail)
    if args.json:
        print(msgspec.json.encode(result).decode())
        return 0
    print(f"running since {_local(result['since'])}; enforcers: {', '.join(result['enforcers'])}")
    slow = result.get("over_budget") or []
    unread = [name for name in result.get("degraded") or [] if name not in slow]
    if unread:
        print(f"DEGRADED: {', '.join(unread)} read no log and ban no one (see below)")
    if slow:
        print(
            f"DEGRADED: {', '.join(slow)} cannot match their log in time and drop lines (see below)"
        )
    identity = result.get("identity")
    if identity is not None:
        print(_identity_line(identity))
    for jail in result["jails"]:
        print(
            f"jail {jail['name']}: filter {jail['filter']}, {jail['maxretry']} failures in "
            f"{jail['findtime']} → ban {jail['bantime']} {_ports_text(jail['ports'])}"
        )
        for source in jail.get("sources", []):
            print(f"  {_source_line(source)}")
        matching = jail.get("matching")
        if matching is not None:
            print(f"  {_matching_line(matching)}")
        print(
            f"  failures seen: {jail['failures']}, bans made: {jail['bans_made']}, "
            f"banned now: {jail['banned_now']}, "
            f"unattributed: {jail.get('unattributed', 0)}"
        )
        for address in jail["banned"]:
            print(f"    {address}")
        if jail["banned_now"] > len(jail["banned"]):
            more = jail["banned_now"] - len(jail["banned"])
            print(f"    … and {more} more (the newest are shown; `bruteguard bans` lists all)")
    unattributed = result.get("unattributed") or []
    if unattributed:
        print("failures naming a host that no single connection could be tied to (newest first):")
    for failure in unattributed:
        candidates = ", ".join(failure["candidates"]) or "none"
        print(
            f"  {_local(failure['time'])}  {failure['jail']:<10} "
            f"{printable(failure['name'])}: {failure['reason']}; real connections: {candidates}"
        )
    return 0


def _ports_text(ports: Sequence[int]) -> str:
    """Where a jail's bans apply: its ports, or everywhere when it names none (recidive)."""
    if not ports:
        return "on every port and protocol"
    return f"on port{'s' if len(ports) > 1 else ''} {', '.join(map(str, ports))}"


def _matching_line(matching: dict) -> str:
    """An imported filter's time budget, and whether it keeps within it."""
    state = "OVER BUDGET, dropping lines" if matching["over_budget"] else "keeps up"
    return (
        f"filter matched off the main loop, {matching['budget_seconds']:g} s a batch: {state}"
        f" ({matching['dropped_lines']} lines dropped so far)"
    )


def _source_line(source: dict) -> str:
    """One source of a jail: what it reads and whether lines arrive, or what it waits for."""
    if not source["reading"]:
        return f"NOT READING {source['detail']}"
    if "lines" not in source:  # the recidive jail: bruteguard's own bans
        return f"reads {source['detail']}"
    last = source.get("last_line")
    when = "no line yet" if last is None else f"last at {_local(last)}"
    return f"reads {source['detail']}: {source['lines']} lines, {when}{_backlog(source)}"


_BEHIND = 1 << 20  # bytes a source is behind its log before status calls it catching up


def _backlog(source: dict) -> str:
    """How far a source is through a backlog (its first reading of a big log), or ""."""
    done, size = source.get("read_bytes"), source.get("size_bytes")
    if done is None or size is None or size - done < _BEHIND:
        return ""
    mib = 1 << 20
    return f"; catching up: {done / mib:,.1f} of {size / mib:,.1f} MiB read ({done * 100 // size}%)"


def _identity_line(identity: dict) -> str:
    """What ties host names in lines to connections, in one line."""
    if identity["evidence"] != "conntrack":
        return f"host names: never attributed ({identity['unavailable']})"
    return (
        f"host names: tied to connections by conntrack ({identity['connections']} known, "
        f"{identity['attributed']} attributed, {identity['unattributed']} not, "
        f"{identity['overruns']} overruns)"
    )


def _cmd_bans(args: argparse.Namespace) -> int:
    """The active bans, printed page by page as the daemon streams them (a million bans
    never sit in memory as one list), or from the ledger when no daemon runs."""
    if args.fleet:
        return fleet_bans(args)
    pages: Iterable[bytes]
    try:
        stream = request_pages(_socket(args), "bans")
        pages = itertools.chain([next(stream, b"[]")], stream)  # connects: may be not running
    except NotRunningError:
        pages = [msgspec.json.encode(_bans_from_store(args))]
        if not args.json:
            store = load_config(args.config).store
            print(f"bruteguard is not running; bans from its ledger {store}", file=sys.stderr)
    if args.json:
        _print_json_array(pages)
        return 0
    shown = 0
    for page in pages:
        for ban in msgspec.json.decode(page):
            if not shown:
                print(
                    f"{'ADDRESS OR NETWORK':<43} {'JAIL':<10} {'FAILURES':>8} {'STEP':>4}"
                    f"  {'UNTIL':<19}  WHY"
                )
            shown += 1
            failures = ban["failures"] or "-"  # 0: made by hand
            print(
                f"{ban['ip']:<43} {ban['jail']:<10} {failures:>8} {ban.get('step', 1):>4}  "
                f"{_local(ban['until']):<19}  {printable(ban['reason'])}"
                + (f" (from {ban['origin']})" if ban.get("origin") else "")
            )
    if not shown:
        print("no active bans")
    return 0


def _print_json_array(pages: Iterable[bytes]) -> None:
    """One JSON array of the pages' items (each page a JSON array), a page at a time."""
    out = sys.stdout.buffer
    out.write(b"[")
    separator = b""
    for page in pages:
        items = page.strip()[1:-1]
        if items:
            out.write(separator + items)
            separator = b","
    out.write(b"]\n")
    out.flush()


def _bans_from_store(args: argparse.Namespace) -> list[dict[str, Any]]:
    """With no daemon running, the store still knows the bans (and the firewall holds them)."""
    from pathlib import Path

    from bruteguard.model import ban_view
    from bruteguard.store.sqlite import SqliteStore

    config = load_config(args.config)
    if not Path(config.store).exists():
        return []
    now = time.time()
    with SqliteStore(config.store) as store:
        return [ban_view(ban, now) for ban in store.active_bans(now)]


def _cmd_ban(args: argparse.Namespace) -> int:
    if not args.force:
        _refuse_own_session(args.ip)
    message = {"for": args.duration, "force": args.force}
    result = request(_socket(args), "ban", ip=args.ip, jail=args.jail, **message)
    print(f"banned {result['ip']} in {result['jail']} until {_local(result['until'])}")
    return 0


def _refuse_own_session(target: str) -> None:
    """``ban`` never cuts off the SSH session it is typed in (``SSH_CONNECTION``) unless
    ``--force``: the daemon cannot see whose terminal asks."""
    import ipaddress

    from bruteguard.allow import ssh_client_addresses

    network = ipaddress.ip_network(target, strict=False)
    for address in ssh_client_addresses(who=None):
        if ipaddress.ip_address(address) in network:
            raise BruteguardError(
                f"{target} covers {address}, the address your SSH session comes from:"
                " use --force to ban it anyway"
            )


def _cmd_unban(args: argparse.Namespace) -> int:
    if args.fleet:
        return fleet_unban(args)
    result = request(_socket(args), "unban", ip=args.ip)
    covering = [target for target in result.get("targets", []) if target != result["ip"]]
    print(
        f"unbanned {result['ip']}"
        + (f" and the bans covering it: {', '.join(covering)}" if covering else "")
        + ("" if result["lifted"] else " (it was not banned)")
    )
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    try:
        request(_socket(args), "stop", unban=args.unban)
    except NotRunningError:
        if not args.unban:
            raise
        _unban_offline(args)
        return 0
    # The daemon answers once it has stopped: its firewall work is done.
    print("stopped" + (" and lifted every ban" if args.unban else "; bans stay in force"))
    return 0


def _unban_offline(args: argparse.Namespace) -> None:
    """``stop --unban`` with no daemon: lift the stored bans and remove our firewall objects."""
    from pathlib import Path

    from bruteguard.enforce.factory import make_enforcers
    from bruteguard.store.sqlite import SqliteStore

    config = load_config(args.config)
    if Path(config.store).exists():
        with SqliteStore(config.store) as store:
            now = time.time()
            store.lift_bans({b.ip for b in store.active_bans(now)}, now)
    for enforcer in make_enforcers(config):
        enforcer.teardown()
    print("bruteguard was not running; lifted every ban and removed its firewall rules")


def add_daemon_commands(command: Action) -> None:
    run = command("run", "run the daemon in the foreground (systemd-friendly)", _cmd_run)
    run.add_argument(
        "--since",
        type=_duration,
        metavar="DURATION",
        help="first replay the logs' last DURATION (e.g. 1h), then follow them",
    )
    run.add_argument("--verbose", "-v", action="store_true", help="debug logging")

    status = command("status", "what the running daemon watches and has banned", _cmd_status)
    status.add_argument("jail", nargs="?", metavar="JAIL", help="only this jail")
    status.add_argument("--json", action="store_true", help="one JSON object")

    bans = command("bans", "active bans, and why", _cmd_bans)
    bans.add_argument("--json", action="store_true", help="a JSON array")
    bans.add_argument(
        "--fleet", action="store_true", help="the fleet's active bans, from its PostgreSQL"
    )
    add_dsn_argument(bans)

    ban = command("ban", "ban an address by hand", _cmd_ban)
    ban.add_argument(
        "ip", type=_target, metavar="TARGET", help="an IPv4 or IPv6 address, or a CIDR network"
    )
    ban.add_argument("--jail", "-j", metavar="JAIL", help="default: the first enabled jail")
    ban.add_argument(
        "--for",
        dest="duration",
        type=_duration_text,
        metavar="DURATION",
        help="how long, e.g. 90s, 10m, 1h, 7d (default: the jail's bantime)",
    )
    ban.add_argument(
        "--force",
        action="store_true",
        help="ban even an allow-listed target or one covering a live admin session",
    )

    unban = command("unban", "lift a ban in every jail and enforcer", _cmd_unban)
    unban.add_argument(
        "ip", type=_target, metavar="TARGET", help="an IPv4 or IPv6 address, or a CIDR network"
    )
    unban.add_argument(
        "--fleet",
        action="store_true",
        help="lift it on every host of the fleet (as an admin: --dsn)",
    )
    add_dsn_argument(unban)

    stop = command("stop", "stop the daemon; bans stay unless --unban", _cmd_stop)
    stop.add_argument("--unban", action="store_true", help="also lift every ban")
