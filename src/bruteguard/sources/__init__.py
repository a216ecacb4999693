"""Log sources: where lines come from (files, the journal, stdin) and the shape they arrive in.

Every source yields ``LineBatch`` values: one or more *complete* lines, so the matcher can run
one compiled pass over a whole batch and never sees half a line. A source remembers where it
stopped as a ``SourcePosition`` (from ``bruteguard.model``) that travels with each batch; the
daemon saves the position of the last batch it has fully processed, and a restarted source
resumes there: no line is counted twice and none is missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Protocol, runtime_checkable

import msgspec

from bruteguard.model import SourcePosition

__all__ = [
    "CHUNK_SIZE",
    "MAX_LINE",
    "FollowingSource",
    "LineBatch",
    "LineSplitter",
    "Source",
    "SourceHealth",
    "health_of",
]

CHUNK_SIZE = 1 << 20
"""Bytes read at a time when there is a backlog: big batches, one matcher pass each."""

MAX_LINE = 1 << 20
"""Longest line kept (without its newline); longer ones are skipped, so memory stays bounded."""


class LineBatch(msgspec.Struct, frozen=True):
    """Complete lines from one source and where that source stands after them."""

    key: str
    data: bytes
    position: SourcePosition


@runtime_checkable
class Source(Protocol):
    """Anything that produces line batches until it is cancelled or closed."""

    key: str

    def batches(self) -> AsyncIterator[LineBatch]: ...

    async def aclose(self) -> None: ...


class SourceHealth(msgspec.Struct, frozen=True):
    """Whether a source reads its log now (a jail with none that does protects nothing),
    and what it reads or waits for, in words for the admin. ``progress``: bytes read and
    the log's size, where a source can tell (a file), so a big backlog shows how far it is."""

    reading: bool
    detail: str
    progress: tuple[int, int] | None = None


class FollowingSource:
    """What the sources that follow a log share: one generator of batches (``_follow``)
    that idles on ``_wake`` instead of polling, and a close that ends a waiting
    ``batches()`` at once (the generator's own cleanup stops what it started)."""

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._closed = False
        self._generator: AsyncGenerator[LineBatch, None] | None = None

    def _follow(self) -> AsyncGenerator[LineBatch, None]:
        raise NotImplementedError

    def batches(self) -> AsyncIterator[LineBatch]:
        """Batches until closed; idle until the log has news."""
        self._generator = self._follow()
        return self._generator

    async def aclose(self) -> None:
        """Stop following; a ``batches()`` waiting for news returns at once."""
        self._closed = True
        self._wake.set()
        generator, self._generator = self._generator, None
        if generator is not None and not generator.ag_running:
            await generator.aclose()


def health_of(source: Source) -> SourceHealth:
    """A source's own account (``health()``), or: reading, as its key says."""
    health = getattr(source, "health", None)
    return health() if health is not None else SourceHealth(True, source.key)


class LineSplitter:
    """Turns arbitrary chunks of bytes into runs of complete lines.

    A trailing partial line is held back until its newline arrives. A line longer than
    ``max_line`` bytes is dropped whole (counted in ``skipped_long_lines``) instead of being
    buffered without bound: an attacker who can write to a log must not exhaust our memory.
    Bytes are passed through untouched; invalid UTF-8 is the matcher's business.
    """

    __slots__ = ("_discarding", "_held", "_pending", "max_line", "skipped_long_lines")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self.skipped_long_lines = 0
        self._pending = b""
        self._held = 0
        self._discarding = False

    @property
    def held(self) -> int:
        """Bytes fed that belong to the unfinished last line (kept or being skipped).

        A reader's resumable position is its read offset minus this: always a line start.
        """
        return self._held

    def reset(self, *, mid_line: bool = False) -> None:
        """Forget any partial line; with ``mid_line`` also skip up to the next newline.

        ``mid_line`` is for starting inside someone else's line (tailing a file whose last
        line is unfinished): its tail is not a line of its own and must not be matched.
        """
        self._pending = b""
        self._held = 0
        self._discarding = mid_line

    def feed(self, data: bytes) -> bytes:
        """Add ``data``; return the complete lines now available (possibly ``b""``)."""
        if self._discarding:
            newline = data.find(b"\n")
            if newline < 0:
                self._held += len(data)
                return b""
            self._discarding = False
            data = data[newline + 1 :]
        newline = data.find(b"\n")
        if newline >= 0 and len(self._pending) + newline > self.max_line:
            self.skipped_long_lines += 1
            self._pending = b""
            data = data[newline + 1 :]
        last = data.rfind(b"\n")
        if last < 0:
            lines, tail = b"", self._pending + data
        else:
            body = data[: last + 1]
            if last >= self.max_line and self._has_long_line(body):
                body = self._drop_long(body)
            lines, tail = self._pending + body, data[last + 1 :]
        self._pending, self._held = tail, len(tail)
        if len(tail) > self.max_line:
            self.skipped_long_lines += 1
            self._pending = b""
            self._discarding = True
        return lines

    def finish(self) -> bytes:
        """At end of input, the held-back partial line with a newline added (or ``b""``)."""
        rest = self._pending
        self.reset()
        return rest + b"\n" if rest else b""

    def _has_long_line(self, body: bytes) -> bool:
        """Whether ``body`` (whole lines) holds one over ``max_line``: a jump from newline to
        newline of at most ``max_line`` bytes at a time, not a split into lines."""
        at, end = 0, len(body)
        while end - at > self.max_line:
            newline = body.rfind(b"\n", at, at + self.max_line + 1)
            if newline < 0:
                return True
            at = newline + 1
        return False

    def _drop_long(self, body: bytes) -> bytes:
        lines = body.split(b"\n")[:-1]
        kept = [line for line in lines if len(line) <= self.max_line]
        self.skipped_long_lines += len(lines) - len(kept)
        return b"".join(line + b"\n" for line in kept)
