"""Log timestamps → POSIX seconds, fast enough to run once per matched line.

Two families reach us:

* classic syslog, ``Nov 23 06:50:01`` (optionally ``.123456``): local time, and no year. The
  year is the one that puts the stamp no later than a day after the *reference* time (now,
  for a live log; the file's modification time, for a replayed one), which handles the
  December → January roll-over and years-old rotated files alike.
* RFC 3339 / ISO 8601, ``2026-11-23T06:50:01.123456+01:00`` (rsyslog's high-precision
  format, ``journalctl -o short-iso``, our journal source); no offset means local time.

Parsing is cached per local hour (syslog) or per exact stamp (ISO), so a burst of lines in
the same second costs a slice and a dictionary hit.
"""

import time
from datetime import datetime

__all__ = ["TimestampParser"]

_MONTHS = {
    name: number
    for number, name in enumerate(
        (
            b"Jan",
            b"Feb",
            b"Mar",
            b"Apr",
            b"May",
            b"Jun",
            b"Jul",
            b"Aug",
            b"Sep",
            b"Oct",
            b"Nov",
            b"Dec",
        ),
        start=1,
    )
}
_SLACK = 86400.0  # a stamp may run this far ahead of the reference clock
_CACHE_LIMIT = 100_000


class TimestampParser:
    """Parses the ``ts`` group of the line header; ``None`` for a stamp that cannot be real."""

    def __init__(self, reference: float | None = None) -> None:
        self.reference = reference  # None: use the clock at each call (live logs)
        self._hours: dict[bytes, float] = {}
        self._iso: dict[bytes, float] = {}

    def parse(self, stamp: bytes) -> float | None:
        if stamp[4:5] == b"-":
            return self._parse_iso(stamp)
        hour = self._hours.get(stamp[:9])
        if hour is None:
            hour = self._hour_start(stamp)
            if hour is None:
                return None
        try:
            seconds = int(stamp[10:12]) * 60 + float(stamp[13:])
        except ValueError:
            return None
        return hour + seconds

    def _hour_start(self, stamp: bytes) -> float | None:
        month = _MONTHS.get(stamp[:3])
        try:
            day = int(stamp[4:6])
            hour = int(stamp[7:9])
        except ValueError:
            return None
        if month is None or not 1 <= day <= 31 or not 0 <= hour <= 23:
            return None
        reference = self.reference if self.reference is not None else time.time()
        year = time.localtime(reference).tm_year
        start = None
        for candidate in (year + 1, year, year - 1, year - 2, year - 3, year - 4):
            try:
                start = datetime(candidate, month, day, hour).timestamp()
            except ValueError:  # Feb 29 in a common year
                continue
            if start <= reference + _SLACK:
                break
        if start is None:
            return None
        if len(self._hours) >= _CACHE_LIMIT:
            self._hours.clear()
        self._hours[stamp[:9]] = start
        return start

    def _parse_iso(self, stamp: bytes) -> float | None:
        cached = self._iso.get(stamp)
        if cached is not None:
            return cached
        text = stamp.decode("ascii", "replace")
        if text[-5:-4] in "+-" and text[-3:-2] != ":" and text[-5:].lstrip("+-").isdigit():
            text = f"{text[:-2]}:{text[-2:]}"  # +0100 → +01:00 (journalctl -o short-iso)
        try:
            moment = datetime.fromisoformat(text).timestamp()
        except ValueError:
            return None
        if len(self._iso) >= _CACHE_LIMIT:
            self._iso.clear()
        self._iso[stamp] = moment
        return moment
