"""fail2ban-compatible date detection: directives, templates, and fail2ban's own sample logs.

The sample-log test reads the logs and filters of the installed fail2ban package at test time
(they are GPL-2 and never copied here) and checks that for every line whose ``failJSON`` gives
a time, our detector finds the time fail2ban's test-suite expects, in fail2ban's test setting:
TZ=Europe/Zurich, now = 2005-08-14 12:00 CEST.
"""

from __future__ import annotations

import configparser
import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bruteguard.fail2ban.dates import DateDetector, DateMatch, DatePatternError
from test_fail2ban_compat import FILTER_DIR, LOG_DIR, MUST_AGREE, NOW, fail2ban_clock


@pytest.fixture(autouse=True)
def zurich() -> Iterator[None]:
    """Local time of fail2ban's test-suite; restored afterwards."""
    with fail2ban_clock():
        yield


def local(*args: int) -> float:
    return time.mktime(dt.datetime(*args).timetuple())


def utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


def when(text: str) -> float:
    """ "2005-01-23 21:59:59" in local time (of the test's zone), or "…Z" in UTC."""
    stamp = dt.datetime.fromisoformat(text.removesuffix("Z"))
    if text.endswith("Z"):
        return stamp.replace(tzinfo=dt.UTC).timestamp()
    return time.mktime(stamp.timetuple())


def found(pattern: str | None, line: str) -> tuple[float, str] | None:
    """(time, date text) the detector finds in one line, with a fresh detector."""
    match = DateDetector(pattern, now=lambda: NOW).find(line)
    return None if match is None else (match.time, line[match.start : match.end])


# --- default templates --------------------------------------------------------------------

JAN23 = 1106513999.0  # 2005-01-23 21:59:59 CET


@pytest.mark.parametrize(
    ("text", "date", "line_start_only", "glued"),
    [
        ("Jan 23 21:59:59", None, False, None),
        ("Sun Jan 23 21:59:59 2005", None, False, "Jan 23 21:59:59 2005"),
        ("Sun Jan 23 2005 21:59:59", None, False, "Jan 23 2005 21:59:59"),
        ("2005/01/23 21:59:59", None, False, None),
        ("2005.01.23 21:59:59", None, False, None),
        ("2005-01-23 21:59:59,000", None, False, None),
        ("2005-01-23T21:59:59.123456", None, False, None),
        ("23/01/2005 21:59:59", None, False, None),
        ("23/01/05 21:59:59", None, False, None),
        ("23-01-2005 21:59:59", None, False, None),
        ("23/Jan/2005:21:59:59", None, False, None),
        ("23/Jan/2005:21:59:59 +0100", None, False, None),
        ("23-Jan-2005 21:59:59.02", None, False, None),
        ("01/23/2005:21:59:59", None, False, None),
        ("01-23-2005 21:59:59.252", None, False, None),
        ("050123 21:59:59", None, False, None),
        ("Jan 23, 2005 9:59:59 PM", None, False, None),
        ("20050123T215959", None, False, None),
        ("20050123 215959", None, False, None),
        ("2005-01-23T20:59:59.252Z", None, False, None),
        ("2005-01-23T15:59:59-05:00", None, False, None),
        ("CET Jan 23 21:59:59", None, False, "Jan 23 21:59:59"),
        ("@4000000041f4104f00000000", None, False, "@4000000041f4104f00000000"),
        ("audit(1106513999.000:987)", "1106513999.000", False, None),
        ("<01/23/05@21:59:59>", None, True, None),
        ("Jan-23-05 21:59:59", None, True, None),
        ("1106513999", None, True, None),
        ("[1106513999.000]", "1106513999.000", True, None),
    ],
)
def test_default_templates(
    text: str, date: str | None, line_start_only: bool, glued: str | None
) -> None:
    line = text + " sshd[1]: error: PAM: Authentication failure"
    assert found(None, line) == (JAN23, date or text)
    # not glued to a word (an optional leading part is then left out), and some formats
    # only at the start of the line
    assert found(None, "word" + line) == (glued and (JAN23, glued))
    assert found(None, "some prefix " + line) == (
        None if line_start_only else (JAN23, date or text)
    )


def test_no_date() -> None:
    assert found(None, "no date here at all") is None


def test_syslog_date_without_year_is_this_year_or_the_last() -> None:
    assert found(None, "Aug 14 11:59:00 host x")[0] == local(2005, 8, 14, 11, 59)
    # up to a day ahead is still this year (clock skew), later is last year's
    assert found(None, "Aug 15 11:59:00 host x")[0] == local(2005, 8, 15, 11, 59)
    assert found(None, "Aug 15 12:00:01 host x")[0] == local(2004, 8, 15, 12, 0, 1)
    assert found(None, "Dec 31 23:59:59 host x")[0] == local(2004, 12, 31, 23, 59, 59)


def test_time_only_is_today_or_yesterday() -> None:
    assert found(None, "11:59:00 x")[0] == local(2005, 8, 14, 11, 59)
    assert found(None, "12:00:01 x")[0] == local(2005, 8, 13, 12, 0, 1)
    assert found(None, "x 11:59:00 x") is None  # time only at the start of a line


def test_last_template_is_preferred_and_distance_collisions_resolved() -> None:
    dd = DateDetector(now=lambda: NOW)
    for _ in range(3):
        line = "2012/10/11 02:37:17 [error] 4242#0: request at 11/10/2012 02:37:17"
        m = dd.find(line)
        assert (line[m.start : m.end], m.time) == (
            "2012/10/11 02:37:17",
            local(2012, 10, 11, 2, 37, 17),
        )
    # the same date in another format now: the last template fails, the search finds another
    line = "11/10/2012 02:37:17 [error] 4242#0"
    assert dd.find(line) == DateMatch(local(2012, 10, 11, 2, 37, 17), 0, 19)
    # a date later in the line is held back while one nearer the start exists
    for _ in range(10):
        line = "server mysqld[1]: 030324  0:04:00 [Warning] text 2003-03-07 17:05:01 more"
        m = dd.find(line)
        assert line[m.start : m.end] == "030324  0:04:00"
    for _ in range(10):
        line = "server mysqld[1]: Sep 16 21:30:26 server mysqld: 030916 21:30:26 [Warning] x"
        m = dd.find(line)
        assert line[m.start : m.end] == "Sep 16 21:30:26"


def test_moving_time_is_found_in_the_moving_frame() -> None:
    for pattern in (r"%H:%M:%S", r"{UNB}%H:%M:%S"):
        dd = DateDetector(pattern, now=lambda: NOW)
        for fmt in ("%s test", "%8s test", "test %s", "test %8s"):
            for text in ("00:01:02", "00:01:2", "0:1:2", "00:1:2", "00:01:02"):
                m = dd.find(fmt % text)
                assert m is not None
                assert (m.time, (fmt % text)[m.start : m.end]) == (
                    local(2005, 8, 14, 0, 1, 2),
                    text,
                )


# --- datepattern features -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "line", "expected"),
    [
        # explicit patterns get word boundaries unless anchored or marked with **
        (r"%H:%M:%S %d.%m.%Y$", "192.0.2.1 at 20:00:00 01.02.2003", "20:00:00 01.02.2003"),
        (r"\[%H:%M:%S %d.%m.%Y\]", "192.0.2.1[20:00:00 01.02.2003]", "[20:00:00 01.02.2003]"),
        (r"^\[%d/%b/%Y %H:%M:%S\]", "[17/Jun/2011 17:00:45] x 192.0.2.1", "[17/Jun/2011 17:00:45]"),
        (r"%H:%M:%S %d.%m.%Y", "192.0.2.1x20:00:00 01.02.2003", None),
        (r"%H:%M:%S %d.%m.%Y", "20:00:00 01.02.2003x192.0.2.1", None),
        (r"**%H:%M:%S %d.%m.%Y**", "192.0.2.1x20:00:00 01.02.2003", "20:00:00 01.02.2003"),
        (r"\**%H:%M:%S %d.%m.%Y\**", "x*20:00:00 01.02.2003*x", "*20:00:00 01.02.2003*"),
        # {^LN-BEG}: at line start after at most two non-word characters
        ("{^LN-BEG}%ExY%Exm%Exd %ExH%ExM%ExS", "00001230 010203 - 20030101 000000", None),
        ("%ExY%Exm%Exd %ExH%ExM%ExS", "00001230 010203 - 20030101 000000", "20030101 000000"),
        ("{^LN-BEG}%ExY%Exm%Exd%ExH%ExM%ExS**", "##2003123001020320030101000000", "20031230010203"),
        ("{^LN-BEG}%ExY%Exm%Exd%ExH%ExM%ExS", "[20031230010203]x", "20031230010203"),
        ("{^LN-BEG}%ExY%Exm%Exd%ExH%ExM%ExS", "###20031230010203 x", None),
        # exact directives refuse what loose ones take
        (r"%Y%m%d %H%M%S", "text:200333 010203 | date:20031230 010203", "200333 010203"),
        (r"%ExY%Exm%Exd %ExH%ExM%ExS", "text:200333 010203 | 20031230 010203", "20031230 010203"),
        # month and day names ignore case
        (r"^%Y %b %d", "2005 JUN 03 x", "2005 JUN 03"),
        # a plain group marks the date text
        (
            r"^[^\[]*\[({DATE})",
            "host - [23/Jan/2005:21:59:59 +0100] GET",
            "23/Jan/2005:21:59:59 +0100",
        ),
    ],
)
def test_explicit_pattern_boundaries(pattern: str, line: str, expected: str | None) -> None:
    result = found(pattern, line)
    assert (result and result[1]) == expected


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("^%B %Exd %I:%ExM:%ExS**", "January 23 12:59:59", "2005-01-23 00:59:59"),
        ("^%b %d %I:%M:%S %p", "Jan 23 12:59:59 PM", "2005-01-23 12:59:59"),
        ("^%b %d %l:%M:%S %p", "Jan 23  1:59:59 pm", "2005-01-23 13:59:59"),
        ("^%y %U %A %ExH:%ExM:%ExS**", "01 11 Wednesday 21:59:59", "2001-03-21 21:59:59"),
        ("^%y %W %A %ExH:%ExM:%ExS**", "01 11 Wednesday 21:59:59", "2001-03-14 21:59:59"),
        ("^%y %W %w %ExH:%ExM:%ExS**", "01 11 0 21:59:59", "2001-03-18 21:59:59"),
        ("^%Y %j %H:%M:%S", "2004 060 10:00:00", "2004-02-29 10:00:00"),
        ("^%m/%d %ExH:%ExM:%ExS**", "09/01 21:59:59", "2004-09-01 21:59:59"),
        ("^%Y-%m-%d**", "2004-09-01", "2004-09-01 00:00:00"),
        ("^%Y-%m-%d%z**", "2004-09-01Z", "2004-09-01 00:00:00Z"),
        ("^%Y-%m-%d %H:%M:%S %z", "2004-09-01 10:00:00 +0230", "2004-09-01 07:30:00Z"),
        ("^%Y-%m-%d %H:%M:%S %z", "2004-09-01 10:00:00 -04:00", "2004-09-01 14:00:00Z"),
        ("^%Y-%m-%d %H:%M:%S %z", "2004-09-01 10:00:00 -04", "2004-09-01 14:00:00Z"),
        ("^%Y-%m-%d %H:%M:%S %Z", "2004-09-01 10:00:00 UTC", "2004-09-01 10:00:00Z"),
        ("^%Y-%m-%d %H:%M:%S %Exz", "2004-09-01 10:00:00 CEST", "2004-09-01 08:00:00Z"),
        ("^%Y-%m-%d %H:%M:%S %Exz", "2004-09-01 10:00:00 CET+0130", "2004-09-01 07:30:00Z"),
        ("^%Y-%m-%d %H:%M:%S %ExZ", "2004-09-01 10:00:00 PST", "2004-09-01 18:00:00Z"),
        ("^%Y-%m-%d %H:%M:%S.%f", "2004-09-01 10:00:00.999", "2004-09-01 10:00:00"),
        ("^%d/%m/%y %H:%M:%S", "01/09/99 10:00:00", "2099-09-01 10:00:00"),
        ("^%Exy%Exm%Exd %H:%M:%S", "040901 10:00:00", "2004-09-01 10:00:00"),
        ("^%Y-%m-%d %k:%M:%S", "2004-09-01  9:00:00", "2004-09-01 09:00:00"),
        ("^%c", "Wed Sep  1 10:00:00 2004", "2004-09-01 10:00:00"),
        ("^%x %X", "09/01/04 10:00:00", "2004-09-01 10:00:00"),
        ("^%Y%%%m%%%d %H:%M:%S", "2004%09%01 10:00:00", "2004-09-01 10:00:00"),
        (r"^%ExY-%Exm-%Exd %ExH:%ExM:%ExS", "2029-09-01 10:00:00", "2029-09-01 10:00:00"),
    ],
)
def test_directives(pattern: str, text: str, expected: str) -> None:
    assert found(pattern, text + " rest") == (when(expected), text)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("^%ExY-%m-%d", "1999-09-01"),  # %ExY: this century only
        ("^%Y-%m-%d %H:%M:%S", "0000-09-01 10:00:00"),  # impossible date
        ("^%Y-%m-%d %H:%M:%S", "2005-02-30 10:00:00"),
        ("^%Y-%m-%d %H:%M:%S %Exz", "2004-09-01 10:00:00 QQQ"),  # unknown zone
        ("^%Exm-%Exd", "13-01"),
    ],
)
def test_no_date_when_impossible(pattern: str, text: str) -> None:
    assert found(pattern, text + " rest") is None


@pytest.mark.parametrize("pattern", ["%s", "%Exb %d", "100% %H", "%Y-%m-%d (", "%ExQ"])
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(DatePatternError):
        DateDetector(pattern)


def test_epoch_keywords() -> None:
    tail = " [sshd] error: PAM: Authentication failure"
    for pattern in ("EPOCH", "LEPOCH"):
        for text in ("1138049999", "[1138049999]", "audit(1138049999:101)"):
            assert found(pattern, text + tail)[0] == 1138049999.0
        for text in ("123456789", "1138049999A", "A1138049999", "x 1138049999"):
            assert found(pattern, text + tail) is None
    assert found("EPOCH", "1138049999.555" + tail) == (1138049999.555, "1138049999.555")
    assert found("LEPOCH", "1138049999555" + tail)[0] == pytest.approx(1138049999.555)
    assert found("LEPOCH", "1138049999555666" + tail)[0] == pytest.approx(1138049999.555666)
    assert found("{^LN-BEG}EPOCH", "[1138049999] x")[0] == 1138049999.0
    assert found("{^LN-BEG}EPOCH", "x 1138049999 x") is None
    pattern = r"(?<=\|\s){LEPOCH}(?=\s\|)"
    assert found(pattern, "auth-error | 1138049999000 | bad password") == (
        1138049999.0,
        "1138049999000",
    )
    assert found(pattern, "test-right | 1138049999000test") is None


def test_tai64n() -> None:
    assert found("TAI64N", "@4000000041f4104f00000000 x")[0] == JAN23
    assert found("TAI64N", "x @4000000041f4104f00000000 x")[0] == JAN23
    assert found("{^LN-BEG}TAI64N", "x @4000000041f4104f00000000 x") is None


def test_none_means_now_and_date_tag_embeds_defaults() -> None:
    assert DateDetector("{NONE}", now=lambda: NOW).find("Jan 23 21:59:59 x") == DateMatch(NOW, 0, 0)
    assert found("^<W>{DATE}", "<W>2005-01-23 21:59:59.123 x") == (
        JAN23,
        "<W>2005-01-23 21:59:59.123",
    )
    assert found("^<W>{DATE}", "x <W>2005-01-23 21:59:59.123") is None
    assert found("{DATE}", "1106513999 x") == (JAN23, "1106513999")  # EPOCH is a default too


def test_optional_empty_date_reuses_a_recent_date() -> None:
    dd = DateDetector("^%b %d, %ExY %I:%M:%S %p\n^WARNING:()**", now=lambda: NOW)
    first = dd.find("Apr 15, 2013 8:34:08 PM org.example warn")
    assert first is not None and first.time == local(2013, 4, 15, 20, 34, 8)
    assert dd.last_time == first.time
    # the date of the previous line is newer than a minute before "now": it is reused
    assert dd.find("WARNING: Authentication attempt") == DateMatch(first.time, 8, 8)
    old = DateDetector("^%Y-%m-%d %H:%M:%S\n^WARNING:()**", now=lambda: NOW)
    assert old.find("2004-01-01 00:00:00 x") is not None
    assert old.find("WARNING: x") == DateMatch(NOW, 8, 8)


def test_logtimezone() -> None:
    pattern = r"^%ExY-%Exm-%Exd %H:%M:%S(?: ?%Exz)?"
    line = "2017-01-23 15:00:00"
    for zone, expected in (
        ("UTC+0300", utc(2017, 1, 23, 12)),
        ("UTC-0430", utc(2017, 1, 23, 19, 30)),
        ("CEST", utc(2017, 1, 23, 13)),
        ("CET+0130", utc(2017, 1, 23, 12, 30)),
    ):
        dd = DateDetector(pattern, now=lambda: NOW, logtimezone=zone)
        assert dd.find(line).time == expected
        assert dd.find(line + " GMT").time == utc(2017, 1, 23, 15)  # the line's zone wins
    with pytest.raises(DatePatternError):
        DateDetector(pattern, logtimezone="WRONG-TZ")


# --- fail2ban's sample logs ---------------------------------------------------------------


def _conf_files(path: Path) -> list[Path]:
    """The file with its [INCLUDES] before/after files, in reading order."""
    cp = configparser.RawConfigParser(strict=False)
    cp.read(path, encoding="utf-8")
    order: list[Path] = []
    for key, here in (("before", False), ("after", True)):
        if here:
            order.append(path)
        for name in cp.get("INCLUDES", key, fallback="").split():
            if (path.parent / name).exists():
                order += _conf_files(path.parent / name)
    return order


def _datepattern(name: str, opts: dict[str, str]) -> str | None:
    """A filter's datepattern with fail2ban's %(x)s, %(section/x)s and <x> substitutions."""
    # DEFAULT as a plain section, so that a section's own options can be told apart
    cp = configparser.RawConfigParser(strict=False, default_section="\0")
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(_conf_files(FILTER_DIR / f"{name}.conf"), encoding="utf-8")
    scope: dict[str, str] = {}
    for section in ("DEFAULT", "Definition", "Init"):
        if cp.has_section(section):
            scope.update(cp.items(section))
    scope.update(opts)
    value = scope.get("datepattern")
    if value is None:
        return None

    def lookup(ref: str) -> str | None:
        if "/" in ref:
            section, option = ref.split("/", 1)
            for where in (section, "DEFAULT"):
                if cp.has_option(where, option):
                    return cp.get(where, option)
            return None
        return scope.get(ref)

    while True:
        new = re.sub(r"%\(([^)]+)\)s", lambda m: lookup(m[1]) or m[0], value)
        new = re.sub(r"<([^<>]+)>", lambda m: lookup(m[1]) or m[0], new)
        if new == value:
            return value.replace("%%", "%")
        value = new


def _holds(condition: str, name: str, opts: dict[str, str]) -> bool:
    """The conditions fail2ban's sample logs use: name == '…', opts.get('…') ==/!= '…'."""
    m = re.fullmatch(r"\s*(name|opts\.get\('(\w+)'\))\s*(==|!=)\s*'([^']*)'\s*", condition)
    assert m is not None, f"unsupported condition {condition!r}"
    actual = name if m[1] == "name" else opts.get(m[2])
    return (actual == m[4]) == (m[3] == "==")


def _sample_checks(name: str) -> Iterator[tuple[str, int, str, float, DateMatch | None, float]]:
    """(file, line number, line, expected time, our match, time we give) for each line of
    fail2ban's samples for filter ``name`` whose failJSON has a time, pairing as its
    samplestestcase does: one detector per filter-options combination fed every line."""
    detectors: dict[str, DateDetector] = {}
    filenames, common = [name], {}
    tests: list[dict] | None = None
    ignore = False
    for filename in filenames:
        lines = enumerate((LOG_DIR / filename).read_text("utf-8").splitlines(), 1)
        for number, line in lines:
            head = re.match(r"^#+ ?(failJSON|(?:file|filter)Options|addFILE):(.+)$", line)
            faildata: dict = {}
            if head:
                data = json.loads(head[2])
                if head[1] == "fileOptions":
                    common = data
                    continue
                if head[1] == "filterOptions":
                    tests, ignore = [], False
                    for item in data if isinstance(data, list) else [data]:
                        opts = {**common, **item}
                        cond = opts.get("test.condition")
                        ignore = bool(cond) and not _holds(cond, name, opts)
                        if not ignore:
                            tests.append(opts)
                    continue
                if head[1] == "addFILE":
                    filenames.append(data)
                    continue
                faildata = data
                number, line = next(lines, (number, None))
                if line is None:
                    break
            elif ignore or line.startswith("#") or not line.strip():
                continue
            if ignore:
                continue
            if not tests:
                tests = [{}]
            for opts in tests:
                if faildata.get("constraint") and not _holds(faildata["constraint"], name, opts):
                    continue
                if opts.get("logtype") == "journal":
                    continue  # fail2ban takes the time from the journal, not from the text
                options = {k: v for k, v in opts.items() if not k.startswith("test.")}
                key = json.dumps(options, sort_keys=True)
                if key not in detectors:
                    detectors[key] = DateDetector(_datepattern(name, options), now=lambda: NOW)
                detector = detectors[key]
                last = detector.last_time
                match = detector.find(line)
                given = match.time if match else None
                if match is None and last is not None and last > NOW - 60:
                    given = last  # fail2ban's filter reuses a recent date for a dateless line
                if faildata.get("match") and "time" in faildata:
                    text = faildata["time"]
                    form = "%Y-%m-%dT%H:%M:%S" + (".%f" if "." in text else "")
                    stamp = dt.datetime.strptime(text, form)
                    want = time.mktime(stamp.timetuple()) + stamp.microsecond / 1e6
                    yield filename, number, line, want, match, given


def _sample_filters() -> list[str]:
    if not LOG_DIR.is_dir():
        return []
    return sorted(p.name for p in LOG_DIR.iterdir() if (FILTER_DIR / f"{p.name}.conf").is_file())


def test_sample_logs_are_installed() -> None:
    names = _sample_filters()
    assert len(names) > 80, "fail2ban's test logs are needed: apt-get install fail2ban"
    assert set(MUST_AGREE) <= set(names)


@pytest.mark.parametrize("name", _sample_filters())
def test_sample_log_times_agree_with_fail2ban(name: str) -> None:
    failures = [
        f"{file}:{number}: {line!r}: want {want}, got {given} ({match})"
        for file, number, line, want, match, given in _sample_checks(name)
        if given is None or abs(given - want) > 1e-6
    ]
    assert not failures, "\n".join(failures)


def test_sample_log_agreement_overall() -> None:
    """All the dated failJSON lines of every sample log agree (the count is in the report)."""
    checks = [c for name in _sample_filters() for c in _sample_checks(name)]
    agree = sum(
        1 for *_, want, _m, given in checks if given is not None and abs(given - want) < 1e-6
    )
    assert len(checks) > 500
    assert agree == len(checks), f"{agree}/{len(checks)} agree"
