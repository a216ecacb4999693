"""``bruteguard test``: what a filter makes of each line of a log, as fail2ban-regex shows it.

FILTER is a built-in filter (``sshd``), a fail2ban filter (``fail2ban:sshd``, with options
``fail2ban:sshd[mode=aggressive]``) or a path to a fail2ban filter file. Each line gets a
verdict: matched or not, and the host, user and time the filter found. Built-in filters are
tried one line at a time through the same compiled pass the daemon runs; besides, the whole
log is run through one stream, which counts each attempt once (``attempts``), as the daemon
would. Imported filters run as the daemon runs them: fail2ban's line semantics, multi-line
buffers included, with a time budget per line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from bruteguard.errors import ConfigError
from bruteguard.identity import address_from_log
from bruteguard.match.engine import Matcher
from bruteguard.match.imported import FAIL2BAN_PREFIX, TIMEOUT, imported_filter, is_imported
from bruteguard.match.signatures import FILTERS

__all__ = ["TrialSummary", "Verdict", "filter_spec", "try_filter"]


@dataclass(frozen=True)
class Verdict:
    """What the filter found on one line (1-based ``line``)."""

    line: int
    match: bool
    host: str | None = None  # the address, or the raw name the line carries
    user: str | None = None
    time: float | None = None
    text: str = ""


@dataclass
class TrialSummary:
    lines: int = 0
    matched: int = 0
    attempts: int = 0  # built-in filters: attempts counted once each, as the daemon counts
    timeouts: int = 0  # imported filters: lines a pattern ran out of time on


def filter_spec(name: str, options: Sequence[tuple[str, str]]) -> str:
    """The filter name with ``--opt`` options added as fail2ban's ``NAME[key="value", …]``."""
    if not options:
        return name
    if not is_imported(name):
        raise ConfigError(f"filter {name!r}: built-in filters take no options")
    written = ", ".join(f'{key}="{_quoted(value)}"' for key, value in options)
    if name.endswith("]") and "[" in name:
        return f"{name[:-1]}, {written}]"
    return f"{name}[{written}]"


def _quoted(value: str) -> str:
    if '"' in value or "\n" in value:
        raise ConfigError(f"--opt value {value!r}: may not hold a double quote or a newline")
    return value


def try_filter(
    spec: str, lines: Iterable[bytes], reference: float | None, summary: TrialSummary
) -> Iterator[Verdict]:
    """A verdict per line, in order; ``summary`` is filled as they go."""
    if is_imported(spec):
        yield from _try_imported(spec, lines, reference, summary)
    elif spec in FILTERS:
        yield from _try_builtin(spec, lines, reference, summary)
    else:
        known = ", ".join(sorted(FILTERS))
        raise ConfigError(
            f"unknown filter {spec!r} (built-in filters: {known}; a fail2ban filter is"
            f' "{FAIL2BAN_PREFIX}NAME" or a path)'
        )


def _try_builtin(
    name: str, lines: Iterable[bytes], reference: float | None, summary: TrialSummary
) -> Iterator[Verdict]:
    matcher = Matcher({name: name})
    whole = matcher.stream(reference=reference)
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip(b"\n")
        summary.lines += 1
        in_context = whole.feed(line + b"\n")
        whole.take_named()
        alone = matcher.stream(reference=reference)
        # A session's later line (OpenSMTPD) names its address only through the session's
        # opening line: what it gave in the file's context is its verdict.
        hits = alone.feed(line + b"\n") or in_context
        named = alone.take_named()
        text = line.decode("utf-8", "backslashreplace")
        if not alone.stats.matched:
            yield Verdict(number, False, text=text)
            continue
        first = (hits or named or [None])[0]
        if first is None:  # it names a host and waits for the verdict line (pam's rhost=)
            waiting = alone.last_match()
            if waiting is None:  # no real time (dropped), or no failure (a "Connection from")
                yield Verdict(number, False, text=text)
                continue
            summary.matched += 1
            moment, host, user = waiting
            yield Verdict(number, True, host or None, user, moment, text)
            continue
        summary.matched += 1
        moment, host, user, _jail, _line = first
        yield Verdict(number, True, host or None, user, moment, text)  # "": names no client
    summary.attempts = whole.stats.attempts + whole.stats.unattributed


def _try_imported(
    spec: str, lines: Iterable[bytes], reference: float | None, summary: TrialSummary
) -> Iterator[Verdict]:
    service = imported_filter(spec)
    clock = time.time if reference is None else (lambda: reference)
    matcher = service.matcher(now=clock, timeout=TIMEOUT)
    texts: dict[int, str] = {}
    found: dict[int, Verdict] = {}
    next_out = 1
    last = 0
    for number, raw in enumerate(lines, 1):
        last = number
        summary.lines += 1
        text = raw.rstrip(b"\n").decode("utf-8", "backslashreplace")
        texts[number] = text
        for result in matcher.process(text):
            if result.match or result.line not in found:
                found[result.line] = Verdict(
                    result.line, result.match, result.host, result.user, result.time, ""
                )
        # A multi-line filter may still decide about the last ``maxlines`` lines.
        while next_out <= number - max(service.maxlines, 1):
            yield _finish(next_out, found, texts, summary)
            next_out += 1
    while next_out <= last:
        yield _finish(next_out, found, texts, summary)
        next_out += 1
    summary.timeouts = len(matcher.timeouts)


def _finish(
    number: int, found: dict[int, Verdict], texts: dict[int, str], summary: TrialSummary
) -> Verdict:
    verdict = found.pop(number, None)
    text = texts.pop(number)
    if verdict is None or not verdict.match:
        return Verdict(number, False, text=text)
    summary.matched += 1
    summary.attempts += 1
    host = verdict.host
    if host is not None:  # an address in canonical form, a name as written
        host = address_from_log(host.encode("utf-8", "backslashreplace")) or host
    return Verdict(number, True, host, verdict.user, verdict.time, text)


def log_reference(path: str) -> float | None:
    """A replayed file's year comes from its modification time; standard input: now."""
    return None if path == "-" else os.stat(path).st_mtime
