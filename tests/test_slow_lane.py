"""Imported filters off the event loop with a time budget per batch (issue 18 item 2).

The budget's bookkeeping is judged with an injected clock; the lane with a real
catastrophic-backtracking fail2ban filter on its real thread, while the event loop's own
pace is measured beside it."""

from __future__ import annotations

import asyncio
import calendar
import time
from pathlib import Path

import pytest

from bruteguard.match.budget import BatchBudget
from bruteguard.match.engine import Hit, Matcher, NamedHit
from bruteguard.slow_lane import BACKLOG, SlowLane

REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))
# ``(?:\w|\w\w)+`` before a fixed tail backtracks exponentially on a long word that is not
# followed by it: the pattern runs out of its per-line time on every hostile line.
EVIL_FILTER = "[Definition]\nfailregex = ^\\s*login failed for (?:\\w|\\w\\w)+ from <HOST>$\n"
HOSTILE = b"2026-11-23 06:50:01 login failed for " + b"a" * 40 + b"!\n"


def good(n: int) -> bytes:
    return f"2026-11-23 06:50:{n % 60:02d} login failed for bob from 198.51.100.{n}\n".encode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the budget ---------------------------------------------------------------------------


def test_a_batch_is_spent_once_its_seconds_have_passed() -> None:
    clock = FakeClock()
    budget = BatchBudget(seconds=1.0, quiet=60.0, clock=clock)
    spent = budget.start()
    assert not spent()
    clock.now += 0.99
    assert not spent()
    clock.now += 0.01
    assert spent()
    assert not budget.start()(), "each batch gets its own seconds"


def test_a_big_batch_gets_time_for_each_of_its_lines() -> None:
    clock = FakeClock()
    budget = BatchBudget(seconds=1.0, quiet=60.0, clock=clock, per_line=0.001)
    small, big = budget.start(100), budget.start(10_000)
    clock.now += 1.0
    assert small() and not big()
    clock.now += 8.99
    assert not big()
    clock.now += 0.01
    assert big()


def test_dropping_makes_the_filter_over_budget_until_a_batch_is_matched_whole() -> None:
    clock = FakeClock()
    budget = BatchBudget(seconds=1.0, quiet=60.0, clock=clock)
    assert not budget.over
    assert budget.finish(0) is False
    assert budget.finish(150) is True  # it changed: over budget now
    assert budget.over and budget.dropped == 150
    assert budget.drop(40) is False  # still over: no change to tell
    assert budget.dropped == 190
    clock.now += 30
    assert budget.over
    assert budget.finish(0) is True  # a whole batch: the flood is over
    assert not budget.over and budget.dropped == 190


def test_a_filter_that_dropped_and_then_saw_no_line_recovers_after_quiet_seconds() -> None:
    clock = FakeClock()
    budget = BatchBudget(seconds=1.0, quiet=60.0, clock=clock)
    budget.finish(3)
    clock.now += 59.9
    assert budget.over
    clock.now += 0.1
    assert not budget.over
    assert budget.drop(0) is False and not budget.over, "nothing dropped is no drop"


# -- an imported stream stops when told ---------------------------------------------------


def test_an_imported_stream_leaves_the_lines_after_its_time_and_counts_them(
    tmp_path: Path,
) -> None:
    own = tmp_path / "app.conf"
    own.write_text(EVIL_FILTER)
    stream = Matcher({"app": str(own)}).stream(reference=REFERENCE)
    (imported,) = stream.imported_streams
    asked = 0

    def spent() -> bool:  # the time is up after three lines
        nonlocal asked
        asked += 1
        return asked > 3

    hits: list[tuple] = []
    chunk = b"".join(good(n) for n in range(1, 11)) + b"\n\r\n"
    left = imported.run(chunk, lambda *hit: hits.append(hit), spent)
    assert left == 7
    assert [hit[2] for hit in hits] == ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    lines, matched, *_ = imported.take_counts()
    assert (lines, matched) == (10, 3), "every line is read, only the first three matched"
    assert imported.run(good(11), lambda *hit: hits.append(hit), lambda: False) == 0
    assert hits[-1][2] == "198.51.100.11", "the next batch is matched from its first line"


# -- the lane, on its thread --------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.named: list[NamedHit] = []
        self.changes = 0

    async def handle(self, hits: list[Hit], named: list[NamedHit]) -> None:
        self.hits += hits
        self.named += named

    def changed(self) -> None:
        self.changes += 1


def _lane(tmp_path: Path, recorder: Recorder, seconds: float) -> SlowLane:
    own = tmp_path / "evil.conf"
    own.write_text(EVIL_FILTER)
    stream = Matcher({"sshd": "sshd", "evil": str(own)}).stream(reference=REFERENCE)
    (imported,) = stream.imported_streams
    return SlowLane(imported, recorder.handle, recorder.changed, BatchBudget(seconds, 60.0))


async def _until(probe, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


async def _loop_gaps(stop: asyncio.Event) -> float:
    """The longest the event loop went without running this task (it asks every 10 ms)."""
    longest = 0.0
    last = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = time.monotonic()
        longest = max(longest, now - last - 0.01)
        last = now
    return longest


def test_a_hostile_flood_is_cut_at_the_budget_while_the_event_loop_goes_on(
    tmp_path: Path,
) -> None:
    """200 hostile lines once held the loop 10 s; on the lane they cost it nothing, the lane
    gives up after its budget, counts what it dropped, says it is over budget, and matches
    the next ordinary batch whole (and says it keeps up again)."""
    recorder = Recorder()
    lane = _lane(tmp_path, recorder, seconds=0.5)

    async def scenario() -> float:
        runner = asyncio.create_task(lane.run())
        stop = asyncio.Event()
        gaps = asyncio.create_task(_loop_gaps(stop))
        started = time.monotonic()
        lane.submit(HOSTILE * 200)
        await _until(lambda: lane.budget.over, 10, "the lane to go over its budget")
        took = time.monotonic() - started
        assert recorder.changes == 1
        # Each line the pattern tries costs it its per-line time (0.05 s): about ten fit.
        assert 100 <= lane.budget.dropped < 200, lane.budget.dropped
        assert took < 5, f"the lane took {took:.1f}s: its budget did not cut the flood"
        lane.submit(good(7) + good(8))
        await _until(lambda: len(recorder.hits) == 2, 10, "the ordinary lines' attempts")
        assert not lane.budget.over and recorder.changes == 2
        assert [(h[1], h[3]) for h in recorder.hits] == [
            ("198.51.100.7", "evil"),
            ("198.51.100.8", "evil"),
        ]
        stop.set()
        longest = await gaps
        runner.cancel()
        lane.close()
        return longest

    longest = asyncio.run(scenario())
    # The thread backtracks for its whole budget; the loop must not notice it (a lane run
    # on the loop would show the whole half second). 2 shared cores: be generous.
    assert longest < 0.25, f"the event loop stalled {longest:.3f}s beside the lane"


def test_batches_beyond_the_backlog_are_dropped_whole_and_counted(tmp_path: Path) -> None:
    recorder = Recorder()
    lane = _lane(tmp_path, recorder, seconds=0.2)

    async def scenario() -> None:
        runner = asyncio.create_task(lane.run())
        await asyncio.sleep(0)
        lane.submit(HOSTILE * 50)  # taken by the thread at once
        await asyncio.sleep(0.05)
        for _ in range(BACKLOG + 3):
            lane.submit(HOSTILE * 10)
        assert lane.budget.dropped == 30, "three batches found no room: dropped whole"
        assert lane.budget.over
        # The first batch drops most of its 50; each queued one (10 lines of 0.05 s each, a
        # 0.2 s budget) at least one.
        await _until(
            lambda: lane.budget.dropped >= 30 + 40 + BACKLOG, 20, "the queued batches' drops"
        )
        runner.cancel()
        lane.close()

    asyncio.run(scenario())


def test_lines_within_the_budget_are_all_matched(tmp_path: Path) -> None:
    recorder = Recorder()
    lane = _lane(tmp_path, recorder, seconds=0.3)

    async def scenario() -> None:
        runner = asyncio.create_task(lane.run())
        lane.submit(b"".join(good(n) for n in range(1, 201)))
        await _until(lambda: len(recorder.hits) == 200, 10, "200 attempts")
        runner.cancel()
        lane.close()

    asyncio.run(scenario())
    assert lane.budget.dropped == 0 and not lane.budget.over and recorder.changes == 0


def test_named_hosts_of_an_imported_filter_reach_its_lane_not_the_source(
    tmp_path: Path,
) -> None:
    """The lane's thread alone takes its filter's host names (for the identity stage): the
    source's own take leaves them, so no name is lost between two threads."""
    recorder = Recorder()
    own = tmp_path / "evil.conf"
    own.write_text(EVIL_FILTER)
    stream = Matcher({"sshd": "sshd", "evil": str(own)}).stream(reference=REFERENCE)
    (imported,) = stream.imported_streams
    lane = SlowLane(imported, recorder.handle, recorder.changed, BatchBudget(0.5, 60.0))
    line = b"2026-11-23 06:50:01 login failed for bob from scanner.example.net\n"

    async def scenario() -> None:
        runner = asyncio.create_task(lane.run())
        assert stream.feed(line, imported=False) == []
        lane.submit(line)
        await _until(lambda: recorder.named, 10, "the named attempt")
        assert stream.take_named(imported=False) == []
        runner.cancel()
        lane.close()

    asyncio.run(scenario())
    assert [(n[1], n[2], n[3]) for n in recorder.named] == [("scanner.example.net", None, "evil")]
    assert recorder.hits == []


def test_a_batch_that_fails_is_logged_and_the_lane_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    failures = [RuntimeError("the store is locked")]

    async def handle(hits: list[Hit], named: list[NamedHit]) -> None:
        if failures:
            raise failures.pop()
        await recorder.handle(hits, named)

    own = tmp_path / "evil.conf"
    own.write_text(EVIL_FILTER)
    stream = Matcher({"evil": str(own)}).stream(reference=REFERENCE)
    (imported,) = stream.imported_streams
    lane = SlowLane(imported, handle, recorder.changed, BatchBudget(0.5, 60.0))

    async def scenario() -> None:
        runner = asyncio.create_task(lane.run())
        lane.submit(good(1))
        lane.submit(good(2))
        await _until(lambda: recorder.hits, 10, "the second batch's attempt")
        runner.cancel()
        lane.close()

    asyncio.run(scenario())
    assert [h[1] for h in recorder.hits] == ["198.51.100.2"]
    assert "jail evil: a batch could not be matched" in caplog.text
    assert "the store is locked" in caplog.text
