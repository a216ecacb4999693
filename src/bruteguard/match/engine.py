"""One compiled pass over a large chunk of log text → attributed, de-duplicated attempts.

Every enabled jail's signatures are joined into a single expression of the form::

    \\n<stamp> [<host> ]<program>[<pid>]: [message repeated N times: [ ]
        ((?|<announce>…)|(?|<confirm>…)|(?|<close>…))[]]$

and run (PCRE2, JIT-compiled) with ``findall`` over the whole chunk: the literal ``\\n`` lets
the engine jump from line start to line start, and ``$`` anchors every signature at the end
of its line.
Python then touches only the lines that matched, once each: timestamp (cached), address
(cached), and the per-connection bookkeeping that makes one attempt count once.

``Matcher`` is the compiled catalogue (share it); ``Stream`` holds the state of one log
(timestamps' reference time, open connections), so feed each source its own stream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pcre

from bruteguard.identity import AddressBook
from bruteguard.match.signature import HOST, USER, Role, Signature
from bruteguard.match.signatures import get_filter
from bruteguard.match.timestamps import TimestampParser

__all__ = ["Hit", "Matcher", "Stream", "StreamStats"]

# A counted attempt: (time, address, user or None, jail, the log line or "").
Hit = tuple[float, str, str | None, str, str]

_STAMP = (
    r"([A-Z][a-z]{2} [ 0-3]\d \d\d:\d\d:\d\d(?:\.\d{1,9})?"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)"
)
_HOSTNAME = r"(?:[^\s\[\]]{1,255} )?"
# sshd restarts a pid's bookkeeping after this long without a line (LoginGraceTime is 2 min).
_CONNECTION_IDLE = 600.0
_STATE_LIMIT = 500_000


@dataclass
class StreamStats:
    """What a stream has seen: for ``scan`` summaries and ``status``."""

    lines: int = 0
    matched: int = 0
    attempts: int = 0
    unattributed: int = 0
    bad_time: int = 0


class Matcher:
    """The compiled catalogue for a set of jails (jail name → filter name).

    Signatures of one role share their capture groups through PCRE2's branch reset
    ``(?|…)``, so a matched line yields a tuple of a few groups whatever the size of the
    catalogue, and the role is told by which ``<HOST>`` group is set.
    """

    def __init__(self, jail_filters: Mapping[str, str]) -> None:
        if not jail_filters:
            raise ValueError("no jail to match for")
        by_filter: dict[str, list[str]] = {}
        for jail, filter_name in jail_filters.items():
            by_filter.setdefault(filter_name, []).append(jail)
        number = 1  # group 1 is the time stamp
        blocks: list[str] = []
        roles: list[_Role] = []
        for f_index, (filter_name, jails) in enumerate(by_filter.items()):
            service = get_filter(filter_name)
            programs = "|".join(re.escape(p) for p in service.programs)
            pid, repeat = number + 1, number + 2
            number += 2
            sets: list[str] = []
            for role in Role:
                bodies = [_body(s) for s in service.signatures if s.role is role]
                if not bodies:
                    continue
                sets.append(f"(?|{'|'.join(bodies)})")
                roles.append(_Role(number + 1, number, pid - 1, repeat - 1, role, tuple(jails)))
                number += 2
            blocks.append(
                f"(?:{programs})\\[(\\d{{1,10}})\\]: "
                f"(?:message repeated (?<r{f_index}>\\d{{1,6}}) times: \\[ )?"
                f"(?:{'|'.join(sets)})(?(<r{f_index}>)\\])"
            )
        self.pattern = pcre.compile(f"(?m)\\n{_STAMP} {_HOSTNAME}(?:{'|'.join(blocks)})$".encode())
        if self.pattern.groups != number:
            raise AssertionError("signature capture groups miscounted")
        # The order a matched row's host groups are tried in: closes first (the commonest
        # matched lines), then verdicts, then announcements.
        order = {Role.CLOSE: 0, Role.CONFIRM: 1, Role.ANNOUNCE: 2}
        self._checks = tuple(
            (r.host, r.user, r.pid, r.repeat, int(r.role), r.jails)
            for r in sorted(roles, key=lambda r: order[r.role])
        )

    def stream(self, reference: float | None = None, keep_lines: bool = False) -> Stream:
        """A fresh stream; ``reference`` is the replayed file's mtime (None: live clock)."""
        return Stream(self, reference, keep_lines)


@dataclass(frozen=True)
class _Role:
    """Where one role's groups sit in a match tuple of one filter block."""

    host: int
    user: int
    pid: int
    repeat: int
    role: Role
    jails: tuple[str, ...]


def _body(signature: Signature) -> str:
    """The signature as ``(user)…(host)`` capture groups, in that order."""
    message = signature.message
    if USER in message and message.index(USER) > message.index(HOST):
        raise ValueError(
            f"signature {signature.name}: <USER> must come before <HOST>"
            " (capture it in a leading lookahead)"
        )
    if pcre.compile(message.replace(HOST, "").replace(USER, "")).groups:
        raise ValueError(f"signature {signature.name}: use (?:...) groups only")
    body = message.replace(HOST, "(\\S+)")
    return body.replace(USER, "(.*)") if USER in message else "()" + body


class Stream:
    """The matching state of one log: feed it chunks of whole lines, in order."""

    def __init__(self, matcher: Matcher, reference: float | None, keep_lines: bool) -> None:
        self.matcher = matcher
        self.stats = StreamStats()
        self.keep_lines = keep_lines
        self._times = TimestampParser(reference)
        self._addresses = AddressBook()
        # pid → [host, last seen, attempt announced and not yet confirmed, anything counted]
        self._connections: dict[bytes, list] = {}

    def feed(self, chunk: bytes) -> list[Hit]:
        """Attempts in ``chunk`` (whole lines), oldest first, each counted once per jail."""
        pattern = self.matcher.pattern
        roles = self.matcher._checks
        announce, confirm, close = int(Role.ANNOUNCE), int(Role.CONFIRM), int(Role.CLOSE)
        keep_lines = self.keep_lines
        parse_time = self._times.parse
        address_of = self._addresses.address
        connections = self._connections
        hits: list[Hit] = []
        append = hits.append
        last_stamp = None
        moment = 0.0
        bad_time = unattributed = 0
        text = b"\n" + chunk
        if keep_lines:
            rows = [(*m.groups(), m.group(0)[1:]) for m in pattern.finditer(text)]
        else:
            rows = pattern.findall(text)
        for groups in rows:
            for role_at in roles:
                host = groups[role_at[0]]
                if host:
                    break
            _host_at, user_at, pid_at, repeat_at, role, jails = role_at
            stamp = groups[0]
            if stamp != last_stamp:
                parsed = parse_time(stamp)
                if parsed is None:
                    bad_time += 1
                    continue
                moment = parsed
                last_stamp = stamp
            pid = groups[pid_at]
            state = connections.get(pid)
            if (
                role == close
                and state is not None
                and state[3]
                and state[0] == host
                and moment - state[1] <= _CONNECTION_IDLE
            ):
                continue  # the commonest line: a connection that already counted ends
            repeat = groups[repeat_at]
            count = int(repeat) if repeat else 1
            if state is None or state[0] != host or moment - state[1] > _CONNECTION_IDLE:
                if len(connections) >= _STATE_LIMIT:
                    connections.clear()
                state = connections[pid] = [host, moment, False, False]
            else:
                state[1] = moment
            if role == confirm:
                if state[2]:  # the announced attempt's verdict: already counted
                    state[2] = False
                    count -= 1
                    if not count:
                        continue
            elif role == announce:
                if state[2]:
                    continue
                state[2] = True
            elif state[3]:  # a close, after something of this connection counted
                continue
            else:
                count = 1
            state[3] = True
            address = address_of(host)
            if address is None:
                unattributed += count
                continue
            raw_user = groups[user_at]
            user = raw_user.decode("utf-8", "backslashreplace") if raw_user else None
            line = groups[-1].decode("utf-8", "backslashreplace") if keep_lines else ""
            for jail in jails:
                hit = (moment, address, user, jail, line)
                for _ in range(count):
                    append(hit)
        stats = self.stats
        stats.lines += chunk.count(b"\n")
        stats.matched += len(rows)
        stats.attempts += len(hits)
        stats.bad_time += bad_time
        stats.unattributed += unattributed
        return hits
