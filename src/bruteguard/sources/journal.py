"""Follow the systemd journal, one entry per line, naming programs by fields journald vouches for.

Each entry becomes one syslog-like line the matchers already understand::

    2026-11-23T06:50:01.123456+00:00 web1 sshd[4242]: Failed password for root from …

The program name is ``_COMM`` and the pid ``_PID``: journald takes both from the kernel for
the process that logged. ``SYSLOG_IDENTIFIER`` is whatever the sender claims
(``logger -t sshd`` sets it), so it is never used: otherwise any local user could write
"sshd" failures that frame an innocent address. Newlines inside a message are escaped as
``#012`` (as rsyslog does) so that an entry is exactly one line.

The bindings (``python3-systemd`` / ``systemd-python``) are imported only when a journal
source is opened, so hosts without them can still read files.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import glob
import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from typing import Any

from bruteguard.config import check_journalmatch
from bruteguard.errors import BruteguardError, ConfigError
from bruteguard.model import SourcePosition
from bruteguard.sources import CHUNK_SIZE, MAX_LINE, LineBatch

__all__ = [
    "JOURNAL_DIRECTORIES",
    "JournalSource",
    "JournalUnavailable",
    "format_entry",
    "journal_available",
    "journal_key",
]

JOURNAL_DIRECTORIES = ("/run/log/journal", "/var/log/journal")

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
# Fields we format are kept as raw bytes: a message need not be UTF-8.
_RAW_FIELDS = {
    "MESSAGE": bytes,
    "_COMM": bytes,
    "_HOSTNAME": bytes,
    "_PID": bytes,
    "_TRANSPORT": bytes,
    "__REALTIME_TIMESTAMP": int,
}
# Host and program names are single tokens: spaces or control characters become "_".
_TOKEN = bytes.maketrans(bytes([*range(33), 127]), b"_" * 34)


class JournalUnavailable(BruteguardError):
    """The journal cannot be read here: no bindings, or no journal to open."""


def journal_available(directories: Sequence[str] = JOURNAL_DIRECTORIES) -> bool:
    """True when the bindings import and a journal directory holds journal files."""
    try:
        from systemd import journal  # noqa: F401
    except ImportError:
        return False
    return any(
        glob.glob(os.path.join(directory, pattern))
        for directory in directories
        for pattern in ("*.journal", "*/*.journal")
    )


def journal_key(matches: Sequence[str]) -> str:
    """The source key: jails with the same matches share one reader and one cursor."""
    return "journal:" + ",".join(sorted(matches)) if matches else "journal"


def _field(entry: dict[str, Any], name: str) -> Any:
    value = entry.get(name)
    return value[0] if isinstance(value, list) else value


def format_entry(entry: dict[str, Any]) -> bytes:
    """One journal entry (raw fields as read by ``JournalSource``) as one line."""
    stamp = _EPOCH + datetime.timedelta(microseconds=_field(entry, "__REALTIME_TIMESTAMP"))
    host = (_field(entry, "_HOSTNAME") or b"-").translate(_TOKEN)
    comm = _field(entry, "_COMM")
    if comm is None:
        comm = b"kernel" if _field(entry, "_TRANSPORT") == b"kernel" else b"-"
    program = comm.translate(_TOKEN)
    pid = _field(entry, "_PID")
    if pid is not None and pid.isdigit():
        program += b"[" + pid + b"]"
    message = _field(entry, "MESSAGE") or b""
    if isinstance(message, str):  # only if a converter was bypassed; keep bytes semantics
        message = message.encode("utf-8", "surrogateescape")
    return b"%s %s %s: %s\n" % (
        stamp.isoformat(timespec="microseconds").encode(),
        host,
        program,
        message.replace(b"\n", b"#012"),
    )


class JournalSource:
    """Batches of formatted entries matching any of ``matches``, followed as they arrive.

    Starts after ``saved.cursor`` when there is one (neither repeating nor skipping), else at
    ``since`` (POSIX seconds; ``0`` for everything), else at the current end. ``path`` (a
    directory) or a list of files opens those instead of the system journal: for tests and
    for reading a journal copied off another machine.
    """

    def __init__(
        self,
        matches: Sequence[str],
        saved: SourcePosition | None = None,
        since: float | None = None,
        *,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    ) -> None:
        try:
            check_journalmatch(list(matches))
        except ValueError as error:
            raise ConfigError(str(error)) from None
        self.matches = list(matches)
        self.key = journal_key(self.matches)
        self.saved = saved
        self.since = since
        self.path = path
        self.skipped_long_lines = 0
        self._wake = asyncio.Event()
        self._closed = False
        self._generator: AsyncGenerator[LineBatch, None] | None = None

    def batches(self) -> AsyncIterator[LineBatch]:
        """Batches until closed; idle (no polling) until journald appends."""
        self._generator = self._follow()
        return self._generator

    async def aclose(self) -> None:
        """Stop and close the journal; a ``batches()`` waiting for entries returns at once."""
        self._closed = True
        self._wake.set()
        generator, self._generator = self._generator, None
        if generator is not None and not generator.ag_running:
            await generator.aclose()

    async def _follow(self) -> AsyncGenerator[LineBatch, None]:
        reader = self._open()
        loop = asyncio.get_running_loop()
        fd = reader.fileno()  # before the first read, so no change goes unnoticed
        loop.add_reader(fd, self._on_change, reader)
        try:
            self._seek(reader)
            while not self._closed:
                for batch in self._drain(reader):
                    yield batch
                await self._wait(reader)
        finally:
            loop.remove_reader(fd)
            reader.close()

    def _on_change(self, reader: Any) -> None:
        # process() consumes the inotify events: without it the descriptor stays readable
        # and the loop would spin while our consumer is busy with the last batch.
        reader.process()
        self._wake.set()

    def _open(self) -> Any:
        try:
            from systemd import journal
        except ImportError as error:
            raise JournalUnavailable(
                f"cannot read the systemd journal: {error}; install python3-systemd "
                '(or pip install systemd-python), or use backend = "file"'
            ) from None
        try:
            if self.path is None:
                reader = journal.Reader(
                    flags=journal.LOCAL_ONLY | journal.SYSTEM_ONLY, converters=_RAW_FIELDS
                )
            elif isinstance(self.path, str | os.PathLike):
                reader = journal.Reader(path=os.fspath(self.path), converters=_RAW_FIELDS)
            else:
                files = [os.fspath(file) for file in self.path]
                reader = journal.Reader(files=files, converters=_RAW_FIELDS)
        except OSError as error:
            raise JournalUnavailable(f"cannot open the journal: {error}") from None
        reader.data_threshold = MAX_LINE
        for match in self.matches:
            for term in match.split():  # fail2ban style: terms AND'ed, "+" means OR
                if term == "+":
                    reader.add_disjunction()
                else:
                    reader.add_match(term)
            reader.add_disjunction()
        return reader

    def _seek(self, reader: Any) -> None:
        cursor = self.saved.cursor if self.saved is not None else ""
        if cursor:
            with contextlib.suppress(OSError, ValueError):  # vacuumed or malformed: go on below
                reader.seek_cursor(cursor)
                entry = reader.get_next()
                if entry and not reader.test_cursor(cursor):
                    reader.get_previous()  # the saved entry is gone: this one is new, keep it
                return
        if self.since is not None:
            reader.seek_realtime(float(self.since))
        else:
            reader.seek_tail()
            reader.get_previous()  # now positioned on the last entry: next read is new

    def _drain(self, reader: Any) -> Iterator[LineBatch]:
        """Everything new, in batches of about a chunk."""
        lines: list[bytes] = []
        size = 0
        cursor = ""
        while entry := reader.get_next():
            line = format_entry(entry)
            cursor = entry["__CURSOR"]
            if len(line) > MAX_LINE + 1:
                self.skipped_long_lines += 1
            else:
                lines.append(line)
                size += len(line)
            if size >= CHUNK_SIZE:
                yield self._batch(lines, cursor)
                lines, size = [], 0
        if lines:
            yield self._batch(lines, cursor)

    def _batch(self, lines: list[bytes], cursor: str) -> LineBatch:
        position = SourcePosition(key=self.key, cursor=cursor)
        return LineBatch(self.key, b"".join(lines), position)

    async def _wait(self, reader: Any) -> None:
        timeout_ms = reader.get_timeout_ms()  # -1 unless the fd cannot be trusted (NFS …)
        if timeout_ms < 0:
            await self._wake.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout_ms / 1000)
            reader.process()
        self._wake.clear()
