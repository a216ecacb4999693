"""A slow filter's time per batch, and the degraded state that running over it leads to.

Imported fail2ban filters are not ours: a pattern that backtracks can spend its whole
per-line timeout on every line of a hostile flood (200 such lines once held the daemon for
10 s). They run on a thread of their own, so that stalls no other jail; the budget keeps
the slow jail itself from falling ever further behind. Each batch gets ``seconds`` of
matching, or ``per_line`` seconds a line if that is more (a backlog's big batch of ordinary
lines is matched whole: an imported filter takes a fraction of a millisecond per ordinary
line, a backtracking pattern its whole per-line timeout); the lines left when it is spent
are dropped and counted, and the jail reports
itself over budget until a batch is matched whole again (the flood is over) or nothing has
been dropped for ``quiet`` seconds (no line came since).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["BATCH_SECONDS", "LINE_SECONDS", "QUIET_SECONDS", "BatchBudget"]

# Matching time one batch may take at least, and per line: fail2ban's sshd filter reads
# about 6,500 ordinary lines a second here (0.15 ms each), a backtracking pattern spends
# its whole per-line timeout (50 ms) on each hostile one.
BATCH_SECONDS = 1.0
LINE_SECONDS = 0.001
QUIET_SECONDS = 60.0


class BatchBudget:
    """Time per batch of one slow filter, and what it has had to drop.

    ``clock`` is monotonic seconds (injectable for tests). ``start`` is called on the
    thread that matches; ``finish`` and ``drop`` on the event loop, which alone changes the
    counts.
    """

    def __init__(
        self,
        seconds: float = BATCH_SECONDS,
        quiet: float = QUIET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        per_line: float = LINE_SECONDS,
    ) -> None:
        self.seconds = seconds
        self.per_line = per_line
        self.quiet = quiet
        self.dropped = 0  # lines never matched, since start
        self._clock = clock
        self._last_drop: float | None = None
        self._dropping = False

    def start(self, lines: int = 0) -> Callable[[], bool]:
        """A batch of ``lines`` begins: the test of whether its time is spent, to ask
        between lines."""
        deadline = self._clock() + max(self.seconds, lines * self.per_line)
        return lambda: self._clock() >= deadline

    def finish(self, dropped: int) -> bool:
        """A batch ended with ``dropped`` lines unmatched; whether ``over`` changed."""
        before = self.over
        if dropped:
            self.dropped += dropped
            self._last_drop = self._clock()
            self._dropping = True
        else:
            self._dropping = False
        return self.over != before

    def drop(self, lines: int) -> bool:
        """A whole batch refused unmatched (the thread is still busy with earlier ones)."""
        return self.finish(lines) if lines else False

    @property
    def over(self) -> bool:
        """Whether the filter is dropping lines: since its last drop no batch was matched
        whole, and the drop is recent."""
        last = self._last_drop
        return self._dropping and last is not None and self._clock() - last < self.quiet
