"""Running a fail2ban filter over log lines, line by line, as fail2ban 1.0.2 does.

Per line: the date is found and cut out of the line; ``prefregex`` must match first (its
``<F-CONTENT>`` becomes the text the failregexes see); the failregexes are tried in order
and the first that matches wins, unless an ``ignoreregex`` matches too; ``<F-NOFAIL>`` marks
a match that is not a failure; with ``maxlines`` > 1 the last lines are matched together,
and ``<F-MLFID>`` ties the lines of one connection together so that a failure may take its
address from an earlier line. The host is reported as the text the pattern captured (an
address or a name); nothing is ever resolved here.

Imported patterns are not ours: every search has a time budget (the ``regex`` module's
``timeout``). A pattern that runs out of time on a line is reported (line number and
pattern, also to the ``bruteguard.fail2ban`` logger, at most once a minute per matcher so
that a hostile flood does not flood the log too) and the line counts as not matched; the
matcher goes on with the next line.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex

from bruteguard.fail2ban.conffile import FilterError, FilterOptions
from bruteguard.fail2ban.dates import DateDetector, PatternTimeout
from bruteguard.fail2ban.tags import ID_GROUPS, complex_groups, translate
from bruteguard.safe_text import printable

__all__ = ["Fail2banFilter", "LineMatcher", "LineResult"]

log = logging.getLogger("bruteguard.fail2ban")

# A line as fail2ban keeps it: (text before the date, the date text, text after the date).
_Line = tuple[str, str, str]

_MLFID_ENTRIES = 100  # connections remembered per matcher (fail2ban's numbers)
_MLFID_SECONDS = 300.0
_LAST_DATE_SECONDS = 60  # a line without a date inherits a date this recent
_TIMEOUT_LOG_SECONDS = 60.0  # after a timeout warning, the next are only counted this long
# Groups that are bookkeeping, not data about the failure.
_INTERNAL = {
    "content",
    "nofail",
    "nofail-matches",
    "mlfid",
    "mlfforget",
    "mlfgained",
    "mlfpending",
    "matches",
}


@dataclass(frozen=True)
class LineResult:
    """What one input line amounted to."""

    line: int  # 1-based number of the line this result is about
    match: bool
    host: str | None  # the address or host name as matched (raw text, never resolved)
    user: str | None
    time: float | None  # the line's time (None: the line has no date; take "now")
    pattern: str | None  # the failregex that matched, as the filter writes it
    fid: str | None = None  # the failure id: <F-ID> when the filter has one, else the host
    users: tuple[str, ...] = ()  # every user one connection (mlfid) tried
    attempts: int = 0  # lines that make up this failure
    fields: Mapping[str, Any] = field(default_factory=dict)  # other <F-…> groups


@dataclass(frozen=True)
class _Pattern:
    source: str  # as written in the filter (for reports)
    compiled: regex.Pattern[str]
    alts: tuple[tuple[str, str], ...]
    tuples: tuple[tuple[str, str], ...]
    skiplines: int

    @classmethod
    def compile(cls, source: str, *, dns: bool, multiline: bool, where: str) -> _Pattern:
        if not source.strip():
            raise FilterError(f"{where}: empty pattern")
        text = translate(source, dns=dns)
        flags = regex.V0 | (regex.MULTILINE if multiline else 0)
        try:
            compiled = regex.compile(text, flags)
        except (regex.error, ValueError, OverflowError) as exc:
            raise FilterError(f"{where}: cannot compile {source!r}: {exc}") from None
        names = list(compiled.groupindex)
        alts, tuples = complex_groups(names)
        skiplines = sum(1 for n in names if n.startswith("skiplines"))
        return cls(source, compiled, tuple(alts), tuple(tuples), skiplines)

    def groups(self, m: regex.Match[str]) -> dict[str, Any]:
        found: dict[str, Any] = m.groupdict()
        for name, target in self.alts:
            value = found.get(name)
            if value and not found.get(target):
                found[target] = value
        for name, target in self.tuples:
            value, current = found.get(name), found.get(target)
            found[target] = (*current, value) if isinstance(current, tuple) else (current, value)
        return found

    def skipped(self, m: regex.Match[str]) -> list[str]:
        text = "".join(m.group(f"skiplines{i}") or "" for i in range(self.skiplines))
        return text.splitlines()


def _join(lines: list[_Line]) -> str:
    """The text the patterns see: each line without its date, every line ending in "\\n"."""
    return "\n".join(pre + post for pre, _, post in lines) + "\n"


class Fail2banFilter:
    """A loaded, compiled fail2ban filter. Immutable; make one matcher per log stream."""

    def __init__(self, name: str, files: list[Path], options: FilterOptions) -> None:
        self.name = name
        self.files = tuple(files)
        self.options = options.values
        self.journalmatch: list[str] = list(options.journalmatch)
        self.maxlines = options.maxlines
        self.datepattern = options.datepattern
        self.usedns = options.usedns
        self.failregex = options.failregex
        self.ignoreregex = options.ignoreregex
        self.prefregex = options.prefregex
        where = f"filter {name} ({files[0] if files else '?'})"
        if not options.failregex:
            raise FilterError(f"{where}: failregex is empty")
        dns = (options.usedns or "").strip().lower() != "no"
        multi = options.maxlines > 1
        self._pref = (
            _Pattern.compile(
                options.prefregex, dns=dns, multiline=False, where=where + " prefregex"
            )
            if options.prefregex
            else None
        )
        self._fail = tuple(
            _Pattern.compile(p, dns=dns, multiline=multi, where=where + " failregex")
            for p in options.failregex
        )
        self._ignore = tuple(
            _Pattern.compile(p, dns=dns, multiline=False, where=where + " ignoreregex")
            for p in options.ignoreregex
        )
        ids = (*ID_GROUPS, "mlfid")
        pref_ids = self._pref is not None and any(g in self._pref.compiled.groupindex for g in ids)
        for p in self._fail:
            if not pref_ids and not any(g in p.compiled.groupindex for g in ids):
                raise FilterError(
                    f"{where} failregex: {p.source!r} captures no host, address or id "
                    "(<HOST>, <ADDR>, <F-ID>, …)"
                )
        try:
            DateDetector(self.datepattern)
        except (ValueError, LookupError, regex.error) as exc:
            raise FilterError(f"{where}: datepattern {self.datepattern!r}: {exc}") from None

    def __repr__(self) -> str:
        return f"Fail2banFilter({self.name!r}, {len(self._fail)} failregex)"

    def matcher(
        self,
        *,
        now: Callable[[], float] = time.time,
        timeout: float = 0.05,
        logtimezone: str | None = None,
    ) -> LineMatcher:
        """A matcher for one stream of lines (it keeps the multi-line and date state).

        ``timeout`` is each pattern's budget per line, in seconds (date templates' too);
        ``logtimezone`` the zone
        of dates that carry none (fail2ban's jail option; default: the local zone).
        """
        try:
            dates = DateDetector(
                self.datepattern, now=now, logtimezone=logtimezone, timeout=timeout
            )
        except ValueError as exc:
            raise FilterError(f"filter {self.name}: {exc}") from None
        return LineMatcher(self, dates, now=now, timeout=timeout)


class LineMatcher:
    """One filter applied to one stream of lines, in order."""

    def __init__(
        self, flt: Fail2banFilter, dates: DateDetector, *, now: Callable[[], float], timeout: float
    ) -> None:
        self.filter = flt
        self.timeouts: list[tuple[int, str]] = []
        self._dates = dates
        self._now = now
        self._timeout = timeout
        self._lineno = 0
        self._buffer: list[_Line] = []
        self._last_date: float | None = None
        self._last_text = ""
        self._mlfid: OrderedDict[str, tuple[dict[str, Any], float]] = OrderedDict()
        self._quiet_until = float("-inf")  # monotonic: timeout warnings resume then
        self._unlogged = 0

    def process(self, text: str, *, when: float | None = None) -> list[LineResult]:
        """Match one line; ``when`` is its time when the source knows it (journal).

        A newline inside ``text`` (a journal message may hold one) is matched as rsyslog
        writes it, ``#012``, so that client text can never pose as a line of its own.
        """
        if "\n" in text:
            text = text.replace("\n", "#012")
        self._lineno += 1
        number = self._lineno
        date = None
        try:
            line, date = self._split_date(text, when)
            found = self._find(line, date, number)
        except PatternTimeout as exc:
            self.timeouts.append((number, exc.pattern))
            self._warn_timeout(number, exc.pattern, text)
            found = None
        return [found or LineResult(number, False, None, None, date, None)]

    def _warn_timeout(self, number: int, pattern: str, text: str) -> None:
        now = time.monotonic()
        if now < self._quiet_until:
            self._unlogged += 1
            return
        since = f" ({self._unlogged} more since the last warning)" if self._unlogged else ""
        log.warning(
            "filter %s: line %d: a pattern ran out of time (%.3f s), line not matched%s; "
            "pattern: %s; line: %s; the next such lines are counted, not logged, for %d s",
            self.filter.name,
            number,
            self._timeout,
            since,
            printable(pattern),
            printable(text[:500]),
            _TIMEOUT_LOG_SECONDS,
        )
        self._unlogged = 0
        self._quiet_until = now + _TIMEOUT_LOG_SECONDS

    # -- the date --------------------------------------------------------------------------

    def _split_date(self, text: str, when: float | None) -> tuple[_Line, float | None]:
        if when is not None:
            self._last_date, self._last_text = when, ""
            return ("", "", text), when
        found = self._dates.find(text)
        if found is not None:
            start, end = found.start, found.end
            if end > start:
                self._last_date, self._last_text = found.time, text[start:end]
                return (text[:start], text[start:end], text[end:]), found.time
            # the pattern allows no date here: the last one if recent, else now
            if self._recent():
                return ("", self._last_text, text), self._last_date
            return (text[:start], "", text[end:]), self._now()
        if self._recent():
            return ("", self._last_text, text), self._last_date
        return ("", "", text), None

    def _recent(self) -> bool:
        last = self._last_date
        return last is not None and last > self._now() - _LAST_DATE_SECONDS

    # -- matching --------------------------------------------------------------------------

    def _search(self, pattern: _Pattern, text: str) -> regex.Match[str] | None:
        try:
            return pattern.compiled.search(text, timeout=self._timeout)
        except TimeoutError:
            raise PatternTimeout(pattern.source) from None

    def _lines_of(
        self, pattern: _Pattern, m: regex.Match[str], org: list[_Line]
    ) -> tuple[list[_Line], list[_Line]]:
        """The buffered lines a match covers, and the others (kept for the next lines)."""
        if len(org) <= 1:
            return list(org), []
        text = m.string
        start = text.rfind("\n", 0, m.start() + 1) + 1
        end = text.find("\n", m.end() - 1)
        end = len(text) if end < 0 else end + 1
        first, last = text.count("\n", 0, start), text.count("\n", 0, end)
        matched, rest = list(org[first:last]), list(org[:first])
        n = 0
        for skipped in pattern.skipped(m):
            for k, line in enumerate(matched[n:]):
                if line[0] + line[2] == skipped:
                    rest.append(matched.pop(n + k))
                    n += k
                    break
        rest.extend(org[last:])
        return matched, rest

    def _ignored(
        self, text: str, org: list[_Line], failed: tuple[list[_Line], list[_Line]] | None
    ) -> bool:
        flt = self.filter
        if failed is not None and flt.maxlines > 1:
            org = failed[0]
            text = _join(org)
        for pattern in flt._ignore:
            if self._search(pattern, text):
                if failed is not None:
                    self._buffer = failed[1]
                return True
        return False

    def _find(self, line: _Line, date: float | None, number: int) -> LineResult | None:
        flt = self.filter
        if flt.maxlines > 1:
            self._buffer = [*self._buffer[-(flt.maxlines - 1) :], line]
        else:
            self._buffer = [line]
        org = self._buffer
        text: str | None = _join(org)
        if flt._ignore and len(flt._ignore) < len(flt._fail) - 2 and self._ignored(text, org, None):
            return None
        pre: dict[str, Any] = {}
        if flt._pref is not None:
            m = self._search(flt._pref, text)
            if not m:
                return None
            pre = flt._pref.groups(m)
            content = pre.pop("content", None)
            if content:
                self._buffer, text = [("", "", content)], None
        for pattern in flt._fail:
            if text is None:
                text = _join(self._buffer)
            m = self._search(pattern, text)
            if not m:
                continue
            covered = self._lines_of(pattern, m, org)
            fail = pattern.groups(m)
            if flt._ignore and self._ignored(text, org, covered):
                return None
            self._buffer, text = covered[1], None
            if pre:
                fail = {**pre, **fail}
            mlfid = fail.get("mlfid")
            if mlfid is not None:
                fail = self._merge(mlfid, fail, covered[0])
                if fail.get("nofail"):
                    return None
            else:
                if fail.get("nofail"):  # a match that is not a failure
                    return None
                fail["matches"] = fail.get("matches", []) + covered[0]
            if mlfid is None and not any(fail.get(g) is not None for g in ID_GROUPS):
                # the pattern matched without capturing an id (optional groups): fail2ban
                # reports the pattern and tries the next one
                log.debug("filter %s: %r matched but captured no id", flt.name, pattern.source)
                continue
            return self._result(fail, mlfid, pattern, date, number)
        return None

    def _result(
        self,
        fail: dict[str, Any],
        mlfid: str | None,
        pattern: _Pattern,
        date: float | None,
        number: int,
    ) -> LineResult | None:
        fid = fail.get("fid")
        host = next((fail[g] for g in ("ip4", "ip6", "dns") if fail.get(g) is not None), None)
        ident = host if host is not None else fid
        if ident is None:
            if mlfid is not None:  # the connection's address is not known yet
                fail["mlfpending"] = 1
            return None
        users = fail.get("users") or ()
        extra = {
            k: v
            for k, v in fail.items()
            if v is not None
            and k not in _INTERNAL
            and k not in ("user", "users", "fid")
            and not k.startswith("skiplines")
        }
        return LineResult(
            line=number,
            match=True,
            host=host,
            user=fail.get("user"),
            time=date,
            pattern=pattern.source,
            fid=fid if fid is not None else host,
            users=tuple(sorted(users)),
            attempts=len(fail.get("matches", ())),
            fields=extra,
        )

    # -- multi-line failures (<F-MLFID>) -------------------------------------------------

    def _cached(self, mlfid: str) -> dict[str, Any] | None:
        entry = self._mlfid.get(mlfid)
        if entry is None:
            return None
        if entry[1] > time.monotonic():
            return entry[0]
        del self._mlfid[mlfid]
        return None

    def _remember(self, mlfid: str, fail: dict[str, Any]) -> None:
        t = time.monotonic()
        cache = self._mlfid
        if len(cache) >= _MLFID_ENTRIES:  # drop the oldest, expired ones first
            while cache:
                _, (_, expires) = cache.popitem(last=False)
                if expires > t and len(cache) < _MLFID_ENTRIES:
                    break
        cache[mlfid] = (fail, t + _MLFID_SECONDS)

    @staticmethod
    def _add_user(fail: dict[str, Any], user: str | None) -> set[str] | None:
        users: set[str] | None = fail.get("users")
        if user:
            if not users:
                fail["users"] = users = set()
            users.add(user)
        return users

    def _merge(self, mlfid: str, fail: dict[str, Any], matched: list[_Line]) -> dict[str, Any]:
        """Fold this line's groups into what the connection's earlier lines said."""
        nofail = gained = False
        if fail.get("mlfgained"):
            nofail = gained = True
            if not fail.get("nofail"):
                fail["nofail"] = fail["mlfgained"]
        elif fail.get("nofail"):
            nofail = True
        forget = bool(fail.pop("mlfforget", None))
        earlier = self._cached(mlfid)
        users = None
        if earlier is not None:
            users = self._add_user(earlier, fail.get("user"))
            had_state = bool(earlier.pop("nofail", None))
            had_state = bool(earlier.pop("mlfgained", None)) or had_state
            if gained:
                earlier.pop("mlfpending", None)
            if not had_state and not earlier.get("mlfpending", 0):
                earlier.pop("matches", None)  # already reported
            earlier.update((k, v) for k, v in fail.items() if v is not None)
            fail = earlier
            if forget:
                self._mlfid.pop(mlfid, None)
        elif not forget:
            users = self._add_user(fail, fail.get("user"))
            self._remember(mlfid, fail)
        if fail.pop("mlfpending", 0) or (users and len(users) > 1):
            # failures were pending, or several users were tried: this is a failure after all
            fail.pop("nofail", None)
            fail.pop("mlfgained", None)
            nofail = gained = False
        if not nofail:
            lines = fail.pop("nofail-matches", []) + fail.get("matches", [])
            if not gained:
                lines += matched
            fail["matches"] = lines
        elif not forget:
            fail["nofail-matches"] = fail.get("nofail-matches", []) + matched
        return fail
