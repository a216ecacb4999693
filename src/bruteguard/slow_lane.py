"""An imported (slow) filter matched off the event loop, on a thread of its own.

The compiled pass of the built-in signatures is C and fast; an imported fail2ban filter is
Python and someone else's patterns, which a hostile line can make backtrack. Run on the
event loop, 200 such lines held every jail, the control socket and the firewall for 10 s.
So the daemon runs each imported filter of a source on its own thread: the ``regex``
module releases the GIL while it matches (measured: the loop keeps about two thirds of
its speed beside a thread that backtracks for seconds), so the loop, the built-in jails and
``status`` go on while the slow filter works. Each batch has a time budget
(``match.budget``): what the filter cannot match in time is dropped and counted, batches
that arrive while it is ``BACKLOG`` behind are dropped whole, and the jail says it is
degraded (``status``, the log) until it keeps up again. Only that jail loses lines.

Its attempts are recorded when it has matched them: a crash in between loses the failures
of the batches in flight (at most ``BACKLOG`` + 1), never a ban that was decided.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from bruteguard.match.budget import BatchBudget
from bruteguard.match.engine import Hit, NamedHit
from bruteguard.match.imported import ImportedStream

__all__ = ["BACKLOG", "SlowLane"]

log = logging.getLogger("bruteguard")

# Batches that may wait for the thread; more are dropped (counted) rather than queued, so
# the lane's memory and lag stay bounded whatever the flood.
BACKLOG = 4

Handler = Callable[[list[Hit], list[NamedHit]], Awaitable[None]]


class SlowLane:
    """One imported filter of one source: ``submit`` batches, ``run`` matches them in order
    on the lane's thread and hands the attempts to ``handle`` on the event loop."""

    def __init__(
        self,
        stream: ImportedStream,
        handle: Handler,
        changed: Callable[[], None],
        budget: BatchBudget | None = None,
    ) -> None:
        """``changed()`` is called when the lane goes over its budget or back under it."""
        self._jail_of = dict(stream.jails)
        self.jails = tuple(self._jail_of.values())
        self.budget = budget or BatchBudget()
        self._stream = stream
        self._handle = handle
        self._changed = changed
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(BACKLOG)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"bruteguard-{self.jails[0]}")

    def submit(self, chunk: bytes) -> None:
        """Queue a batch, or drop it (counted) if the lane is ``BACKLOG`` batches behind."""
        try:
            self._queue.put_nowait(chunk)
        except asyncio.QueueFull:
            self._tell(self.budget.drop(chunk.count(b"\n")))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            chunk = await self._queue.get()
            try:
                hits, named, dropped = await loop.run_in_executor(self._thread, self._match, chunk)
                self._tell(self.budget.finish(dropped))
                if hits or named:
                    await self._handle(hits, named)
            except Exception:  # a bug on one batch must not end the jail's matching
                log.exception("jail %s: a batch could not be matched", ", ".join(self.jails))

    def close(self) -> None:
        """Stop taking batches; the thread ends after the one it holds (within budget)."""
        self._thread.shutdown(wait=False, cancel_futures=True)

    def _match(self, chunk: bytes) -> tuple[list[Hit], list[NamedHit], int]:
        """On the lane's thread: the batch's attempts, named hosts, and lines left unmatched."""
        hits: list[Hit] = []
        jail_of = self._jail_of

        def sink(index: int, moment: float, address: str, user: str | None, line: str) -> None:
            hits.append((moment, address, user, jail_of[index], line))

        dropped = self._stream.run(chunk, sink, self.budget.start(chunk.count(b"\n")))
        self._stream.take_counts()
        return hits, self._stream.take_named(), dropped

    def _tell(self, changed: bool) -> None:
        if changed:
            self._changed()
