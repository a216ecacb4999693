"""Offline replay: read logs as fast as possible, decide what the jails would have banned.

``bruteguard scan`` and ``bruteguard report`` run this; the daemon uses the same matcher and
detector, so a replay decides exactly what the live daemon would have.
"""

from __future__ import annotations

import gzip
import itertools
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

import msgspec

from bruteguard.config import Config, JailConfig, parse_networks
from bruteguard.detect import Detector
from bruteguard.match.engine import Hit, Matcher, StreamStats
from bruteguard.model import Ban

__all__ = ["Offender", "ScanSummary", "read_chunks", "scan_logs"]

CHUNK_SIZE = 8 << 20
_MAX_USERS = 20
# A file this large is split into one segment per core and matched in worker processes.
PARALLEL_MIN_SIZE = 32 << 20
# Each worker first re-reads this much before its segment, discarding the hits, so that
# connections open across the cut are known (LoginGraceTime is minutes; this is ~20k lines).
_WARMUP = 2 << 20


@dataclass
class Offender:
    """What one address did, for the report table."""

    address: str
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    users: dict[str, int] = field(default_factory=dict)


@dataclass
class ScanSummary:
    lines: int = 0
    failures: int = 0
    bans: list[Ban] = field(default_factory=list)
    seconds: float = 0.0
    unattributed: int = 0
    bad_time: int = 0
    offenders: dict[str, Offender] = field(default_factory=dict)


def _open(path: str) -> BinaryIO:
    if path == "-":
        return os.fdopen(os.dup(0), "rb")
    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_chunks(stream: BinaryIO, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Large chunks of whole lines; a last line without newline is completed."""
    rest = b""
    while True:
        block = stream.read(size)
        if not block:
            break
        block = rest + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut]
    if rest:
        yield rest + b"\n"


def _record(offenders: dict[str, Offender], hits: Sequence[Hit]) -> None:
    for moment, address, user, _jail, _line in hits:
        offender = offenders.get(address)
        if offender is None:
            offender = offenders[address] = Offender(address, 0, moment, moment)
        offender.count += 1
        if moment < offender.first:
            offender.first = moment
        elif moment > offender.last:
            offender.last = moment
        if user is not None and (user in offender.users or len(offender.users) < _MAX_USERS):
            offender.users[user] = offender.users.get(user, 0) + 1


def scan_logs(
    paths: Sequence[str],
    config: Config,
    jails: Sequence[JailConfig],
    on_hits: Callable[[list[Hit], list[Ban]], None] | None = None,
    keep_offenders: bool = True,
    workers: int | None = None,
) -> ScanSummary:
    """Match every line of ``paths`` for ``jails``; ``on_hits`` sees each chunk's results.

    Large plain files are matched by ``workers`` processes (default: one per core), each on a
    segment; the detector then sees every hit in file order, as a sequential read would.
    Raises OSError (with the path) for a log that cannot be read.
    """
    started = time.perf_counter()
    jail_filters = {jail.name: jail.filter for jail in jails}
    matcher = Matcher(jail_filters)
    detector = Detector(jails, parse_networks(config.ignoreip))
    summary = ScanSummary()
    workers = workers or os.cpu_count() or 1

    def take(hits: list[Hit]) -> None:
        bans = detector.observe(hits)
        summary.bans.extend(bans)
        if keep_offenders:
            _record(summary.offenders, hits)
        if on_hits is not None:
            on_hits(hits, bans)

    for path in paths:
        reference = time.time() if path == "-" else os.stat(path).st_mtime
        if workers > 1 and path != "-" and _splittable(path):
            for hits, stats in _scan_parallel(path, jail_filters, reference, workers):
                take(hits)
                _add_stats(summary, stats)
            continue
        stream = matcher.stream(reference=reference)
        with _open(path) as handle:
            for chunk in read_chunks(handle):
                take(stream.feed(chunk))
        _add_stats(summary, stream.stats)
    summary.seconds = time.perf_counter() - started
    return summary


def _splittable(path: str) -> bool:
    if os.path.getsize(path) < PARALLEL_MIN_SIZE:
        return False
    with open(path, "rb") as probe:
        return probe.read(2) != b"\x1f\x8b"


def _segments(path: str, parts: int) -> list[tuple[int, int]]:
    """``parts`` byte ranges of ``path`` that start and end on line boundaries."""
    size = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as handle:
        for index in range(1, parts):
            handle.seek(size * index // parts)
            handle.readline()
            cuts.append(max(handle.tell(), cuts[-1]))
    cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _scan_parallel(
    path: str, jail_filters: Mapping[str, str], reference: float, workers: int
) -> Iterator[tuple[list[Hit], StreamStats]]:
    context = multiprocessing.get_context("fork")
    jobs = [(path, a, b, dict(jail_filters), reference) for a, b in _segments(path, workers)]
    with ProcessPoolExecutor(max_workers=len(jobs), mp_context=context) as pool:
        for encoded in pool.map(_scan_segment, jobs):
            hits, stats = msgspec.msgpack.decode(encoded)
            yield hits, StreamStats(*stats)


def _scan_segment(job: tuple[str, int, int, dict[str, str], float]) -> bytes:
    """Worker: the hits of one segment, msgpack-encoded (plain data only crosses over)."""
    path, start, end, jail_filters, reference = job
    stream = Matcher(jail_filters).stream(reference=reference)
    hits: list[Hit] = []
    with open(path, "rb") as handle:
        if start:
            warm_from = max(0, start - _WARMUP)
            handle.seek(warm_from)
            if warm_from:
                handle.readline()
            stream.feed(handle.read(start - handle.tell()))
            stream.stats = StreamStats()
        remaining = end - start
        for chunk in read_chunks(_Limited(handle, remaining)):
            hits.extend(stream.feed(chunk))
    stats = stream.stats
    return msgspec.msgpack.encode(
        (hits, (stats.lines, stats.matched, stats.attempts, stats.unattributed, stats.bad_time))
    )


class _Limited:
    """A file read up to ``remaining`` bytes from where it stands."""

    def __init__(self, handle: BinaryIO, remaining: int) -> None:
        self.handle = handle
        self.remaining = remaining

    def read(self, size: int) -> bytes:
        data = self.handle.read(min(size, self.remaining))
        self.remaining -= len(data)
        return data


def _add_stats(summary: ScanSummary, stats: StreamStats) -> None:
    summary.lines += stats.lines
    summary.failures += stats.attempts
    summary.unattributed += stats.unattributed
    summary.bad_time += stats.bad_time
