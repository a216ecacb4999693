"""Log time stamps → POSIX seconds: the missing syslog year, local time, RFC 3339 offsets.

Local-time results depend on the time zone, so every test sets ``TZ`` explicitly (and puts
the old one back): the expected values are computed with ``zoneinfo``, independently of it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bruteguard.match.timestamps import TimestampParser


def at(zone: ZoneInfo, *fields: int, micro: int = 0) -> float:
    return datetime(*fields, microsecond=micro, tzinfo=zone).timestamp()


# -- classic syslog: no year ---------------------------------------------------------------


def test_december_line_read_in_january_is_last_year(local_zone) -> None:
    zone = local_zone("Europe/Berlin")
    parser = TimestampParser(reference=at(zone, 2026, 1, 1, 0, 5))
    assert parser.parse(b"Dec 31 23:59:58") == at(zone, 2025, 12, 31, 23, 59, 58)
    assert parser.parse(b"Jan  1 00:04:00") == at(zone, 2026, 1, 1, 0, 4)


def test_january_line_just_after_a_december_reference_is_next_year(local_zone) -> None:
    # The writer's clock runs a little ahead of ours (or the file's mtime is stale): within a
    # day of slack the stamp belongs to the coming year.
    zone = local_zone("Europe/Berlin")
    parser = TimestampParser(reference=at(zone, 2025, 12, 31, 23, 59))
    assert parser.parse(b"Jan  1 00:00:03") == at(zone, 2026, 1, 1, 0, 0, 3)
    assert parser.parse(b"Dec 31 23:58:00") == at(zone, 2025, 12, 31, 23, 58)
    # More than a day ahead cannot be this year's future: it is last January.
    assert parser.parse(b"Jan  2 12:00:00") == at(zone, 2025, 1, 2, 12)


def test_year_is_the_latest_that_is_not_in_the_future(local_zone) -> None:
    zone = local_zone("Europe/Berlin")
    parser = TimestampParser(reference=at(zone, 2026, 6, 15, 12))
    assert parser.parse(b"Jun 15 11:00:00") == at(zone, 2026, 6, 15, 11)
    assert parser.parse(b"Jun 15 20:00:00") == at(zone, 2026, 6, 15, 20)  # hours ahead: skew
    assert parser.parse(b"Jun 17 12:00:00") == at(zone, 2025, 6, 17, 12)
    assert parser.parse(b"Nov 23 06:50:01") == at(zone, 2025, 11, 23, 6, 50, 1)


@pytest.mark.parametrize(
    ("reference", "year"),
    [
        ((2028, 3, 1), 2028),  # leap year, after Feb 29
        ((2028, 2, 28), 2028),  # leap year, the day before: within the slack
        ((2027, 6, 1), 2024),  # common year: the last Feb 29 was three years ago
        ((2025, 1, 10), 2024),
    ],
)
def test_february_29(local_zone, reference: tuple[int, int, int], year: int) -> None:
    zone = local_zone("Europe/Berlin")
    parser = TimestampParser(reference=at(zone, *reference, 12))
    assert parser.parse(b"Feb 29 10:11:12") == at(zone, year, 2, 29, 10, 11, 12)


def test_space_and_zero_padded_days(local_zone) -> None:
    zone = local_zone("UTC")
    parser = TimestampParser(reference=at(zone, 2026, 11, 30))
    assert parser.parse(b"Nov  3 06:50:01") == at(zone, 2026, 11, 3, 6, 50, 1)
    assert parser.parse(b"Nov 03 06:50:01") == at(zone, 2026, 11, 3, 6, 50, 1)


def test_fractional_seconds(local_zone) -> None:
    zone = local_zone("UTC")
    parser = TimestampParser(reference=at(zone, 2026, 11, 30))
    assert parser.parse(b"Nov 23 06:50:01.123456") == pytest.approx(
        at(zone, 2026, 11, 23, 6, 50, 1, micro=123456), abs=1e-6
    )
    assert parser.parse(b"Nov 23 06:50:01.5") == at(zone, 2026, 11, 23, 6, 50, 1) + 0.5


def test_syslog_stamps_are_local_time_across_daylight_saving(local_zone) -> None:
    zone = local_zone("Europe/Berlin")
    parser = TimestampParser(reference=at(zone, 2026, 12, 1))
    winter = parser.parse(b"Jan 15 12:00:00")
    summer = parser.parse(b"Jul 15 12:00:00")
    assert winter == datetime(2026, 1, 15, 11, tzinfo=UTC).timestamp()
    assert summer == datetime(2026, 7, 15, 10, tzinfo=UTC).timestamp()
    zone = local_zone("Asia/Kolkata")  # a half-hour offset: each parser takes the zone it sees
    parser = TimestampParser(reference=at(zone, 2026, 12, 1))
    assert parser.parse(b"Jan 15 12:00:00") == datetime(2026, 1, 15, 6, 30, tzinfo=UTC).timestamp()


def test_live_parser_follows_the_clock_and_its_year(local_zone, monkeypatch) -> None:
    zone = local_zone("Europe/Berlin")
    parser = TimestampParser()  # no reference: the clock, as for a live log
    now = at(zone, 2026, 11, 23, 7)
    monkeypatch.setattr(time, "time", lambda: now)
    assert parser.parse(b"Nov 23 06:50:01") == at(zone, 2026, 11, 23, 6, 50, 1)
    # A year of uptime later the same hour of the same day is a year later, not a cached
    # stamp from last year.
    now = at(zone, 2027, 11, 23, 7)
    assert parser.parse(b"Nov 23 06:50:01") == at(zone, 2027, 11, 23, 6, 50, 1)


# -- RFC 3339 / ISO 8601 -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (b"2026-11-23T06:50:01Z", datetime(2026, 11, 23, 6, 50, 1, tzinfo=UTC)),
        (b"2026-11-23T06:50:01+01:00", datetime(2026, 11, 23, 5, 50, 1, tzinfo=UTC)),
        (b"2026-11-23T06:50:01+0100", datetime(2026, 11, 23, 5, 50, 1, tzinfo=UTC)),
        (b"2026-11-23T06:50:01-05:30", datetime(2026, 11, 23, 12, 20, 1, tzinfo=UTC)),
        (
            b"2026-11-23T06:50:01.123456+01:00",
            datetime(2026, 11, 23, 5, 50, 1, 123456, tzinfo=UTC),
        ),
        (b"2026-11-23T06:50:01.5Z", datetime(2026, 11, 23, 6, 50, 1, 500000, tzinfo=UTC)),
        # No offset: local time (Europe/Berlin is UTC+1 in November).
        (b"2026-11-23T06:50:01", datetime(2026, 11, 23, 5, 50, 1, tzinfo=UTC)),
        (b"2026-07-23T06:50:01.250", datetime(2026, 7, 23, 4, 50, 1, 250000, tzinfo=UTC)),
    ],
)
def test_rfc3339(local_zone, stamp: bytes, expected: datetime) -> None:
    local_zone("Europe/Berlin")
    parsed = TimestampParser(reference=0.0).parse(stamp)
    assert parsed == pytest.approx(expected.timestamp(), abs=1e-6)


def test_rfc3339_year_is_taken_as_written(local_zone) -> None:
    local_zone("UTC")
    parser = TimestampParser(reference=datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    stamp = b"2019-12-31T23:59:59Z"
    assert parser.parse(stamp) == datetime(2019, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    assert parser.parse(stamp) == parser.parse(stamp)  # and the cached answer is the same


# -- not a time ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stamp",
    [
        b"",
        b"Nov",
        b"Foo 23 06:50:01",
        b"nov 23 06:50:01",
        b"Nov 00 06:50:01",
        b"Nov 32 06:50:01",
        b"Feb 30 06:50:01",
        b"Apr 31 06:50:01",
        b"Nov 23 24:00:00",
        b"Nov 23 06:60:01",
        b"Nov 23 06:50:61",
        b"Nov 23 06:5:01",
        b"Nov +3 06:50:01",
        b"Nov 23 06:50:1e1",
        b"Nov 23 06:50:01.",
        b"Nov 23 06:50:01 ",
        b"Nov 23 06:50:inf",
        b"Nov 23 06",
        b"2026-11-23",
        b"2026-13-01T00:00:00Z",
        b"2026-02-30T00:00:00Z",
        b"2026-11-23T25:00:00Z",
        b"2026-11-23T06:50:01+1",
        b"2026-11-23T06:50:01 Z",
        b"2026-11-23 06:50:01Z junk",
        b"2026-W47-1",
        b"\xff\xfe\xfd\xfc-\xfb",
    ],
)
def test_stamps_that_cannot_be_real_are_none(local_zone, stamp: bytes) -> None:
    local_zone("UTC")
    parser = TimestampParser(reference=datetime(2026, 12, 1, tzinfo=UTC).timestamp())
    assert parser.parse(stamp) is None


def test_leap_second_is_accepted(local_zone) -> None:
    local_zone("UTC")
    parser = TimestampParser(reference=datetime(2026, 12, 31, tzinfo=UTC).timestamp())
    last = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    assert parser.parse(b"Dec 31 23:59:60") == last + 1


# -- the matcher uses the same rules -------------------------------------------------------


def test_matcher_hits_carry_the_same_times(local_zone) -> None:
    # The compiled matcher caches hour starts itself; its answers must be the parser's.
    zone = local_zone("Europe/Berlin")
    reference = at(zone, 2026, 1, 1, 0, 5)
    stamps = [
        b"Dec 31 23:59:58",
        b"Jan  1 00:00:01.25",
        b"Jul 15 12:00:00",
        b"Feb 29 10:11:12",
        b"2026-01-01T00:01:00.5+01:00",
        b"2025-12-31T23:30:00",
        b"2025-12-31T22:30:00Z",
        b"Nov 23 06:60:01",  # not a time: no hit
    ]
    line = b" host sshd[%d]: Failed password for root from 203.0.113.%d port 40%02d ssh2\n"
    log = b"".join(
        stamp + line % (100 + index, index + 1, index) for index, stamp in enumerate(stamps)
    )
    from bruteguard.match.engine import Matcher  # the compiled engine: only this test needs it

    hits = Matcher({"sshd": "sshd"}).stream(reference=reference).feed(log)
    expected = [TimestampParser(reference).parse(stamp) for stamp in stamps[:-1]]
    assert [hit[1] for hit in hits] == [f"203.0.113.{n}" for n in range(1, len(stamps))]
    assert [hit[0] for hit in hits] == pytest.approx(expected, abs=1e-6)
    assert expected[:4] == [
        at(zone, 2025, 12, 31, 23, 59, 58),
        at(zone, 2026, 1, 1, 0, 0, 1) + 0.25,
        at(zone, 2025, 7, 15, 12),
        at(zone, 2024, 2, 29, 10, 11, 12),
    ]
