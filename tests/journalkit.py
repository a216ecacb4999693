"""Real journal files for the journal sources' tests, written by systemd-journal-remote.

journal-remote turns journal export format on its stdin into a genuine ``.journal`` file, so
a test can choose the trusted fields journald would set and keep the process running to
append entries while a source follows the file. Needs the Debian package
systemd-journal-remote.
"""

from __future__ import annotations

import asyncio
import struct
import subprocess
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from bruteguard.model import SourcePosition
from bruteguard.sources import LineBatch, Source

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
TIMEOUT = 20.0
BOOT_ID = "0123456789abcdef0123456789abcdef"
T0 = 1_795_423_801_000_000  # 2026-11-23T08:50:01Z in microseconds

SSHD_UNIT = ["_SYSTEMD_UNIT=ssh.service", "_COMM=sshd"]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def export(fields: dict[str, str | bytes]) -> bytes:
    """One entry in journal export format; values with newlines use the binary form."""
    out = b""
    for name, value in fields.items():
        data = value if isinstance(value, bytes) else value.encode()
        if b"\n" in data or not data.isascii():
            out += name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += name.encode() + b"=" + data + b"\n"
    return out + b"\n"


class RemoteJournal:
    """A running systemd-journal-remote writing ``<directory>/remote.journal``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0
        self.process = subprocess.Popen(
            [JOURNAL_REMOTE, "-o", str(directory / "remote.journal"), "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def add(self, message: str | bytes, **fields: str | bytes) -> None:
        """Append an entry; realtime advances one second per entry from T0."""
        assert self.process.stdin is not None
        self.count += 1
        entry = {
            "__REALTIME_TIMESTAMP": str(T0 + self.count * 1_000_000 + 123_456),
            "__MONOTONIC_TIMESTAMP": str(self.count * 1000),
            "_BOOT_ID": BOOT_ID,
            "_HOSTNAME": "web1",
            "_COMM": "sshd",
            "_EXE": "/usr/sbin/sshd",
            "_UID": "0",
            "_PID": str(4000 + self.count),
            "_SYSTEMD_UNIT": "ssh.service",
            **fields,
            "MESSAGE": message,
        }
        self.process.stdin.write(export({k: v for k, v in entry.items() if v != ""}))
        self.process.stdin.flush()

    def stamp(self, number: int) -> str:
        """The formatted time of entry ``number`` (1-based)."""
        seconds = 1 + number
        return f"2026-11-23T08:50:{seconds:02d}.123456+00:00"

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        self.process.wait(timeout=10)


class Reading:
    """A running ``batches()`` iterator and what it delivered last.

    A pending read is kept, never cancelled: cancelling would end the generator.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.batches = source.batches()
        self.position: SourcePosition | None = None
        self._next: asyncio.Future[LineBatch] | None = None

    def _pending(self) -> asyncio.Future[LineBatch]:
        if self._next is None:
            self._next = asyncio.ensure_future(anext(self.batches))
        return self._next

    async def start(self) -> None:
        """Ask for the first batch and let the source take its first step, as the daemon
        does when it starts (``await asyncio.sleep(0)``)."""
        self._pending()
        await asyncio.sleep(0)

    async def take(self, count: int, timeout: float = 5.0) -> list[bytes]:
        """The next ``count`` lines."""
        lines: list[bytes] = []
        async with asyncio.timeout(timeout):
            while len(lines) < count:
                batch = await self._pending()
                self._next = None
                assert batch.key == self.source.key
                assert batch.data.endswith(b"\n")
                self.position = batch.position
                # Lines end at "\n" only: a CR inside a message is part of its line.
                lines.extend(line + b"\n" for line in batch.data.split(b"\n")[:-1])
        return lines

    async def messages(self, count: int) -> list[bytes]:
        """The messages of the next ``count`` lines (the part after ``program[pid]: ``)."""
        return [line.split(b": ", 1)[1] for line in await self.take(count)]

    async def nothing_more(self, wait: float = 0.3) -> bool:
        """True when no batch arrives within ``wait`` seconds."""
        done, _ = await asyncio.wait({self._pending()}, timeout=wait)
        return not done

    async def close(self) -> None:
        await self.source.aclose()
        if self._next is not None:
            await asyncio.wait_for(asyncio.gather(self._next, return_exceptions=True), 2)


def program_of(line: bytes) -> bytes:
    """The program token of a formatted line, without its pid."""
    return line.split(b" ")[2].split(b"[")[0]


async def settle(remote: RemoteJournal) -> None:
    """Let journal-remote write what it was sent (the file is what we read)."""
    await asyncio.sleep(0.2)
