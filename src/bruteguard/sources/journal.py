"""Follow the systemd journal, one entry per line, naming programs only as the kernel vouches.

Each entry becomes one syslog-like line the matchers already understand::

    2026-11-23T06:50:01.123456+00:00 web1 sshd[4242]: Failed password for root from …

Any local user can write ``logger -t sshd "Failed password for root from 198.51.100.7 …"``,
and a line counts for a service only if its program token is that service's name. So the
token comes from the fields journald fills in itself (a sender cannot set fields that begin
with ``_``), never from ``SYSLOG_IDENTIFIER``, which is whatever the sender claims:

- ``_COMM`` names the program, ``_PID`` gives the pid. But ``_COMM`` alone is spoofable: any
  user can run a binary called ``sshd``, and a process can rename itself
  (``prctl(PR_SET_NAME)``), so a web shell running as ``www-data`` could call itself sshd.
- So an entry is written by program P only when the other kernel-set fields agree with P:

  * ``_UID`` is 0 or a system account (below ``UID_MIN`` of ``/etc/login.defs``, read once
    at import; 1000 if it cannot be read). A regular user's process is never a system
    service (sshd's post-login child runs as the user, and logs no failure).
  * ``_EXE`` (``/proc/PID/exe``, resolved by the kernel) lies under a directory only root
    can write (``/usr``, ``/bin``, ``/sbin``, ``/lib*``, ``/opt``, ``/nix/store``,
    ``/gnu/store``, ``/snap``), so a binary copied to ``/tmp/sshd`` does not qualify; and its
    file name agrees with ``_COMM``, which the kernel sets at exec to the first 15 bytes of
    that name: ``sshd`` ↔ ``/usr/sbin/sshd``, ``sshd-session`` ↔
    ``/usr/lib/openssh/sshd-session``. A process that renamed itself, or was started through
    a symlink of another name, does not agree. (``sshd: root [priv]`` titles rewrite argv,
    not comm.) A ``" (deleted)"`` suffix, as after a package upgrade, is ignored.
  * ``_SYSTEMD_UNIT``, when present, is not a user's: ``session-*.scope`` and
    ``user@*.service`` hold a logged-in user's processes (and sshd's own after a login, when
    it logs no failures).

  An entry without ``_UID`` or ``_EXE`` is not vouched for: journald records both for every
  local process it can still see, so their absence means it could not look (the process had
  exited, or the journal came from elsewhere) and nothing ties the entry to a program.
- An entry that fails is still formatted, so line counts stay honest, but its program is
  ``untrusted-<comm>`` (``untrusted-sshd[4242]``), which no signature's program list can
  match: signatures match the whole program token.
- Kernel entries (``_TRANSPORT=kernel``) are ``kernel``; an entry with no ``_COMM`` is ``-``.

Newlines inside a message are escaped as ``#012`` (as rsyslog does) so that an entry is
exactly one line.

This module reads with the bindings (``python3-systemd`` / ``systemd-python``, the
``journal`` extra), the faster path; they are imported only when a journal source is opened.
Without them, ``bruteguard.sources.journalctl`` reads the same entries through
``journalctl --output=json`` into the same lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import glob
import os
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any

from bruteguard.config import check_journalmatch
from bruteguard.errors import BruteguardError, ConfigError
from bruteguard.model import SourcePosition
from bruteguard.sources import CHUNK_SIZE, MAX_LINE, FollowingSource, LineBatch, SourceHealth

__all__ = [
    "ENTRY_FIELDS",
    "JOURNAL_DIRECTORIES",
    "LOGIN_DEFS",
    "UID_MIN",
    "UNTRUSTED_PREFIX",
    "JournalSource",
    "JournalUnavailable",
    "bindings_available",
    "describe_matches",
    "format_entry",
    "journal_files",
    "journal_key",
    "read_uid_min",
]

JOURNAL_DIRECTORIES = ("/run/log/journal", "/var/log/journal")

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
# Fields we format are kept as raw bytes: a message need not be UTF-8.
_RAW_FIELDS = {
    "MESSAGE": bytes,
    "_COMM": bytes,
    "_EXE": bytes,
    "_HOSTNAME": bytes,
    "_PID": bytes,
    "_SYSTEMD_UNIT": bytes,
    "_TRANSPORT": bytes,
    "_UID": bytes,
    "__REALTIME_TIMESTAMP": int,
}
ENTRY_FIELDS = tuple(name for name in _RAW_FIELDS if not name.startswith("__"))
"""The fields a line is made of (besides the stamp): all a reader needs to fetch."""
# Host and program names are single tokens: spaces or control characters become "_".
_TOKEN = bytes.maketrans(bytes([*range(33), 127]), b"_" * 34)

LOGIN_DEFS = "/etc/login.defs"
_DEFAULT_UID_MIN = 1000
UNTRUSTED_PREFIX = b"untrusted-"
"""Put before ``_COMM`` when the other trusted fields do not vouch for it."""

# Directories only root can write: an executable there was put there by the administrator.
_SYSTEM_EXE_DIRS = (
    b"/usr/",
    b"/bin/",
    b"/sbin/",
    b"/lib/",
    b"/lib32/",
    b"/lib64/",
    b"/libx32/",
    b"/opt/",
    b"/nix/store/",
    b"/gnu/store/",
    b"/snap/",
)
_DELETED = b" (deleted)"  # readlink(/proc/PID/exe) of a replaced binary; newer journalds drop it
_COMM_LEN = 15  # TASK_COMM_LEN - 1: the kernel keeps this much of the executable's name


def read_uid_min(path: str | os.PathLike[str] = LOGIN_DEFS) -> int:
    """``UID_MIN`` from a login.defs file: the first uid of regular (human) accounts.

    Read the way shadow's ``getdef`` does (``NAME value`` lines, ``#`` comments, the last
    definition wins, decimal or ``0x`` hex); a missing file, or a value that is not a number
    between 1 and 2**31 - 1, gives the usual default, 1000.
    """
    try:
        with open(path, "rb") as file:
            text = file.read(1 << 20)
    except OSError:
        return _DEFAULT_UID_MIN
    found = _DEFAULT_UID_MIN
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != b"UID_MIN":
            continue
        try:
            value = int(words[1], 0)
        except ValueError:
            continue
        if 1 <= value < 1 << 31:
            found = value
    return found


UID_MIN = read_uid_min()
"""Entries from uids at or above this (regular users) are never a system service's."""


class JournalUnavailable(BruteguardError):
    """The journal cannot be read here: no bindings, or no journal to open."""


def bindings_available() -> bool:
    """True when the systemd Python bindings import (the faster reader)."""
    try:
        from systemd import journal  # noqa: F401
    except ImportError:
        return False
    return True


def journal_files(directories: Sequence[str] = JOURNAL_DIRECTORIES) -> list[str]:
    """The journal files in ``directories`` and their machine-id subdirectories: a host
    whose journald keeps no files has no journal to read."""
    return sorted(
        name
        for directory in directories
        for pattern in ("*.journal", "*/*.journal")
        for name in glob.glob(os.path.join(directory, pattern))
    )


def journal_key(matches: Sequence[str]) -> str:
    """The source key: jails with the same matches share one reader and one cursor."""
    return "journal:" + ",".join(sorted(matches)) if matches else "journal"


def checked_matches(matches: Sequence[str]) -> list[str]:
    """``matches`` as a list, or a ``ConfigError`` saying what is wrong with them: both
    journal readers take only what ``journalmatch`` allows."""
    try:
        check_journalmatch(list(matches))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return list(matches)


def describe_matches(matches: Sequence[str]) -> str:
    """The matches in words, for ``status`` and ``doctor``."""
    return " or ".join(matches) if matches else "every entry"


def _field(entry: dict[str, Any], name: str) -> Any:
    value = entry.get(name)
    return value[0] if isinstance(value, list) else value


def _vouched(entry: dict[str, Any], comm: bytes) -> bool:
    """True when ``_UID``, ``_EXE`` and ``_SYSTEMD_UNIT`` agree that ``comm`` is a service."""
    uid = _field(entry, "_UID")
    if not isinstance(uid, bytes) or not uid.isdigit() or len(uid) > 10:
        return False
    if uid != b"0" and int(uid) >= UID_MIN:
        return False
    exe = _field(entry, "_EXE")
    if not isinstance(exe, bytes) or not exe.startswith(_SYSTEM_EXE_DIRS):
        return False
    if exe.endswith(_DELETED):
        exe = exe[: -len(_DELETED)]
    name = exe[exe.rfind(b"/") + 1 :]
    if name != comm and not (len(comm) >= _COMM_LEN and name.startswith(comm)):
        return False
    return not _users_unit(_field(entry, "_SYSTEMD_UNIT"))


def _users_unit(unit: Any) -> bool:
    """A login session's scope or a user's own service manager: a person's processes."""
    return isinstance(unit, bytes) and (
        (unit.startswith(b"session-") and unit.endswith(b".scope"))
        or (unit.startswith(b"user@") and unit.endswith(b".service"))
    )


def format_entry(entry: dict[str, Any]) -> bytes:
    """One journal entry (raw fields as read by ``JournalSource``) as one line.

    The program is ``_COMM`` only when the kernel-set fields vouch for it (see the module
    docstring), else ``untrusted-<comm>``: the line is kept, but no signature matches it.
    """
    stamp = _EPOCH + datetime.timedelta(microseconds=_field(entry, "__REALTIME_TIMESTAMP"))
    host = (_field(entry, "_HOSTNAME") or b"-").translate(_TOKEN)
    comm = _field(entry, "_COMM")
    if _field(entry, "_TRANSPORT") == b"kernel":
        program = b"kernel"
    elif not isinstance(comm, bytes) or not comm:
        program = b"-"
    elif _vouched(entry, comm):
        program = comm.translate(_TOKEN)
    else:
        program = (UNTRUSTED_PREFIX + comm).translate(_TOKEN)
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


class JournalSource(FollowingSource):
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
        self.matches = checked_matches(matches)
        self.key = journal_key(self.matches)
        self.saved = saved
        self.since = since
        self.path = path
        self.skipped_long_lines = 0
        self._opened = False
        super().__init__()

    def health(self) -> SourceHealth:
        """Reading once the journal is open (a failure to open it is the daemon's to tell)."""
        what = f"journal ({describe_matches(self.matches)}) via systemd-python"
        return SourceHealth(self._opened, what if self._opened else f"{what}: not open yet")

    async def _follow(self) -> AsyncGenerator[LineBatch, None]:
        reader = self._open()
        loop = asyncio.get_running_loop()
        fd = reader.fileno()  # before the first read, so no change goes unnoticed
        loop.add_reader(fd, self._on_change, reader)
        self._opened = True
        try:
            self._seek(reader)
            while not self._closed:
                for batch in self._drain(reader):
                    yield batch
                await self._wait(reader)
        finally:
            self._opened = False
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
                f"cannot read the systemd journal with systemd-python: {error}"
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
                    # The saved entry is gone: this one is new, read it next. (Not by
                    # get_previous(): at the journal's first entry that does not move.)
                    reader.seek_cursor(entry["__CURSOR"])
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
