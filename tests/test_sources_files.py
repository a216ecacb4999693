"""FileSource against real files, real inotify and real rotation; choosing sources for jails."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import stat
import statistics
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from bruteguard.config import JailConfig
from bruteguard.errors import ConfigError
from bruteguard.model import SourcePosition
from bruteguard.sources import MAX_LINE, LineBatch, Source, select
from bruteguard.sources.files import FileSource, file_key, fingerprint
from bruteguard.sources.journal import JournalSource
from bruteguard.sources.select import (
    SourceSpec,
    plan_sources,
    resolve_sources,
    source_description,
    sources_for_jail,
)
from bruteguard.sources.stdin import StdinSource

TIMEOUT = 20.0


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run one test body with a hard time limit, so a broken source cannot hang the suite."""
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def lines(prefix: str, first: int, last: int) -> list[bytes]:
    return [f"{prefix} {i:05d}\n".encode() for i in range(first, last)]


def append(path: Path, *chunks: bytes) -> None:
    with path.open("ab") as handle:
        for chunk in chunks:
            handle.write(chunk)


class Follower:
    """Runs a source in a task and records what it delivers."""

    def __init__(self, source: FileSource) -> None:
        self.source = source
        self.batches: list[LineBatch] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def data(self) -> bytes:
        return b"".join(batch.data for batch in self.batches)

    @property
    def lines(self) -> list[bytes]:
        return self.data.splitlines(keepends=True)

    @property
    def position(self) -> SourcePosition:
        return self.batches[-1].position

    async def start(self) -> Follower:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)  # the source sets up synchronously up to its first wait
        return self

    async def _run(self) -> None:
        async for batch in self.source.batches():
            assert batch.key == self.source.key
            assert batch.data.endswith(b"\n")
            self.batches.append(batch)
            self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def until_lines(self, count: int, timeout: float = 5.0) -> list[bytes]:
        await self.until(lambda: len(self.lines) >= count, timeout)
        return self.lines

    async def stop(self) -> None:
        await self.source.aclose()
        assert self._task is not None
        await asyncio.wait_for(self._task, 2)


def test_file_source_is_a_source(tmp_path: Path) -> None:
    source = FileSource(tmp_path / "auth.log")
    assert isinstance(source, Source)
    assert source.key == file_key(tmp_path / "auth.log") == f"file:{tmp_path}/auth.log"


def test_start_at_end_skips_existing_lines_and_an_unfinished_last_line(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"old 1\nold 2\nhalf a li")

    async def body() -> None:
        tail = await Follower(FileSource(log)).start()
        append(log, b"ne\nnew 1\n")
        assert await tail.until_lines(1) == [b"new 1\n"]
        append(log, b"new 2\n")
        assert await tail.until_lines(2) == [b"new 1\n", b"new 2\n"]
        assert tail.position.offset == log.stat().st_size
        await tail.stop()

    run(body())


def test_start_at_start_reads_existing_lines(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"old 1\nold 2\n")

    async def body() -> None:
        tail = await Follower(FileSource(log, None, start="start")).start()
        append(log, b"new 1\n")
        assert await tail.until_lines(3) == [b"old 1\n", b"old 2\n", b"new 1\n"]
        await tail.stop()

    run(body())


def test_single_new_line_is_delivered_promptly(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"")

    async def body() -> list[float]:
        tail = await Follower(FileSource(log)).start()
        delays = []
        for i in range(20):
            began = time.monotonic()
            append(log, f"line {i}\n".encode())
            await tail.until_lines(i + 1)
            delays.append(time.monotonic() - began)
        await tail.stop()
        return delays

    delays = run(body())
    assert statistics.median(delays) < 0.05, delays


def test_backlog_comes_in_large_batches(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    backlog = b"".join(lines("Failed password for root from 203.0.113.7", 0, 40_000))
    log.write_bytes(backlog)  # about 2 MiB

    async def body() -> None:
        tail = await Follower(FileSource(log, None, start="start")).start()
        await tail.until(lambda: len(tail.data) == len(backlog))
        assert tail.data == backlog
        assert 2 <= len(tail.batches) <= 3
        assert all(len(batch.data) > 512 * 1024 for batch in tail.batches[:-1])
        assert tail.position.offset == len(backlog)
        await tail.stop()

    run(body())


def test_partial_line_is_held_back_until_completed(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"")

    async def body() -> None:
        tail = await Follower(FileSource(log)).start()
        append(log, b"complete\nhalf of a")
        assert await tail.until_lines(1) == [b"complete\n"]
        await asyncio.sleep(0.2)
        assert tail.lines == [b"complete\n"]
        assert tail.position.offset == len(b"complete\n")
        append(log, b" line\n")
        assert await tail.until_lines(2) == [b"complete\n", b"half of a line\n"]
        await tail.stop()

    run(body())


def test_line_longer_than_one_mib_is_skipped_and_counted(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"")
    huge = b"A" * (2 * 1024 * 1024) + b"\n"
    limit = b"B" * MAX_LINE + b"\n"  # exactly at the limit: kept

    async def body() -> None:
        source = FileSource(log)
        tail = await Follower(source).start()
        append(log, b"before\n")
        await tail.until_lines(1)
        for i in range(0, len(huge), 300_000):  # arrives in pieces, as a writer would
            append(log, huge[i : i + 300_000])
            await asyncio.sleep(0.01)
        append(log, limit, b"after\n")
        await tail.until_lines(3)
        assert tail.lines == [b"before\n", limit, b"after\n"]
        assert source.skipped_long_lines == 1
        assert tail.position.offset == log.stat().st_size
        await tail.stop()

    run(body())


def test_binary_garbage_passes_through_as_bytes(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"")
    garbage = b"\xff\xfe\x00\x01 not utf-8 \xc3\x28\r\n"

    async def body() -> None:
        tail = await Follower(FileSource(log)).start()
        append(log, garbage, b"next\n")
        await tail.until_lines(2)
        assert tail.data == garbage + b"next\n"
        await tail.stop()

    run(body())


@pytest.mark.parametrize("create", [True, False], ids=["create", "nocreate"])
def test_rename_rotation_loses_and_repeats_nothing(tmp_path: Path, create: bool) -> None:
    """logrotate's default, four times, while lines keep coming.

    The writer behaves like syslog before its postrotate HUP: after the rename it still
    writes ten lines to the old (renamed) file, then reopens the path and goes on there.
    With ``create`` logrotate has already made the new, empty file in between.
    """
    log = tmp_path / "auth.log"
    log.write_bytes(b"")
    expected = lines("line", 0, 3000)

    def rotate(rotations: int) -> None:
        for n in range(rotations, -1, -1):  # auth.log.1 → auth.log.2 … as logrotate does
            os.rename(tmp_path / (f"auth.log.{n}" if n else "auth.log"), f"{log}.{n + 1}")
        if create:
            log.write_bytes(b"")

    async def body() -> None:
        tail = await Follower(FileSource(log)).start()
        writer = log.open("ab", buffering=0)
        for i, line in enumerate(expected):
            writer.write(line)
            if i % 700 == 699:
                rotate(i // 700)
            if i > 700 and i % 700 == 9:  # the late reopen, ten lines after the rename
                writer.close()
                writer = log.open("ab", buffering=0)
            if i % 50 == 0:
                await asyncio.sleep(0.001)
        writer.close()
        assert await tail.until_lines(len(expected)) == expected
        await asyncio.sleep(0.2)
        assert tail.lines == expected
        await tail.stop()

    run(body())


def test_copytruncate_rotation_starts_again_at_zero(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"")

    async def body() -> None:
        tail = await Follower(FileSource(log)).start()
        append(log, *lines("before", 0, 100))
        await tail.until_lines(100)
        shutil.copyfile(log, tmp_path / "auth.log.1")
        os.truncate(log, 0)
        append(log, *lines("after", 0, 3))
        assert await tail.until_lines(103) == lines("before", 0, 100) + lines("after", 0, 3)
        assert tail.position.offset == log.stat().st_size
        await tail.stop()

    run(body())


def test_truncate_then_grow_past_offset_is_caught_by_fingerprint(tmp_path: Path) -> None:
    """Truncated and refilled beyond our offset before we looked: the size alone can't tell."""
    log = tmp_path / "auth.log"
    log.write_bytes(b"")

    async def body() -> None:
        source = FileSource(log)
        batches = source.batches()
        pending = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0)
        append(log, b"first line\n")
        assert (await pending).data == b"first line\n"
        # We are not pulling now, so the source does not read: rewrite the file meanwhile.
        with log.open("r+b") as handle:
            handle.truncate(0)
            handle.write(b"a different and longer first line\nsecond\n")
        batch = await asyncio.wait_for(anext(batches), 5)
        assert batch.data == b"a different and longer first line\nsecond\n"
        await source.aclose()

    run(body())


def test_a_rewrite_after_a_resume_is_caught_by_the_stored_fingerprint(tmp_path: Path) -> None:
    """Resumed from a saved position (only the fingerprint's text is known, not the bytes
    it was taken of), then truncated and refilled beyond the offset: still read from 0."""
    log = tmp_path / "auth.log"
    log.write_bytes(b"first line\n")

    async def body() -> None:
        info = log.stat()
        with log.open("rb") as handle:
            saved = SourcePosition(
                file_key(log), info.st_size, info.st_dev, info.st_ino,
                fingerprint(handle.fileno(), info.st_size),
            )  # fmt: skip
        source = FileSource(log, saved)
        batches = source.batches()
        pending = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.05)  # positioned at the saved offset, waiting for news
        with log.open("r+b") as handle:
            handle.truncate(0)
            handle.write(b"a different and longer first line\nsecond\n")
        batch = await asyncio.wait_for(pending, 5)
        assert batch.data == b"a different and longer first line\nsecond\n"
        await source.aclose()

    run(body())


def test_resume_sees_exactly_the_lines_written_while_stopped(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"")

    async def body() -> None:
        tail = await Follower(FileSource(log)).start()
        append(log, *lines("seen", 0, 5), b"unfinish")
        await tail.until_lines(5)
        saved = tail.position
        await tail.stop()
        append(log, b"ed\n", *lines("missed", 0, 5))
        again = await Follower(FileSource(log, saved)).start()
        assert await again.until_lines(6) == [b"unfinished\n", *lines("missed", 0, 5)]
        await asyncio.sleep(0.1)
        assert len(again.lines) == 6
        await again.stop()

    run(body())


def test_resume_after_rotation_while_stopped_finishes_the_rotated_file_first(
    tmp_path: Path,
) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"")

    async def body() -> None:
        tail = await Follower(FileSource(log)).start()
        append(log, *lines("seen", 0, 5))
        await tail.until_lines(5)
        saved = tail.position
        await tail.stop()
        append(log, *lines("old", 0, 4))
        os.rename(log, tmp_path / "auth.log.1")
        (tmp_path / "auth.log.2.gz").write_bytes(b"compressed: not ours\n")
        log.write_bytes(b"".join(lines("new", 0, 3)))
        again = await Follower(FileSource(log, saved)).start()
        assert await again.until_lines(7) == lines("old", 0, 4) + lines("new", 0, 3)
        append(log, b"live\n")
        assert (await again.until_lines(8))[-1] == b"live\n"
        assert again.position.inode == log.stat().st_ino
        await again.stop()

    run(body())


def test_resume_when_rotated_file_is_gone_reads_the_new_file_from_start(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"".join(lines("seen", 0, 5)))

    async def body() -> None:
        tail = await Follower(FileSource(log, None, start="start")).start()
        await tail.until_lines(5)
        saved = tail.position
        await tail.stop()
        log.unlink()  # rotated and compressed: the old inode is gone
        log.write_bytes(b"".join(lines("new", 0, 3)))
        again = await Follower(FileSource(log, saved)).start()
        assert await again.until_lines(3) == lines("new", 0, 3)
        await again.stop()

    run(body())


def test_resume_after_copytruncate_while_stopped_starts_at_zero(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"".join(lines("seen", 0, 5)))

    async def body() -> None:
        tail = await Follower(FileSource(log, None, start="start")).start()
        await tail.until_lines(5)
        saved = tail.position
        await tail.stop()
        with log.open("r+b") as handle:  # same inode, new content
            handle.truncate(0)
            handle.write(b"".join(lines("rewritten and longer", 0, 6)))
        assert log.stat().st_ino == saved.inode
        again = await Follower(FileSource(log, saved)).start()
        assert await again.until_lines(6) == lines("rewritten and longer", 0, 6)
        await again.stop()

    run(body())


def test_file_that_appears_later_is_read_from_its_start_and_may_come_and_go(
    tmp_path: Path,
) -> None:
    log = tmp_path / "logs" / "auth.log"

    async def body() -> None:
        tail = await Follower(FileSource(log)).start()  # not even the directory exists
        log.parent.mkdir()
        log.write_bytes(b"born 1\n")
        assert await tail.until_lines(1) == [b"born 1\n"]
        append(log, b"born 2\n")
        await tail.until_lines(2)
        log.unlink()
        await asyncio.sleep(0.05)
        log.write_bytes(b"again 1\n")
        assert await tail.until_lines(3) == [b"born 1\n", b"born 2\n", b"again 1\n"]
        await tail.stop()

    run(body())


def test_aclose_releases_the_file(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"x\n")

    def open_descriptors() -> set[str]:
        targets = set()
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor
                targets.add(os.readlink(f"/proc/self/fd/{fd}"))
        return targets

    async def body() -> None:
        source = FileSource(log)
        tail = await Follower(source).start()
        assert str(log) in open_descriptors()
        await tail.stop()
        assert str(log) not in open_descriptors()

    run(body())


def test_a_busy_consumer_and_an_idle_file_cost_no_cpu(tmp_path: Path) -> None:
    """No polling: while idle, and while the consumer is slow with events pending."""
    log = tmp_path / "auth.log"
    log.write_bytes(b"")

    async def body() -> tuple[float, float]:
        source = FileSource(log)
        batches = source.batches()
        pending = asyncio.ensure_future(anext(batches))
        began = time.process_time()
        await asyncio.sleep(0.5)  # idle file
        idle = time.process_time() - began
        append(log, b"one\n")
        assert (await pending).data == b"one\n"
        began = time.process_time()
        for i in range(5):  # events arrive while nobody asks for the next batch
            append(log, f"more {i}\n".encode())
            await asyncio.sleep(0.1)
        busy = time.process_time() - began
        assert (await asyncio.wait_for(anext(batches), 5)).data.startswith(b"more 0\n")
        await source.aclose()
        return idle, busy

    idle, busy = run(body())
    assert idle < 0.05 and busy < 0.05, (idle, busy)


def test_follow_reads_a_trickle_at_most_once_per_gather(tmp_path: Path) -> None:
    """The daemon's way in: batches handed over from the loop's callbacks, a log written a
    line every 5 ms read at most once per 50 ms gather, every line once and in order."""
    log = tmp_path / "auth.log"
    log.write_bytes(b"")
    written = lines("line", 0, 60)

    async def body() -> list[LineBatch]:
        source = FileSource(log)
        delivered: list[LineBatch] = []
        following = asyncio.create_task(source.follow(delivered.append, 0.05, 4096))
        await asyncio.sleep(0)  # positioned at the end before the first line
        began = time.monotonic()
        for line in written:
            append(log, line)
            await asyncio.sleep(0.005)
        while b"".join(batch.data for batch in delivered) != b"".join(written):
            await asyncio.sleep(0.01)
        spent = time.monotonic() - began
        await source.aclose()
        await asyncio.wait_for(following, 2)
        assert len(delivered) <= spent / 0.05 + 2, (len(delivered), spent)
        return delivered

    delivered = run(body())
    assert len(delivered) >= 2
    assert delivered[-1].position.offset == log.stat().st_size


def test_follow_reads_on_only_when_a_delivery_it_waits_for_is_done(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"")

    async def body() -> None:
        source = FileSource(log)
        loop = asyncio.get_running_loop()
        delivered: list[bytes] = []
        pending: asyncio.Future[None] = loop.create_future()

        def deliver(batch: LineBatch) -> asyncio.Future[None] | None:
            delivered.append(batch.data)
            return pending if len(delivered) == 1 else None

        following = asyncio.create_task(source.follow(deliver))
        await asyncio.sleep(0)
        append(log, b"one\n")
        async with asyncio.timeout(5):
            while not delivered:
                await asyncio.sleep(0.01)
        append(log, b"two\n")
        await asyncio.sleep(0.2)
        assert delivered == [b"one\n"]  # the first is still being dealt with
        pending.set_result(None)
        async with asyncio.timeout(5):
            while len(delivered) < 2:
                await asyncio.sleep(0.01)
        assert delivered == [b"one\n", b"two\n"]
        await source.aclose()
        await asyncio.wait_for(following, 2)

    run(body())


def test_follow_ends_with_the_error_of_a_delivery_and_lets_the_file_go(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"")

    def deliver(batch: LineBatch) -> None:
        raise ValueError(f"cannot take {batch.data!r}")

    async def body() -> None:
        source = FileSource(log)
        following = asyncio.create_task(source.follow(deliver))
        await asyncio.sleep(0)
        append(log, b"one\n")
        with pytest.raises(ValueError, match="cannot take b'one"):
            await asyncio.wait_for(following, 5)
        assert source.health().detail.endswith("not opened yet")  # closed, not reading

    run(body())


# -- choosing sources (select.py) ------------------------------------------------------------


def jail(name: str = "sshd", **settings: Any) -> JailConfig:
    return JailConfig(name=name, **settings)


def test_auto_prefers_the_journal_when_there_is_one_and_the_jail_has_matches() -> None:
    sshd = jail(journalmatch=["_COMM=sshd"], logpath=["/var/log/auth.log"])
    for reader in ("systemd-python", "journalctl"):
        assert resolve_sources(sshd, journal=reader) == [
            SourceSpec("journal", matches=("_COMM=sshd",), reader=reader)
        ]
        described = source_description(sshd, journal=reader)
        assert described == f"journal (_COMM=sshd) via {reader} [auto]"
    assert resolve_sources(sshd, journal=False) == [SourceSpec("file", "/var/log/auth.log")]


def test_auto_without_logpath_falls_back_to_the_distributions_auth_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The auth log this host has; with neither (a journal-only host whose journal cannot be
    read, rsyslog not installed yet) both are watched, and whichever appears is read."""
    debian, redhat = str(tmp_path / "auth.log"), str(tmp_path / "secure")
    monkeypatch.setattr(select, "AUTH_LOGS", (debian, redhat))
    assert resolve_sources(jail(), journal=False) == [
        SourceSpec("file", debian),
        SourceSpec("file", redhat),
    ]
    Path(redhat).touch()
    assert resolve_sources(jail(), journal=False) == [SourceSpec("file", redhat)]
    Path(debian).touch()
    assert resolve_sources(jail(), journal=False) == [SourceSpec("file", debian)]


def test_forced_backends(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='backend "file" needs a logpath'):
        resolve_sources(jail(backend="file"))
    assert resolve_sources(jail(backend="stdin")) == [SourceSpec("stdin")]
    journal = jail(backend="journal", journalmatch=["_COMM=sshd"])
    (source,) = sources_for_jail(journal, lambda key: None)
    assert isinstance(source, JournalSource) and source.key == "journal:_COMM=sshd"
    (source,) = sources_for_jail(jail(backend="stdin"), lambda key: None)
    assert isinstance(source, StdinSource)
    missing = tmp_path / "later.log"
    described = source_description(jail(backend="file", logpath=[str(missing)]))
    assert described == f"file {missing} (not there yet: waiting for it)"
    described = source_description(jail(backend="file", logpath=[str(tmp_path)]))
    assert described == (
        f"file {tmp_path} is a directory, not a regular file: refused (watched until a log file"
        " is there)"
    )


def test_logpath_globs_expand_to_the_files_there_now(tmp_path: Path) -> None:
    for name in ("a-error.log", "b-error.log", "access.log"):
        (tmp_path / name).write_bytes(b"")
    web = jail("web", backend="file", logpath=[f"{tmp_path}/*-error.log", f"{tmp_path}/x.log"])
    assert [spec.path for spec in resolve_sources(web)] == [
        f"{tmp_path}/a-error.log",
        f"{tmp_path}/b-error.log",
        f"{tmp_path}/x.log",
    ]
    nothing = jail("web", backend="file", logpath=[f"{tmp_path}/*.gone"])
    assert source_description(nothing).startswith("nothing: no file matches logpath")


def test_jails_on_one_file_share_one_source_that_resumes_from_its_saved_position(
    tmp_path: Path,
) -> None:
    log = tmp_path / "auth.log"
    log.write_bytes(b"old\n")
    saved: dict[str, SourcePosition] = {}

    async def body() -> None:
        first = await Follower(FileSource(log, None, start="start")).start()
        await first.until_lines(1)
        saved[file_key(log)] = first.position
        await first.stop()
        append(log, b"new\n")
        jails = [
            jail("sshd", backend="file", logpath=[str(log)]),
            jail("sshd-ddos", backend="file", logpath=[str(tmp_path / "." / "auth.log")]),
            jail("other", backend="file", logpath=[str(tmp_path / "other.log")]),
        ]
        plan = plan_sources(jails, saved.get)
        assert sorted(plan) == [file_key(log), file_key(tmp_path / "other.log")]
        shared, names = plan[file_key(log)]
        assert names == ["sshd", "sshd-ddos"]
        assert isinstance(shared, FileSource)
        tail = await Follower(shared).start()
        assert await tail.until_lines(1) == [b"new\n"]
        await tail.stop()

    run(body())


def test_health_tells_how_far_a_backlog_has_been_read(tmp_path: Path) -> None:
    """A big log read from its start says, batch by batch, bytes read of its size: what
    `status` shows while the daemon catches up."""
    from bruteguard.sources import CHUNK_SIZE

    log = tmp_path / "auth.log"
    log.write_bytes(b"".join(lines("old", 0, 5 * CHUNK_SIZE // 10 + 3)))
    size = log.stat().st_size
    assert size > 5 * CHUNK_SIZE

    async def body() -> None:
        source = FileSource(log, start="start")
        assert source.health().progress is None  # not opened yet
        batches = source.batches()
        await anext(batches)
        assert source.health().progress == (CHUNK_SIZE, size)
        await anext(batches)
        assert source.health().progress == (2 * CHUNK_SIZE, size)
        for _ in range(4):
            await anext(batches)
        assert source.health().progress == (size, size)
        await source.aclose()

    run(body())


@contextlib.contextmanager
def _interrupted_after(seconds: int):
    """SIGALRM raises in the main thread even inside a blocking open() (the handler runs
    when the call is interrupted), so a source that blocks the loop fails the test instead
    of hanging it: asyncio's own timeouts need the loop to be free."""

    def expire(signum: int, frame: object) -> None:
        raise AssertionError(f"the event loop was blocked for {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _descriptors_on(path: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                found.append(fd)
    return found


def _make_fifo(path: Path) -> None:
    os.mkfifo(path)


def _make_zero_device(path: Path) -> None:
    """A character device like /dev/zero (same major and minor): endless bytes if read."""
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))


@pytest.mark.parametrize(
    ("make", "kind", "start"),
    [
        (_make_fifo, "a FIFO (named pipe)", "end"),  # no writer: a plain open() blocks forever
        (_make_fifo, "a FIFO (named pipe)", "start"),
        (Path.mkdir, "a directory", "end"),  # read: EISDIR, which used to end the source
        (_make_zero_device, "a character device", "start"),  # some devices act when opened
    ],
)
def test_what_is_not_a_regular_file_is_refused_unopened_until_a_log_file_replaces_it(
    tmp_path: Path, make: Callable[[Path], None], kind: str, start: str
) -> None:
    log = tmp_path / "auth.log"
    make(log)

    async def body() -> None:
        source = FileSource(log, start=start)  # type: ignore[arg-type]
        tail = await Follower(source).start()
        await asyncio.sleep(0.1)
        health = source.health()
        assert not health.reading
        assert health.detail == (
            f"file {log} is {kind}, not a regular file: refused (watched until a log file is there)"
        )
        assert _descriptors_on(log) == [] and tail.batches == []  # looked at, never opened
        log.rmdir() if log.is_dir() else log.unlink()
        log.write_bytes(b"real 1\nreal 2\n")
        assert await tail.until_lines(2) == [b"real 1\n", b"real 2\n"]  # from its start
        assert source.health().reading
        await tail.stop()

    with _interrupted_after(10):
        run(body())


def test_a_followed_log_replaced_by_a_fifo_is_read_out_and_the_fifo_refused(
    tmp_path: Path,
) -> None:
    """Rotation to a FIFO: the old file is finished, the FIFO is never opened."""
    log = tmp_path / "auth.log"
    log.write_bytes(b"")

    async def body() -> None:
        source = FileSource(log)
        tail = await Follower(source).start()
        append(log, b"old 1\n")
        await tail.until_lines(1)
        log.unlink()
        os.mkfifo(log)
        await asyncio.sleep(0.1)
        assert "FIFO" in source.health().detail and not source.health().reading
        assert _descriptors_on(log) == []
        await tail.stop()

    with _interrupted_after(10):
        run(body())
