"""Arbitrary chunks of bytes cut into runs of complete lines, a line's length bounded.

Its own module (``bruteguard.sources`` re-exports it) because ``scan`` needs it without the
daemon's asyncio sources: a replay should not pay for importing what it never runs.
"""

from __future__ import annotations

__all__ = ["MAX_LINE", "LineSplitter", "drop_long_lines", "has_long_line"]

MAX_LINE = 1 << 20
"""Longest line kept (without its newline); longer ones are skipped, so memory stays bounded."""


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
        elif last >= self.max_line and self._has_long_line(data, last + 1):
            lines, tail = self._pending + self._drop_long(data[: last + 1]), data[last + 1 :]
        else:
            # One copy of a large chunk, not two (its lines, then the held line before them).
            body = data if last == len(data) - 1 else memoryview(data)[: last + 1]
            lines = b"".join((self._pending, body)) if self._pending else bytes(body)
            tail = data[last + 1 :]
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

    def _has_long_line(self, body: bytes, end: int) -> bool:
        return has_long_line(body, 0, end, self.max_line)

    def _drop_long(self, body: bytes) -> bytes:
        kept, dropped = drop_long_lines(body, self.max_line)
        self.skipped_long_lines += dropped
        return kept


def has_long_line(body: bytes | bytearray, at: int, end: int, max_line: int) -> bool:
    """Whether ``body[at:end]`` (whole lines) holds one over ``max_line``: a jump from
    newline to newline of at most ``max_line`` bytes at a time, not a split into lines."""
    while end - at > max_line:
        newline = body.rfind(b"\n", at, at + max_line + 1)
        if newline < 0:
            return True
        at = newline + 1
    return False


def drop_long_lines(body: bytes, max_line: int) -> tuple[bytes, int]:
    """``body`` (whole lines) without those over ``max_line``, and how many they were."""
    lines = body.split(b"\n")[:-1]
    kept = [line for line in lines if len(line) <= max_line]
    return b"".join(line + b"\n" for line in kept), len(lines) - len(kept)
