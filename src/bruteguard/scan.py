"""Offline replay: read logs as fast as possible, decide what the jails would have banned.

``bruteguard scan`` and ``bruteguard report`` run this; the daemon uses the same matcher and
detector, so a replay decides exactly what the live daemon would have.
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from bruteguard.config import Config, JailConfig, parse_networks
from bruteguard.detect import Detector
from bruteguard.match.engine import Hit, Matcher, StreamStats
from bruteguard.model import Ban

__all__ = ["Offender", "ScanSummary", "read_chunks", "scan_logs"]

CHUNK_SIZE = 8 << 20
_MAX_USERS = 20


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
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")  # noqa: SIM115


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
) -> ScanSummary:
    """Match every line of ``paths`` for ``jails``; ``on_hits`` sees each chunk's results.

    Raises OSError (with the path) for a log that cannot be read.
    """
    started = time.perf_counter()
    matcher = Matcher({jail.name: jail.filter for jail in jails})
    detector = Detector(jails, parse_networks(config.ignoreip))
    summary = ScanSummary()
    for path in paths:
        reference = time.time() if path == "-" else os.stat(path).st_mtime
        stream = matcher.stream(reference=reference)
        with _open(path) as handle:
            for chunk in read_chunks(handle):
                hits = stream.feed(chunk)
                bans = detector.observe(hits)
                summary.bans.extend(bans)
                if keep_offenders:
                    _record(summary.offenders, hits)
                if on_hits is not None:
                    on_hits(hits, bans)
        _add_stats(summary, stream.stats)
    summary.seconds = time.perf_counter() - started
    return summary


def _add_stats(summary: ScanSummary, stats: StreamStats) -> None:
    summary.lines += stats.lines
    summary.failures += stats.attempts
    summary.unattributed += stats.unattributed
    summary.bad_time += stats.bad_time
