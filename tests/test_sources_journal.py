"""JournalSource against real journal files written by systemd-journal-remote.

journal-remote turns journal export format on its stdin into a genuine ``.journal`` file,
so a test can choose the trusted fields (``_COMM``, ``_PID``, ``_HOSTNAME``) that journald
would set, and keep the process running to append entries while a source follows the file.
Needs the Debian package systemd-journal-remote.
"""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from bruteguard.errors import ConfigError
from bruteguard.model import SourcePosition
from bruteguard.sources import LineBatch, Source
from bruteguard.sources.journal import (
    JournalSource,
    format_entry,
    journal_available,
    journal_key,
)

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


@pytest.fixture
def remote(tmp_path: Path) -> Any:
    journal = RemoteJournal(tmp_path)
    try:
        yield journal
    finally:
        journal.close()


class Reading:
    """A running ``batches()`` iterator and what it delivered last.

    A pending read is kept, never cancelled: cancelling would end the generator.
    """

    def __init__(self, source: JournalSource) -> None:
        self.source = source
        self.batches = source.batches()
        self.position: SourcePosition | None = None
        self._next: asyncio.Future[LineBatch] | None = None

    def _pending(self) -> asyncio.Future[LineBatch]:
        if self._next is None:
            self._next = asyncio.ensure_future(anext(self.batches))
        return self._next

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
                lines.extend(batch.data.splitlines(keepends=True))
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


async def settle(remote: RemoteJournal) -> None:
    """Let journal-remote write what it was sent (the file is what we read)."""
    await asyncio.sleep(0.2)


def test_entries_become_one_line_each_with_trusted_program_names(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    remote.add("Failed password for root from 203.0.113.5 port 22 ssh2")
    remote.add(
        "Failed password for root from 198.51.100.7 port 22 ssh2",
        _COMM="logger",
        SYSLOG_IDENTIFIER="sshd",
        _SYSTEMD_UNIT="",
    )
    remote.add("first line\nFailed password for x from 192.0.2.1 port 1 ssh2")
    remote.add(b"binary \xff\xfe message")
    remote.add("Out of memory", _COMM="", _PID="", _TRANSPORT="kernel", _HOSTNAME="evil host")
    remote.close()

    async def body() -> list[bytes]:
        source = JournalSource([], since=0, path=tmp_path)
        assert isinstance(source, Source)
        reading = Reading(source)
        lines = await reading.take(5)
        assert await reading.nothing_more()
        await reading.close()
        return lines

    assert run(body()) == [
        f"{remote.stamp(1)} web1 sshd[4001]: "
        "Failed password for root from 203.0.113.5 port 22 ssh2\n".encode(),
        f"{remote.stamp(2)} web1 logger[4002]: "
        "Failed password for root from 198.51.100.7 port 22 ssh2\n".encode(),
        f"{remote.stamp(3)} web1 sshd[4003]: "
        "first line#012Failed password for x from 192.0.2.1 port 1 ssh2\n".encode(),
        f"{remote.stamp(4)} web1 sshd[4004]: ".encode() + b"binary \xff\xfe message\n",
        f"{remote.stamp(5)} evil_host kernel: Out of memory\n".encode(),
    ]


def test_journalmatch_entries_are_alternatives(remote: RemoteJournal, tmp_path: Path) -> None:
    remote.add("from the unit", _COMM="sshd-session")
    remote.add("from sshd outside the unit", _SYSTEMD_UNIT="other.service")
    remote.add("forged", _COMM="logger", SYSLOG_IDENTIFIER="sshd", _SYSTEMD_UNIT="user.service")
    remote.add("unrelated", _COMM="cron", _SYSTEMD_UNIT="cron.service")
    remote.close()

    async def body() -> list[bytes]:
        source = JournalSource(SSHD_UNIT, since=0, path=tmp_path)
        reading = Reading(source)
        messages = await reading.messages(2)
        assert await reading.nothing_more()
        await reading.close()
        return messages

    assert run(body()) == [b"from the unit\n", b"from sshd outside the unit\n"]


def test_default_start_is_the_end_and_appended_entries_are_followed(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    for i in range(3):
        remote.add(f"before start {i}")

    async def body() -> list[bytes]:
        await settle(remote)
        source = JournalSource(SSHD_UNIT, path=tmp_path)
        reading = Reading(source)
        assert await reading.nothing_more()  # opened and positioned at the end
        remote.add("live 1")
        first = await reading.messages(1)
        remote.add("live 2")
        remote.add("live 3")
        rest = await reading.messages(2)
        await reading.close()
        return first + rest

    assert run(body()) == [b"live 1\n", b"live 2\n", b"live 3\n"]


def test_following_costs_no_cpu_while_idle_or_while_the_consumer_is_busy(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    remote.add("first")

    async def body() -> tuple[float, float]:
        await settle(remote)
        reading = Reading(JournalSource(SSHD_UNIT, path=tmp_path))
        began = time.process_time()
        assert await reading.nothing_more(0.5)
        idle = time.process_time() - began
        remote.add("live")
        assert await reading.messages(1) == [b"live\n"]
        began = time.process_time()
        for i in range(5):  # journal changes while nobody asks for the next batch
            remote.add(f"more {i}")
            await asyncio.sleep(0.1)
        busy = time.process_time() - began
        assert await reading.messages(5) == [f"more {i}\n".encode() for i in range(5)]
        await reading.close()
        return idle, busy

    idle, busy = run(body())
    assert idle < 0.05 and busy < 0.05, (idle, busy)


def test_resume_from_cursor_neither_repeats_nor_misses(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    for i in range(3):
        remote.add(f"seen {i}")

    async def body() -> None:
        await settle(remote)
        reading = Reading(JournalSource(SSHD_UNIT, since=0, path=tmp_path))
        assert await reading.messages(3) == [b"seen 0\n", b"seen 1\n", b"seen 2\n"]
        saved = reading.position
        assert saved is not None
        assert saved.key == journal_key(SSHD_UNIT) and saved.cursor.startswith("s=")
        await reading.close()

        remote.add("while stopped 1")
        remote.add("not ours", _COMM="cron", _SYSTEMD_UNIT="cron.service")
        remote.add("while stopped 2")
        await settle(remote)
        # since=0 would replay everything: the cursor must win over it
        again = Reading(JournalSource(SSHD_UNIT, saved=saved, since=0, path=tmp_path))
        assert await again.messages(2) == [b"while stopped 1\n", b"while stopped 2\n"]
        assert await again.nothing_more()
        remote.add("live")
        assert await again.messages(1) == [b"live\n"]
        await again.close()

    run(body())


def test_since_starts_at_that_time(remote: RemoteJournal, tmp_path: Path) -> None:
    for i in range(4):
        remote.add(f"entry {i}")
    remote.close()
    since = (T0 + 3 * 1_000_000) / 1_000_000  # between entries 2 and 3

    async def body() -> list[bytes]:
        reading = Reading(JournalSource(SSHD_UNIT, since=since, path=tmp_path))
        messages = await reading.messages(2)
        assert await reading.nothing_more()
        await reading.close()
        return messages

    assert run(body()) == [b"entry 2\n", b"entry 3\n"]


def test_format_entry_escapes_every_newline_and_tokenises_names() -> None:
    entry = {
        "__REALTIME_TIMESTAMP": 1_795_423_801_000_001,
        "_HOSTNAME": b"host\nname",
        "_COMM": b"ss hd",
        "_PID": [b"12", b"13"],
        "MESSAGE": b"a\nb\n",
    }
    assert (
        format_entry(entry) == b"2026-11-23T08:50:01.000001+00:00 host_name ss_hd[12]: a#012b#012\n"
    )


def test_missing_bindings_raise_journal_unavailable() -> None:
    program = (
        "import asyncio, sys\n"
        "sys.modules['systemd'] = None  # as on a host without python3-systemd\n"
        "from bruteguard.sources.journal import JournalSource, JournalUnavailable\n"
        "from bruteguard.sources.journal import journal_available\n"
        "assert not journal_available()\n"
        "async def main():\n"
        "    try:\n"
        "        await anext(JournalSource(['_COMM=sshd']).batches())\n"
        "    except JournalUnavailable as error:\n"
        "        print(error)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    assert "cannot read the systemd journal" in result.stdout
    assert "python3-systemd" in result.stdout


def test_journal_available_needs_journal_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not journal_available([str(empty), str(tmp_path / "missing")])
    machine = tmp_path / "persistent" / BOOT_ID
    machine.mkdir(parents=True)
    (machine / "system.journal").write_bytes(b"")
    assert journal_available([str(empty), str(tmp_path / "persistent")])


def test_bad_journalmatch_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not FIELD=value"):
        JournalSource(["sshd"])
    assert journal_key([]) == "journal"
    assert journal_key(["_COMM=sshd", "_SYSTEMD_UNIT=ssh.service"]) == journal_key(
        ["_SYSTEMD_UNIT=ssh.service", "_COMM=sshd"]
    )
