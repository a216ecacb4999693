"""One compiled pass over a large chunk of log text → attributed, de-duplicated attempts.

Every enabled jail's signatures are joined into a single expression: one alternative per
log format (a ``Frame``: syslog, a service's own log file), each with its filters'
signatures, roughly::

    \\n(?:<syslog head><program>[<pid>]: [message repeated N times: [ ]((?|<announce>…)|…)[]]
       |<nginx head>(?|<signatures>…)|…)$

and run (PCRE2, JIT-compiled) with ``findall`` over the whole chunk: the literal ``\\n`` lets
the engine jump from line start to line start, and ``$`` anchors every signature at the end
of its line. The loop over the matched lines runs in C (``_core``): timestamp (cached, in
each frame's spelling), address (cached), and the per-connection bookkeeping that makes one
attempt count once. Jails with fail2ban filters run beside it on the same chunks
(``match.imported``).

``Matcher`` is the compiled catalogue (share it); ``Stream`` holds the state of one log
(timestamps' reference time, open connections), so feed each source its own stream.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bruteguard.identity import address_from_log
from bruteguard.match import _core, dispatch
from bruteguard.match.imported import ImportedStream, add_to_series, imported_filter, is_imported
from bruteguard.match.signature import (
    ADDR,
    COUNT,
    HOST,
    SAME_USER,
    SESSION,
    SYSLOG,
    USER,
    Frame,
    Role,
    Signature,
    Stamp,
    program_regex,
)
from bruteguard.match.signatures import get_filter
from bruteguard.match.timestamps import TimestampParser

__all__ = ["Hit", "Matcher", "NamedHit", "Series", "Stream", "StreamStats"]

# A counted attempt: (time, address, user or None, jail, the log line or "").
Hit = tuple[float, str, str | None, str, str]
# An attempt whose line names a host, not an address: (time, name, user, jail, line).
NamedHit = tuple[float, str, str | None, str, str]
# Per jail (in ``Matcher.jails`` order): address → [times as packed doubles, raw user → count];
# then one more dict: address → attempts that lines shared by several jails (sshd's scanner
# lines are sshd-ddos's too) added beyond their first jail, so a table shows each once.
Series = list[dict]


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

    Signatures share their capture groups through PCRE2's branch reset ``(?|…)``, so a
    matched line yields a few groups whatever the size of the catalogue, and the set that
    matched (its role, jails, groups) is told by the ``(*MARK)`` it starts with.

    ``breakin_weights`` (jail → attempts, default 0) makes a filter's ``breakin`` messages
    (sshd's "POSSIBLE BREAK-IN ATTEMPT!": broken reverse DNS, not an attack) count for
    that jail; with 0 they are not even compiled.

    A jail whose filter is a fail2ban filter file (``fail2ban:sshd``, a path) is matched
    beside the compiled pass, line by line (``match.imported``); a matcher of only such
    jails compiles nothing.
    """

    def __init__(
        self,
        jail_filters: Mapping[str, str],
        breakin_weights: Mapping[str, int] | None = None,
    ) -> None:
        if not jail_filters:
            raise ValueError("no jail to match for")
        # Built-in jails first: the compiled pass indexes the series by these positions.
        builtin = {j: f for j, f in jail_filters.items() if not is_imported(f)}
        imported = {j: f for j, f in jail_filters.items() if is_imported(f)}
        self.jails = (*builtin, *imported)
        self.filters = tuple({**builtin, **imported}.values())
        index = {jail: at for at, jail in enumerate(self.jails)}
        by_filter: dict[str, list[tuple[int, str]]] = {}
        for jail, filter_name in imported.items():
            by_filter.setdefault(filter_name, []).append((index[jail], jail))
        self.imported = tuple(
            (imported_filter(filter_name), tuple(jails)) for filter_name, jails in by_filter.items()
        )
        self.pattern: _core.Pattern | None = None
        self._checks: tuple = ()
        if builtin:
            self._compile(builtin, breakin_weights or {}, index)

    def _compile(
        self, jail_filters: Mapping[str, str], weights: Mapping[str, int], index: dict[str, int]
    ) -> None:
        builder = _Builder()
        for frame, blocks in _plan(jail_filters, weights).items():
            builder.frame(frame, blocks)
        parts = _parts(builder.units, _compiles)
        body = _syslog_body(builder.units, parts)
        self.pattern = _core.Pattern(tuple(parts), *([body] if body else []))
        if self.pattern.groups != builder.groups:
            raise AssertionError("signature capture groups miscounted")
        # A match's mark is its check's index in this tuple.
        self._checks = tuple(
            (
                c.host,
                c.user,
                c.pid,
                c.repeat,
                c.count,
                int(c.role),
                c.weight,
                c.ptr_hosts,
                tuple(index[jail] for jail in c.jails),
                int(c.stamp_kind),
                c.keyed,
                int(c.waits),
            )
            for c in builder.checks
        )

    def stream(self, reference: float | None = None, keep_lines: bool = False) -> Stream:
        """A fresh stream; ``reference`` is the replayed file's mtime (None: live clock)."""
        return Stream(self, reference, keep_lines)

    def new_series(self) -> Series:
        """An empty ``Series`` for ``Stream.collect`` (one dict per jail, one shared)."""
        return [{} for _ in self.jails] + [{}]


@dataclass(frozen=True)
class _Block:
    """Messages of one log format and program set, for one set of jails and one weight."""

    programs: tuple[str, ...]
    signatures: tuple[Signature, ...]
    jails: tuple[str, ...]
    weight: int
    ptr_hosts: bool


@dataclass(frozen=True)
class _Check:
    """Where one set of signatures' groups sit in a match (1-based; 0: no such group)."""

    host: int
    user: int
    pid: int
    repeat: int
    count: int
    role: Role
    weight: int
    ptr_hosts: bool
    jails: tuple[str, ...]
    stamp_kind: Stamp
    keyed: int = 0  # Signature.keyed: 1: ``pid`` is a <SESSION> group (hexadecimal)
    waits: bool = False


def _plan(jail_filters: Mapping[str, str], weights: Mapping[str, int]) -> dict[Frame, list[_Block]]:
    """The blocks to compile, by log format.

    Filters that share a frame and program names share a block; inside it each signature
    counts for every jail whose filter has it (``sshd-ddos`` is a subset of ``sshd``: a
    line matches one alternative only, so the two filters can't be separate alternatives).
    A filter's ``breakin`` messages form a block per weight, for the jails that weigh them.
    """
    # (frame, programs) → signature → (its jails, whether any of their filters writes PTRs)
    owners: dict[tuple[Frame, tuple[str, ...]], dict[Signature, tuple[list[str], bool]]] = {}
    breakins: list[tuple[Frame, _Block]] = []
    for jail, filter_name in jail_filters.items():
        for form in get_filter(filter_name).forms():
            signatures = owners.setdefault((form.frame, form.programs), {})
            for signature in form.signatures:
                jails, ptr_hosts = signatures.get(signature, ([], False))
                signatures[signature] = ([*jails, jail], ptr_hosts or form.ptr_hosts)
            weight = weights.get(jail, 0)
            if form.breakin and weight > 0:
                block = _Block(form.programs, form.breakin, (jail,), weight, form.ptr_hosts)
                breakins.append((form.frame, block))
    plan: dict[Frame, list[_Block]] = {}
    for (frame, programs), signatures in owners.items():
        sharing: dict[tuple[tuple[str, ...], bool], list[Signature]] = {}
        for signature, (jails, ptr_hosts) in signatures.items():
            sharing.setdefault((tuple(jails), ptr_hosts), []).append(signature)
        for (jails, ptr_hosts), members in sharing.items():
            plan.setdefault(frame, []).append(_Block(programs, tuple(members), jails, 1, ptr_hosts))
    for frame, block in breakins:
        plan.setdefault(frame, []).append(block)
    return plan


# Whether one expression compiles within PCRE2's limits (a test may make the limit smaller).
_compiles: Callable[[bytes], bool] = _core.compiles
# How a frame's signatures ((check index, expression), in order) become alternatives: a test
# compares the dispatched form with the plain one.
_alternatives: Callable[[Sequence[tuple[int, str]]], str] = dispatch.by_first_byte


@dataclass(frozen=True)
class _Unit:
    """One frame's run of blocks with the same programs: what the expression's parts are
    made of."""

    frame: Frame
    programs: tuple[str, ...]
    body: str


def _expression(units: Sequence[_Unit]) -> str:
    """The expression of ``units``: one alternative per frame (in the units' order), each its
    head, then for syslog frames a gate of every program name (most lines of a syslog file
    are other programs': they are turned away before any block is tried), then its units."""
    frames: dict[Frame, list[_Unit]] = {}
    for unit in units:
        frames.setdefault(unit.frame, []).append(unit)
    alternatives = [
        f"{frame.head}{_after_head(frame, members)}" for frame, members in frames.items()
    ]
    # Blanks some relays leave at a line's end are no part of any message.
    return f"(?m)\\n(?|{'|'.join(alternatives)})[ \\t]*+$"


def _after_head(frame: Frame, members: Sequence[_Unit], gated: bool = True) -> str:
    """What follows a frame's head: for syslog frames a gate of every program name (most
    lines of a syslog file are other programs': they are turned away before any block is
    tried), then its units. The gate only saves time: each unit reads its program names
    again."""
    gate = ""
    if frame.programs and gated:
        names = sorted({p for unit in members for p in unit.programs}, key=len, reverse=True)
        gate = f"(?=\\[?(?:{'|'.join(program_regex(p) for p in names)})[\\[: \\]])"
    bodies = "|".join(unit.body for unit in members)
    return f"{gate}(?|{bodies})"


def _syslog_body(units: Sequence[_Unit], parts: Sequence[bytes]) -> bytes | None:
    """The expression after the syslog head, when ``parts`` is one expression of syslog
    lines only: ``_core`` then reads the head in C (what PCRE2 spent most of a line on) and
    runs this anchored after it. An empty group stands for the head's stamp (group 1), so
    the groups keep their numbers; None for any other catalogue (the whole expression
    runs)."""
    if len(parts) != 1 or any(unit.frame is not SYSLOG for unit in units):
        return None
    # With a unit or two (the sshd jail), trying each one's program names costs less than
    # the gate in front of them: ~75 instructions a line of the benchmark log.
    gated = len(units) > _GATELESS_UNITS
    return f"(?m)\\G()(?|{_after_head(SYSLOG, units, gated)})[ \\t]*+$".encode()


_GATELESS_UNITS = 2


def _parts(units: Sequence[_Unit], compiles: Callable[[bytes], bool]) -> list[bytes]:
    """The expressions to search together: one when it compiles, else the units halved
    until each part does (PCRE2 compiles at most 64 KiB; a large catalogue needs more)."""
    expression = _expression(units).encode()
    if len(units) == 1 or compiles(expression):
        return [expression]
    half = len(units) // 2
    return _parts(units[:half], compiles) + _parts(units[half:], compiles)


class _Builder:
    """Writes the expression and records one check per set of signatures.

    Frames, blocks and sets are alternatives of branch-reset groups ``(?|…)``, so every
    alternative numbers its groups from the same place: the stamp is group 1 everywhere,
    a syslog block's pid and repeat count are 2 and 3, and a set's placeholders follow. A
    match thus has a handful of groups however large the catalogue, and PCRE2 copies only
    those. Each set starts with ``(*MARK:N)``: N, read back after the match, is the index of
    its check (which groups are its host, user and count; its role, jails and stamp).
    """

    def __init__(self) -> None:
        self.groups = 1
        self.units: list[_Unit] = []
        self.checks: list[_Check] = []

    def frame(self, frame: Frame, blocks: list[_Block]) -> None:
        if _core.Pattern(frame.head.encode()).groups != 1:
            raise ValueError(f"frame {frame.name}: its head needs exactly one group (the stamp)")
        # Blocks with the same programs share one "PROGRAM[PID]: " prefix (and weight).
        runs: dict[tuple[tuple[str, ...], int], list[_Block]] = {}
        for block in blocks:
            runs.setdefault((block.programs, block.weight), []).append(block)
        for (programs, _weight), members in runs.items():
            if frame.programs:
                names = "|".join(program_regex(p) for p in programs)
                sets = self._sets(members, frame.stamp, pid=2, repeat=3, first=4)
                body = (
                    f"\\[?(?:{names}){_PROGRAM_TAIL}{_SOLARIS_ID}"
                    f"(?:message repeated (\\d{{1,6}}) times: \\[ )?(?|{sets})(?(3)\\])"
                )
            else:
                body = f"(?|{self._sets(members, frame.stamp, pid=0, repeat=0, first=2)})"
            self.units.append(_Unit(frame, programs, body))

    def _sets(self, blocks: list[_Block], kind: Stamp, *, pid: int, repeat: int, first: int) -> str:
        """One set per block, role, placeholder layout, waiting and keying, as alternatives; a
        set's signatures share its groups (numbered from ``first``) through branch reset.
        The alternatives are dispatched on the message's first byte (``match.dispatch``)."""
        entries: list[tuple[int, str]] = []  # (its set's check, signature), in order
        for block in blocks:
            for role in Role:
                layouts: dict[tuple[tuple[str, ...], bool, int], list[str]] = {}
                for signature in block.signatures:
                    if signature.role is role:
                        layout, body = _body(signature)
                        key = (layout, signature.waits, signature.keyed)
                        layouts.setdefault(key, []).append(body)
                for (layout, waits, keyed), bodies in layouts.items():
                    if keyed >= 2 and not pid:
                        raise ValueError(f"{role.name} lines keyed by a pid, in a log without")
                    groups = {name: first + at for at, name in enumerate(layout)}
                    self.groups = max(self.groups, first + len(layout) - 1)
                    entries += [(len(self.checks), body) for body in bodies]
                    # A session id, where the service writes one, tells its connections
                    # apart (and names the address of lines without a host).
                    session = groups.get(SESSION, 0)
                    self.checks.append(
                        _Check(
                            groups.get(HOST, 0),  # 0: address-less, or the session's
                            groups.get(USER, 0),
                            session or pid,
                            repeat,
                            groups.get(COUNT, 0),
                            role,
                            block.weight,
                            block.ptr_hosts,
                            block.jails,
                            kind,
                            keyed,
                            waits,
                        )
                    )
        return _alternatives(entries)


# What follows a syslog program name, its pid (if any) in group 2: "[pid]: " (and rsyslog
# 8's "[pid] " with no colon), ": ", metalog's "] " (Gentoo: "[sshd] " after the stamp, no
# host, no pid; "[sshd]: " before 2004), or RFC 5424's " PROCID MSGID STRUCTURED-DATA "
# (PROCID "-" when none; the structured data "-" or "[…]" elements, whose quoted values
# may hold a "]" some writers leave unescaped; a UTF-8 BOM may open the message).
_PROGRAM_TAIL = (
    r"(?|\[(\d{1,10})\]:? |: "
    r"| (?:(\d{1,10})|-) [!-~]{1,32}"
    r" (?:-|(?:\[(?:[^\]\"\\\n]++|\"(?:[^\"\\\n]++|\\.)*+\"|\\.)*+\])++) (?:\xef\xbb\xbf)?"
    r"|\]:? )"
)
# Solaris syslogd's message id and facility.level before the message ("[ID 800047
# auth.info] ").
_SOLARIS_ID = r"(?:\[ID \d{1,10} [a-z0-9]{1,12}\.[a-z]{1,8}\] )?"
_PLACEHOLDER = re.compile(
    "|".join(re.escape(p) for p in (HOST, ADDR, USER, COUNT, SESSION, SAME_USER))
)
# <ADDR> is the host group too, limited to what an address is written with (possessive):
# for messages where no fixed text right after the address pins where it ends.
_GROUP_OF = {
    HOST: "(\\S+)",
    ADDR: "([0-9A-Fa-f:.]{2,45}+)",
    USER: "(.*)",
    COUNT: "(\\d{1,6})",
    SESSION: "([0-9A-Fa-f]{1,16})",
}
# A <USER> that a literal blank follows can only end before a blank: taking it a word at a
# time (each word possessive) tries the same ends as "(.*)", the last first, so it matches
# and captures the same, with one backtracking step per word instead of one per byte.
_USER_BEFORE_BLANK = "([^ \\n]*+(?: [^ \\n]*+)*)"
# The same ends, first to last: for a signature whose user can end at one place only
# (``Signature.user_ends_once``) it is the place the greedy loop finds, reached without
# taking every word to the line's end and giving them back (~285 instructions a line of
# the benchmark log: a third of sshd's lines name a user).
_USER_ENDING_ONCE = "([^ \\n]*+(?: [^ \\n]*+)*?)"


def _body(signature: Signature) -> tuple[tuple[str, ...], str]:
    """The signature's placeholders in the order they are written, and its expression with
    each placeholder a capture group (``<USER=>``: a back-reference to the user's group,
    relative, since the set's groups are numbered later; a signature may also write a
    relative back-reference such as ``\\g{-2}`` itself, as Gitea's repeated user name does)."""
    message = signature.message
    layout = tuple(
        HOST if found.group() == ADDR else found.group()
        for found in _PLACEHOLDER.finditer(message)
        if found.group() != SAME_USER
    )
    opened: list[str] = []

    def group(found: re.Match[str]) -> str:
        if found.group() == SAME_USER:
            return f"\\g{{-{len(opened) - opened.index(USER)}}}"
        opened.append(found.group())
        after = message[found.end() : found.end() + 2]
        if found.group() == USER and after[:1] == " " and after[1:] not in ("?", "*", "+", "{"):
            return _USER_ENDING_ONCE if signature.user_ends_once else _USER_BEFORE_BLANK
        return _GROUP_OF[found.group()]

    body = _PLACEHOLDER.sub(group, message)
    if _core.Pattern(body.encode()).groups != len(layout):
        raise ValueError(f"signature {signature.name}: use (?:...) groups only")
    return layout, body


class Stream:
    """The matching state of one log: feed it chunks of whole lines, in order.

    The loop over matched lines runs in C (``_core.Stream``); what needs judgement is called
    back and cached: the year of a syslog stamp, local-time ISO stamps, what is an address.
    Imported fail2ban filters run beside it on the same chunks (``ImportedStream``).
    """

    def __init__(self, matcher: Matcher, reference: float | None, keep_lines: bool) -> None:
        self.matcher = matcher
        self.stats = StreamStats()
        self.keep_lines = keep_lines
        self._core = None
        if matcher.pattern is not None:
            times = TimestampParser(reference)
            self._core = _core.Stream(
                matcher.pattern,
                matcher._checks,
                matcher.jails,
                times.hour_start,
                times.parse,
                address_from_log,
                reference is None,
                plain_addresses=True,  # address_from_log's answer for plain text, read in C
            )
        self._imported = [
            ImportedStream(service, jails, reference, keep_lines)
            for service, jails in matcher.imported
        ]

    def feed(self, chunk: bytes | memoryview, imported: bool = True) -> list[Hit]:
        """Attempts in ``chunk`` (whole lines), oldest first, each counted once per jail.

        ``imported=False``: the compiled pass only; the caller runs ``imported_streams``
        itself (the daemon, on threads of their own: ``slow_lane``)."""
        hits: list[Hit] = self._core.feed(chunk, self.keep_lines) if self._core else []
        if imported and self._imported:
            chunk = bytes(chunk)  # a view (``scan.Chunks``): the filters split bytes
            more: list[Hit] = []
            jails = self.matcher.jails
            for imported in self._imported:
                imported.run(chunk, lambda i, t, a, u, line: more.append((t, a, u, jails[i], line)))
            if more:
                hits = sorted([*hits, *more], key=_time_of)
        self._count(imported)
        return hits

    @property
    def imported_streams(self) -> tuple[ImportedStream, ...]:
        """The fail2ban filters that run beside the compiled pass (one per filter)."""
        return tuple(self._imported)

    def collect(self, chunk: bytes | memoryview, series: Series, users: bool = True) -> None:
        """Like ``feed``, but adds each attempt to ``series`` (see ``Matcher.new_series``).

        A replay needs per address only the times and the users tried (unless ``users`` is
        false), not a tuple per attempt: this is the fast path of ``scan``.
        """
        if self._core:
            self._core.collect(chunk, series, users)
        if self._imported:
            chunk = bytes(chunk)  # a view (``scan.Chunks``): the filters split bytes
        for imported in self._imported:
            imported.run(chunk, _series_sink(series, imported, users))
        self._count()

    def take_named(self, imported: bool = True) -> list[NamedHit]:
        """The attempts ``feed`` met since the last call whose line names a host instead of
        an address (pure-ftpd or pam with name resolution on): for the identity stage, which
        ties them to a real connection or reports them unattributed. At most 10,000 are
        kept between calls; all are counted in ``stats.unattributed``. ``imported=False``:
        the compiled pass's only (the imported filters' are their own thread's to take)."""
        named: list[NamedHit] = self._core.take_named() if self._core else []
        if imported:
            for stream in self._imported:
                named += stream.take_named()
        return named

    def last_match(self) -> tuple[float, str, str | None] | None:
        """(time, host text, user) of the last line the compiled pass matched, whatever it
        counted (an announcement naming a host counts nothing until its verdict): what
        ``bruteguard test`` shows for that line."""
        found = self._core.last_match() if self._core else None
        if found is None:
            return None
        moment, host, user = found
        decode = lambda raw: raw.decode("utf-8", "backslashreplace")  # noqa: E731
        return moment, decode(host), None if user is None else decode(user)

    def skim(self, chunk: bytes | memoryview) -> None:
        """Learn the open connections of ``chunk`` without counting anything."""
        if self._core:
            self._core.skim(chunk)
            self._core.take_counts()
        if self._imported:
            chunk = bytes(chunk)  # a view (``scan.Chunks``): the filters split bytes
        for imported in self._imported:  # its multi-line buffers, its last date template
            imported.run(chunk, lambda *_: None)
            imported.take_named()
            imported.take_counts()

    def _count(self, imported: bool = True) -> None:
        """Add what the passes counted to ``stats`` (the imported filters' counts are theirs
        to take when they run elsewhere)."""
        counts = [self._core.take_counts()] if self._core else []
        if imported:
            counts += [stream.take_counts() for stream in self._imported]
        if not counts:
            return
        stats = self.stats
        # Every matcher reads every line: count the lines once.
        stats.lines += counts[0][0]
        for _, matched, attempts, unattributed, bad_time, match_errors in counts:
            stats.matched += matched
            stats.attempts += attempts
            stats.unattributed += unattributed
            stats.bad_time += bad_time
            stats.match_errors += match_errors


def _time_of(hit: Hit) -> float:
    return hit[0]


def _series_sink(
    series: Series, imported: ImportedStream, users: bool
) -> Callable[[int, float, str, str | None, str], None]:
    """An imported filter's attempts into ``series`` as the compiled pass adds its own:
    users for the first of its jails only, the other jails' copies counted as shared."""
    shared, extra, first = series[-1], imported.jail_count - 1, imported.first_index

    def sink(index: int, moment: float, address: str, user: str | None, _line: str) -> None:
        add_to_series(series, index, moment, address, user if users and index == first else None)
        if extra and index == first:
            shared[address] = shared.get(address, 0) + extra

    return sink
