"""Follow a log file the way ``tail -F`` should: event-driven, rotation-safe, resumable.

inotify wakes us (the directory for files appearing, being renamed or removed; the open file
itself for appends and truncation), and after every wake-up we look at the real state of the
file system instead of interpreting event sequences, so coalesced or overflowed events cannot
confuse us. Rotation is handled both ways logrotate does it:

* rename + create: the old file is read to its end through the descriptor we still hold, then
  the new file is read from offset 0;
* copytruncate: the file shrinks below our offset (or its first bytes no longer match the
  fingerprint we took) and we start again at 0.

The position published with each batch names the file by device and inode plus a fingerprint
of its first bytes, so a restart can tell "same file, go on" from "rotated while we were
down": then the predecessor (still in the same directory under a new name, e.g. auth.log.1)
is found by inode and finished first.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import stat
from collections.abc import AsyncGenerator, Callable
from typing import Any, Literal, TypeAlias

from asyncinotify import Inotify, Mask, Watch

from bruteguard.model import SourcePosition
from bruteguard.sources import (
    CHUNK_SIZE,
    MAX_LINE,
    FollowingSource,
    LineBatch,
    LineSplitter,
    SourceHealth,
)

__all__ = ["FINGERPRINT_BYTES", "Deliver", "FileSource", "file_key", "fingerprint", "refusal"]

FINGERPRINT_BYTES = 256
_DIRECTORY_EVENTS = Mask.CREATE | Mask.MOVED_TO | Mask.MOVED_FROM | Mask.DELETE
_MISSING_DIRECTORY_RECHECK = 1.0  # seconds; only while the log's directory does not exist

Deliver: TypeAlias = "Callable[[LineBatch], asyncio.Future[Any] | None]"
"""What ``FileSource.follow`` hands each batch to: None when the batch is dealt with, or a
future to wait for before reading on."""


def file_key(path: str | os.PathLike[str]) -> str:
    """The source key of a file: one per absolute path, shared by every jail reading it."""
    return "file:" + os.path.abspath(path)


def fingerprint(fd: int, length: int) -> str:
    """``"<n>:<hash>"`` of the first ``n = min(length, 256)`` bytes of the open file ``fd``.

    Only bytes we have already read are fingerprinted, so the value is stable for as long as
    the file is the same file; any rewrite of its beginning (copytruncate, replacement in
    place) changes it.
    """
    return _fingerprint_of(os.pread(fd, min(length, FINGERPRINT_BYTES), 0))


def _fingerprint_of(head: bytes) -> str:
    return f"{len(head)}:{hashlib.blake2b(head, digest_size=16).hexdigest()}"


def _matches(fd: int, stored: str) -> bool:
    return _matching_head(fd, stored) is not None


def _matching_head(fd: int, stored: str) -> bytes | None:
    """The first bytes of ``fd`` if they still have the ``stored`` fingerprint, else None."""
    count, _, _ = stored.partition(":")
    if not count.isdigit():
        return None
    head = os.pread(fd, min(int(count), FINGERPRINT_BYTES), 0)
    return head if _fingerprint_of(head) == stored else None


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def refusal(path: str, mode: int) -> str:
    """Why the thing at ``path`` is not read ("" for a regular file): anything else could
    block the event loop (a FIFO with no writer), never end (a device) or not be readable
    at all (a directory), and whoever can create it in a log directory must not be able to
    switch bruteguard off that way."""
    if stat.S_ISREG(mode):
        return ""
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return f"file {path} is {kind}, not a regular file: refused (watched until a log file is there)"


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:  # missing, or not to be looked at (permission, a symlink loop)
        return None


class _OpenFile:
    """One open file descriptor and how far into it we have delivered complete lines."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        opened = os.fstat(fd)
        self.device, self.inode = opened.st_dev, opened.st_ino
        self.watch: Watch | None = None
        self.move_to(0)

    @classmethod
    def open(cls, path: str) -> _OpenFile | None:
        """The regular file at ``path``, or None (missing, unreadable, or anything else:
        ``FileSource.health`` says which). Never blocks: what is there is looked at before
        it is opened (a device is never even opened), opened with O_NONBLOCK (a FIFO swapped
        in meanwhile does not wait for a writer) and checked again on the descriptor."""
        found = _stat(path)
        if found is None or refusal(path, found.st_mode):
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:  # gone, no permission, a socket (ENXIO): health tells
            return None
        try:
            if refusal(path, os.fstat(fd).st_mode):
                os.close(fd)
                return None
            return cls(fd)
        except BaseException:
            os.close(fd)
            raise

    def move_to(self, offset: int, stored_fingerprint: str = "") -> None:
        """Read on from ``offset`` (a line start); fingerprint what lies before it."""
        self.offset = self.read_pos = offset
        # The bytes fingerprinted, once read: the check before every read compares them
        # instead of hashing again (None: only a stored fingerprint is known so far).
        self.head: bytes | None = None
        if stored_fingerprint:
            self.fingerprint = stored_fingerprint
        else:
            self._fingerprint(offset)
        self.fingerprinted = int(self.fingerprint.partition(":")[0])

    def _fingerprint(self, length: int) -> None:
        self.head = os.pread(self.fd, min(length, FINGERPRINT_BYTES), 0)
        self.fingerprint = _fingerprint_of(self.head)

    def advance(self, offset: int) -> None:
        """Lines up to ``offset`` are delivered; grow the fingerprint while it is short."""
        self.offset = offset
        if self.fingerprinted < FINGERPRINT_BYTES and offset > self.fingerprinted:
            self._fingerprint(offset)
            self.fingerprinted = min(offset, FINGERPRINT_BYTES)

    def head_unchanged(self) -> bool:
        """Whether the file still begins with the bytes fingerprinted (not rewritten)."""
        if self.head is None:  # resumed: the stored fingerprint's bytes, once they match
            self.head = _matching_head(self.fd, self.fingerprint)
            return self.head is not None
        return os.pread(self.fd, len(self.head), 0) == self.head

    def same_file(self, found: os.stat_result) -> bool:
        return (found.st_dev, found.st_ino) == (self.device, self.inode)

    def position(self, key: str) -> SourcePosition:
        return SourcePosition(
            key=key,
            offset=self.offset,
            device=self.device,
            inode=self.inode,
            fingerprint=self.fingerprint,
        )


class FileSource(FollowingSource):
    """Complete-line batches from the file at ``path``, across rotations and restarts.

    ``saved`` is the position of the last batch fully processed before a restart; without it
    reading starts at the end of the file (``start="end"``, for a daemon) or at its beginning
    (``start="start"``, for replays). A file that appears later is always read from its start.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        saved: SourcePosition | None = None,
        start: Literal["end", "start"] = "end",
    ) -> None:
        self.path = os.path.abspath(path)
        self.key = file_key(self.path)
        self.directory = os.path.dirname(self.path)
        self.saved = saved
        self.start = start
        self._splitter = LineSplitter(MAX_LINE)
        self._current: _OpenFile | None = None
        self._inotify: Inotify | None = None
        self._directory_watch: tuple[Watch, int, int] | None = None
        self._successor_watch: Watch | None = None
        # While following: the batches' consumer, how reads are spaced, what ends it and
        # the one callback pending (a timer, or the inotify descriptor while listening).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Deliver | None = None
        self._gather, self._gather_below = 0.0, 0
        self._done: asyncio.Future[None] | None = None
        self._timer: asyncio.Handle | None = None
        self._listening = False
        super().__init__()

    @property
    def skipped_long_lines(self) -> int:
        """Lines longer than 1 MiB that were cut and skipped rather than buffered."""
        return self._splitter.skipped_long_lines

    def health(self) -> SourceHealth:
        """Reading the file, or waiting for it (and why): a missing log is watched and read
        from its first line when it appears."""
        current = self._current
        if current is not None:
            with contextlib.suppress(OSError):
                size = os.fstat(current.fd).st_size
                return SourceHealth(True, f"file {self.path}", (current.read_pos, size))
            return SourceHealth(True, f"file {self.path}")
        if _stat(self.directory) is None:
            return SourceHealth(False, f"file {self.path}: its directory does not exist")
        found = _stat(self.path)
        if found is not None:
            if refused := refusal(self.path, found.st_mode):
                return SourceHealth(False, refused)
            if not os.access(self.path, os.R_OK):
                return SourceHealth(False, f"file {self.path} cannot be read (permission)")
            return SourceHealth(False, f"file {self.path}: not opened yet")
        return SourceHealth(False, f"file {self.path} does not exist (watched for)")

    async def follow(self, deliver: Deliver, gather: float = 0.0, gather_below: int = 0) -> None:
        """Hand every batch to ``deliver`` from the event loop's own callbacks until closed
        (then it returns; an error reading, or ``deliver``'s, is raised here).

        Why not ``batches()``: a task sleeping around an async generator took two turns of
        the loop and a wake-up of the task per read, and at a thousand lines a second a read
        comes every 5 ms (issue 18). Here a read is one callback: a timer while lines keep
        coming, the inotify descriptor only when the file has gone quiet.
        After a batch under ``gather_below`` bytes (a trickle), the next read starts
        ``gather`` seconds after this one began, so lines written meanwhile are read
        together; a bigger batch (a backlog) is followed by the next at once, letting the
        rest of the loop in between. ``deliver`` may return a future: reading goes on when
        it is done."""
        self._begin(deliver, gather, gather_below)
        try:
            await self._done
        finally:
            self._end()

    async def _follow(self) -> AsyncGenerator[LineBatch, None]:
        """``batches()``: ``follow`` handing over a batch when one is asked for, and reading
        the next only when that is asked for too (nothing is read ahead)."""
        loop = asyncio.get_running_loop()
        handed: asyncio.Future[tuple[LineBatch, asyncio.Future[None]]] = loop.create_future()

        def hand_over(batch: LineBatch) -> asyncio.Future[None]:
            taken: asyncio.Future[None] = loop.create_future()
            handed.set_result((batch, taken))
            return taken

        self._begin(hand_over)
        try:
            while True:
                await asyncio.wait((handed, self._done), return_when=asyncio.FIRST_COMPLETED)
                if not handed.done():
                    self._done.result()  # closed, or its error
                    return
                batch, taken = handed.result()
                handed = loop.create_future()
                yield batch
                taken.set_result(None)
        finally:
            self._end()

    def _begin(self, deliver: Deliver, gather: float = 0.0, gather_below: int = 0) -> None:
        """Open, position and plan the first read, all before the caller's first wait: a
        line appended once it waits is read (a daemon starting, or reloading, counts on it)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._deliver = deliver
        self._gather, self._gather_below = gather, gather_below
        self._done = loop.create_future()
        inotify = self._inotify = Inotify()
        inotify.sync_timeout = 0  # sync_get() then only drains what is already queued
        try:
            self._watch_directory()
            self._resume()
        except BaseException:
            self._end()
            raise
        if self._closed:  # closed before it began
            self._done.set_result(None)
        else:
            self._timer = loop.call_soon(self._step)

    def _end(self) -> None:
        self._quiet()
        self._close_current()
        self._successor_watch = None
        self._directory_watch = None
        self._deliver = None
        inotify, self._inotify = self._inotify, None
        if inotify is not None:
            inotify.close()

    async def aclose(self) -> None:
        """Stop following; ``follow`` (and a ``batches()`` waiting for news) returns at once,
        and no batch is delivered any more."""
        self._closed = True
        self._quiet()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        await super().aclose()

    # -- the callbacks -----------------------------------------------------------------------

    def _step(self) -> None:
        """One read: the next batch to ``deliver``, then the next read planned (a timer, or
        the inotify descriptor when the file has nothing more)."""
        self._timer = None
        if self._closed or self._done is None or self._done.done():
            return
        assert self._deliver is not None
        began = self._loop.time()
        try:
            batch = self._next_batch()
            if batch is None:
                self._listen()
                return
            pending = self._deliver(batch)
        except Exception as error:  # the daemon marks the source failed and says why
            self._done.set_exception(error)
            return
        size = len(batch.data)
        if pending is None:
            self._read_again(began, size)
        else:
            pending.add_done_callback(lambda done: self._delivered(done, began, size))

    def _delivered(self, done: asyncio.Future[Any], began: float, size: int) -> None:
        if self._done is None or self._done.done():
            return
        if done.cancelled():
            self._done.cancel()
        elif (error := done.exception()) is not None:
            self._done.set_exception(error)
        else:
            self._read_again(began, size)

    def _read_again(self, began: float, size: int) -> None:
        if self._closed:
            return
        at = began + self._gather if size < self._gather_below else 0.0
        self._timer = self._loop.call_at(at, self._step)

    def _listen(self) -> None:
        """Until inotify says something changed. The loop watches the inotify descriptor
        only while the file is quiet: events of the lines being read (a busy log writes
        many) stay queued in the kernel, which merges repeats, instead of waking the loop
        each time; a change since the last read makes the descriptor readable at once."""
        assert self._inotify is not None
        self._loop.add_reader(self._inotify.fd, self._on_events)
        self._listening = True
        if self._directory_watch is None:  # nothing to tell us when the directory appears
            self._timer = self._loop.call_later(_MISSING_DIRECTORY_RECHECK, self._on_events)

    def _on_events(self) -> None:
        assert self._inotify is not None and self._done is not None
        self._quiet()
        try:
            while self._inotify.sync_get() is not None:
                pass  # the events only tell us to look; what we do depends on what is there
            self._watch_directory()
        except Exception as error:
            self._done.set_exception(error)
            return
        self._step()

    def _quiet(self) -> None:
        """No callback of ours pending any more (no timer, no reader)."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if self._listening and self._inotify is not None:
            self._loop.remove_reader(self._inotify.fd)
        self._listening = False

    # -- the directory -----------------------------------------------------------------------

    def _watch_directory(self) -> None:
        """Watch the log's directory, re-adding the watch if the directory was replaced."""
        assert self._inotify is not None
        found = _stat(self.directory)
        if found is None:
            self._directory_watch = None
            return
        if self._directory_watch is not None:
            _, device, inode = self._directory_watch
            if (device, inode) == (found.st_dev, found.st_ino):
                return
        try:
            watch = self._inotify.add_watch(self.directory, _DIRECTORY_EVENTS | Mask.ONLYDIR)
        except (FileNotFoundError, NotADirectoryError):
            self._directory_watch = None
            return
        self._directory_watch = (watch, found.st_dev, found.st_ino)

    # -- choosing the file -------------------------------------------------------------------

    def _resume(self) -> None:
        """Decide where reading starts: saved position, rotated predecessor, end or start."""
        saved = self.saved
        current = _OpenFile.open(self.path)
        if saved is not None and saved.inode:
            if current is not None and (current.device, current.inode) == (
                saved.device,
                saved.inode,
            ):
                self._continue_at(current, saved)
                return
            if current is not None:
                os.close(current.fd)
            predecessor = self._find_predecessor(saved)
            if predecessor is not None:
                self._use(predecessor)
            # otherwise the file at path is new since we stopped: read it from 0 when seen
            return
        if current is None:
            return  # a file that appears later is new: read it from its start
        if self.start == "end":
            size = os.fstat(current.fd).st_size
            current.move_to(size)
            self._use(current, mid_line=size > 0 and os.pread(current.fd, 1, size - 1) != b"\n")
        else:
            self._use(current)

    def _continue_at(self, current: _OpenFile, saved: SourcePosition) -> None:
        """Same inode as saved: go on, unless it was truncated or rewritten meanwhile."""
        if os.fstat(current.fd).st_size >= saved.offset and _matches(current.fd, saved.fingerprint):
            current.move_to(saved.offset, saved.fingerprint)
        self._use(current)

    def _find_predecessor(self, saved: SourcePosition) -> _OpenFile | None:
        """The saved file under its rotated name in the same directory (auth.log.1 …).

        A compressed rotation is a new inode, so matching the inode finds only files that
        are still plain text; the fingerprint guards against a reused inode number.
        """
        try:
            entries = list(os.scandir(self.directory))
        except (FileNotFoundError, NotADirectoryError):
            return None
        for entry in entries:
            if entry.inode() != saved.inode or not entry.is_file(follow_symlinks=False):
                continue
            candidate = _OpenFile.open(entry.path)
            if candidate is None:
                continue
            if (
                candidate.device == saved.device
                and candidate.inode == saved.inode
                and os.fstat(candidate.fd).st_size >= saved.offset
                and _matches(candidate.fd, saved.fingerprint)
            ):
                candidate.move_to(saved.offset, saved.fingerprint)
                return candidate
            os.close(candidate.fd)
        return None

    def _use(self, opened: _OpenFile, *, mid_line: bool = False) -> None:
        assert self._inotify is not None
        self._close_current()
        self._forget_successor()  # before watching: the successor may be this very inode
        self._splitter.reset(mid_line=mid_line)
        # Watching /proc/self/fd/N watches exactly the inode we hold, whatever its name now.
        opened.watch = self._inotify.add_watch(f"/proc/self/fd/{opened.fd}", Mask.MODIFY)
        self._current = opened

    def _close_current(self) -> None:
        current, self._current = self._current, None
        if current is None:
            return
        if current.watch is not None and self._inotify is not None:
            with contextlib.suppress(OSError):  # the kernel drops it when the inode goes
                self._inotify.rm_watch(current.watch)
        os.close(current.fd)

    def _switch_if_replaced(self) -> bool:
        """After the current file is drained: move on if ``path`` now names another file.

        A logging daemon goes on writing to the renamed file until it reopens its log (after
        logrotate's postrotate signal), even though logrotate already created the new, empty
        one. So we stay with the old file until the new one has data; seeing that data means
        the writer has switched, and one last read of the old file then finds everything it
        wrote there. Returns True when there is something to read right away.
        """
        found = _stat(self.path)
        current = self._current
        if found is None or refusal(self.path, found.st_mode):
            if current is not None and os.fstat(current.fd).st_nlink == 0:
                self._close_current()  # deleted and read out: do not pin its disk space
            return False
        if current is not None:
            if current.same_file(found):
                return False
            old = os.fstat(current.fd)
            if old.st_size > current.read_pos:
                return True  # the last lines written to the old file come first
            if found.st_size == 0 and old.st_nlink > 0:
                self._watch_successor()
                return False
        opened = _OpenFile.open(self.path)
        if opened is None:
            return False
        self._use(opened)
        return True

    def _watch_successor(self) -> None:
        """Wake us when the new, still empty file at ``path`` gets its first line."""
        assert self._inotify is not None
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            self._successor_watch = self._inotify.add_watch(self.path, Mask.MODIFY)

    def _forget_successor(self) -> None:
        watch, self._successor_watch = self._successor_watch, None
        if watch is not None and self._inotify is not None:
            with contextlib.suppress(OSError):  # the kernel drops it when the inode goes
                self._inotify.rm_watch(watch)

    # -- reading -----------------------------------------------------------------------------

    def _next_batch(self) -> LineBatch | None:
        """The next batch of complete lines, from the current file or the one that has
        replaced it; None when there is nothing more to read now."""
        while True:
            batch = self._read()
            if batch is not None:
                return batch
            if not self._switch_if_replaced():
                return None

    def _read(self) -> LineBatch | None:
        """A chunk of the current file with at least one complete line, or None at its end."""
        current = self._current
        if current is None:
            return None
        while True:
            size = self._check_truncation(current)  # before every read: time has passed
            # No more than is there: os.pread allocates the whole length it is asked for,
            # and a megabyte per read cost more than the read itself (a log written line by
            # line is read a few hundred bytes at a time).
            wanted = min(CHUNK_SIZE, size - current.read_pos)
            if wanted <= 0:
                return None
            data = os.pread(current.fd, wanted, current.read_pos)
            if not data:
                return None
            current.read_pos += len(data)
            lines = self._splitter.feed(data)
            current.advance(current.read_pos - self._splitter.held)
            if lines:
                return LineBatch(self.key, lines, current.position(self.key))

    def _check_truncation(self, current: _OpenFile) -> int:
        """copytruncate: smaller than what we read, or its first bytes changed → from 0.
        Returns the file's size."""
        size = os.fstat(current.fd).st_size
        if size >= current.read_pos and current.head_unchanged():
            return size
        current.move_to(0)
        self._splitter.reset()
        return size
