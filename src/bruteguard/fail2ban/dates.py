"""Find the date in a log line the way fail2ban 1.0.2 does, for loading its filters unchanged.

A fail2ban filter names its date format in ``datepattern`` (or relies on fail2ban's built-in
list), and its ``failregex`` is written for the line *without* that date. Reading such filters
as they are therefore needs the same answers fail2ban gives: which text is the date (its span
is cut out before matching), and which POSIX time it stands for. This module reproduces
fail2ban's date templates (its default list and anchoring rules, ``{^LN-BEG}``, ``{DATE}``,
``{NONE}``, ``{UNB}``, ``**``, ``EPOCH``/``LEPOCH``/``{EPOCH}``, ``TAI64N``, its ``%`` directives
with the exact ``%Ex…`` forms) and its choices for missing parts: no year → the year of
``now()`` (a year back if that lands more than a day in the future), no date → today (or
yesterday if the time is still to come), ``%y`` → 20yy.

A :class:`DateDetector` keeps fail2ban's state too: the template that matched last is tried
first, templates that win often move to the front, and a date found far into the line is
held back in case a template with a match nearer the start exists.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

# Date templates run on log lines, so they run with a time budget (the regex module's
# ``timeout``), as failregexes do; ``re`` only reads the filter's own text here.
import regex as budgeted_re

from bruteguard.errors import ConfigError

__all__ = ["DateDetector", "DateMatch", "DatePatternError", "PatternTimeout"]


class DatePatternError(ConfigError, ValueError):
    """A ``datepattern`` is not one fail2ban would accept (unknown ``%`` directive, bad regex)."""


class PatternTimeout(Exception):
    """A search ran out of its time budget on a line (``pattern``: the expression; the
    filter's failregexes raise it too)."""

    def __init__(self, pattern: str) -> None:
        super().__init__(pattern)
        self.pattern = pattern


@dataclass(frozen=True)
class DateMatch:
    """A date found in a line: its time and where its text is (cut out before failregex)."""

    time: float
    start: int
    end: int


# --- directives ---------------------------------------------------------------------------

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august")
_MONTHS += ("september", "october", "november", "december")
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _alternatives(name: str, words: Iterable[str]) -> str:
    # Longest first, as Python's strptime does, so no name is cut short by a prefix.
    return f"(?P<{name}>{'|'.join(sorted(words, key=len, reverse=True))})"


_ZONE_ABBR = r"[A-Z](?:[A-Z]{2,4})?"
_STDLIB_D = r"(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])"
_STDLIB_HMS = r"(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):(?P<S>6[0-1]|[0-5]\d|\d)"

# What each directive matches: Python's strptime regexes (C locale) with fail2ban's overrides
# and additions. "ExY" depends on the clock and is filled in per detector (_directives).
_DIRECTIVES: dict[str, str] = {
    "a": _alternatives("a", (d[:3] for d in _DAYS)),
    "A": _alternatives("A", _DAYS),
    "b": _alternatives("b", (m[:3] for m in _MONTHS)),
    "B": _alternatives("B", _MONTHS),
    "c": (
        _alternatives("a", (d[:3] for d in _DAYS))
        + r"\s+"
        + _alternatives("b", (m[:3] for m in _MONTHS))
        + rf"\s+{_STDLIB_D}\s+{_STDLIB_HMS}\s+(?P<Y>\d\d\d\d)"
    ),
    "d": r"(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])",
    "f": r"(?P<f>[0-9]{1,6})",
    "G": r"(?P<G>\d\d\d\d)",
    "H": r"(?P<H>[0-1]?\d|2[0-3])",
    "I": r"(?P<I>1[0-2]|0[1-9]|[1-9])",
    "j": r"(?P<j>36[0-6]|3[0-5]\d|[1-2]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])",
    "k": r" ?(?P<H>[0-2]?\d)",
    "l": r" ?(?P<I>1?\d)",
    "m": r"(?P<m>0?[1-9]|1[0-2])",
    "M": r"(?P<M>[0-5]?\d)",
    "p": r"(?P<p>am|pm)",
    "S": r"(?P<S>[0-5]?\d|6[0-1])",
    "U": r"(?P<U>5[0-3]|[0-4]\d|\d)",
    "u": r"(?P<u>[1-7])",
    "V": r"(?P<V>5[0-3]|0[1-9]|[1-4]\d|\d)",
    "w": r"(?P<w>[0-6])",
    "W": r"(?P<W>5[0-3]|[0-4]\d|\d)",
    "x": r"(?P<m>1[0-2]|0[1-9]|[1-9])/" + _STDLIB_D + r"/(?P<y>\d\d)",
    "X": _STDLIB_HMS,
    "y": r"(?P<y>\d\d)",
    "Y": r"(?P<Y>\d{4})",
    # %z/%Z stay strict (fail2ban adds "ignore case" for month names, so a looser %Z would
    # read words such as "error" as zones); %Exz/%ExZ accept every known abbreviation.
    "z": r"(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)",
    "Z": r"(?P<Z>Z|[A-Z]{3,5})",
    "Exz": rf"(?P<z>(?:{_ZONE_ABBR})?[+-][01]\d(?::?\d{{2}})?|{_ZONE_ABBR})",
    "ExZ": rf"(?P<Z>{_ZONE_ABBR})",
    "Exd": r"(?P<d>[1-2]\d|0[1-9]|3[0-1])",
    "Exm": r"(?P<m>0[1-9]|1[0-2])",
    "ExH": r"(?P<H>[0-1]\d|2[0-3])",
    "Exk": r" ?(?P<H>[0-1]?\d|2[0-3])",
    "Exl": r" ?(?P<I>1[0-2]|\d)",
    "ExM": r"(?P<M>[0-5]\d)",
    "ExS": r"(?P<S>[0-5]\d|6[0-1])",
    "Exy": r"(?P<y>\d{2})",
    "%": "%",
}
_DIRECTIVE_RE = re.compile(r"%(Ex[zZdmHklMSYy]|[aAbBcdfGHIjklmMpSUuVwWxXyYzZ%])")
_ALPHA_DIRECTIVE_RE = re.compile(r"(?<!%)%[aAbBpc]")


def _year_regex(now_year: int) -> str:
    """%ExY: a year of a decade from 2000 (or last year) up to the one three years ahead.

    fail2ban builds it from the wall clock, so a detector running with a fixed "now" in the
    past (tests, replays) still accepts this decade's years.
    """
    last = max(now_year, time.localtime().tm_year) + 3
    decades = range(min(2000, now_year - 1) // 10, last // 10 + 1)
    return rf"(?P<Y>(?:{'|'.join(map(str, decades))})\d)"


# --- template text → regex (fail2ban's boundary rules) ------------------------------------

_LINE_BEGIN, _LINE_END, _WORD_BEGIN, _WORD_END = 8, 4, 2, 1
_LNBEG, _UNB = "{^LN-BEG}", "{UNB}"

_INLINE_FLAGS = re.compile(r"\(\?[a-z]+\)")
_PLAIN_GROUP = re.compile(r"(?<!\(\?)(?<!\\)\((?!\?)")
_SPLIT_ANCHORS = re.compile(r"^((?:\(\?\w+\))?\^?(?:\(\?\w+\))?)(.*?)(\$?)$")
_OWN_BEGIN = re.compile(r"^\(*(?:\(\?\w+\))?(?:\^|\(*\*\*|\((?:\?:)?\^)")
_OWN_END = re.compile(r"(?<!\\)(?:\$\)?|\\b|\\s|\*\*\)*)$")
_STARS = re.compile(r"^\(*(?:\(\?\w+\))?\(*\*\*|(?<!\\)\*\*\)*$")
_ANCHORED_BEGIN = re.compile(r"^(?:\(\?\w+\))?(?:\^|\((?:\?:)?\^(?!\|))")
_ANCHORED_END = re.compile(r"(?<![\\|])(?:\$\)?)$")
_UNBOUND_HEAD = re.compile(r"^\((?:\?:)?\^\|\\b\|\\W\)")
_UNBOUND_TAIL = re.compile(r"\(\?=\\b\|\\W\|\$\)$")
_DATE_TAG = re.compile(r"(?<!\\)\{DATE\}", re.IGNORECASE)
_EPOCH_TAG = re.compile(r"(?<!\\)\{L?EPOCH\}", re.IGNORECASE)


def _bound(regex: str, begin: bool | str, end: bool) -> tuple[str, int]:
    """Add fail2ban's word/line boundaries and make group 1 the date text.

    ``begin`` is True (word boundary), "start" (line start after at most two non-word
    characters) or False; a regex that anchors itself (``^``, ``$``, ``\\b``, ``\\s``) or says
    ``**`` at an end gets no boundary there.
    """
    regex = regex.strip()
    flags_text = ""
    found = _INLINE_FLAGS.search(regex)
    if found:
        flags_text = found.group()
        regex = regex[: found.start()] + regex[found.end() :]
    add_begin = bool(begin) and not _OWN_BEGIN.search(regex)
    add_end = end and not _OWN_END.search(regex)
    if not _PLAIN_GROUP.search(regex):
        regex = _SPLIT_ANCHORS.sub(r"\1(\2)\3", regex)
    flags = 0
    if add_begin and begin == "start":
        flags |= _LINE_BEGIN
        regex = r"^(?:\W{0,2})?" + regex
    elif add_begin:
        flags |= _WORD_BEGIN
        regex = r"(?=^|\b|\W)" + regex
    if add_end:
        flags |= _WORD_END
        regex += r"(?=\b|\W|$)"
    if _ANCHORED_BEGIN.search(regex):
        flags |= _LINE_BEGIN
    if _ANCHORED_END.search(regex):
        flags |= _LINE_END
    regex = _STARS.sub(lambda m: m.group().replace("**", ""), regex)
    return flags_text + regex, flags


def _expand(pattern: str, directives: dict[str, str]) -> str:
    """Replace %-directives by their regexes; a stray % is an error, as in fail2ban."""
    out, pos = [], 0
    for m in _DIRECTIVE_RE.finditer(pattern):
        out += (pattern[pos : m.start()], directives[m.group(1)])
        pos = m.end()
    out.append(pattern[pos:])
    if any("%" in literal for literal in out[::2]):
        raise DatePatternError(f"datepattern {pattern!r}: unknown %-directive or unescaped %")
    return "".join(out)


def _unbound(pattern: str) -> str:
    """The pattern without its boundary markers, for embedding into a ``{DATE}`` pattern."""
    for prefix in (_UNB, _LNBEG):
        pattern = pattern.removeprefix(prefix)
    return _UNBOUND_TAIL.sub("", _UNBOUND_HEAD.sub("", pattern))


# --- templates ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Template:
    """One compiled date format; immutable and shared (per-detector counters live in _Slot)."""

    regex: budgeted_re.Pattern[str]
    flags: int
    kind: str  # "strptime" | "epoch" | "tai64n"
    value_group: int = 1
    long_epoch: bool = False
    weight: float = 1.0
    anchored: bool = field(init=False)  # to a line's start or end: the only candidate there

    def __post_init__(self) -> None:
        object.__setattr__(self, "anchored", bool(self.flags & (_LINE_BEGIN | _LINE_END)))


def _compile(regex: str, source: str) -> budgeted_re.Pattern[str]:
    try:
        return budgeted_re.compile(regex, budgeted_re.V0)
    except (budgeted_re.error, ValueError, OverflowError) as exc:
        raise DatePatternError(f"datepattern {source!r}: {exc}") from None


def _strptime_template(pattern: str, directives: dict[str, str]) -> _Template:
    begin: bool | str = True
    end = True
    if pattern.startswith(_UNB):
        pattern, begin, end = pattern[len(_UNB) :], False, False
    if begin and pattern.startswith(_LNBEG):
        pattern, begin = pattern[len(_LNBEG) :], "start"
    regex = _expand(pattern, directives)
    if _ALPHA_DIRECTIVE_RE.search(pattern):
        regex = "(?iu)" + regex
    regex, flags = _bound(regex, begin, end)
    return _Template(_compile(regex, pattern), flags, "strptime")


def _epoch_template(pattern: str | None, *, line_begin: bool, long: bool) -> _Template:
    digits = r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?" if long else r"\d{10,11}\b(?:\.\d{3,6})?"
    if pattern:  # a pattern with {EPOCH}/{LEPOCH} in it: the number is group 2
        regex = "(" + _EPOCH_TAG.sub(lambda _: f"({digits})", pattern) + ")"
        regex, flags = _bound(regex, True, True)
        return _Template(_compile(regex, pattern), flags, "epoch", 2, long)
    if line_begin:  # at line start, or in square brackets there (nsd)
        regex, flags = _bound(rf"((?P<square>(?<=^\[))?{digits})(?(square)(?=\]))", "start", True)
    else:  # also inside SELinux's "audit(EPOCH:serial)"
        regex, flags = _bound(
            rf"((?:^|(?P<square>(?<=^\[))|(?P<selinux>(?<=\baudit\())){digits})"
            r"(?:(?(selinux)(?=:\d+\)))|(?(square)(?=\])))",
            False,
            True,
        )
    return _Template(_compile(regex, "EPOCH"), flags, "epoch", 1, long)


def _tai64n_template(line_begin: bool) -> _Template:
    regex, flags = _bound(r"@[0-9a-f]{24}", "start" if line_begin else False, True)
    return _Template(_compile(regex, "TAI64N"), flags, "tai64n")


@functools.lru_cache(maxsize=1024)
def _template(pattern: str, year_re: str) -> _Template:
    """The template one datepattern line names (EPOCH/LEPOCH/TAI64N keywords or a pattern)."""
    key = pattern if "%" in pattern else pattern.upper()
    if "EPOCH" in key:
        if _EPOCH_TAG.search(pattern):
            return _epoch_template(pattern, line_begin=False, long="LEPOCH" in key)
        for word, long in (("EPOCH", False), ("LEPOCH", True)):
            if key in (word, _LNBEG + word, "^" + word):
                return _epoch_template(None, line_begin=key != word, long=long)
    if key in ("TAI64N", _LNBEG + "TAI64N", "^TAI64N"):
        return _tai64n_template(key != "TAI64N")
    return _strptime_template(pattern, {**_DIRECTIVES, "ExY": year_re})


# fail2ban's built-in formats, in its order of preference.
_DEFAULT_PATTERNS = (
    # ISO 8601 and simple dates: 2005-01-23T21:59:59.981746+01:00, 2005/01/23 21:59:59
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    # asctime / syslog: [Sun ]Jan 23 21:59:59[.011][ 2005]
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    # 23/01/2005 21:59:59, 23/01/05 21:59:59, 17-07-2008 17:23:25
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    # Apache [31/Oct/2006:09:22:55 -0000], 26-Jul-2007 15:20:52[.252][ +0200]
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    r"%m/%d/%ExY:%H:%M:%S",  # cPanel
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    "EPOCH",
    r"{^LN-BEG}%H:%M:%S",  # time only
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",  # MySQL 130322 11:46:11
    r"%b %d, %ExY %I:%M:%S %p",  # Tomcat
    r"^%b-%d-%Exy %k:%M:%S",  # ASSP
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",  # compact ISO
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",  # monit: PDT Apr 16 21:05:29
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    "TAI64N",
)
# How a default template is named inside a {DATE} pattern: the keyword templates keep their
# display names there (so "{DATE}" alone still means EPOCH, while "^{DATE}" embeds the word).
_DATE_TAG_NAMES = {"EPOCH": "Epoch", "TAI64N": "TAI64N"}


@functools.lru_cache(maxsize=16)
def _defaults(year_re: str) -> tuple[tuple[_Template, ...], tuple[_Template, ...]]:
    """(line-start anchored copies, plain defaults); the copies are tried first, weighted 100."""
    anchored, plain = [], []
    for pattern in _DEFAULT_PATTERNS:
        plain.append(_template(pattern, year_re))
        if not pattern.startswith((_LNBEG, "^")):
            anchored.append(replace(_template(_LNBEG + pattern, year_re), weight=100.0))
    return tuple(anchored), tuple(plain)


@functools.lru_cache(maxsize=256)
def _templates(datepattern: str | None, year_re: str) -> tuple[_Template, ...]:
    """The ordered templates a datepattern value (one pattern per line) stands for."""
    anchored, plain = _defaults(year_re)
    weighted = {t.regex.pattern: t for t in anchored}
    found: dict[tuple[str, str, int], _Template] = {}

    def add(template: _Template) -> None:
        template = weighted.get(template.regex.pattern, template)
        found.setdefault((template.kind, template.regex.pattern, template.value_group), template)

    lines = [p.strip() for p in re.split("\n+", datepattern or "")]
    for pattern in filter(None, lines):
        key = pattern if "%" in pattern else pattern.upper()
        if key == "{DEFAULT}":
            for t in anchored + plain:
                add(t)
        elif key == _LNBEG:
            for t in anchored + plain:
                if t.flags & _LINE_BEGIN:
                    add(t)
        elif "{DATE}" in key:
            for default in _DEFAULT_PATTERNS:
                inner = _DATE_TAG_NAMES.get(default) or _unbound(default)
                add(_template(_DATE_TAG.sub(lambda _, s=inner: s, pattern), year_re))
        elif key == "{NONE}":
            add(_template(_UNB + "^", year_re))
        else:
            add(_template(pattern, year_re))
    return tuple(found.values()) or anchored + plain


# --- converting a match to POSIX time -----------------------------------------------------

# Fixed offsets (hours east of UTC) of the zone abbreviations fail2ban knows.
_ZONES_BY_OFFSET = {
    -12: "Y",
    -11: "X NUT SST",
    -10: "W CKT HAST HST TAHT TKT",
    -9.5: "MART MIT",
    -9: "V AKST GAMT GIT HADT HNY",
    -8: "U AKDT CIST HAY HNP PST PT",
    -7: "T HAP HNR MST PDT",
    -6: "S CST EAST GALT HAR HNC MDT",
    -5: "R CDT COT EASST ECT EST ET HAC HNE PET",
    -4.5: "HLV VET",
    -4: "Q AST BOT CLT COST EDT FKT GYT HAE HNA PYT",
    -3.5: "HNT NST NT",
    -3: "P ADT ART BRT CLST FKST GFT HAA PMST PYST SRT UYT WGT",
    -2.5: "HAT NDT",
    -2: "O BRST FNT PMDT UYST WGST",
    -1: "N AZOT CVT EGT",
    0: "Z EGST GMT UTC WET WT",
    1: "A CET DFT WAT WEDT WEST",
    2: "B CAT CEDT CEST EET SAST WAST",
    3: "C EAT EEDT EEST IDT MSK",
    3.5: "IRST",
    4: "D AMT AZT GET GST KUYT MSD MUT RET SAMT SCT",
    4.5: "AFT IRDT",
    5: "E AMST AQTT AZST HMT MAWT MVT PKT TFT TJT TMT UZT YEKT",
    5.5: "SLT",
    5.75: "NPT",
    6: "F ALMT BIOT BTT IOT KGT NOVT OMST YEKST",
    6.5: "CCT MMT",
    7: "G CXT DAVT HOVT ICT KRAT NOVST OMSST THA WIB",
    8: "H ACT AWST BDT BNT CAST HKT IRKT KRAST MYT PHT SGT ULAT WITA WST",
    9: "I AWDT IRKST JST KST PWT TLT WDT WIT YAKT",
    9.5: "ACST",
    10: "K AEST ChST PGT VLAT YAKST YAPT",
    10.5: "ACDT LHST",
    11: "L AEDT LHDT MAGT NCT PONT SBT VLAST VUT",
    11.5: "NFT",
    12: "M ANAST ANAT FJT GILT MAGST MHT NZST PETST PETT TVT WFT",
    13: "FJST NZDT",
}
_ZONE_MINUTES = {
    name: int(hours * 60) for hours, names in _ZONES_BY_OFFSET.items() for name in names.split()
}
_ONE_DAY = dt.timedelta(days=1)
_ZONE_RE = re.compile(rf"({_ZONE_ABBR})?([+-][01]\d(?::?\d{{2}})?)?$")


def _zone_minutes(text: str) -> int | None:
    """Minutes east of UTC for "CEST", "+0200", "+02:00", "-04", "CET+01"; None if unknown."""
    m = _ZONE_RE.match(text)
    if m is None or (m.group(1) and m.group(1) not in _ZONE_MINUTES):
        return None
    minutes = _ZONE_MINUTES[m.group(1)] if m.group(1) else 0
    offset = m.group(2)
    if offset:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        minutes += sign * (int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0))
    return minutes


def _julian_from_week(year: int, week: int, weekday: int, monday_first: bool) -> int:
    """Day of the year from %U/%W week number and weekday (0 = Monday), as strptime does."""
    first = dt.date(year, 1, 1).weekday()
    if not monday_first:
        first, weekday = (first + 1) % 7, (weekday + 1) % 7
    if week == 0:
        return 1 + weekday - first
    return 1 + (7 - first) % 7 + 7 * (week - 1) + weekday


_NAME_NUMBER = {
    **{name: number for number, m in enumerate(_MONTHS, 1) for name in (m, m[:3])},
    **{name: number for number, d in enumerate(_DAYS) for name in (d, d[:3])},
}


@functools.lru_cache(maxsize=4096)
def _fields(items: tuple[tuple[str, str | None], ...]) -> tuple[int | None, ...]:
    """The numbers in a match's named groups: (year, month, day, julian, week, weekday,
    week starts Monday, hour, minute, second, zone offset in minutes). Cached: log lines
    repeat their stamps."""
    year = month = day = julian = week = weekday = offset = None
    hour = minute = second = monday_first = 0
    for key, val in items:
        if val is None:
            continue
        if key in ("H", "M", "S", "d", "m", "Y", "j"):
            number = int(val)
            if key == "H":
                hour = number
            elif key == "M":
                minute = number
            elif key == "S":
                second = number
            elif key == "d":
                day = number
            elif key == "m":
                month = number
            elif key == "Y":
                year = number
            else:
                julian = number
        elif key in ("b", "B"):
            month = _NAME_NUMBER[val.lower()]
        elif key == "y":
            year = int(val) + 2000  # fail2ban keeps two-digit years in this century
        elif key == "I":
            hour = int(val) % 12
            if (dict(items).get("p") or "").lower() == "pm":
                hour += 12
        elif key in ("a", "A"):
            weekday = _NAME_NUMBER[val.lower()]
        elif key == "w":
            weekday = (int(val) - 1) % 7
        elif key in ("U", "W"):
            week, monday_first = int(val), int(key == "W")
        elif key in ("z", "Z"):
            offset = _zone_minutes(val)
            if offset is None:
                raise ValueError(f"unknown time zone {val!r}")
    return year, month, day, julian, week, weekday, monday_first, hour, minute, second, offset


def _strptime_value(
    items: tuple[tuple[str, str | None], ...], now: float, zone: int | None
) -> float:
    """POSIX time of the matched fields, completing a missing year or date from ``now``;
    raises ValueError for impossible dates."""
    year, month, day, julian, week, weekday, monday_first, hour, minute, second, offset = _fields(
        items
    )
    today = dt.datetime.fromtimestamp(now)
    assume_year = year is None
    if year is None:
        year = today.year
    if month is None or day is None:
        if julian is None and week is not None and weekday is not None:
            julian = _julian_from_week(year, week, weekday, bool(monday_first))
        if julian is not None:
            date = dt.date.fromordinal(dt.date(year, 1, 1).toordinal() + julian - 1)
            year, month, day = date.year, date.month, date.day
    assume_today = month is None and day is None
    if assume_today:
        month, day = today.month, today.day
    if month is None or day is None:
        raise ValueError("date has a month or a day but not both")
    result = dt.datetime(year, month, day, hour, minute, second)
    if offset is None:
        offset = zone
    if offset is not None:
        result -= dt.timedelta(minutes=offset)
    if assume_today and result > today:
        result -= dt.timedelta(days=1)  # a time still to come today was yesterday's
    if assume_year and result > today + _ONE_DAY:
        result = result.replace(year=year - 1, month=month, day=day)  # last year's
    if offset is not None:
        return float(calendar.timegm(result.utctimetuple()))
    return time.mktime(result.timetuple())


def _value(template: _Template, m: budgeted_re.Match[str], now: float, zone: int | None) -> float:
    if template.kind == "epoch":
        text = m.group(template.value_group)
        if template.long_epoch and len(text) >= 13:
            return float(text) / (1_000_000 if len(text) >= 16 and "." not in text else 1000)
        return float(text)
    if template.kind == "tai64n":
        return float(int(m.group(1)[2:17], 16))  # seconds of the TAI64 label, nanos dropped
    return _strptime_value(tuple(m.groupdict().items()), now, zone)


# --- the detector -------------------------------------------------------------------------

_FAR = 0x7FFFFFFF
_UNUSED_SECONDS = 300.0


@dataclass(eq=False)
class _Slot:
    """A template's standing in one detector: how often it won, and where its date was."""

    template: _Template
    hits: int = 0  # times it won
    seen: int = 0  # times its regex matched at all
    last_used: float = float("-inf")
    distance: int = _FAR

    @property
    def weight(self) -> float:
        return self.hits * self.template.weight / max(1, self.distance)


@dataclass
class _State:
    index: int = _FAR
    start: int = 1
    before: str | None = None  # character before the last date's start, and its first one
    first: str | None = None
    end: int = _FAR
    last: str | None = None  # last character of the last date, and the one after it
    after: str | None = None
    first_unused: int = 0
    time: float | None = None
    order: list[_Slot] = field(default_factory=list)


class DateDetector:
    """Finds the date in each line of one log, with fail2ban's templates and preferences.

    Stateful like fail2ban's: use one detector per filter and feed it the log's lines in order.
    """

    def __init__(
        self,
        datepattern: str | None = None,
        *,
        now: Callable[[], float] = time.time,
        logtimezone: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """``datepattern`` is a filter's datepattern value, after config substitution (one
        pattern per line; None or "" → fail2ban's default template list). ``now`` gives the
        current time, which completes dates without year or day.

        ``logtimezone`` is fail2ban's jail option of that name: the zone ("UTC", "CET",
        "UTC+0300", "-0430") of dates that do not carry one; default the process's local zone.

        ``timeout`` is each template's budget per search, in seconds (None: no limit); a
        search that runs out raises ``PatternTimeout``.
        """
        self._now = now
        self._timeout = timeout
        self._zone = None if logtimezone is None else _zone_minutes(logtimezone)
        if logtimezone is not None and self._zone is None:
            raise DatePatternError(f"unknown or unsupported time zone {logtimezone!r}")
        year = dt.datetime.fromtimestamp(now()).year
        self._state = _State(order=[_Slot(t) for t in _templates(datepattern, _year_regex(year))])

    @property
    def last_time(self) -> float | None:
        """Time of the last date found; fail2ban reuses it for a dateless line if recent."""
        return self._state.time

    def find(self, line: str) -> DateMatch | None:
        """The date in ``line``, or None if no template matches or the date is impossible.

        A pattern may match an empty date (``{NONE}``, an optional group): the span is then
        empty and the time is the last date found if it is newer than a minute before now,
        else now, as fail2ban's filter does.
        """
        found = self._match(line)
        if found is None:
            return None
        template, m = found
        start, end = m.span(1)
        if start < 0:
            start = end = m.start()
        now = self._now()
        if start == end:  # the pattern allows no date here: last date if recent, else now
            last = self._state.time
            return DateMatch(last if last and last > now - 60 else now, start, end)
        try:
            value = _value(template, m, now, self._zone)
        except (ValueError, KeyError, OverflowError):
            return None
        self._state.time = value
        return DateMatch(value, start, end)

    def _match(self, line: str) -> tuple[_Template, budgeted_re.Match[str]] | None:
        """fail2ban's template choice: last winner first, else the first, nearest match."""
        st, slots = self._state, self._state.order
        m = None
        best: tuple[budgeted_re.Match[str], int] | None = None
        skip = _FAR
        i = st.index
        if i < len(slots):
            template = slots[i].template
            if template.anchored:
                m, skip = self._search(template, line), i
            elif self._same_frame(line):
                m = self._search(template, line, st.start, st.end)
            else:
                m, skip = self._search(template, line), i
            if m:
                slots[i].seen += 1
                if not (
                    len(slots) == 1
                    or template.anchored
                    or (m.start() == st.start and m.end() == st.end)
                ):
                    best, m = (m, i), None  # moved: look for a better template
        if m is None:
            for i, slot in enumerate(slots):
                if i == skip:
                    continue
                m = self._search(slot.template, line)
                if m is None:
                    continue
                slot.seen += 1
                if i + 1 >= len(slots) or slot.template.anchored:
                    break
                if m.start() == 0 and slot.hits and not slots[i + 1].seen:
                    break
                if m.start() > slot.distance or m.start() > st.start:
                    # found further into the line than before: maybe text, keep looking
                    if best is None or m.start() < best[0].start():
                        best = (m, i)
                    m = None
                    continue
                break
            if m is None and best is not None:
                m, i = best
        if m is None:
            return None
        slot = slots[i]
        slot.hits += 1
        slot.last_used = time.monotonic()
        slot.distance = start = m.start()
        end = m.end()
        if st.first_unused == i:
            st.first_unused += 1
        st.start, st.before, st.first = start, line[start - 1 : start], line[start : start + 1]
        st.end, st.last, st.after = end, (line[end - 1] if line else ""), line[end : end + 1]
        if i and i != st.index:
            i = self._promote(i)
        st.index = i
        return slot.template, m

    def _search(
        self, template: _Template, line: str, start: int = 0, end: int | None = None
    ) -> budgeted_re.Match[str] | None:
        try:
            return template.regex.search(line, start, end, timeout=self._timeout)
        except TimeoutError:
            raise PatternTimeout(template.regex.pattern) from None

    def _same_frame(self, line: str) -> bool:
        """Whether the last date's surroundings are where they were (then search only there)."""
        st = self._state
        s, e = st.start, st.end
        left = line[s - 1 : s] == st.before or (
            line[s : s + 1] == st.first and not (st.first or "").isalnum()
        )
        right = line[e : e + 1] == st.after or (
            line[e - 1 : e] == st.last and not (st.last or "").isalnum()
        )
        return left and right

    def _promote(self, num: int) -> int:
        """Move a winning template forward (to the first unused place or half-way), if it
        outweighs the one there or that one has not been used for five minutes."""
        st, slots = self._state, self._state.order
        slot = slots[num]
        stale = slot.last_used - _UNUSED_SECONDS
        pos = st.first_unused if st.first_unused < num else num // 2

        def movable() -> bool:
            return slot.weight > slots[pos].weight or stale > slots[pos].last_used

        if not movable():
            if pos == num - 1:
                return num
            pos = num - 1
            if not movable():
                return num
        del slots[num]
        slots.insert(pos, slot)
        while st.first_unused < len(slots) and slots[st.first_unused].hits:
            st.first_unused += 1
        return pos
