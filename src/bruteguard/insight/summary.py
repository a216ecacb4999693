"""The numbers an admin looks at: attempts over time, who attacks (addresses, networks,
network owners, countries, ASes), which users, what was banned and what the abuse desk did.

One ``Summary`` is computed either from the ledger (``from_ledger``: what the daemon saw and
decided) or from a replay of logs (``from_scan``). The report, the dashboard and ``top``
all show a ``Summary``; none of them reads a detector's state.
"""

from __future__ import annotations

import bisect
import math
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec

from bruteguard import detect
from bruteguard.insight.geo import Geo
from bruteguard.match import _core
from bruteguard.model import Ban

__all__ = [
    "AttemptTimes",
    "Count",
    "Summary",
    "Timeline",
    "bucket_for",
    "collect",
    "from_ledger",
    "from_scan",
    "network_of",
    "scan",
]

# Bucket widths a time axis may use: the first giving at most ``_MAX_BUCKETS`` buckets.
_WIDTHS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
_MAX_BUCKETS = 200
# How many cached networks starting before an address are tried (nested allocations).
_OVERLAPS = 16


class Count(msgspec.Struct, frozen=True):
    """One row of a ranking: an address, network, owner, country, user … and its count."""

    label: str
    count: int


class Timeline(msgspec.Struct, frozen=True):
    """Counts per bucket (``Summary.start`` + i * ``Summary.bucket``) of one series."""

    name: str
    counts: list[int]


class Summary(msgspec.Struct, kw_only=True):
    """What happened between ``start`` and ``end`` (POSIX seconds)."""

    origin: str  # "ledger" or "scan"
    start: float
    end: float
    bucket: float  # seconds per timeline bucket
    lines: int | None  # log lines read (a replay only: the ledger keeps failures, not lines)
    failures: int  # each attempt once, however many jails counted it
    per_jail: dict[str, int]
    addresses: int  # distinct attacking addresses
    attempts: list[Timeline]  # per jail
    bans: int
    bans_over_time: list[Timeline]  # per jail
    ban_steps: list[Count]  # "1", "2" …: the n-th ban of the same target (escalation)
    top_addresses: list[Count]
    top_networks: list[Count]  # IPv4 /24, IPv6 /64
    top_owners: list[Count]  # network owners from the abuse desk's RDAP cache
    top_countries: list[Count]
    top_asns: list[Count]
    users: list[Count]
    cases: list[Count]  # abuse cases by state


def bucket_for(start: float, end: float) -> float:
    """A round bucket width giving at most ``_MAX_BUCKETS`` buckets over the span."""
    span = max(end - start, 1.0)
    for width in _WIDTHS:
        if span / width <= _MAX_BUCKETS:
            return float(width)
    return float(math.ceil(span / _MAX_BUCKETS / 86400) * 86400)


def _axis(start: float, end: float) -> tuple[float, float, int]:
    """(first bucket's start, bucket width, bucket count) covering ``start``…``end``."""
    width = bucket_for(start, end)
    first = math.floor(start / width) * width
    return first, width, int((end - first) // width) + 1


def network_of(address: str) -> str:
    """The /24 of an IPv4 address, the /64 of an IPv6 one (as a CIDR text); other text
    as it is."""
    try:
        return detect.network_of(address, 64 if ":" in address else 24)
    except ValueError:
        return address


def _ranked(counts: Mapping[str, int], top: int) -> list[Count]:
    """The ``top`` largest counts, most first, ties by label."""
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [Count(label, count) for label, count in rows[:top]]


class _Owners:
    """Network owners by address from the RDAP cache (the ``contacts`` table): one read of
    the table, then a bisect per address."""

    def __init__(self, rows: Iterable[tuple[bytes, bytes, str]]) -> None:
        from bruteguard.abuse.contact import NetworkContact

        spans: list[tuple[bytes, bytes, str]] = []
        for lo, hi, data in rows:
            try:
                contact = msgspec.json.decode(data, type=NetworkContact)
            except msgspec.DecodeError:
                continue
            name = contact.name or (f"AS{contact.asn}" if contact.asn else "")
            if name:
                spans.append((bytes(lo), bytes(hi), name))
        spans.sort()
        self._los = [lo for lo, _, _ in spans]
        self._spans = spans

    def __bool__(self) -> bool:
        return bool(self._spans)

    def owner(self, address: str) -> str | None:
        from bruteguard.store.cases import _key

        try:
            key = _key(address)
        except ValueError:
            return None
        index = bisect.bisect_right(self._los, key) - 1
        # the narrowest network starting at or before it; a few wider ones may hold it too
        for lo, hi, name in reversed(self._spans[max(index - _OVERLAPS, 0) : index + 1]):
            if lo <= key <= hi:
                return name
        return None


def _owners_of(store: Any) -> _Owners:
    if store is None:
        return _Owners(())
    with store.read("read the RDAP cache") as db:
        return _Owners(db.execute("SELECT lo, hi, data FROM contacts").fetchall())


def _cases_of(store: Any) -> list[Count]:
    if store is None:
        return []
    with store.read("count abuse cases") as db:
        rows = db.execute("SELECT state, count(*) FROM cases GROUP BY state").fetchall()
    return _ranked(dict(rows), len(rows))


def _who(
    by_address: Mapping[str, int], top: int, geo: Geo | None, owners: _Owners
) -> dict[str, list[Count]]:
    """The rankings by address, network, owner, country and AS (weighted by attempts)."""
    networks: Counter[str] = Counter()
    countries: Counter[str] = Counter()
    asns: Counter[str] = Counter()
    named: Counter[str] = Counter()
    for address, count in by_address.items():
        networks[network_of(address)] += count
        if geo is not None:
            country, asn = geo.locate(address)
            countries[country] += count
            if asn:
                asns[asn] += count
        if owners:
            name = owners.owner(address)
            if name:
                named[name] += count
    return {
        "top_addresses": _ranked(by_address, top),
        "top_networks": _ranked(networks, top),
        "top_owners": _ranked(named, top),
        "top_countries": _ranked(countries, top),
        "top_asns": _ranked(asns, top),
    }


def _ban_timelines(
    bans: Iterable[tuple[str, float]], first: float, width: float, buckets: int
) -> list[Timeline]:
    per_jail: dict[str, list[int]] = {}
    for jail, start in bans:
        counts = per_jail.setdefault(jail, [0] * buckets)
        index = int((start - first) // width)
        counts[min(max(index, 0), buckets - 1)] += 1
    return [Timeline(jail, counts) for jail, counts in sorted(per_jail.items())]


# -- from the ledger ---------------------------------------------------------------------

# Per address and user: the rows beyond the first jail's of lines several jails counted
# (same time, address, user and line in more than one jail), only among the addresses that
# appear in more than one jail at all (the rest cannot have any).
_SHARED = """
WITH shared AS (
    SELECT ip FROM failures WHERE time >= ? AND time <= ?
    GROUP BY ip HAVING min(jail) <> max(jail))
SELECT ip, user, sum(n - m) FROM (
    SELECT ip, user, sum(c) AS n, max(c) AS m FROM (
        SELECT time, ip, user, line, jail, count(*) AS c
        FROM failures JOIN shared USING (ip) WHERE time >= ? AND time <= ?
        GROUP BY time, ip, user, line, jail)
    GROUP BY time, ip, user, line)
GROUP BY ip, user HAVING sum(n - m) > 0
"""


def from_ledger(
    store: Any,
    *,
    since: float = 0.0,
    until: float | None = None,
    top: int = 20,
    geo: Geo | None = None,
) -> Summary:
    """The ledger's failures, bans and cases from ``since`` on (all of them by default).

    The ledger keeps failures only as long as ``[store]`` retention says; bans for longer:
    the two spans may differ, and the axis covers both.
    """
    until = time.time() if until is None else until
    window = (since, until)
    with store.read("summarise the ledger") as db:
        low, high, failures = db.execute(
            "SELECT min(time), max(time), count(*) FROM failures WHERE time >= ? AND time <= ?",
            window,
        ).fetchone()
        ban_low, ban_high, bans = db.execute(
            "SELECT min(start), max(start), count(*) FROM bans WHERE start >= ? AND start <= ?",
            window,
        ).fetchone()
        lows = [value for value in (low, ban_low) if value is not None]
        highs = [value for value in (high, ban_high) if value is not None]
        first, width, buckets = _axis(min(lows, default=until), max(highs, default=until))
        attempts: dict[str, list[int]] = {}
        for jail, index, count in db.execute(
            "SELECT jail, CAST((time - ?) / ? AS INTEGER), count(*) FROM failures"
            " WHERE time >= ? AND time <= ? GROUP BY 1, 2",
            (first, width, *window),
        ):
            attempts.setdefault(jail, [0] * buckets)[min(index, buckets - 1)] += count
        by_address = dict(
            db.execute(
                "SELECT ip, count(*) FROM failures WHERE time >= ? AND time <= ? GROUP BY ip",
                window,
            ).fetchall()
        )
        tried = Counter(
            dict(
                db.execute(
                    "SELECT user, count(*) FROM failures WHERE time >= ? AND time <= ?"
                    " AND user IS NOT NULL GROUP BY user",
                    window,
                ).fetchall()
            )
        )
        # A line several jails count (an sshd scanner line is sshd-ddos's too) is stored
        # once per jail: count it once, as a replay does.
        for address, user, extra in db.execute(_SHARED, (*window, *window)):
            failures -= extra
            by_address[address] -= extra
            if user is not None:
                tried[user] -= extra
        ban_rows = db.execute(
            "SELECT jail, start FROM bans WHERE start >= ? AND start <= ?", window
        ).fetchall()
        steps = db.execute(
            "SELECT step, count(*) FROM bans WHERE start >= ? AND start <= ? GROUP BY step",
            window,
        ).fetchall()
    per_jail = {jail: sum(counts) for jail, counts in sorted(attempts.items())}
    return Summary(
        origin="ledger",
        start=first,
        end=first + width * buckets,
        bucket=width,
        lines=None,
        failures=failures,
        per_jail=per_jail,
        addresses=len(by_address),
        attempts=[Timeline(jail, counts) for jail, counts in sorted(attempts.items())],
        bans=bans,
        bans_over_time=_ban_timelines(ban_rows, first, width, buckets),
        ban_steps=[Count(str(step), count) for step, count in sorted(steps)],
        users=_ranked(+tried, top),
        cases=_cases_of(store),
        **_who(by_address, top, geo, _owners_of(store)),
    )


# -- from a replay -----------------------------------------------------------------------


class AttemptTimes:
    """Every attempt's time per jail, as a replay's fast path holds them (packed doubles per
    address): handed to ``scan_logs(on_series=…)``, read once the replay has ended."""

    def __init__(self) -> None:
        self.packed: dict[str, list[bytes]] = {}

    def __call__(self, jail: str, by_address: Mapping[str, Sequence[Any]]) -> None:
        if not by_address:
            return
        self.packed.setdefault(jail, []).extend(bytes(entry[0]) for entry in by_address.values())

    def span(self) -> tuple[float, float] | None:
        """(earliest, latest) attempt, or None without any."""
        low, high = math.inf, -math.inf
        for chunks in self.packed.values():
            for packed in chunks:
                _count, first, last = _core.span(packed)
                low, high = min(low, first), max(high, last)
        return None if low > high else (low, high)

    def timelines(self, first: float, width: float, buckets: int) -> list[Timeline]:
        result = []
        last = buckets - 1
        for jail, chunks in sorted(self.packed.items()):
            counts = [0] * buckets
            for packed in chunks:
                for moment in array("d", packed):
                    index = int((moment - first) // width)
                    counts[index if index < last else last] += 1
            result.append(Timeline(jail, counts))
        return result


def from_scan(
    summary: Any,
    times: AttemptTimes,
    *,
    top: int = 20,
    geo: Geo | None = None,
    store: Any = None,
) -> Summary:
    """A replay's ``ScanSummary`` (with users) and its ``AttemptTimes``; ``store``, when
    given, adds the network owners from its RDAP cache and its abuse cases."""
    bans: list[Ban] = summary.bans
    span = times.span()
    moments = [ban.start for ban in bans]
    lows = [v for v in (span and span[0], min(moments, default=None)) if v is not None]
    highs = [v for v in (span and span[1], max(moments, default=None)) if v is not None]
    now = time.time()
    first, width, buckets = _axis(min(lows, default=now), max(highs, default=now))
    offenders = summary.offenders.values()
    # A replay keeps the first 20 user names per address (scan._MAX_USERS), with exact
    # counts for those: a name only ever tried after an address's 20th is not shown.
    users: Counter[str] = Counter()
    for offender in offenders:
        users.update(offender.users)
    steps = Counter(ban.step for ban in bans)
    return Summary(
        origin="scan",
        start=first,
        end=first + width * buckets,
        bucket=width,
        lines=summary.lines,
        failures=summary.failures,
        per_jail=dict(sorted(summary.per_jail.items())),
        addresses=len(summary.offenders),
        attempts=times.timelines(first, width, buckets),
        bans=len(bans),
        bans_over_time=_ban_timelines(((b.jail, b.start) for b in bans), first, width, buckets),
        ban_steps=[Count(str(step), count) for step, count in sorted(steps.items())],
        users=_ranked(users, top),
        cases=_cases_of(store),
        **_who({o.address: o.count for o in offenders}, top, geo, _owners_of(store)),
    )


def scan(
    paths: Sequence[str],
    config: Any,
    jails: Sequence[Any],
    *,
    top: int = 20,
    geo: Geo | None = None,
    store: Any = None,
    run: Callable[..., Any] | None = None,
    **options: Any,
) -> tuple[Summary, Any]:
    """Replay ``paths`` (``scan.scan_logs``, or ``run`` with its signature) and summarise:
    (the ``Summary``, the ``ScanSummary``)."""
    if run is None:
        from bruteguard.scan import scan_logs as run
    times = AttemptTimes()
    replay = run(paths, config, jails, on_series=times, **options)
    return from_scan(replay, times, top=top, geo=geo, store=store), replay


def collect(
    *,
    ledger: Any = None,
    logs: Sequence[str] = (),
    config: Any = None,
    jails: Sequence[Any] = (),
    top: int = 20,
    geo: Geo | None = None,
    since: float = 0.0,
) -> Summary:
    """From ``logs`` (replayed with ``config``'s ``jails``; ``ledger``, if given, adds the
    owners and cases) or, without logs, from the ``ledger``."""
    if logs:
        return scan(logs, config, jails, top=top, geo=geo, store=ledger)[0]
    if ledger is None:
        raise ValueError("collect needs logs or a ledger")
    return from_ledger(ledger, since=since, top=top, geo=geo)
