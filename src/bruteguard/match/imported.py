"""Jails whose filter is a fail2ban filter file: matched line by line, same outputs as ours.

fail2ban's semantics (a date found anywhere in the line and cut out, ``prefregex``,
``failregex`` in order, ``ignoreregex``, ``maxlines`` buffers) are per line, so an imported
filter cannot join the one compiled pass of the built-in signatures; it runs beside it, on
the same chunks, through ``bruteguard.fail2ban``. What comes out is what the compiled pass
gives: attempts ``(time, address, user, jail, line)``, and host *names* handed to the
identity stage instead of being resolved — the same rules as for our own signatures.
Each pattern has a time budget per line (``regex``'s timeout): a line that runs out is
skipped and counted in ``match_errors``, and the jail keeps going. The daemon also gives each
batch a budget and runs the filter off its event loop (``match.budget``, ``slow_lane``).
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from bruteguard.identity import address_from_log
from bruteguard.match.signatures import FILTERS, Filter

if TYPE_CHECKING:
    from bruteguard.fail2ban import Fail2banFilter, LineMatcher

__all__ = [
    "FAIL2BAN_PREFIX",
    "ImportedStream",
    "builtin_filter",
    "imported_filter",
    "is_imported",
]

FAIL2BAN_PREFIX = "fail2ban:"
# Lines of one imported filter whose host is a name, kept for the identity stage between
# calls (as the compiled pass keeps at most 10,000).
_NAMED_LIMIT = 10_000
# Per-line time budget of a pattern, in seconds.
TIMEOUT = 0.05


def is_imported(filter_name: str) -> bool:
    """Whether a jail's ``filter`` names a fail2ban filter (``fail2ban:NAME[…]`` or a path)."""
    return filter_name.startswith(FAIL2BAN_PREFIX) or "/" in filter_name or ".conf" in filter_name


@lru_cache(maxsize=64)
def imported_filter(filter_name: str) -> Fail2banFilter:
    """The loaded fail2ban filter a jail names (FilterError says what is wrong)."""
    from bruteguard.fail2ban import load_filter  # only hosts that import filters need it

    return load_filter(filter_name.removeprefix(FAIL2BAN_PREFIX))


def builtin_filter(filter_name: str) -> Filter | None:
    """The built-in filter of a jail's service: its own, or for a fail2ban filter the
    built-in one of the same name (None if there is none). Its facts about the service
    (``ptr_hosts``, ``host_names``) hold whichever patterns read the log."""
    if is_imported(filter_name):
        return FILTERS.get(imported_filter(filter_name).name)
    return FILTERS.get(filter_name)


class ImportedStream:
    """One imported filter over one log, for the jails (by index) that use it."""

    def __init__(
        self,
        service: Fail2banFilter,
        jails: Sequence[tuple[int, str]],
        reference: float | None,
        keep_lines: bool,
    ) -> None:
        now: Callable[[], float] = time.time if reference is None else (lambda: reference)
        self._matcher: LineMatcher = service.matcher(now=now, timeout=TIMEOUT)
        self._jails = tuple(jails)
        self._keep_lines = keep_lines
        # fail2ban's filter for a service that writes PTR text where the address goes
        # (pure-ftpd) gets the built-in filter's caution: live, every host it finds goes to
        # the identity stage, since a PTR can spell someone else's address.
        builtin = FILTERS.get(service.name)
        self._ptr_hosts = reference is None and builtin is not None and builtin.ptr_hosts
        self._named: list[tuple[float, str, str | None, str, str]] = []
        self.lines = self.matched = self.attempts = self.unattributed = 0
        self.bad_time = self.match_errors = 0

    def run(
        self,
        chunk: bytes,
        sink: Callable[[int, float, str, str | None, str], None],
        spent: Callable[[], bool] | None = None,
    ) -> int:
        """Match the lines of ``chunk``; ``sink(jail index, time, address, user, line)``
        receives each attempt whose host is an address. Once ``spent()`` says the batch's
        time is up, the lines left are not matched: their number is returned."""
        rows = chunk.split(b"\n")
        for at, raw in enumerate(rows):
            if raw.endswith(b"\r"):  # CRLF line ends, as the compiled pass takes them
                raw = raw[:-1]
            if not raw:
                continue
            if spent is not None and spent():
                return self._leave(rows[at:])
            self.lines += 1
            text = raw.decode("utf-8", "backslashreplace")
            for result in self._matcher.process(text):
                if not result.match or not result.host:
                    continue
                self.matched += 1
                if result.time is None:
                    self.bad_time += 1
                    continue
                line = text if self._keep_lines else ""
                address = (
                    None
                    if self._ptr_hosts
                    else address_from_log(result.host.encode("utf-8", "backslashreplace"))
                )
                if address is None:
                    self.unattributed += 1  # once per line, whatever the jails
                elif self._jails:
                    self.attempts += 1
                for index, jail in self._jails:
                    if address is None:
                        if len(self._named) < _NAMED_LIMIT:
                            self._named.append((result.time, result.host, result.user, jail, text))
                        continue
                    sink(index, result.time, address, result.user, line)
        self._count_timeouts()
        return 0

    def _leave(self, rows: list[bytes]) -> int:
        """Count ``rows`` as read but not matched."""
        left = sum(1 for raw in rows if raw and raw != b"\r")
        self.lines += left
        self._count_timeouts()
        return left

    def _count_timeouts(self) -> None:
        """Count the lines a pattern ran out of time on, and forget them: a live jail meets
        a hostile flood's worth over its life."""
        self.match_errors += len(self._matcher.timeouts)
        self._matcher.timeouts.clear()

    @property
    def jails(self) -> tuple[tuple[int, str], ...]:
        """The jails this filter's lines count for: (series index, name)."""
        return self._jails

    @property
    def jail_count(self) -> int:
        """How many jails each line of this filter counts for (they share its lines)."""
        return len(self._jails)

    @property
    def first_index(self) -> int:
        """The series index of the first of those jails (-1 when none)."""
        return self._jails[0][0] if self._jails else -1

    def take_named(self) -> list[tuple[float, str, str | None, str, str]]:
        named, self._named = self._named, []
        return named

    def take_counts(self) -> tuple[int, int, int, int, int, int]:
        """(lines, matched, attempts, unattributed, bad_time, match_errors) since last time."""
        counts = (
            self.lines,
            self.matched,
            self.attempts,
            self.unattributed,
            self.bad_time,
            self.match_errors,
        )
        self.lines = self.matched = self.attempts = self.unattributed = 0
        self.bad_time = self.match_errors = 0
        return counts


def add_to_series(
    series: list[dict], index: int, moment: float, address: str, user: str | None
) -> None:
    """One attempt into a replay's series, in the compiled pass's layout (packed doubles,
    raw user → count)."""
    entry = series[index].get(address)
    if entry is None:
        entry = series[index][address] = [bytearray(), {}]
    entry[0] += array("d", (moment,)).tobytes()
    if user is not None:
        users = entry[1]
        raw = user.encode("utf-8", "backslashreplace")
        if raw in users or len(users) < 20:
            users[raw] = users.get(raw, 0) + 1
