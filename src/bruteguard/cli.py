"""The ``bruteguard`` command. Each subcommand is a thin layer over the library objects."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import ipaddress
import itertools
import operator
import os
import socket
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import msgspec

from bruteguard import __version__
from bruteguard.cli_abuse import add_abuse_commands
from bruteguard.cli_dashboard import add_dashboard_commands
from bruteguard.cli_fleet import add_dsn_argument, add_fleet_commands, fleet_bans, fleet_unban
from bruteguard.cli_group import command_group
from bruteguard.cli_install import add_install_commands
from bruteguard.cli_knock import add_knock_command
from bruteguard.cli_test import add_test_command
from bruteguard.config import DEFAULT_CONFIG_PATH, Config, JailConfig, load_config
from bruteguard.control import request, request_pages
from bruteguard.duration import parse_duration
from bruteguard.errors import BruteguardError, ConfigError, NotRunningError
from bruteguard.identity import canonical_target
from bruteguard.safe_text import printable

if TYPE_CHECKING:
    from bruteguard.match.engine import Hit
    from bruteguard.model import Ban

__all__ = ["main"]


def _iso_utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


_QUARTERS: dict[int, tuple[str, int] | None] = {}
_CLOCK = tuple(f"{minute:02d}:{second:02d}" for minute in range(60) for second in range(60))


def _local(moment: float) -> str:
    """Local time to the second. A replay prints tens of thousands of stamps: the
    "YYYY-MM-DD HH:" part and the second of the hour its quarter starts at are looked up
    once per quarter hour, which is exact wherever the UTC offset is a whole number of
    quarter hours (every zone in use today); elsewhere each stamp is converted on its own."""
    quarter, seconds = divmod(int(moment // 1), 900)
    known = _QUARTERS.get(quarter, False)
    if known is False:
        start = time.localtime(quarter * 900)
        known = None
        if start.tm_gmtoff % 900 == 0:
            known = (time.strftime("%Y-%m-%d %H:", start), start.tm_min * 60)
        if len(_QUARTERS) > 100_000:
            _QUARTERS.clear()
        _QUARTERS[quarter] = known
    if known is None:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(moment))
    prefix, offset = known
    return prefix + _CLOCK[offset + seconds]


def _local_texts(moments: Iterable[float]) -> list[str]:
    """``_local`` of each of ``moments``: the quarter-hour lookup inlined, for a replay's
    tens of thousands of stamps."""
    quarters, clock, texts = _QUARTERS, _CLOCK, []
    for moment in moments:
        quarter, seconds = divmod(int(moment // 1), 900)
        known = quarters.get(quarter)
        texts.append(_local(moment) if known is None else known[0] + clock[known[1] + seconds])
    return texts


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _duration_text(text: str) -> str:
    """A duration checked here (bad usage, exit 2) but sent as written: the daemon parses it."""
    _duration(text)
    return text


def _target(text: str) -> str:
    target = canonical_target(text)
    if target is None:
        raise argparse.ArgumentTypeError(f"not an IP address or CIDR network: {text!r}")
    return target


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return number


def _pick_jails(config: Config, names: Sequence[str] | None) -> list[JailConfig]:
    if not names:
        jails = config.enabled_jails()
        if not jails:
            raise ConfigError(f"no jail is enabled ({config.read_from})")
        return jails
    missing = [name for name in names if name not in config.jails]
    if missing:
        known = ", ".join(sorted(config.jails))
        raise ConfigError(f"no jail named {missing[0]!r} (jails: {known})")
    return [config.jails[name] for name in names]


# -- offline: scan, report -----------------------------------------------------------------


class _FailureEvent(msgspec.Struct, tag_field="type", tag="failure"):
    time: str
    ip: str
    user: str | None
    jail: str


class _BanEvent(msgspec.Struct, tag_field="type", tag="ban"):
    time: str
    ip: str
    jail: str
    until: str


def _batch_mode() -> None:
    """A replay makes hundreds of thousands of short-lived, acyclic objects: the cyclic
    garbage collector would only walk them again and again."""
    import gc

    gc.disable()


def _cmd_scan(args: argparse.Namespace) -> int:
    _batch_mode()
    from bruteguard.scan import scan_logs

    config = load_config(args.config)
    jails = _pick_jails(config, args.jail)
    out = sys.stdout.buffer
    encoder = msgspec.json.Encoder()
    stamps: dict[float, str] = {}

    def stamp(moment: float) -> str:
        text = stamps.get(moment)
        if text is None:
            if len(stamps) > 100_000:
                stamps.clear()
            text = stamps[moment] = _iso_utc(moment)
        return text

    def emit(hits: list[Hit], bans: list[Ban]) -> None:
        events: list[msgspec.Struct] = [
            _FailureEvent(stamp(t), ip, user, jail) for t, ip, user, jail, _ in hits
        ]
        if bans:
            events = _interleave(
                events,
                [_BanEvent(stamp(b.start), b.ip, b.jail, stamp(b.until)) for b in bans],
                _ban_positions(hits, bans),
            )
        out.write(encoder.encode_lines(events))

    summary = _scan_or_fail(
        scan_logs,
        args.logs,
        config,
        jails,
        emit if args.json else None,
        users=False,
        streaming=args.json,
    )
    if args.json:
        out.write(
            encoder.encode(
                {
                    "type": "summary",
                    "lines": summary.lines,
                    "failures": summary.failures,
                    "per_jail": summary.per_jail,
                    "bans": len(summary.bans),
                    "seconds": round(summary.seconds, 6),
                }
            )
            + b"\n"
        )
        return 0
    lines = [f"{'ADDRESS':<40} {'FAILURES':>8}  {'BANS':>4}"]
    bans_of = _bans_covering(summary.bans)
    # Most failures first, then by address: two sorts on one key each (stable) are faster
    # than one on a tuple built per offender.
    offenders = sorted(summary.offenders.values(), key=operator.attrgetter("address"))
    offenders.sort(key=operator.attrgetter("count"), reverse=True)
    # ljust/rjust: the text of f"{address:<40} {count:>8}" at half the cost per row (a
    # format spec on an int takes the general formatter).
    lines.extend(
        f"{o.address.ljust(40)} {str(o.count).rjust(8)}  {str(bans_of(o.address)).rjust(4)}"
        for o in offenders
    )
    lines.append("")
    lines.append("bans the jails would have made:")
    bans = summary.bans
    starts = _local_texts([b.start for b in bans])
    untils = _local_texts([b.until for b in bans])
    lines.extend(
        f"  {start}  {b.jail.ljust(10)} {b.ip.ljust(40)} until {until}  ({b.reason})"
        for b, start, until in zip(bans, starts, untils, strict=True)
    )
    lines.append("")
    lines.append(_summary_text(summary))
    out.write(("\n".join(lines) + "\n").encode("utf-8", "backslashreplace"))
    return 0


def _ban_positions(hits: Sequence[Hit], bans: Sequence[Ban]) -> list[int]:
    """For each ban (in decision order), the index of the hit it is written after.

    That is the last failure of the same target (the address, or an address of the banned
    IPv6 prefix) and jail at or before the ban's time: the failure that completed the
    window, or a later one of the same second. Never before the previous ban's place, so
    bans keep the order they were decided in.
    """
    from bruteguard.detect import network_of

    wanted = {ban.ip for ban in bans}
    # An IPv6 attacker is banned as its prefix: its failures are those of the prefix's
    # addresses.
    lengths = {int(ip.rpartition("/")[2]) for ip in wanted if ":" in ip and "/" in ip}
    seen: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for index, (moment, address, _user, jail, _line) in enumerate(hits):
        if address in wanted:
            seen.setdefault((address, jail), []).append((index, moment))
        elif lengths and ":" in address:
            for length in lengths:
                network = network_of(address, length)
                if network in wanted:
                    seen.setdefault((network, jail), []).append((index, moment))
    positions: list[int] = []
    floor = -1
    for ban in bans:
        candidates = seen.get((ban.ip, ban.jail), [])
        at = max((i for i, moment in candidates if moment <= ban.start), default=floor)
        floor = max(floor, at)
        positions.append(floor)
    return positions


def _interleave(
    failures: list[msgspec.Struct], bans: list[msgspec.Struct], positions: list[int]
) -> list[msgspec.Struct]:
    """``failures`` with each ban inserted after the failure at its position."""
    events: list[msgspec.Struct] = []
    done = 0
    for ban, position in zip(bans, positions, strict=True):
        events.extend(failures[done : position + 1])
        events.append(ban)
        done = max(done, position + 1)
    events.extend(failures[done:])
    return events


def _bans_covering(bans: Sequence[Ban]) -> Callable[[str], int]:
    """For an address, how many of ``bans`` cover it: its own, and network bans holding it
    (an IPv6 attacker's /64, an escalated /24). Cheap per address: a table has one row per
    attacker."""
    own: dict[str, int] = {}
    # per family: prefix length → network start (as an int) → bans
    networks: dict[int, dict[int, dict[int, int]]] = {4: {}, 6: {}}
    for ban in bans:
        if "/" not in ban.ip:
            own[ban.ip] = own.get(ban.ip, 0) + 1
            continue
        network = ipaddress.ip_network(ban.ip, strict=False)
        by_start = networks[network.version].setdefault(network.prefixlen, {})
        start = int(network.network_address)
        by_start[start] = by_start.get(start, 0) + 1

    def count(address: str) -> int:
        found = own.get(address, 0)
        six = ":" in address
        family = networks[6 if six else 4]
        if family:
            packed = socket.inet_pton(socket.AF_INET6 if six else socket.AF_INET, address)
            value, width = int.from_bytes(packed, "big"), len(packed) * 8
            for prefix, by_start in family.items():
                found += by_start.get(value >> (width - prefix) << (width - prefix), 0)
        return found

    return count


def _summary_text(summary: Any) -> str:
    rate = summary.lines / summary.seconds if summary.seconds else 0.0
    jails = ", ".join(f"{jail} {n}" for jail, n in summary.per_jail.items())
    by_jail = f" ({jails})" if len(summary.per_jail) > 1 else ""
    text = (
        f"{summary.lines} lines, {summary.failures} failures{by_jail} from "
        f"{len(summary.offenders)} addresses, {len(summary.bans)} bans, "
        f"{summary.seconds:.2f} s ({rate:,.0f} lines/s)"
    )
    if summary.unattributed:
        text += f"; {summary.unattributed} failures named a host, not an address (not counted)"
    if summary.too_long:
        text += f"; {summary.too_long} lines over 1 MiB skipped"
    if summary.match_errors:
        text += f"; {summary.match_errors} lines the matcher gave up on (skipped)"
    return text


def _check_logs(paths: Sequence[str]) -> list[str]:
    """Fail before any output if a log cannot be opened; returns the gzip-compressed ones."""
    compressed: list[str] = []
    for path in paths:
        if path == "-":
            continue
        try:
            with open(path, "rb") as probe:
                if probe.read(2) == b"\x1f\x8b":
                    compressed.append(path)
        except OSError as error:
            raise BruteguardError(f"{path}: {error.strerror or error}") from None
    return compressed


@contextlib.contextmanager
def _progress_bar(paths: Sequence[str]) -> Iterator[Callable[[int], None]]:
    """A progress bar over the logs' bytes on standard error while it is a terminal (it is
    gone when the replay ends); when stderr is piped or a file, nothing at all."""
    total = sum(os.stat(path).st_size for path in paths if path != "-")
    if not total or not sys.stderr.isatty():
        yield lambda _done: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    files = f"{len(paths)} logs" if len(paths) > 1 else os.path.basename(paths[0])
    columns = (
        TextColumn(f"reading {printable(files)}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("read", total=total)
        yield lambda done: progress.advance(task, done)


def _scan_or_fail(
    scan: Any, paths: Sequence[str], *args: Any, streaming: bool = False, **kwargs: Any
) -> Any:
    """Run ``scan`` over ``paths`` (with a progress bar on a terminal, unless the results
    stream to that terminal meanwhile); unreadable or corrupt logs become one clear error."""
    compressed = _check_logs(paths)
    shown = paths if not (streaming and sys.stdout.isatty()) else ()
    try:
        with _progress_bar(shown) as advance:
            return scan(paths, *args, advance=advance, **kwargs)
    except BrokenPipeError:
        raise
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        which = ", ".join(compressed) or "log"
        raise BruteguardError(f"{which}: corrupt or truncated compressed log ({error})") from None
    except OSError as error:
        raise BruteguardError(f"{error.filename or 'log'}: {error.strerror or error}") from None


_UNWRAPPED = 1 << 16  # report columns when stdout is no terminal: wider than any row


def _cmd_report(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    if args.ledger is None and not args.logs:
        args.usage_error("the following arguments are required: LOG (or --ledger --html FILE)")
    if args.ledger is not None and args.html is None:
        args.usage_error("--ledger writes an HTML report: add --html FILE")
    if args.ledger is not None and args.logs:
        args.usage_error("give LOG... or --ledger, not both")
    _batch_mode()

    from bruteguard.scan import scan_logs

    config = load_config(args.config)
    if args.html is not None:
        return _html_report(args, config)
    jails = _pick_jails(config, args.jail)
    summary = _scan_or_fail(scan_logs, args.logs, config, jails)
    table = Table(title=f"Top {args.top} offenders", title_justify="left")
    table.add_column("count", justify="right", style="bold red", no_wrap=True)
    table.add_column("address", no_wrap=True)
    table.add_column("first seen", no_wrap=True)
    table.add_column("last seen", no_wrap=True)
    table.add_column("users tried", overflow="fold")
    ranked = sorted(summary.offenders.values(), key=lambda o: (-o.count, o.address))
    for offender in ranked[: args.top]:
        users = sorted(offender.users.items(), key=lambda item: (-item[1], item[0]))
        tried = ", ".join(printable(user) for user, _ in users[:8])
        if len(offender.users) > 8:
            tried += f" … (+{len(offender.users) - 8})"
        table.add_row(
            str(offender.count),
            offender.address,
            _local(offender.first),
            _local(offender.last),
            tried,
        )
    # On a terminal, its width; piped or in a file, never wrapped: every row one whole line.
    console = Console() if sys.stdout.isatty() else Console(width=_UNWRAPPED)
    console.print(table, markup=False)
    console.print(_summary_text(summary), markup=False, highlight=False)
    return 0


def _html_report(args: argparse.Namespace, config: Config) -> int:
    """``report --html FILE`` from the logs given, or from the ledger (``--ledger``)."""
    from bruteguard.insight import summary as insight
    from bruteguard.insight.report import render_html

    geo = _geo(config)
    path = args.ledger or config.store
    store = _open_ledger(path) if args.ledger is not None or os.path.exists(path) else None
    try:
        if args.ledger is not None:
            assert store is not None
            since = time.time() - args.since if args.since else 0.0
            summary = insight.from_ledger(store, since=since, top=args.top, geo=geo)
            note = f"Ledger {path}."
        else:
            jails = _pick_jails(config, args.jail)
            summary, _replay = _scan_or_fail(
                insight.scan, args.logs, config, jails, top=args.top, geo=geo, store=store
            )
            note = "Logs: " + ", ".join(args.logs) + "."
    finally:
        if store is not None:
            store.close()
    page = render_html(summary, note=note).encode("utf-8", "backslashreplace")
    if args.html == "-":
        sys.stdout.buffer.write(page)
        return 0
    try:
        with open(args.html, "wb") as out:
            out.write(page)
    except OSError as error:
        raise BruteguardError(f"{args.html}: {error.strerror or error}") from None
    print(
        f"wrote {args.html} ({len(page):,} bytes): {summary.failures:,} failures,"
        f" {summary.bans:,} bans"
    )
    return 0


def _geo(config: Config) -> Any:
    """Countries and ASes: the configured MaxMind files, else geoip2fast's data, else none
    (the [geo] extra is not installed: the report says so)."""
    from bruteguard.insight.geo import report_geo

    try:
        return report_geo(config.report)
    except (OSError, ValueError) as error:
        raise BruteguardError(f"[report] MaxMind database: {error}") from None


def _open_ledger(path: str) -> Any:
    """The ledger, read-only in spirit: a missing file is an error, not a new ledger."""
    from bruteguard.store.sqlite import SqliteStore

    if not os.path.exists(path):
        raise BruteguardError(f"{path}: no ledger there (the daemon writes it; see [store])")
    return SqliteStore(path)


# -- daemon and its control socket ---------------------------------------------------------


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


def _cmd_doctor(args: argparse.Namespace) -> int:
    from bruteguard.doctor import run_doctor

    return run_doctor(load_config(args.config), as_json=args.json)


def _cmd_version(_args: argparse.Namespace) -> int:
    print(f"bruteguard {__version__}")
    return 0


# -- argument parsing ------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with bad usage reported in one line (exit 2) that points to ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _add_log_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """The LOG... and --jail arguments that scan and report share."""
    parser.add_argument(
        "logs",
        nargs="+" if required else "*",
        metavar="LOG",
        help="log files (.gz too; - for stdin)",
    )
    parser.add_argument(
        "--jail",
        "-j",
        action="append",
        metavar="JAIL",
        help="only this jail (repeatable; default: every enabled jail)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bruteguard",
        description="Reads service logs, finds the real attacker, bans at the firewall.",
    )
    parser.add_argument("--version", action="version", version=f"bruteguard {__version__}")
    config_help = f"configuration file (default {DEFAULT_CONFIG_PATH}; built-in defaults if absent)"
    # Before the command (`bruteguard -c FILE status`) or after it: the command's own
    # option only sets the value when given (SUPPRESS), so it never undoes the first.
    parser.add_argument("--config", "-c", metavar="FILE", help=config_help)
    command = command_group(parser, "command", config_help, metavar="COMMAND")

    run = command("run", "run the daemon in the foreground (systemd-friendly)", _cmd_run)
    run.add_argument(
        "--since",
        type=_duration,
        metavar="DURATION",
        help="first replay the logs' last DURATION (e.g. 1h), then follow them",
    )
    run.add_argument("--verbose", "-v", action="store_true", help="debug logging")

    scan = command(
        "scan",
        "replay logs offline: failures per address and the bans jails would have made",
        _cmd_scan,
    )
    _add_log_arguments(scan)
    scan.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line (see README: the scan --json contract)",
    )

    report = command(
        "report",
        "the top offenders in logs, as a table: count, address, first/last seen, users"
        " tried; or an HTML report with plots (--html) of logs or the ledger",
        _cmd_report,
    )
    _add_log_arguments(report, required=False)
    report.add_argument("--top", type=_positive, default=20, metavar="N", help="rows (default 20)")
    report.add_argument(
        "--html",
        metavar="FILE",
        help="write one self-contained HTML file with plots (- for stdout; docs/report.md)",
    )
    report.add_argument(
        "--ledger",
        nargs="?",
        const="",
        metavar="PATH",
        help="from the ledger (default: the configured store) instead of logs",
    )
    report.add_argument(
        "--since",
        type=_duration,
        metavar="DURATION",
        help="with --ledger: only the last DURATION (e.g. 7d)",
    )
    report.set_defaults(usage_error=report.error)

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

    doctor = command(
        "doctor",
        "check sshd's settings, the log sources and the firewall; advice in plain words",
        _cmd_doctor,
    )
    doctor.add_argument("--json", action="store_true", help="the findings as one JSON object")

    add_test_command(command)
    add_abuse_commands(command, config_help)
    add_install_commands(command)
    add_fleet_commands(command, config_help)
    add_knock_command(command)
    add_dashboard_commands(command)
    command("version", "print the version", _cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except BruteguardError as error:
        print(f"bruteguard: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): not an error; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
