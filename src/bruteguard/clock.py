"""The one wall clock: whatever stamps or compares times takes a ``Clock``.

A stage that read ``time.time()`` itself while its neighbour used an injected clock would
compare two different "nows" (a cache expiry stamped by one, checked by the other). So the
store owns the clock, and the desk, the case book and the lookups all ask it; tests inject
one clock and move all of them at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock", "system_clock"]

Clock = Callable[[], float]
"""POSIX seconds, UTC."""

system_clock: Clock = time.time
