"""Lines piped into bruteguard (``journalctl -o short … | bruteguard scan -``) until end of input.

A pipe or terminal is waited on with the event loop's reader, so nothing blocks and nothing
is left running when the source is cancelled; a redirected regular file (``< auth.log``),
which the event loop cannot watch and which never blocks for long, is read in a worker
thread. At end of input a last line without a newline is delivered with one added: unlike a
file being followed, nothing will ever finish it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncGenerator, AsyncIterator
from typing import BinaryIO

from bruteguard.model import SourcePosition
from bruteguard.sources import CHUNK_SIZE, MAX_LINE, LineBatch, LineSplitter

__all__ = ["STDIN_KEY", "StdinSource"]

STDIN_KEY = "stdin"


class StdinSource:
    """Complete-line batches from a binary stream (standard input by default) until EOF.

    The position's ``offset`` counts the bytes consumed; it is informative only, since a
    pipe cannot be resumed.
    """

    key = STDIN_KEY

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdin.buffer
        self._splitter = LineSplitter(MAX_LINE)
        self._generator: AsyncGenerator[LineBatch, None] | None = None
        self._offset = 0

    @property
    def skipped_long_lines(self) -> int:
        """Lines longer than 1 MiB that were skipped rather than buffered."""
        return self._splitter.skipped_long_lines

    def batches(self) -> AsyncIterator[LineBatch]:
        """Batches until end of input."""
        self._generator = self._read_all()
        return self._generator

    async def aclose(self) -> None:
        """Stop reading (the stream itself stays open: it belongs to the caller)."""
        generator, self._generator = self._generator, None
        if generator is not None and not generator.ag_running:
            await generator.aclose()

    async def _read_all(self) -> AsyncGenerator[LineBatch, None]:
        fd = self.stream.fileno()
        loop = asyncio.get_running_loop()
        while True:
            data = await _read(loop, fd)
            if not data:
                break
            self._offset += len(data)
            lines = self._splitter.feed(data)
            if lines:
                yield self._batch(lines)
        rest = self._splitter.finish()
        if rest:
            yield self._batch(rest)

    def _batch(self, lines: bytes) -> LineBatch:
        position = SourcePosition(key=self.key, offset=self._offset - self._splitter.held)
        return LineBatch(self.key, lines, position)


async def _read(loop: asyncio.AbstractEventLoop, fd: int) -> bytes:
    """Up to a chunk of what is available now; ``b""`` at end of input."""
    ready = loop.create_future()
    try:
        loop.add_reader(fd, _set_once, ready)
    except PermissionError:  # a regular file: epoll refuses it, and reading it cannot hang
        return await asyncio.to_thread(os.read, fd, CHUNK_SIZE)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
    # Readable: this read returns at once with what is there (or b"" at EOF), although the
    # descriptor stays in blocking mode, which we must not change under a shared terminal.
    return os.read(fd, CHUNK_SIZE)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
