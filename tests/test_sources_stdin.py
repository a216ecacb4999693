"""StdinSource with real pipes, a real redirected file and a real child process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, BinaryIO

from bruteguard.sources import LineBatch, Source
from bruteguard.sources.stdin import StdinSource

TIMEOUT = 20.0


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


async def collect(source: StdinSource) -> list[LineBatch]:
    return [batch async for batch in source.batches()]


def writer_thread(fd: int, chunks: list[bytes]) -> threading.Thread:
    """Write ``chunks`` to a pipe from another thread, then close it (EOF for the reader)."""

    def write() -> None:
        with os.fdopen(fd, "wb", buffering=0) as pipe:
            for chunk in chunks:
                pipe.write(chunk)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def pipe() -> tuple[BinaryIO, int]:
    read_end, write_end = os.pipe()
    return os.fdopen(read_end, "rb"), write_end


def test_pipe_delivers_complete_lines_and_the_unfinished_last_one_at_eof() -> None:
    stream, write_end = pipe()
    chunks = [b"one\ntw", b"o\nthr", b"ee\n", b"no newline at the end"]

    async def body() -> list[LineBatch]:
        thread = writer_thread(write_end, chunks)
        source = StdinSource(stream)
        assert isinstance(source, Source)
        batches = await collect(source)
        thread.join()
        return batches

    batches = run(body())
    assert all(batch.key == "stdin" and batch.data.endswith(b"\n") for batch in batches)
    assert b"".join(batch.data for batch in batches) == (
        b"one\ntwo\nthree\nno newline at the end\n"
    )
    assert batches[-1].position.offset == len(b"".join(chunks))
    stream.close()


def test_pipe_skips_a_line_longer_than_one_mib_without_buffering_it() -> None:
    stream, write_end = pipe()
    chunks = [b"before\n", b"x" * (3 * 1024 * 1024), b"\nafter\n"]

    async def body() -> tuple[bytes, int]:
        thread = writer_thread(write_end, chunks)
        source = StdinSource(stream)
        data = b"".join(batch.data for batch in await collect(source))
        thread.join()
        return data, source.skipped_long_lines

    assert run(body()) == (b"before\nafter\n", 1)
    stream.close()


def test_redirected_regular_file(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    content = b"".join(f"line {i}\n".encode() for i in range(50_000))
    log.write_bytes(content)

    async def body() -> list[LineBatch]:
        with log.open("rb") as stream:
            return await collect(StdinSource(stream))

    batches = run(body())
    assert b"".join(batch.data for batch in batches) == content
    assert len(batches) == 1  # under 1 MiB: one read, one batch


def test_cancelling_while_the_pipe_is_idle_leaves_nothing_running() -> None:
    stream, write_end = pipe()

    async def body() -> list[bytes]:
        source = StdinSource(stream)
        seen: list[bytes] = []

        async def consume() -> None:
            async for batch in source.batches():
                seen.append(batch.data)

        task = asyncio.create_task(consume())
        os.write(write_end, b"first\n")
        while not seen:
            await asyncio.sleep(0.01)
        task.cancel()  # the writer never closes: only cancellation ends this
        await asyncio.gather(task, return_exceptions=True)
        await source.aclose()
        return seen

    assert run(body()) == [b"first\n"]  # and asyncio.run returned: no thread left blocked
    os.close(write_end)
    stream.close()


def test_default_stream_is_standard_input_of_the_process() -> None:
    program = (
        "import asyncio, sys\n"
        "from bruteguard.sources.stdin import StdinSource\n"
        "async def main():\n"
        "    async for batch in StdinSource().batches():\n"
        "        sys.stdout.buffer.write(b'[' + batch.data + b']')\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        input=b"Failed password for root from 203.0.113.9\nsecond\n",
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    )
    assert result.stdout == b"[Failed password for root from 203.0.113.9\nsecond\n]"
