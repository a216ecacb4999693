"""One compiled pass over a large chunk of log text → attributed, de-duplicated attempts.

Every enabled jail's signatures are joined into a single expression of the form::

    \\n<stamp> [<host> ]<program>[<pid>]: [message repeated N times: [ ]
        ((?|<announce>…)|(?|<confirm>…)|(?|<close>…))[]]$

and run (PCRE2, JIT-compiled) with ``findall`` over the whole chunk: the literal ``\\n`` lets
the engine jump from line start to line start, and ``$`` anchors every signature at the end
of its line.
The loop over the matched lines runs in C (``_core``): timestamp (cached), address (cached),
and the per-connection bookkeeping that makes one attempt count once.

``Matcher`` is the compiled catalogue (share it); ``Stream`` holds the state of one log
(timestamps' reference time, open connections), so feed each source its own stream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bruteguard.identity import address_from_log
from bruteguard.match import _core
from bruteguard.match.signature import HOST, USER, Role, Signature
from bruteguard.match.signatures import get_filter
from bruteguard.match.timestamps import TimestampParser

__all__ = ["Hit", "Matcher", "NamedHit", "Series", "Stream", "StreamStats"]

# A counted attempt: (time, address, user or None, jail, the log line or "").
Hit = tuple[float, str, str | None, str, str]
# An attempt whose line names a host, not an address: (time, name, user, jail, line).
NamedHit = tuple[float, str, str | None, str, str]
# Per jail (in ``Matcher.jails`` order): address → [times as packed doubles, raw user → count].
Series = list[dict[str, list]]

_STAMP = (
    r"([A-Z][a-z]{2} [ 0-3]\d \d\d:\d\d:\d\d(?:\.\d{1,9})?"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)"
)
# The syslog host field; never ending in ":", so that "myapp: sshd[1]: …" (a line of myapp's
# quoting sshd, where rsyslog wrote no host) is not taken for sshd's own line.
_HOSTNAME = r"(?:[^\s\[\]]{0,254}[^\s\[\]:] )?"


@dataclass
class StreamStats:
    """What a stream has seen: for ``scan`` summaries and ``status``."""

    lines: int = 0
    matched: int = 0
    attempts: int = 0
    unattributed: int = 0
    bad_time: int = 0
    too_long: int = 0  # lines over sources.MAX_LINE, skipped (and counted in ``lines``)
    match_errors: int = 0  # lines PCRE2 gave up on (its match limit): skipped


class Matcher:
    """The compiled catalogue for a set of jails (jail name → filter name).

    Signatures of one role share their capture groups through PCRE2's branch reset
    ``(?|…)``, so a matched line yields a tuple of a few groups whatever the size of the
    catalogue, and the role is told by which ``<HOST>`` group is set.

    ``breakin_weights`` (jail → attempts, default 0) makes a filter's ``breakin`` messages
    (sshd's "POSSIBLE BREAK-IN ATTEMPT!": broken reverse DNS, not an attack) count for
    that jail; with 0 they are not even compiled.
    """

    def __init__(
        self,
        jail_filters: Mapping[str, str],
        breakin_weights: Mapping[str, int] | None = None,
    ) -> None:
        if not jail_filters:
            raise ValueError("no jail to match for")
        weights = breakin_weights or {}
        blocks_wanted: list[tuple[str, tuple[Signature, ...], list[str], int]] = []
        by_filter: dict[str, list[str]] = {}
        for jail, filter_name in jail_filters.items():
            by_filter.setdefault(filter_name, []).append(jail)
        for filter_name, jails in by_filter.items():
            service = get_filter(filter_name)
            blocks_wanted.append((filter_name, service.signatures, jails, 1))
            by_weight: dict[int, list[str]] = {}
            for jail in jails:
                if weights.get(jail, 0) > 0:
                    by_weight.setdefault(weights[jail], []).append(jail)
            for weight, weighted in sorted(by_weight.items()):
                if service.breakin:
                    blocks_wanted.append((filter_name, service.breakin, weighted, weight))
        number = 1  # group 1 is the time stamp
        blocks: list[str] = []
        roles: list[_Role] = []
        for f_index, (filter_name, signatures, jails, weight) in enumerate(blocks_wanted):
            programs = "|".join(re.escape(p) for p in get_filter(filter_name).programs)
            pid, repeat = number + 1, number + 2
            number += 2
            sets: list[str] = []
            for role in Role:
                bodies = [_body(s) for s in signatures if s.role is role]
                if not bodies:
                    continue
                sets.append(f"(?|{'|'.join(bodies)})")
                roles.append(
                    _Role(
                        number + 1,
                        number,
                        pid - 1,
                        repeat - 1,
                        role,
                        tuple(jails),
                        weight,
                        get_filter(filter_name).ptr_hosts,
                    )
                )
                number += 2
            # The pid is optional: some services (pure-ftpd) log without one.
            blocks.append(
                f"(?:{programs})(?:\\[(\\d{{1,10}})\\])?: "
                f"(?:message repeated (?<r{f_index}>\\d{{1,6}}) times: \\[ )?"
                f"(?:{'|'.join(sets)})(?(<r{f_index}>)\\])"
            )
        expression = f"(?m)\\n{_STAMP} {_HOSTNAME}(?:{'|'.join(blocks)})$"
        self.pattern = _core.Pattern(expression.encode())
        if self.pattern.groups != number:
            raise AssertionError("signature capture groups miscounted")
        self.jails = tuple(jail_filters)
        self.filters = tuple(jail_filters.values())
        index = {jail: at for at, jail in enumerate(self.jails)}
        # The order a matched line's host groups are tried in: closes first (the commonest
        # matched lines), then verdicts, then announcements. Group numbers are 1-based.
        order = {Role.CLOSE: 0, Role.CONFIRM: 1, Role.ANNOUNCE: 2}
        self._checks = tuple(
            (
                r.host + 1,
                r.user + 1,
                r.pid + 1,
                r.repeat + 1,
                int(r.role),
                r.weight,
                r.ptr_hosts,
                tuple(index[jail] for jail in r.jails),
            )
            for r in sorted(roles, key=lambda r: order[r.role])
        )

    def stream(self, reference: float | None = None, keep_lines: bool = False) -> Stream:
        """A fresh stream; ``reference`` is the replayed file's mtime (None: live clock)."""
        return Stream(self, reference, keep_lines)

    def new_series(self) -> Series:
        """An empty ``Series`` for ``Stream.collect``."""
        return [{} for _ in self.jails]


@dataclass(frozen=True)
class _Role:
    """Where one role's groups sit in a match tuple of one filter block."""

    host: int
    user: int
    pid: int
    repeat: int
    role: Role
    jails: tuple[str, ...]
    weight: int
    ptr_hosts: bool


def _body(signature: Signature) -> str:
    """The signature as ``(user)…(host)`` capture groups, in that order."""
    message = signature.message
    if USER in message and message.index(USER) > message.index(HOST):
        raise ValueError(
            f"signature {signature.name}: <USER> must come before <HOST>"
            " (capture it in a leading lookahead)"
        )
    if _core.Pattern(message.replace(HOST, "").replace(USER, "").encode()).groups:
        raise ValueError(f"signature {signature.name}: use (?:...) groups only")
    body = message.replace(HOST, "(\\S+)")
    return body.replace(USER, "(.*)") if USER in message else "()" + body


class Stream:
    """The matching state of one log: feed it chunks of whole lines, in order.

    The loop over matched lines runs in C (``_core.Stream``); what needs judgement is called
    back and cached: the year of a syslog stamp, local-time ISO stamps, what is an address.
    """

    def __init__(self, matcher: Matcher, reference: float | None, keep_lines: bool) -> None:
        self.matcher = matcher
        self.stats = StreamStats()
        self.keep_lines = keep_lines
        times = TimestampParser(reference)
        self._core = _core.Stream(
            matcher.pattern,
            matcher._checks,
            matcher.jails,
            times.hour_start,
            times.parse,
            address_from_log,
            reference is None,
        )

    def feed(self, chunk: bytes) -> list[Hit]:
        """Attempts in ``chunk`` (whole lines), oldest first, each counted once per jail."""
        hits = self._core.feed(chunk, self.keep_lines)
        self._count()
        return hits

    def collect(self, chunk: bytes, series: Series, users: bool = True) -> None:
        """Like ``feed``, but adds each attempt to ``series`` (see ``Matcher.new_series``).

        A replay needs per address only the times and the users tried (unless ``users`` is
        false), not a tuple per attempt: this is the fast path of ``scan``.
        """
        self._core.collect(chunk, series, users)
        self._count()

    def take_named(self) -> list[NamedHit]:
        """The attempts ``feed`` met since the last call whose line names a host instead of
        an address (pure-ftpd or pam with name resolution on): for the identity stage, which
        ties them to a real connection or reports them unattributed. At most 10,000 are
        kept between calls; all are counted in ``stats.unattributed``."""
        return self._core.take_named()

    def skim(self, chunk: bytes) -> None:
        """Learn the open connections of ``chunk`` without counting anything."""
        self._core.skim(chunk)
        self._core.take_counts()

    def _count(self) -> None:
        lines, matched, attempts, unattributed, bad_time, match_errors = self._core.take_counts()
        stats = self.stats
        stats.lines += lines
        stats.matched += matched
        stats.attempts += attempts
        stats.unattributed += unattributed
        stats.bad_time += bad_time
        stats.match_errors += match_errors
