"""``bruteguard scan`` and ``bruteguard report``: replay logs offline. Also the local time
and argument types the other commands print and parse with."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import ipaddress
import operator
import os
import socket
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from bruteguard.cli.group import Action
from bruteguard.config import Config, JailConfig, load_config
from bruteguard.duration import parse_duration
from bruteguard.errors import BruteguardError, ConfigError
from bruteguard.safe_text import printable

if TYPE_CHECKING:
    from bruteguard.match.engine import Hit
    from bruteguard.model import Ban

__all__ = ["add_scan_commands"]


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
    out.write(_table_text(summary) + _bans_text(summary))
    return 0


def _table_text(summary: Any) -> bytes:
    """The offender table: most failures first, then by address, and the bans covering each."""
    lines = [f"{'ADDRESS':<40} {'FAILURES':>8}  {'BANS':>4}"]
    covering = _bans_covering(summary.bans, summary.offenders)
    # Most failures first, then by address: two sorts on one key each (stable) are faster
    # than one on a tuple built per offender.
    offenders = sorted(summary.offenders.values(), key=operator.attrgetter("address"))
    offenders.sort(key=operator.attrgetter("count"), reverse=True)
    # ljust/rjust: the text of f"{address:<40} {count:>8}" at half the cost per row (a
    # format spec on an int takes the general formatter).
    covered = covering.get
    lines.extend(
        f"{o.address.ljust(40)} {str(o.count).rjust(8)}  {str(covered(o.address, 0)).rjust(4)}"
        for o in offenders
    )
    lines.append("")
    return ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")


def _bans_text(summary: Any) -> bytes:
    """The bans in time order (local time), then the summary line."""
    lines = ["bans the jails would have made:"]
    bans = summary.bans
    starts = _local_texts([b.start for b in bans])
    untils = _local_texts([b.until for b in bans])
    lines.extend(
        f"  {start}  {b.jail.ljust(10)} {b.ip.ljust(40)} until {until}  ({b.reason})"
        for b, start, until in zip(bans, starts, untils, strict=True)
    )
    lines.append("")
    lines.append(_summary_text(summary))
    return ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")


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


def _bans_covering(bans: Sequence[Ban], addresses: Iterable[str]) -> dict[str, int]:
    """How many of ``bans`` cover each of ``addresses`` (absent: none): its own, and network
    bans holding it (an IPv6 attacker's /64, an escalated /24). One pass, and only the
    addresses of a family with network bans are looked at one by one: a table has one row
    per attacker, and a log of IPv4 attackers without escalations has none."""
    own: dict[str, int] = {}
    # per family: prefix length → network start (as an int) → bans
    networks: dict[int, dict[int, dict[int, int]]] = {4: {}, 6: {}}
    for ban in bans:
        if "/" not in ban.ip:
            own[ban.ip] = own.get(ban.ip, 0) + 1
            continue
        version, prefix, start = _network_start(ban.ip)
        by_start = networks[version].setdefault(prefix, {})
        by_start[start] = by_start.get(start, 0) + 1
    if not networks[4] and not networks[6]:
        return own
    counts = dict(own)
    for address in addresses:
        six = ":" in address
        family = networks[6 if six else 4]
        if not family:
            continue
        packed = socket.inet_pton(socket.AF_INET6 if six else socket.AF_INET, address)
        value, width = int.from_bytes(packed, "big"), len(packed) * 8
        found = 0
        for prefix, by_start in family.items():
            found += by_start.get(value >> (width - prefix) << (width - prefix), 0)
        if found:
            counts[address] = own.get(address, 0) + found
    return counts


def _network_start(cidr: str) -> tuple[int, int, int]:
    """(IP version, prefix length, first address as an int) of a network's CIDR text. The
    detector's own networks by inet_pton (a replay of IPv6 attackers bans tens of thousands
    of /64s, and ``ipaddress`` takes ~5 µs each); any other spelling by ``ipaddress``."""
    from bruteguard.detect import address_integer  # loaded by the scan already

    text, _, length = cidr.partition("/")
    found = address_integer(text)
    if found is not None and length.isascii() and length.isdigit() and int(length) <= found[1]:
        _family, width, value = found
        shift = width - int(length)
        return (6 if width == 128 else 4), int(length), value >> shift << shift
    network = ipaddress.ip_network(cidr, strict=False)
    return network.version, network.prefixlen, int(network.network_address)


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


# -- argument parsing ------------------------------------------------------------------


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


def add_scan_commands(command: Action) -> None:
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
