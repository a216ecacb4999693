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

from bruteguard.line_splitter import MAX_LINE, LineSplitter
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
