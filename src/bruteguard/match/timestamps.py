"""Log timestamps → POSIX seconds, fast enough to run once per matched line.

Two families reach us:

* classic syslog, ``Nov 23 06:50:01`` (optionally ``.123456``): local time, and no year. The
  year is the one that puts the stamp no later than a day after the *reference* time (now,
  for a live log; the file's modification time, for a replayed one), which handles the
  December → January roll-over and years-old rotated files alike.
* RFC 3339 / ISO 8601, ``2026-11-23T06:50:01.123456+01:00`` (rsyslog's high-precision
  format, ``journalctl -o short-iso``, our journal source); no offset means local time.

Parsing is cached per local hour (syslog) or per exact stamp (ISO), so a burst of lines in
the same second costs a slice and a dictionary hit. A live log's hour cache is dropped when
the clock's day changes: the same ``Nov 23 06`` a year later is a different hour.
"""

import re
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
_SYSLOG_HOUR = re.compile(rb"[A-Z][a-z]{2} [ 0-3][0-9] [0-2][0-9]")
_SYSLOG_REST = re.compile(rb":[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]{1,9})?")  # 60: leap second
_ISO = re.compile(
    rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    rb"(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)
_CACHE_LIMIT = 100_000


class TimestampParser:
    """Parses the ``ts`` group of the line header; ``None`` for a stamp that cannot be real."""

    def __init__(self, reference: float | None = None) -> None:
        self.reference = reference  # None: use the clock at each call (live logs)
        self._hours: dict[bytes, float] = {}
        self._hours_day = -1  # live logs: the clock's day the hour cache belongs to
        self._iso: dict[bytes, float] = {}

    def parse(self, stamp: bytes) -> float | None:
        if stamp[4:5] == b"-":
            return self._parse_iso(stamp)
        if self.reference is None:
            today = int(time.time() // 86400)
            if today != self._hours_day:
                self._hours.clear()
                self._hours_day = today
        hour = self._hours.get(stamp[:9])
        if hour is None:
            hour = self.hour_start(stamp)
            if hour is None:
                return None
        if _SYSLOG_REST.fullmatch(stamp, 9) is None:
            return None
        return hour + int(stamp[10:12]) * 60 + float(stamp[13:])

    def hour_start(self, stamp: bytes) -> float | None:
        """When the hour of ``Mmm dd hh`` (a stamp's first 9 bytes) began, in the year the
        reference time implies; the compiled matcher caches it per hour."""
        month = _MONTHS.get(stamp[:3])
        if month is None or _SYSLOG_HOUR.fullmatch(stamp, 0, 9) is None:
            return None
        day = int(stamp[4:6])
        hour = int(stamp[7:9])
        if not 1 <= day <= 31 or hour > 23:
            return None
        reference = self.reference if self.reference is not None else time.time()
        year = time.localtime(reference).tm_year
        start = None
        for candidate in range(year + 1, year - 9, -1):  # Feb 29: up to 8 years back (2100)
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
        if _ISO.fullmatch(stamp) is None:
            return None
        text = stamp.decode("ascii")
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
