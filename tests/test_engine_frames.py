"""Log formats beside syslog in the one compiled pass: each stamp spelling read exactly in
C, services' own log files next to syslog lines in one expression, a line standing for N
attempts, and filters that share signatures (sshd-ddos is part of sshd) counting for both."""

from __future__ import annotations

import calendar
from datetime import datetime

import pytest

from bruteguard.match import signatures
from bruteguard.match.engine import Matcher
from bruteguard.match.signature import SYSLOG, Frame, Role, Signature, Stamp
from bruteguard.match.signatures import FILTERS, Filter

REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))
FAILED = Signature("failed", Role.CONFIRM, r"login failed for <USER> from <HOST>")
COUNTED = Signature("counted", Role.CONFIRM, r"<COUNT> failures from <HOST> as <USER>")
YMD = Frame(
    "test-ymd",
    r"(\d{4}[-/]\d\d[-/]\d\d {1,2}\d{1,2}:\d\d:\d\d(?:[.,]\d{1,9})?(?: [+-]\d{4})?) ",
    Stamp.YMD,
)
CTIME = Frame(
    "test-ctime",
    r"\[((?:[A-Z][a-z]{2} )?[A-Z][a-z]{2} [ 0-3]\d \d\d:\d\d:\d\d(?:\.\d{1,6})? \d{4})\] ",
    Stamp.CTIME,
)
CLF = Frame(
    "test-clf",
    r"(?=\S{1,64} - \S{1,64} \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] )",
    Stamp.CLF,
)
ACCESS = Signature(
    "denied", Role.CONFIRM, r"<HOST> - <USER> \[[^\]]{26}\] \"[^\"]{0,512}\" 401 \d{1,12}"
)


@pytest.fixture
def test_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(FILTERS, "svc-ymd", Filter("svc-ymd", (), (FAILED, COUNTED), frame=YMD))
    monkeypatch.setitem(FILTERS, "svc-ctime", Filter("svc-ctime", (), (FAILED,), frame=CTIME))
    monkeypatch.setitem(FILTERS, "svc-clf", Filter("svc-clf", (), (ACCESS,), frame=CLF))
    both = Filter("svc", ("svc",), (FAILED,), variants=(Filter("svc", (), (FAILED,), frame=YMD),))
    monkeypatch.setitem(FILTERS, "svc", both)
    assert signatures.get_filter("svc") is both


def hits(jails: dict[str, str], text: str) -> list[tuple]:
    return Matcher(jails).stream(reference=REFERENCE).feed(text.encode())


def local(*fields: int, micro: int = 0) -> float:
    return datetime(*fields, microsecond=micro).timestamp()


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-11-23 06:50:01", local(2026, 11, 23, 6, 50, 1)),
        ("2026/11/23 06:50:01", local(2026, 11, 23, 6, 50, 1)),
        ("2026-11-23  6:50:01", local(2026, 11, 23, 6, 50, 1)),  # MariaDB pads the hour
        ("2026-11-23 06:50:01,250", local(2026, 11, 23, 6, 50, 1, micro=250000)),
        ("2026-11-23 06:50:01.5", local(2026, 11, 23, 6, 50, 1, micro=500000)),
        ("2026-11-23 06:50:01 +0100", calendar.timegm((2026, 11, 23, 5, 50, 1))),
        ("2026-11-23 06:50:01 -0230", calendar.timegm((2026, 11, 23, 9, 20, 1))),
    ],
)
def test_year_month_day_stamps(test_filters: None, stamp: str, expected: float) -> None:
    found = hits({"j": "svc-ymd"}, f"{stamp} login failed for bob from 198.51.100.7\n")
    assert [(h[0], h[1], h[2]) for h in found] == [(pytest.approx(expected), "198.51.100.7", "bob")]


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("Mon Nov 23 06:50:01 2026", local(2026, 11, 23, 6, 50, 1)),
        ("Mon Nov 23 06:50:01.123456 2026", local(2026, 11, 23, 6, 50, 1, micro=123456)),
        ("Nov  3 06:50:01 2026", local(2026, 11, 3, 6, 50, 1)),
    ],
)
def test_ctime_stamps(test_filters: None, stamp: str, expected: float) -> None:
    found = hits({"j": "svc-ctime"}, f"[{stamp}] login failed for bob from 2001:db8::7\n")
    assert [(h[0], h[1]) for h in found] == [(pytest.approx(expected), "2001:db8::7")]


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("23/Nov/2026:06:50:01 +0100", calendar.timegm((2026, 11, 23, 5, 50, 1))),
        ("23-Nov-2026 06:50:01 +0100", calendar.timegm((2026, 11, 23, 5, 50, 1))),  # PHP apps
        ("23-Nov-2026 06:50:01 -0230", calendar.timegm((2026, 11, 23, 9, 20, 1))),
    ],
)
def test_day_month_year_stamps(
    monkeypatch: pytest.MonkeyPatch, stamp: str, expected: float
) -> None:
    frame = Frame("test-dmy", r"\[(\d\d[-/][A-Z][a-z]{2}[-/]\d{4}[: ]\d\d:\d\d:\d\d [+-]\d{4})\]: ",
                  Stamp.CLF)  # fmt: skip
    monkeypatch.setitem(FILTERS, "svc-dmy", Filter("svc-dmy", (), (FAILED,), frame=frame))
    found = hits({"j": "svc-dmy"}, f"[{stamp}]: login failed for bob from 198.51.100.7\n")
    assert [(h[0], h[1]) for h in found] == [(expected, "198.51.100.7")]
    # one dash and one slash: no stamp
    mixed = stamp.replace("/", "-", 1) if "/" in stamp else stamp.replace("-", "/", 1)
    assert hits({"j": "svc-dmy"}, f"[{mixed}]: login failed for bob from 198.51.100.7\n") == []


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("23-Nov-2026 06:50:01.372", local(2026, 11, 23, 6, 50, 1, micro=372000)),  # BIND
        ("23-Nov-2026 06:50:01", local(2026, 11, 23, 6, 50, 1)),
    ],
)
def test_bind_print_time_stamps_are_local_time(
    monkeypatch: pytest.MonkeyPatch, stamp: str, expected: float
) -> None:
    frame = Frame("test-bind", r"(\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d(?:\.\d{3})?) ",
                  Stamp.CLF)  # fmt: skip
    monkeypatch.setitem(FILTERS, "svc-bind", Filter("svc-bind", (), (FAILED,), frame=frame))
    found = hits({"j": "svc-bind"}, f"{stamp} login failed for bob from 198.51.100.7\n")
    assert [(h[0], h[1]) for h in found] == [(pytest.approx(expected), "198.51.100.7")]


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        # 2^62 + 10 + the UTC seconds (libtai's convention), then nanoseconds
        ("@400000006b03e22300000000", calendar.timegm((2026, 11, 23, 6, 50, 1))),
        ("@400000006b03e2231dcd6500", calendar.timegm((2026, 11, 23, 6, 50, 1)) + 0.5),
    ],
)
def test_tai64n_labels(monkeypatch: pytest.MonkeyPatch, label: str, expected: float) -> None:
    frame = Frame("test-tai64n", r"(@[0-9a-f]{24}) ", Stamp.TAI64N)
    monkeypatch.setitem(FILTERS, "svc-tai", Filter("svc-tai", (), (FAILED,), frame=frame))
    found = hits({"j": "svc-tai"}, f"{label} login failed for bob from 198.51.100.7\n")
    assert [(h[0], h[1]) for h in found] == [(pytest.approx(expected), "198.51.100.7")]


@pytest.mark.parametrize(
    "label",
    [
        "@000000006b03e22300000000",  # before 2^62: not a time of this era
        "@400000006b03e2233b9aca00",  # a billion nanoseconds
    ],
)
def test_impossible_tai64n_labels_count_nothing(
    monkeypatch: pytest.MonkeyPatch, label: str
) -> None:
    frame = Frame("test-tai64n", r"(@[0-9a-f]{24}) ", Stamp.TAI64N)
    monkeypatch.setitem(FILTERS, "svc-tai", Filter("svc-tai", (), (FAILED,), frame=frame))
    stream = Matcher({"j": "svc-tai"}).stream(reference=REFERENCE)
    assert stream.feed(f"{label} login failed for bob from 198.51.100.7\n".encode()) == []
    assert stream.stats.bad_time == 1


def test_access_log_stamp_sits_after_the_address(test_filters: None) -> None:
    line = '198.51.100.7 - bob [23/Nov/2026:06:50:01 +0100] "GET /admin HTTP/1.1" 401 381\n'
    found = hits({"j": "svc-clf"}, line)
    assert [(h[0], h[1], h[2]) for h in found] == [
        (calendar.timegm((2026, 11, 23, 5, 50, 1)), "198.51.100.7", "bob")
    ]


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-13-23 06:50:01",  # no 13th month
        "2026-02-30 06:50:01",
        "2026-11-23 24:50:01",
        "2026-11-23 06:50:01 +01",  # half a zone
    ],
)
def test_impossible_stamps_count_nothing(test_filters: None, stamp: str) -> None:
    matcher = Matcher({"j": "svc-ymd"})
    stream = matcher.stream(reference=REFERENCE)
    assert stream.feed(f"{stamp} login failed for bob from 198.51.100.7\n".encode()) == []
    assert stream.stats.bad_time + (stream.stats.matched == 0) >= 1


def test_a_line_that_says_n_attempts_counts_n(test_filters: None) -> None:
    found = hits({"j": "svc-ymd"}, "2026-11-23 06:50:01 3 failures from 198.51.100.7 as bob\n")
    assert [(h[1], h[2]) for h in found] == [("198.51.100.7", "bob")] * 3
    capped = hits({"j": "svc-ymd"}, "2026-11-23 06:50:01 999999 failures from 198.51.100.7 as x\n")
    assert len(capped) == 1000


def test_formats_and_variants_in_one_expression(test_filters: None) -> None:
    """A service logging to syslog and to its own file, next to sshd, all in one pass."""
    log = (
        "Nov 23 06:50:01 host svc[7]: login failed for ann from 198.51.100.1\n"
        "2026-11-23 06:50:02 login failed for bob from 198.51.100.2\n"
        "Nov 23 06:50:03 host sshd[8]: Failed password for root from 198.51.100.3 port 2 ssh2\n"
        "[Mon Nov 23 06:50:04 2026] login failed for cid from 198.51.100.4\n"
        # A syslog line with a "YYYY-MM-DD hh:mm:ss" stamp (macOS, syslog-ng templates):
        # sshd's, not the service's own-file format, whose messages are not sshd's.
        "2026-11-23 06:50:05 sshd[9]: Failed password for root from 198.51.100.5 port 2 ssh2\n"
        "2026-11-23 06:50:06 Failed password for root from 198.51.100.6 port 2 ssh2\n"
    )
    matcher = Matcher({"svc": "svc", "sshd": "sshd", "other": "svc-ctime"})
    assert matcher.pattern is not None and matcher.pattern.groups < 40
    found = [(h[1], h[3]) for h in matcher.stream(reference=REFERENCE).feed(log.encode())]
    assert found == [
        ("198.51.100.1", "svc"),
        ("198.51.100.2", "svc"),
        ("198.51.100.3", "sshd"),
        ("198.51.100.4", "other"),
        ("198.51.100.5", "sshd"),
    ]


def test_shared_signatures_count_for_both_filters() -> None:
    """sshd-ddos's pre-auth noise is sshd's too: one alternative, counted for both jails."""
    log = (
        "Nov 23 06:50:01 host sshd[1]: Did not receive identification string from 198.51.100.8\n"
        "Nov 23 06:50:02 host sshd[2]: Failed password for root from 198.51.100.7 port 5 ssh2\n"
        "Nov 23 06:50:03 host sshd[2]: Connection closed by 198.51.100.7 port 5 [preauth]\n"
    )
    found = hits({"sshd": "sshd", "sshd-ddos": "sshd-ddos"}, log)
    assert [(h[1], h[3]) for h in found] == [
        ("198.51.100.8", "sshd"),
        ("198.51.100.8", "sshd-ddos"),
        ("198.51.100.7", "sshd"),
    ]
    # A replay's series: the shared line in both jails, and once more in the shared slot
    # (what a table subtracts to show each attempt once); its user only in the first jail.
    matcher = Matcher({"sshd": "sshd", "sshd-ddos": "sshd-ddos"})
    stream = matcher.stream(reference=REFERENCE)
    series = matcher.new_series()
    stream.collect(log.encode(), series)
    sshd, ddos, shared = series
    assert (set(sshd), set(ddos), shared) == (
        {"198.51.100.7", "198.51.100.8"},
        {"198.51.100.8"},
        {"198.51.100.8": 1},
    )
    assert stream.stats.attempts == 2, "each attempt once, as `bruteguard test` counts"


def test_frame_and_filter_mistakes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="syslog-style frame"):
        Filter("bad", ("prog",), (FAILED,), frame=YMD)
    with pytest.raises(ValueError, match="syslog-style frame"):
        Filter("bad", (), (FAILED,), frame=SYSLOG)
    two_groups = Frame("two", r"(\d+) (\w+) ", Stamp.YMD)
    monkeypatch.setitem(FILTERS, "bad", Filter("bad", (), (FAILED,), frame=two_groups))
    with pytest.raises(ValueError, match="exactly one group"):
        Matcher({"j": "bad"})
