"""Offline replay: read logs as fast as possible, decide what the jails would have banned.

``bruteguard scan`` and ``bruteguard report`` run this; the daemon uses the same matcher and
detector, so a replay decides exactly what the live daemon would have.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import itertools
import operator
import os
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import msgspec

from bruteguard.config import Config, JailConfig
from bruteguard.detect import Detector
from bruteguard.errors import ConfigError
from bruteguard.line_splitter import MAX_LINE, drop_long_lines, has_long_line
from bruteguard.match import _core
from bruteguard.match.engine import Hit, Matcher, Series, Stream, StreamStats
from bruteguard.model import Ban

__all__ = ["Advance", "Chunks", "Offender", "ScanSummary", "log_sizes", "open_log", "scan_logs"]

Advance = Callable[[int], None]
"""Told how many more bytes of the logs (as they lie on disk) have been read: a progress bar."""

CHUNK_SIZE = 8 << 20
_START = operator.attrgetter("start")
_MAX_USERS = 20
# A file this large is split into one segment per core and matched in worker processes.
PARALLEL_MIN_SIZE = 32 << 20
# Each worker first re-reads this much before its segment, discarding the hits, so that
# connections open across the cut are known (LoginGraceTime is minutes; this is ~20k lines).
_WARMUP = 2 << 20


@dataclass(slots=True)
class Offender:
    """What one address did, for the report table."""

    address: str
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    users: dict[str, int] = field(default_factory=dict)


@dataclass
class ScanSummary:
    """What a replay found. ``failures`` counts each attempt once, however many jails it
    counts for (an sshd scanner line is sshd-ddos's too); ``per_jail`` per jail."""

    lines: int = 0
    failures: int = 0
    per_jail: dict[str, int] = field(default_factory=dict)
    bans: list[Ban] = field(default_factory=list)
    seconds: float = 0.0
    unattributed: int = 0
    bad_time: int = 0
    too_long: int = 0
    match_errors: int = 0
    offenders: dict[str, Offender] = field(default_factory=dict)


def _ignore(_done: int) -> None:
    """No progress bar."""


def log_sizes(paths: Sequence[str]) -> int:
    """The bytes a replay of ``paths`` reads from disk: the files' sizes (standard input has
    none to know)."""
    return sum(os.stat(path).st_size for path in paths if path != "-")


class _Reading:
    """How far into a log file (on disk: compressed bytes for a .gz) reading has come,
    passed on to ``advance`` in steps."""

    def __init__(self, handle: BinaryIO, path: str, advance: Advance) -> None:
        self.raw = getattr(handle, "fileobj", handle)  # a GzipFile reads its file ahead
        self.piped = path == "-"  # no size to tell, nor a position (a pipe cannot seek)
        self.advance = advance
        self.done = 0 if self.piped else self.raw.tell()

    def step(self) -> None:
        if self.piped:
            return
        position = self.raw.tell()
        if position > self.done:
            self.advance(position - self.done)
            self.done = position


def open_log(path: str) -> BinaryIO:
    """A log to replay, as bytes: standard input for ``-``, gzip by its magic number."""
    if path == "-":
        return os.fdopen(os.dup(0), "rb")
    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


class Chunks:
    """Large chunks of whole lines from a binary stream, split as the daemon's sources split
    them: a line over ``max_line`` is skipped (counted in ``too_long``) without ever being
    held whole, and a last line without newline is completed.

    The stream is read into one buffer, again and again, and each chunk is a view of it:
    no copy, and no fresh allocation to fault in per chunk. A chunk is therefore valid only
    until the next one is asked for (the matcher reads it at once; keep ``bytes(chunk)``
    to hold on to one).
    """

    def __init__(self, stream: BinaryIO, size: int | None = None, max_line: int = MAX_LINE) -> None:
        self.stream = stream
        self.size = size or CHUNK_SIZE
        self.max_line = max_line
        self.too_long = 0

    def __iter__(self) -> Iterator[bytes | memoryview]:
        size = self.size
        buffer = bytearray(self.max_line + 1 + size)  # a held partial line, and a read
        view = memoryview(buffer)
        readinto = getattr(self.stream, "readinto", None)
        held = 0  # bytes of an unfinished line at the buffer's start
        discarding = False  # inside an over-long line: skip up to its newline
        limit = self.max_line
        while True:
            if readinto is not None:
                got = readinto(view[held : held + size])
            else:  # a stream that can only read()
                block = self.stream.read(size)
                got = len(block)
                view[held : held + got] = block
            if not got:
                break
            end = held + got
            start = 0
            if discarding:
                newline = buffer.find(b"\n", 0, end)
                if newline < 0:
                    held = 0
                    continue
                discarding = False
                start = newline + 1
            last = buffer.rfind(b"\n", start, end)
            if last >= start:
                if last + 1 - start > limit and has_long_line(buffer, start, last + 1, limit):
                    kept, dropped = drop_long_lines(bytes(view[start : last + 1]), limit)
                    self.too_long += dropped
                    if kept:
                        yield kept
                else:
                    yield view[start : last + 1]
                start = last + 1
            held = end - start
            if held > limit:
                self.too_long += 1
                held = 0
                discarding = True
            elif held and start:  # the unfinished line to the front (a copy: they may overlap)
                buffer[:held] = bytes(view[start:end])
        if held:
            yield bytes(view[:held]) + b"\n"


def scan_logs(
    paths: Sequence[str],
    config: Config,
    jails: Sequence[JailConfig],
    on_hits: Callable[[list[Hit], list[Ban]], None] | None = None,
    workers: int | None = None,
    users: bool = True,
    advance: Advance = _ignore,
    on_series: Callable[[str, Mapping[str, list[Any]]], None] | None = None,
) -> ScanSummary:
    """Match every line of ``paths`` for ``jails`` and decide the bans, log time as clock.

    With ``on_hits``, every attempt is handed over (with the bans it completed) in file
    order, chunk by chunk. Without, the replay keeps per address only its times (and the
    users tried, unless ``users`` is false) and fills ``ScanSummary.offenders``: the fast
    path. Either way large plain files are matched by ``workers`` processes (default: one
    per core), each on a segment, and the decisions are those of a sequential read.
    ``advance`` hears how many bytes of ``log_sizes(paths)`` each step has read.
    ``on_series`` (fast path only) is handed each jail's attempts per address of each log
    (times as packed doubles, users): ``insight.summary`` counts them per hour from there.
    Raises OSError (with the path) for a log that cannot be read.
    """
    started = time.perf_counter()
    readers = [jail for jail in jails if jail.from_logs]  # recidive reads the bans instead
    if not readers:
        raise ConfigError("no jail that reads logs is selected (recidive reads bans)")
    jail_filters = {jail.name: jail.filter for jail in readers}
    matcher = Matcher(jail_filters, {jail.name: jail.breakin_weight for jail in readers})
    detector = Detector(jails, config.ignore_networks)
    summary = ScanSummary()
    workers = workers or os.cpu_count() or 1
    for path in paths:
        reference = time.time() if path == "-" else os.stat(path).st_mtime
        parallel = workers > 1 and path != "-" and _splittable(path)
        if on_hits is not None:
            chunks_of = _hits_of(path, matcher, reference, workers if parallel else 1, advance)
            for hits, stats in chunks_of:
                bans = detector.observe(hits)
                summary.bans.extend(bans)
                on_hits(hits, bans)
                _add_stats(summary, stats)
                for hit in hits:
                    summary.per_jail[hit[3]] = summary.per_jail.get(hit[3], 0) + 1
            continue
        series, stats = _series_of(
            path, matcher, reference, workers if parallel else 1, users, advance
        )
        _add_stats(summary, stats)
        bans: list[Ban] = []
        offenders = summary.offenders
        per_jail = summary.per_jail
        *jail_series, shared = series
        for jail, by_address in zip(matcher.jails, jail_series, strict=True):
            if on_series is not None:
                on_series(jail, by_address)
            counted = per_jail.get(jail, 0) + _record(offenders, by_address)
            if counted:
                per_jail[jail] = counted
            bans += detector.observe_jail(jail, by_address)
        for address, extra in shared.items():  # each attempt once in the table
            offenders[address].count -= extra
        bans.sort(key=_START)
        bans += detector.escalate(bans)
        bans.sort(key=_START)
        summary.bans.extend(bans)
    summary.seconds = time.perf_counter() - started
    return summary


def _record(offenders: dict[str, Offender], by_address: Mapping[str, list[Any]]) -> int:
    """Add one jail's attempts (a ``Series`` entry) to the offenders; returns how many.

    One loop over the jail's addresses, not a call per address: a replay meets tens of
    thousands of them."""
    span = _core.span
    counted = 0
    for address, (packed, tried) in by_address.items():
        count, first, last = span(packed)
        counted += count
        offender = offenders.get(address)
        if offender is None:
            offender = offenders[address] = Offender(address, count, first, last)
        else:  # a second jail, or a second log
            offender.count += count
            offender.first = min(offender.first, first)
            offender.last = max(offender.last, last)
        if tried:  # empty when the caller did not ask for users
            _count_users(
                offender.users,
                ((raw.decode("utf-8", "backslashreplace"), n) for raw, n in tried.items()),
            )
    return counted


def _count_users(into: dict[Any, int], tried: Iterable[tuple[Any, int]]) -> None:
    """Add attempt counts per user; past ``_MAX_USERS`` names only known ones still count."""
    for user, times in tried:
        if user in into or len(into) < _MAX_USERS:
            into[user] = into.get(user, 0) + times


def _hits_of(
    path: str, matcher: Matcher, reference: float, workers: int, advance: Advance
) -> Iterator[tuple[list[Hit], StreamStats]]:
    """The attempts of ``path`` chunk by chunk, in file order (split across processes or
    not): a chunk's hits are all that is held at once, however long the log."""
    if workers > 1:
        yield from _in_parallel(path, matcher, reference, workers, advance, _hits_here)
        return
    stream = matcher.stream(reference=reference)
    with open_log(path) as handle:
        chunks = Chunks(handle)
        reading = _Reading(handle, path, advance)
        for chunk in chunks:
            hits = stream.feed(chunk)
            reading.step()
            yield hits, stream.stats
            stream.stats = StreamStats()
    yield [], _skipped(StreamStats(), chunks)


def _series_of(
    path: str, matcher: Matcher, reference: float, workers: int, users: bool, advance: Advance
) -> tuple[Series, StreamStats]:
    """Every attempt of ``path`` as per-address series (see ``Stream.collect``)."""
    if workers > 1:
        merged: Series = []
        total = StreamStats()
        segments = _in_parallel(path, matcher, reference, workers, advance, _series_here, users)
        for series, stats in segments:  # one part per segment
            if merged:
                _merge(merged, series)
            else:  # the first segment's, matched here: its times are bytearrays to extend
                merged = series
            _sum_stats(total, stats)
        return merged, total
    series = matcher.new_series()
    stream = matcher.stream(reference=reference)
    with open_log(path) as handle:
        chunks = Chunks(handle)
        reading = _Reading(handle, path, advance)
        for chunk in chunks:
            stream.collect(chunk, series, users)
            reading.step()
    return series, _skipped(stream.stats, chunks)


def _merge(into: Series, more: Series) -> None:
    """Append a later segment's series to ``into`` (times in file order, users and shared
    attempts summed)."""
    shared = into[-1]
    for address, extra in more[-1].items():
        shared[address] = shared.get(address, 0) + extra
    for target, source in zip(into[:-1], more[:-1], strict=True):
        for address, (packed, tried) in source.items():
            known = target.get(address)
            if known is None:
                target[address] = [bytearray(packed), dict(tried)]
                continue
            known[0] += packed
            if tried:  # empty when the caller did not ask for users
                _count_users(known[1], tried.items())


def _splittable(path: str) -> bool:
    if os.path.getsize(path) < PARALLEL_MIN_SIZE:
        return False
    with open(path, "rb") as probe:
        return probe.read(2) != b"\x1f\x8b"


def _segments(path: str, parts: int) -> list[tuple[int, int]]:
    """``parts`` byte ranges of ``path`` that start and end on line boundaries. Each worker
    also re-reads ``_WARMUP`` bytes before its range, so the first range (this process's,
    which needs none) is that much longer: all then finish together."""
    size = os.path.getsize(path)
    warmup = _WARMUP if size > 4 * _WARMUP * parts else 0
    share = (size - warmup) / parts
    cuts = [0]
    with open(path, "rb") as handle:
        for index in range(1, parts):
            cut = int(warmup + share * index)
            cuts.append(max(_line_start(handle, cut), cuts[-1]))
    cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _line_start(handle: BinaryIO, offset: int) -> int:
    """The first line start at or after ``offset`` (reading a block at a time, so that a
    huge line is never held whole)."""
    if offset == 0:
        return 0
    handle.seek(offset - 1)
    position = offset - 1
    while block := handle.read(1 << 16):
        newline = block.find(b"\n")
        if newline >= 0:
            return position + newline + 1
        position += len(block)
    return position


def _in_parallel(
    path: str,
    matcher: Matcher,
    reference: float,
    workers: int,
    advance: Advance,
    here: Callable[..., Iterator[tuple[Any, StreamStats]]],
    *options: Any,
) -> Iterator[tuple[Any, StreamStats]]:
    """``here``'s parts for each segment of ``path``, in file order: this process matches
    the first segment (telling ``advance`` as it reads) while forked workers match the
    others (each told whole when its last part arrives: a worker never draws on the screen).
    A worker's parts wait in its pipe, not in memory: it goes on only as they are read."""
    segments = _segments(path, workers)

    def segment(start: int, end: int, told: Advance = _ignore) -> Iterator[tuple[Any, StreamStats]]:
        stream = matcher.stream(reference=reference)
        return here(stream, path, start, end, told, *options)

    forked = [_Worker(functools.partial(segment, start, end)) for start, end in segments[1:]]
    try:
        yield from segment(*segments[0], advance)
        for worker, (start, end) in zip(forked, segments[1:], strict=True):
            yield from worker.parts()
            advance(end - start)
    finally:
        for worker in forked:
            worker.abandon()


_FRAME = struct.Struct("<Q")  # the length of each msgpack message a worker sends


class _Worker:
    """A forked process computing one segment's parts; plain data comes back through a
    pipe, one length-prefixed msgpack message per part (a fork shares the compiled matcher:
    nothing to rebuild). A full pipe stops the worker until the parent reads on, so what is
    not yet read costs a pipe's worth of memory, not a segment's."""

    def __init__(self, work: Callable[[], Iterator[tuple[Any, StreamStats]]]) -> None:
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the worker: does its work and never returns
            os.close(read_end)
            status = 1
            try:
                with os.fdopen(write_end, "wb") as pipe:
                    status = _send_parts(pipe, work)
            finally:
                os._exit(status)
        os.close(write_end)
        self._pipe = os.fdopen(read_end, "rb")
        self._done = False

    def parts(self) -> Iterator[tuple[Any, StreamStats]]:
        """The worker's parts as they arrive; raises the OSError it met, or RuntimeError."""
        while (message := self._receive())[0] == "part":
            yield message[1], StreamStats(*message[2])
        if message[0] == "end":
            self._pipe.close()
            os.waitpid(self.pid, 0)
            self._done = True
            return
        if message[0] == "oserror":
            raise OSError(*message[1:])
        raise RuntimeError(f"scan worker failed: {message[1]}")

    def _receive(self) -> list[Any]:
        header = self._pipe.read(_FRAME.size)
        payload = self._pipe.read(_FRAME.unpack(header)[0]) if len(header) == _FRAME.size else b""
        try:
            message = msgspec.msgpack.decode(payload)
        except msgspec.DecodeError:
            message = None
        if isinstance(message, list) and message:
            return message
        return ["error", "the worker process died"]

    def abandon(self) -> None:
        """Stop a worker whose parts are no longer wanted (the scan failed, was stopped, or
        is done with it)."""
        if self._done:
            return
        import signal  # only to kill a worker: ~1 ms of every scan's start-up otherwise

        self._pipe.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        self._done = True


def _send_parts(pipe: BinaryIO, work: Callable[[], Iterator[tuple[Any, StreamStats]]]) -> int:
    """In a worker: each part of ``work`` as a message, then "end" (or what went wrong);
    the exit status."""

    def send(*message: Any) -> None:
        payload = msgspec.msgpack.encode(message)
        pipe.write(_FRAME.pack(len(payload)))
        pipe.write(payload)

    try:
        for part, stats in work():
            send("part", part, dataclasses.astuple(stats))
        send("end")
        return 0
    except OSError as error:
        send("oserror", error.errno, error.strerror, error.filename)
    except BaseException as error:  # reported by the parent, which fails clearly
        send("error", f"{type(error).__name__}: {error}")
    return 1


def _segment_chunks(
    stream: Stream, path: str, start: int, end: int, advance: Advance
) -> Iterator[bytes]:
    """The chunks of ``path[start:end]``, after warming ``stream`` up on what precedes it."""
    with open(path, "rb") as handle:
        if start:
            warm_from = _line_start(handle, max(0, start - _WARMUP))
            handle.seek(warm_from)
            for chunk in Chunks(_Limited(handle, start - warm_from)):
                stream.skim(chunk)
        chunks = Chunks(_Limited(handle, end - start))
        reading = _Reading(handle, path, advance)
        for chunk in chunks:
            yield chunk
            reading.step()
        _skipped(stream.stats, chunks)


def _skipped(stats: StreamStats, chunks: Chunks) -> StreamStats:
    stats.lines += chunks.too_long
    stats.too_long += chunks.too_long
    return stats


def _hits_here(
    stream: Stream, path: str, start: int, end: int, advance: Advance
) -> Iterator[tuple[list[Hit], StreamStats]]:
    """A segment's attempts chunk by chunk, each with what its chunk counted."""
    for chunk in _segment_chunks(stream, path, start, end, advance):
        hits = stream.feed(chunk)
        yield hits, stream.stats
        stream.stats = StreamStats()
    yield [], stream.stats  # the over-long lines skipped


def _series_here(
    stream: Stream, path: str, start: int, end: int, advance: Advance, users: bool
) -> Iterator[tuple[Series, StreamStats]]:
    """A segment's attempts as one ``Series``."""
    series = stream.matcher.new_series()
    for chunk in _segment_chunks(stream, path, start, end, advance):
        stream.collect(chunk, series, users)
    yield series, stream.stats


class _Limited:
    """A file read up to ``remaining`` bytes from where it stands."""

    def __init__(self, handle: BinaryIO, remaining: int) -> None:
        self.handle = handle
        self.remaining = remaining

    def read(self, size: int) -> bytes:
        data = self.handle.read(min(size, self.remaining))
        self.remaining -= len(data)
        return data

    def readinto(self, into: memoryview) -> int:
        got = self.handle.readinto(into[: self.remaining]) if self.remaining else 0
        self.remaining -= got
        return got


def _add_stats(summary: ScanSummary, stats: StreamStats) -> None:
    summary.lines += stats.lines
    summary.failures += stats.attempts
    summary.unattributed += stats.unattributed
    summary.bad_time += stats.bad_time
    summary.too_long += stats.too_long
    summary.match_errors += stats.match_errors


def _sum_stats(total: StreamStats, stats: StreamStats) -> None:
    for name in StreamStats.__dataclass_fields__:
        setattr(total, name, getattr(total, name) + getattr(stats, name))
