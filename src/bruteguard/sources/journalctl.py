"""Follow the systemd journal through ``journalctl --output=json``: no bindings, no compiler.

``systemd-python`` (the ``journal`` extra) needs libsystemd's headers and a C compiler, which a
plain ``pip install`` into a venv does not have; every systemd host has ``journalctl``. So this
reader runs ``journalctl --follow --output=json`` (an argv list, never a shell) and turns each
JSON entry into the same line, by the same ``format_entry`` and trust rules, as the bindings'
``JournalSource``. The position it saves is the entry's ``__CURSOR``, the very string the
bindings produce, so a host can switch readers and resume where the other stopped.

Where reading starts is decided *before* the follower runs, by a short ``journalctl
--lines=1`` probe, so that it is fixed when the source's first step returns (as for the
bindings' reader) and never depends on how fast journalctl starts:

- a saved cursor: the probe shows the entry at that cursor. If it is that entry, follow
  ``--after-cursor`` (neither repeating nor skipping); if it has been vacuumed, the probe
  shows the first entry after it, which is new: follow from that entry's own cursor. A cursor
  journalctl refuses is dropped, and reading starts as if there were none;
- ``since``: ``--since=@SECONDS`` (``0``: from the oldest entry);
- else the current end: the probe gives the newest matching entry, and we follow after it
  (from the oldest, when there is none yet: every entry to come is new).

Three details keep this reader the same as the bindings' (``LOCAL_ONLY | SYSTEM_ONLY``):
``--follow`` makes journalctl read the current boot only unless ``--merge`` is given, which
would lose the entries after a cursor saved before a reboot (and skip the first entry of this
boot); so ``--merge`` is given, with ``--system`` and a ``_MACHINE_ID=`` term in every
alternative, so that only this machine's system journal is read. ``--all`` keeps fields over
4096 bytes (else ``null``). ``--output-fields`` asks only for the fields a line is made of.

If journalctl exits, or cannot be found, the source says why in ``health()`` and starts it
again after a bounded, growing delay, from the cursor of the last entry it read: the daemon
never stops because of it and no entry is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any

import msgspec

from bruteguard.errors import BruteguardError
from bruteguard.model import SourcePosition
from bruteguard.sources import (
    CHUNK_SIZE,
    MAX_LINE,
    FollowingSource,
    LineBatch,
    LineSplitter,
    SourceHealth,
)
from bruteguard.sources.journal import (
    ENTRY_FIELDS,
    checked_matches,
    describe_matches,
    format_entry,
    journal_key,
)

__all__ = [
    "MACHINE_ID",
    "JournalctlFailed",
    "JournalctlSource",
    "entry_from_json",
    "find_journalctl",
    "journalctl_argv",
    "recent_entries",
]

MACHINE_ID = "/etc/machine-id"
JSON_LINE_MAX = 8 * MAX_LINE
"""Longest JSON line kept: a byte-array MESSAGE takes up to 4 characters a byte, an escaped
one 6; a longer entry could not make a line under ``MAX_LINE`` anyway."""
PROBE_TIMEOUT = 30.0  # seconds for one ``--lines=1`` probe
RESTART_DELAYS = (1.0, 60.0)
"""First and longest wait before journalctl is started again; it doubles in between."""
_GATHER = 0.002  # seconds: a pause this long in journalctl's output ends a batch
_HEALTHY_RUN = 60.0  # a follower that ran this long starts the backoff afresh
_STDERR_KEPT = 4096  # bytes of journalctl's stderr kept, for the health report
_PIPE_SIZE = CHUNK_SIZE  # asked for (F_SETPIPE_SZ), so a backlog arrives in big reads


class JournalctlFailed(BruteguardError):
    """journalctl cannot be run here, or it refused what it was asked."""


def find_journalctl() -> str | None:
    """The ``journalctl`` on ``PATH`` (systemd's units get a PATH that holds it), or None."""
    return shutil.which("journalctl")


def _machine_id(path: str = MACHINE_ID) -> str | None:
    """This machine's id (32 hex digits), which journald writes into every local entry."""
    try:
        with open(path, "rb") as file:
            value = file.read(64).strip().decode("ascii", "replace")
    except OSError:
        return None
    return value if len(value) == 32 and all(c in "0123456789abcdef" for c in value) else None


def _match_argv(matches: Sequence[str], machine: str | None) -> list[str]:
    """journalctl's match words: each alternative's ``FIELD=value`` terms, ``+`` between
    alternatives (also inside one entry, fail2ban style), ``_MACHINE_ID=`` in each."""
    alternatives: list[list[str]] = []
    for match in matches:
        current: list[str] = []
        for term in match.split():
            if term == "+":
                alternatives.append(current)
                current = []
            else:
                current.append(term)
        alternatives.append(current)
    alternatives = [terms for terms in alternatives if terms] or ([[]] if machine else [])
    words: list[str] = []
    for terms in alternatives:
        if words:
            words.append("+")
        words += terms + ([f"_MACHINE_ID={machine}"] if machine else [])
    return words


def _glob_escape(path: str) -> str:
    """``--file`` takes a glob: a path with ``*?[\\`` in it must name only itself."""
    return "".join("\\" + char if char in "*?[\\" else char for char in path)


JournalPath = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None


def journalctl_argv(
    journalctl: str, matches: Sequence[str], path: JournalPath, options: Sequence[str]
) -> list[str]:
    """The argv of one journalctl run: JSON of the fields a line needs, ``options`` (where to
    start, follow or not), then the matches. ``path`` None reads this machine's system
    journal; a directory or a list of files reads those (tests, a copied journal)."""
    if path is None:
        where, machine = ["--system"], _machine_id()
    elif isinstance(path, str | os.PathLike):
        where, machine = [f"--directory={os.fspath(path)}"], None
    else:
        where, machine = [f"--file={_glob_escape(os.fspath(file))}" for file in path], None
    return [
        journalctl,
        "--output=json",
        "--all",
        f"--output-fields={','.join(ENTRY_FIELDS)}",
        "--no-pager",
        "--merge",
        *where,
        *options,
        "--",
        *_match_argv(matches, machine),
    ]


# -- one JSON entry --------------------------------------------------------------------------

_Value = str | list[Any] | None


class _Entry(msgspec.Struct, frozen=True):
    """The fields of one ``--output=json`` entry that a line is made of."""

    cursor: str = msgspec.field(name="__CURSOR", default="")
    realtime: str = msgspec.field(name="__REALTIME_TIMESTAMP", default="0")
    message: _Value = msgspec.field(name="MESSAGE", default=None)
    comm: _Value = msgspec.field(name="_COMM", default=None)
    exe: _Value = msgspec.field(name="_EXE", default=None)
    hostname: _Value = msgspec.field(name="_HOSTNAME", default=None)
    pid: _Value = msgspec.field(name="_PID", default=None)
    unit: _Value = msgspec.field(name="_SYSTEMD_UNIT", default=None)
    transport: _Value = msgspec.field(name="_TRANSPORT", default=None)
    uid: _Value = msgspec.field(name="_UID", default=None)


_DECODER = msgspec.json.Decoder(_Entry)


def _raw(value: _Value) -> bytes | None:
    """A field's bytes: journalctl writes UTF-8 text as a string, anything else (invalid
    UTF-8, control characters such as CR) as an array of byte values, a field set several
    times as an array of those (the first is used, as the bindings' reader does)."""
    if value is None or isinstance(value, str):
        return None if value is None else value.encode()
    if not value:
        return b""
    first = value[0]
    if isinstance(first, int):
        return bytes(value)  # ValueError for a number that is not a byte
    return _raw(first)


def _fields(entry: _Entry) -> dict[str, Any]:
    """An entry as ``format_entry`` takes it (raw bytes, the stamp in microseconds)."""
    return {
        "__REALTIME_TIMESTAMP": int(entry.realtime),
        "MESSAGE": _raw(entry.message),
        "_COMM": _raw(entry.comm),
        "_EXE": _raw(entry.exe),
        "_HOSTNAME": _raw(entry.hostname),
        "_PID": _raw(entry.pid),
        "_SYSTEMD_UNIT": _raw(entry.unit),
        "_TRANSPORT": _raw(entry.transport),
        "_UID": _raw(entry.uid),
    }


def entry_from_json(line: bytes) -> tuple[str, dict[str, Any]]:
    """One JSON line → its cursor and its fields as ``format_entry`` takes them.

    Raises ``ValueError`` (``msgspec.DecodeError`` is one) for a line that is not such an entry.
    """
    entry = _DECODER.decode(line)
    return entry.cursor, _fields(entry)


def _entries(lines: bytes) -> Iterator[tuple[str, dict[str, Any]] | None]:
    """Each line's cursor and fields, or None for a line that is not an entry. The whole
    run is decoded at once; only if that fails is it taken apart line by line."""
    try:
        decoded = _DECODER.decode_lines(lines)
    except (msgspec.DecodeError, msgspec.ValidationError):
        for line in lines.splitlines():
            try:
                yield entry_from_json(line)
            except ValueError:
                yield None
        return
    for entry in decoded:
        try:
            yield entry.cursor, _fields(entry)
        except ValueError:
            yield None


def _run(argv: list[str], timeout: float = PROBE_TIMEOUT) -> bytes:
    """journalctl's stdout, or ``JournalctlFailed`` saying why it gave none."""
    try:
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise JournalctlFailed(f"{argv[0]} not found") from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise JournalctlFailed(f"journalctl: {error}") from None
    if result.returncode != 0:
        said = result.stderr.decode(errors="replace").strip().splitlines()
        reason = said[-1] if said else "no message"
        raise JournalctlFailed(f"journalctl exited with status {result.returncode}: {reason}")
    return result.stdout


def recent_entries(
    matches: Sequence[str],
    *,
    limit: int,
    since: float,
    path: JournalPath = None,
    journalctl: str | None = None,
) -> list[dict[str, Any]]:
    """The newest entries first, at most ``limit``, none older than ``since`` (POSIX
    seconds), as ``format_entry`` takes them: what ``doctor`` looks at."""
    program = journalctl or find_journalctl()
    if program is None:
        raise JournalctlFailed("journalctl not found")
    options = ["--reverse", f"--lines={limit}", f"--since=@{since:.6f}"]
    output = _run(journalctl_argv(program, matches, path, options))
    return [found[1] for found in _entries(output) if found is not None]


# -- the source ------------------------------------------------------------------------------


class JournalctlSource(FollowingSource):
    """Batches of formatted entries matching any of ``matches``, read from ``journalctl
    --follow``; the same contract as ``JournalSource`` (see the module docstring).

    ``path`` (a directory, or a list of files) reads those instead of the system journal;
    ``journalctl`` is the program to run (default: the one on ``PATH``); ``restart_delays``
    the first and longest wait before a journalctl that exited is started again.
    """

    def __init__(
        self,
        matches: Sequence[str],
        saved: SourcePosition | None = None,
        since: float | None = None,
        *,
        path: JournalPath = None,
        journalctl: str | None = None,
        restart_delays: tuple[float, float] = RESTART_DELAYS,
    ) -> None:
        self.matches = checked_matches(matches)
        self.key = journal_key(self.matches)
        self.saved = saved
        self.since = since
        self.path = path
        self.journalctl = journalctl
        self.restart_delays = restart_delays
        self.skipped_long_lines = 0
        self.bad_entries = 0  # JSON lines that were not an entry (never seen from journalctl)
        self.restarts = 0
        self.pid: int | None = None  # of the running follower
        self._cursor = saved.cursor if saved is not None else ""
        self._origin: list[str] | None = None  # where to start while no entry was read
        self._exit_reason = ""
        self._what = f"journal ({describe_matches(self.matches)}) via journalctl"
        self._health = SourceHealth(False, f"{self._what}: not started yet")
        self._stderr = b""  # the end of journalctl's stderr
        super().__init__()

    def health(self) -> SourceHealth:
        """Reading (journalctl runs), or why not and when it is tried again."""
        return self._health

    # -- where to start ----------------------------------------------------------------------

    def _argv(self, options: Sequence[str]) -> list[str]:
        program = self.journalctl or find_journalctl()
        if program is None:
            raise JournalctlFailed(
                "journalctl not found (it comes with systemd; is this a systemd host?)"
            )
        return journalctl_argv(program, self.matches, self.path, options)

    def _probe(self, options: Sequence[str]) -> str:
        """The cursor of the one entry journalctl shows with ``options`` and ``--lines=1``
        (``""`` when it shows none)."""
        output = _run(self._argv([*options, "--lines=1"]))
        for line in output.splitlines():
            with contextlib.suppress(ValueError):
                return entry_from_json(line)[0]
        return ""

    def _plan(self) -> list[str]:
        """journalctl's options for where to start (see the module docstring)."""
        if self._cursor:
            try:
                found = self._probe([f"--cursor={self._cursor}"])
            except JournalctlFailed:
                self._origin_plan()  # raises if journalctl fails without the cursor too
                self._cursor = ""  # journalctl refuses this cursor: start as if there were none
            else:
                if found and found != self._cursor:
                    return [f"--cursor={found}"]  # the saved entry is gone; this one is new
                return [f"--after-cursor={self._cursor}"]
        return self._origin_plan()

    def _origin_plan(self) -> list[str]:
        """Where to start while no entry has been read: decided once, so a restart before
        the first entry neither skips nor repeats."""
        if self._origin is None:
            if self.since is not None:
                self._origin = [f"--since=@{self.since:.6f}"] if self.since > 0 else []
            else:
                newest = self._probe([])
                self._origin = [f"--after-cursor={newest}"] if newest else []
        return self._origin

    # -- following ---------------------------------------------------------------------------

    async def _follow(self) -> AsyncGenerator[LineBatch, None]:
        delay = self.restart_delays[0]
        first = True
        while not self._closed:
            began = time.monotonic()
            try:
                # The first plan runs before the first await: positioned when started.
                plan = self._plan() if first else await asyncio.to_thread(self._plan)
                first = False
                # Positioned: what is written from now on will be read (the daemon tells
                # its protection right after this first step, before journalctl runs).
                self._set_reading()
                # aclosing: when we are closed at a yield, journalctl is stopped right away.
                async with contextlib.aclosing(self._run_follower(plan)) as batches:
                    async for batch in batches:
                        yield batch
                if self._closed:
                    return
                reason = self._exit_reason
            except (JournalctlFailed, OSError) as error:  # OSError: no pipe (EMFILE …)
                first = False
                reason = str(error)
            if time.monotonic() - began >= _HEALTHY_RUN:
                delay = self.restart_delays[0]
            self.restarts += 1
            self._health = SourceHealth(
                False, f"{self._what}: {reason}; starting it again in {delay:g} s"
            )
            await self._sleep(delay)
            delay = min(delay * 2, self.restart_delays[1])

    def _set_reading(self) -> None:
        again = f" (journalctl restarted: {self.restarts})" if self.restarts else ""
        self._health = SourceHealth(True, self._what + again)

    async def _sleep(self, seconds: float) -> None:
        """Wait, but return at once when closed (the last follower's wake-up is stale)."""
        if self._closed:
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _run_follower(self, plan: list[str]) -> AsyncGenerator[LineBatch, None]:
        """One ``journalctl --follow`` from ``plan``, until it exits or we are closed."""
        argv = self._argv([*plan, "--follow", "--no-tail"])
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # only a bigger pipe; the default works
            fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as error:
            os.close(read_end)
            os.close(write_end)
            raise JournalctlFailed(f"cannot run {argv[0]}: {error.strerror or error}") from None
        os.close(write_end)
        os.set_blocking(read_end, False)
        self.pid = process.pid
        self._stderr = b""
        errors = asyncio.create_task(self._keep_stderr(process))
        ended = False
        try:
            async with contextlib.aclosing(self._read(read_end)) as batches:
                async for batch in batches:
                    yield batch
            ended = not self._closed
        finally:
            self.pid = None
            asyncio.get_running_loop().remove_reader(read_end)
            os.close(read_end)
            await self._reap(process, patient=ended)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(errors, 1)
        said = f" ({words})" if (words := self._last_words()) else ""
        self._exit_reason = f"journalctl exited with status {process.returncode}{said}"

    @staticmethod
    async def _reap(process: asyncio.subprocess.Process, *, patient: bool) -> None:
        """Wait for journalctl to end: a moment when it closed its output itself (it is
        exiting), else stop it now (SIGTERM, then SIGKILL)."""
        if patient:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 5)
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()

    async def _keep_stderr(self, process: asyncio.subprocess.Process) -> None:
        """Drain journalctl's stderr (so it never blocks on it), keeping its last bytes for
        ``health()`` when it exits."""
        assert process.stderr is not None
        while chunk := await process.stderr.read(_STDERR_KEPT):
            self._stderr = (self._stderr + chunk)[-_STDERR_KEPT:]

    def _last_words(self) -> str:
        """journalctl's last line on stderr, as printable text (or "")."""
        lines = self._stderr.decode(errors="replace").strip().splitlines()
        last = lines[-1].strip() if lines else ""
        return "".join(char if char.isprintable() else "?" for char in last[:300])

    async def _read(self, fd: int) -> AsyncGenerator[LineBatch, None]:
        """Batches from the follower's stdout until it closes it (or we are closed)."""
        splitter = LineSplitter(JSON_LINE_MAX)
        try:
            while not self._closed:
                data, ended = await self._gather(fd)
                lines = splitter.feed(data) if data else b""
                if lines and (batch := self._batch(lines)) is not None:
                    yield batch
                if ended:
                    return  # a partial last line is dropped: its entry is read after restart
        finally:
            self.skipped_long_lines += splitter.skipped_long_lines

    async def _gather(self, fd: int) -> tuple[bytes, bool]:
        """What journalctl writes next, and whether its output has ended: idle until it
        writes, then as much as keeps coming without a pause of ``_GATHER`` (up to about a
        chunk). journalctl writes a backlog 4 KiB at a time; gathered, it makes big batches,
        each one matcher pass and one store transaction, for 2 ms more latency on a lone
        entry."""
        parts: list[bytes] = []
        size = 0
        while not self._closed:
            data, ended = self._read_available(fd, CHUNK_SIZE - size)
            parts.append(data)
            size += len(data)
            if ended or size >= CHUNK_SIZE:
                return b"".join(parts), ended
            if not await self._readable(fd, _GATHER if size else None):
                break  # a pause: what came is a batch
        return b"".join(parts), False

    async def _readable(self, fd: int, timeout: float | None) -> bool:
        """Wait until ``fd`` can be read (or we are closed); False after ``timeout``.

        The reader is added for one wake-up only: left in place, a level-triggered reader
        would spin while our consumer is busy with the last batch."""
        loop = asyncio.get_running_loop()
        self._wake.clear()
        loop.add_reader(fd, self._on_readable, fd)
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            return False
        finally:
            loop.remove_reader(fd)
        return True

    def _on_readable(self, fd: int) -> None:
        asyncio.get_running_loop().remove_reader(fd)
        self._wake.set()

    @staticmethod
    def _read_available(fd: int, limit: int) -> tuple[bytes, bool]:
        """What the pipe holds now, up to about ``limit`` bytes, and whether it has ended."""
        parts: list[bytes] = []
        size = 0
        while size < limit:
            try:
                part = os.read(fd, CHUNK_SIZE)
            except BlockingIOError:
                break
            if not part:
                return b"".join(parts), True
            parts.append(part)
            size += len(part)
        return b"".join(parts), False

    def _batch(self, lines: bytes) -> LineBatch | None:
        """The formatted lines of these JSON lines, positioned at the last entry's cursor."""
        out: list[bytes] = []
        cursor = ""
        for found in _entries(lines):
            if found is None:
                self.bad_entries += 1
                continue
            cursor, fields = found
            line = format_entry(fields)
            if len(line) > MAX_LINE + 1:
                self.skipped_long_lines += 1
            else:
                out.append(line)
        if cursor:
            self._cursor = cursor
        if not out:
            return None
        position = SourcePosition(key=self.key, cursor=self._cursor)
        return LineBatch(self.key, b"".join(out), position)
