"""Write one realistic, reproducible log per built-in service, from the filters' sample lines.

Why from the samples: the built-in filters grow (one per service), and a benchmark log
written by hand for each would drift from what the filters recognise. The sample files
that the tests check (``tests/data/signatures/FILTER.txt``: ``EXPECTED<TAB>LINE``, with a
``# filter:`` header) already hold real lines of every service, failures and benign
lines alike; real captured logs (``tests/data/*/*.log``) are used too, each line told
apart by running it alone through bruteguard's matcher. So a new service needs no code
here, only its sample file.

Each sample line becomes a template: its time stamp (syslog, RFC 3339, ctime, nginx's
``2026/11/23``, access logs' ``[23/Nov/2026:…]``, ``2026-11-23 …`` with MariaDB's
space-padded hour), its client address (in the form the service writes it: IPv4, IPv6,
IPv4-mapped), its pid and the user name the sample says was tried are slots; the rest is
kept byte for byte. One log per filter is then written in one stamp format (the one most
of its failure samples use, or ``--format``), clock advancing:

* ~``lines // 50`` attacker addresses (random public-looking, as ``gen_authlog.py`` draws
  them: some IPv6, some neighbours in one /24) with a Zipf-like share of sessions, in
  campaigns over the days the log spans; a session repeats one failure message 1 to 10
  times a few seconds apart under one pid, trying the user names attackers try, often with
  the service's benign chatter (connect, logout) for the same address around it;
* benign sessions (``--benign``, default 35 % of the lines) of a few hundred regular
  clients from the documentation ranges, and the service's own chatter.

Sample lines the tests plant as forgeries are not templates, they are not traffic: those in
a section whose comment says ``hostile`` (or forged, planted, quoting), those quoting a
``# decoys:`` address that few lines carry, with escaped quotes (``\\"``, ``\\x22``), a
second time stamp, control bytes or ``#012``. It is a file: no traffic is sent to any
address. The same samples, ``--seed`` and ``--lines`` give the same bytes; what each log
holds is written to ``manifest.json`` beside them (``scan_services.py`` reads it).

    .venv/bin/python bench/gen_servicelogs.py --lines 1000000 --out-dir bench/data/services
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import glob
import ipaddress
import json
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from gen_authlog import _INVALID_USERS, _VALID_USERS, attacker_addresses

__all__ = ["Sample", "Template", "generate", "load_templates", "main"]

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = "tests/data/signatures/*.txt"
RAW_LOGS = "tests/data/*/*.log"

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MON = "(" + "|".join(_MONTHS) + ")"

# The stamp kinds a sample line can carry; the first that starts earliest in the line wins
# (ctime before syslog: "Mon Nov 23 06:50:01 2026" also holds a syslog stamp).
_STAMPS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "ctime",
        re.compile(
            rf"(?:({'|'.join(_DAYS)}) )?{_MON} ([ 0-3]\d) (\d\d:\d\d:\d\d)(\.\d{{1,9}})? (\d{{4}})"
        ),
    ),
    (
        "iso",
        re.compile(
            r"(\d{4})-(\d\d)-(\d\d)(T| | (?= \d:))( ?\d\d?:\d\d:\d\d)([.,]\d{1,9})?"
            r"(Z|[+-]\d\d:?\d\d| [+-]\d{4})?"
        ),
    ),
    ("slash", re.compile(r"(\d{4})/(\d\d)/(\d\d) (\d\d:\d\d:\d\d)")),
    ("clf", re.compile(rf"(\d\d)/{_MON}/(\d{{4}}):(\d\d:\d\d:\d\d) ([+-]\d{{4}})")),
    ("syslog", re.compile(rf"{_MON} ([ 0-3]\d) (\d\d:\d\d:\d\d)(\.\d{{1,9}})?")),
)
# A family is what one log file holds: its lines all share one stamp format.
_FAMILY_ORDER = ("syslog", "ctime", "slash", "clf", "iso-space", "iso-T")

# Candidate address text: a run of hex digits, dots and colons not inside a word.
_ADDRESS_RUN = re.compile(r"(?<![0-9A-Za-z_.:])[0-9A-Fa-f.:]{2,}(?![0-9A-Za-z_])")
# The process id: syslog's "prog[123]:", vsftpd's "[pid 123]", Apache's "[pid 123:tid".
_PID = re.compile(r"(?<=[\w/.-])\[(\d{1,10})\]:|\[pid (\d{1,10})[\]:]")
# Client text that only a forgery carries: escaped quotes (Apache's \", nginx's \x22).
_ESCAPED_QUOTE = re.compile(r'\\x22|\\"')
# A comment line opening a section of hostile sample lines (forgeries, not traffic).
_HOSTILE_SECTION = re.compile(r"hostile|forge|planted|quoting|line break|decoy", re.I)
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]|#0\d\d")
_MAX_TEMPLATE = 400
# A user name that can be swapped for another: plain text, no quotes or brackets.
_USER_TEXT = re.compile(r"[A-Za-z0-9._@+-]{2,64}")
_ATTACKED_USERS = tuple(u for u in (*_INVALID_USERS, *_VALID_USERS) if u)
_REGULAR_USERS = ("alice", "bob", "carol", "deploy", "backup", "www-data", "info", "sales")
# Benign clients: documentation ranges only, so they can never be mistaken for attackers.
_DOC_NETS = ("192.0.2.", "198.51.100.", "203.0.113.")


def _renderer(kind: str, match: re.Match[str]) -> tuple[str, Callable[[float], str]]:
    """(family, function writing a UTC time the way this stamp is written)."""
    groups = match.groups()
    offset = 0  # seconds east of UTC the stamp is written in
    frac: str | None = None  # the fraction as written (".123456", ",123"), for its width
    tail = ""  # what follows the fraction (the zone, ctime's year)

    if kind == "ctime":
        weekday, frac = groups[0], groups[4]

        def head(m: datetime) -> tuple[str, str]:
            day = f"{_DAYS[m.weekday()]} " if weekday else ""
            return f"{day}{_MONTHS[m.month - 1]} {m.day:2d} {m:%H:%M:%S}", f" {m.year}"

        family = "ctime"
    elif kind == "iso":
        sep, frac, tail = groups[3], groups[5], groups[6] or ""
        zone = tail.strip()
        if zone and zone != "Z":
            digits = zone[1:].replace(":", "")
            offset = (-1 if zone[0] == "-" else 1) * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)

        # MariaDB writes the hour with "%2d": " 6:50:01" (seen when the sample's hour is < 10).
        padded = groups[4].startswith(" ")

        def head(m: datetime) -> tuple[str, str]:
            hour = f"{m.hour:2d}" if padded else f"{m.hour:02d}"
            return f"{m:%Y-%m-%d}{sep}{hour}:{m:%M:%S}", tail

        family = "iso-T" if sep == "T" else "iso-space"
    elif kind == "slash":

        def head(m: datetime) -> tuple[str, str]:
            return f"{m:%Y/%m/%d %H:%M:%S}", ""

        family = "slash"
    elif kind == "clf":
        zone = groups[4]
        offset = (-1 if zone[0] == "-" else 1) * (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60)

        def head(m: datetime) -> tuple[str, str]:
            return f"{m.day:02d}/{_MONTHS[m.month - 1]}/{m.year}:{m:%H:%M:%S} {zone}", ""

        family = "clf"
    else:
        frac = groups[3]

        def head(m: datetime) -> tuple[str, str]:
            return f"{_MONTHS[m.month - 1]} {m.day:2d} {m:%H:%M:%S}", ""

        family = "syslog"
    cache: dict[int, tuple[str, str]] = {}
    width = len(frac) - 1 if frac else 0
    scale = 10**width

    def render(when: float) -> str:
        second = int(when)
        parts = cache.get(second)
        if parts is None:
            if len(cache) > 4096:
                cache.clear()
            parts = cache[second] = head(datetime.fromtimestamp(second + offset, UTC))
        if not frac:
            return parts[0] + parts[1]
        return f"{parts[0]}{frac[0]}{int((when - second) * scale):0{width}d}{parts[1]}"

    return family, render


def _find_stamp(line: str) -> tuple[str, re.Match[str]] | None:
    best: tuple[str, re.Match[str]] | None = None
    for kind, pattern in _STAMPS:
        match = pattern.search(line)
        if match and (best is None or match.start() < best[1].start()):
            best = (kind, match)
    return best


def _addresses(line: str) -> list[tuple[int, int, str, str]]:
    """(start, end, canonical address, form) of each address in ``line``; form is ``v4``,
    ``v6`` or ``mapped`` (``::ffff:a.b.c.d``)."""
    found = []
    for match in _ADDRESS_RUN.finditer(line):
        text, start = match.group(), match.start()
        text = text.rstrip(".:")
        candidates = [text]
        if text.count(":") == 1 and "." in text:  # 192.0.2.1:21
            candidates.append(text.split(":", 1)[0])
        for candidate in candidates:
            try:
                address = ipaddress.ip_address(candidate)
            except ValueError:
                continue
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                found.append((start, start + len(candidate), str(address.ipv4_mapped), "mapped"))
            elif isinstance(address, ipaddress.IPv6Address):
                found.append((start, start + len(candidate), str(address), "v6"))
            elif "." in candidate and candidate.count(".") == 3:
                found.append((start, start + len(candidate), str(address), "v4"))
            break
    return found


class Sample(NamedTuple):
    """A sample line and what it stands for: the client's address ("" for a benign line),
    how many attempts, the user name the client sent (None: not known or not written)."""

    line: str
    address: str
    attempts: int
    user: str | None
    source: str


@dataclass
class Template:
    """One sample line cut into literal text and slots: ``T`` (stamp), ``P`` (pid), ``U``
    (the user name), and the client address as ``v4``/``v6``/``mapped``."""

    filter: str
    family: str
    failure: bool
    attempts: int
    parts: list[str]
    slots: list[str]
    render_stamp: Callable[[float], str]
    source: str = ""
    forms: frozenset[str] = field(default_factory=frozenset)
    user_domain: str = ""  # the sample's user was "name@DOMAIN": new names get it too

    def fits(self, address: str) -> bool:
        """Whether this line can be written for ``address`` (IPv6 slots want IPv6)."""
        if not self.forms:
            return True
        if ":" in address:
            return self.forms <= {"v6"}
        return "v6" not in self.forms

    def render(self, when: float, address: str, pid: int, user: str) -> str:
        out = [self.parts[0]]
        for slot, literal in zip(self.slots, self.parts[1:], strict=True):
            if slot == "T":
                out.append(self.render_stamp(when))
            elif slot == "P":
                out.append(str(pid))
            elif slot == "U":
                out.append(f"{user}@{self.user_domain}" if self.user_domain else user)
            elif slot == "mapped":
                out.append("::ffff:" + address)
            else:
                out.append(address)
            out.append(literal)
        return "".join(out)


def _template(filter_name: str, sample: Sample, clients: set[str]) -> Template | None:
    """Cut ``sample``'s line; None when it has no stamp bruteguard's frames read."""
    line = sample.line
    found = _find_stamp(line)
    if found is None:
        return None
    kind, match = found
    family, render = _renderer(kind, match)
    cuts: list[tuple[int, int, str]] = [(match.start(), match.end(), "T")]
    pid = _PID.search(line, match.end())
    if pid:
        group = 1 if pid.group(1) else 2
        cuts.append((pid.start(group), pid.end(group), "P"))
    for start, end, address, form in _addresses(line):
        if address in clients and not (match.start() <= start < match.end()):
            cuts.append((start, end, form))
    domain = ""
    user = sample.user
    if user and line.count(user) == 1 and _USER_TEXT.fullmatch(user):
        start = line.index(user)
        cuts.append((start, start + len(user), "U"))
        domain = user.partition("@")[2]
    cuts.sort()
    parts, slots, position = [], [], 0
    for start, end, slot in cuts:
        if start < position:  # overlapping (an address inside the pid field): keep the first
            continue
        parts.append(line[position:start])
        slots.append(slot)
        position = end
    parts.append(line[position:])
    forms = frozenset(s for s in slots if s in ("v4", "v6", "mapped"))
    failure = bool(sample.address)
    if failure and not forms:
        return None  # the failure's address could not be found in the text
    return Template(
        filter_name,
        family,
        failure,
        sample.attempts,
        parts,
        slots,
        render,
        sample.source,
        forms,
        domain,
    )


def _usable(line: str, decoys: set[str]) -> bool:
    """Whether a sample line looks like traffic rather than a forgery the tests plant."""
    if len(line) > _MAX_TEMPLATE or _UNPRINTABLE.search(line) or _ESCAPED_QUOTE.search(line):
        return False
    stamp = _find_stamp(line)
    if stamp is not None and _find_stamp(line[stamp[1].end() :]) is not None:
        return False  # a second time stamp: one planted in client text
    return not any(address in decoys for _, _, address, _ in _addresses(line))


def _is_host(text: str) -> bool:
    """Whether an address can be a client's (not 0.0.0.0, loopback, multicast)."""
    address = ipaddress.ip_address(text)
    return not (address.is_unspecified or address.is_loopback or address.is_multicast)


def _canonical(text: str) -> str:
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


def _expected_samples(path: Path) -> tuple[str, list[Sample]]:
    """(filter, samples) of an ``EXPECTED<TAB>LINE`` file (the tests' format)."""
    filter_name, decoys = "", set()
    rows: list[Sample] = []
    hostile = False
    for text in path.read_bytes().decode("utf-8", "replace").split("\n"):
        if text.startswith("#"):
            key, _, value = text[1:].strip().partition(":")
            if key.strip() == "filter":
                filter_name = value.strip()
            elif key.strip() == "decoys":
                for word in value.split():
                    with contextlib.suppress(ValueError):
                        decoys.add(_canonical(word))
            elif key.strip() != "source" and not text.startswith("#  "):
                hostile = bool(_HOSTILE_SECTION.search(text))  # a new section begins
            continue
        expected, tab, line = text.partition("\t")
        if not tab or hostile or expected.startswith("named:"):
            continue
        if expected == "none":
            rows.append(Sample(line, "", 0, None, path.name))
            continue
        spec, has_user, user = expected.partition(" user=")
        address, _, times = spec.partition("*")
        with contextlib.suppress(ValueError):
            rows.append(
                Sample(
                    line,
                    _canonical(address),
                    int(times or 1),
                    user if has_user else None,
                    path.name,
                )
            )
    # A decoy most lines carry is the server's own address (a firewall log's DST=), not a
    # forgery: only the others mark hostile lines.
    carried = Counter(a for row in rows for a in {x for _, _, x, _ in _addresses(row.line)})
    decoys = {d for d in decoys if carried[d] * 2 <= len(rows)}
    return filter_name, [row for row in rows if _usable(row.line, decoys)]


def _raw_samples(paths: list[Path]) -> dict[str, list[Sample]]:
    """Lines of real captured logs, each told apart by bruteguard's matcher run on it alone;
    a file belongs to the filter that counts most of its lines."""
    if not paths:
        return {}
    from bruteguard.match.engine import Matcher
    from bruteguard.match.signatures import FILTERS

    matcher = Matcher({name: name for name in FILTERS})
    reference = time.time()
    out: dict[str, list[Sample]] = {}
    for path in paths:
        rows: list[Sample] = []
        votes: Counter[str] = Counter()
        for text in path.read_bytes().decode("utf-8", "replace").split("\n"):
            if not text.strip() or not _usable(text, set()):
                continue
            stream = matcher.stream(reference=reference)
            hits = stream.feed(text.encode() + b"\n")
            if stream.take_named():
                continue
            addresses = {_canonical(hit[1]) for hit in hits}
            if len(addresses) > 1 or len({a for _, _, a, _ in _addresses(text)}) > 1:
                continue  # one line, several clients: a forgery, not traffic
            votes.update(hit[3] for hit in hits)
            attempts = max(Counter(hit[3] for hit in hits).values(), default=0)
            users = {hit[2] for hit in hits}
            user = users.pop() if len(users) == 1 else None
            rows.append(
                Sample(text, addresses.pop() if addresses else "", attempts, user, path.name)
            )
        if votes:
            out.setdefault(votes.most_common(1)[0][0], []).extend(rows)
    return out


def load_templates(samples: Iterable[Path], raw_logs: Iterable[Path]) -> dict[str, list[Template]]:
    """Templates per filter from sample files and captured logs."""
    by_filter: dict[str, list[Sample]] = {}
    for path in samples:
        name, rows = _expected_samples(path)
        if name:
            by_filter.setdefault(name, []).extend(rows)
    for name, rows in _raw_samples(list(raw_logs)).items():
        by_filter.setdefault(name, []).extend(rows)
    templates: dict[str, list[Template]] = {}
    for name, rows in sorted(by_filter.items()):
        # Addresses written in failure lines beside the client's (dovecot's lip=) are the
        # server's: they stay. The first other address of a benign line is its client's.
        server = {
            a
            for row in rows
            if row.address
            for _, _, a, _ in _addresses(row.line)
            if a != row.address
        }
        seen: set[str] = set()
        for row in rows:
            if row.line in seen:
                continue
            seen.add(row.line)
            if row.address:
                clients = {row.address}
            else:
                others = [a for _, _, a, _ in _addresses(row.line) if a not in server]
                clients = set([a for a in others if _is_host(a)][:1])
            made = _template(name, row, clients)
            if made is not None:
                templates.setdefault(name, []).append(made)
    return templates


def pick_family(templates: list[Template], wanted: str | None = None) -> str:
    """The stamp format of the log: ``wanted``, else the one most failure samples use."""
    counts = Counter(t.family for t in templates if t.failure)
    if wanted:
        if wanted not in counts:
            raise ValueError(f"no failure sample in format {wanted!r} (there are: {dict(counts)})")
        return wanted
    return max(counts, key=lambda f: (counts[f], -_FAMILY_ORDER.index(f)))


def _benign_clients(rng: random.Random, count: int) -> list[str]:
    clients = {f"{rng.choice(_DOC_NETS)}{rng.randint(1, 254)}" for _ in range(count)}
    clients |= {
        f"2001:db8:{rng.randint(1, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}"
        for _ in range(count // 10)
    }
    return sorted(clients)


def _zipf(rng: random.Random, count: int, draws: int, exponent: float = 1.05) -> list[int]:
    total, cum = 0.0, []
    for rank in range(1, count + 1):
        total += rank**-exponent
        cum.append(total)
    return [bisect.bisect(cum, rng.random() * total) for _ in range(draws)]


# (time, order, template index, address, pid, user)
Event = tuple[float, int, int, str, int, str]


def generate(
    templates: list[Template],
    lines: int,
    out: Path,
    *,
    seed: int = 1,
    family: str | None = None,
    benign: float = 0.35,
    per_day: int = 40_000,
    attackers: int | None = None,
    start: datetime | None = None,
) -> dict[str, object]:
    """Write exactly ``lines`` lines of one filter's log to ``out``; return what was written."""
    rng = random.Random(seed)
    family = pick_family(templates, family)
    chosen = [t for t in templates if t.family == family]
    failures = [i for i, t in enumerate(chosen) if t.failure]
    chatter = [i for i, t in enumerate(chosen) if not t.failure]
    with_client = [i for i in chatter if chosen[i].forms]
    began = (start or datetime(2024, 11, 4, tzinfo=UTC)).timestamp()
    span = lines / per_day * 86400
    attackers = max(1, min(attackers or lines // 50, lines // 10))
    addresses = [a.removeprefix("::ffff:") for a in attacker_addresses(rng, attackers * 11 // 10)]
    if not any(chosen[i].fits("2001:db8::1") for i in failures):
        # The service never writes IPv6 here: its attackers all come over IPv4.
        addresses = [a for a in addresses if ":" not in a]
    addresses = addresses[:attackers]
    clients = _benign_clients(rng, 300)
    events: list[Event] = []
    pid = 1000

    def add(when: float, index: int, address: str, process: int, user: str) -> None:
        events.append((when, len(events), index, address, process, user))

    def next_pid() -> int:
        nonlocal pid
        pid = pid + rng.randint(1, 40) if pid < 4_000_000 else 1000
        return pid

    # Attack sessions: every attacker at least once, the rest Zipf-like, in campaigns.
    attack_budget = int(lines * (1 - benign)) if chatter else lines
    habits: dict[int, int] = {}
    cursor: dict[int, float] = {}
    sessions = list(range(len(addresses)))
    rng.shuffle(sessions)
    while len(events) < attack_budget:
        if not sessions:
            sessions = _zipf(rng, len(addresses), max(1, (attack_budget - len(events)) // 4))
        who = sessions.pop()
        address = addresses[who]
        fitting = [i for i in failures if chosen[i].fits(address)]
        if not fitting:
            continue
        habit = habits.setdefault(who, rng.choice(fitting))
        when = cursor.get(who)
        if when is None or rng.random() < 0.3:  # a new campaign
            when = began + rng.random() * span
        process = next_pid()
        user = rng.choice(_ATTACKED_USERS)
        if with_client and rng.random() < 0.5:
            lead = rng.choice(with_client)
            if chosen[lead].fits(address):
                add(when, lead, address, process, user)
                when += rng.uniform(0.01, 2.0)
        for _ in range(rng.choice((1, 1, 2, 3, 3, 4, 5, 6, 10))):
            index = habit if rng.random() < 0.85 else rng.choice(fitting)
            add(when, index, address, process, user)
            when += rng.uniform(1.5, 6.0)
            if rng.random() < 0.3:  # dictionary attacks move on to the next name
                user = rng.choice(_ATTACKED_USERS)
        if with_client and rng.random() < 0.5:
            tail = rng.choice(with_client)
            if chosen[tail].fits(address):
                add(when, tail, address, process, user)
        cursor[who] = when + rng.expovariate(1 / 20.0)
    # Benign sessions: regular clients (a few busy ones) and the service's own chatter.
    ranks = _zipf(rng, len(clients), 4096)
    while chatter and len(events) < lines:
        client = clients[rng.choice(ranks)]
        when = began + rng.random() * span
        process = next_pid()
        user = _REGULAR_USERS[clients.index(client) % len(_REGULAR_USERS)]
        for _ in range(rng.randint(1, 4)):
            index = rng.choice(chatter)
            if chosen[index].fits(client):
                add(when, index, client, process, user)
                when += rng.uniform(0.05, 30.0)
    events.sort()
    del events[lines:]
    stats: Counter[str] = Counter()
    seen_attackers: set[str] = set()
    with out.open("w", encoding="utf-8", newline="\n") as handle:
        buffer: list[str] = []
        for when, _, index, address, process, user in events:
            template = chosen[index]
            buffer.append(template.render(when, address, process, user) + "\n")
            if template.failure:
                stats["failure_lines"] += 1
                stats["expected_attempts"] += template.attempts
                seen_attackers.add(address)
            if len(buffer) >= 8192:
                handle.write("".join(buffer))
                buffer.clear()
        handle.write("".join(buffer))
    last = events[-1][0] if events else began
    # A log's mtime is its last write: tools that infer syslog's missing year use it.
    os.utime(out, (last, last))
    return {
        "log": str(out),
        "lines": len(events),
        "format": family,
        "seed": seed,
        "failure_lines": stats["failure_lines"],
        "expected_attempts": stats["expected_attempts"],
        "attacker_addresses": len(seen_attackers),
        "templates": {"failure": len(failures), "benign": len(chatter)},
        "first": datetime.fromtimestamp(began, UTC).isoformat(),
        "days": round((last - began) / 86400, 1),
        "bytes": out.stat().st_size,
    }


def _paths(pattern: str) -> list[Path]:
    return sorted(
        Path(p)
        for p in glob.glob(str(ROOT / pattern) if not Path(pattern).is_absolute() else pattern)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines per log")
    parser.add_argument("--out-dir", type=Path, default=Path("bench/data/services"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--benign", type=float, default=0.35, help="share of benign lines")
    parser.add_argument("--per-day", type=int, default=40_000, help="lines per day (sets span)")
    parser.add_argument("--samples", default=SAMPLES, help="EXPECTED<TAB>LINE files (glob)")
    parser.add_argument("--raw", default=RAW_LOGS, help="captured logs (glob; '' for none)")
    parser.add_argument("--only", action="append", default=[], metavar="FILTER")
    parser.add_argument(
        "--format",
        action="append",
        default=[],
        metavar="FILTER=FAMILY",
        help=f"stamp format of one filter's log ({', '.join(_FAMILY_ORDER)})",
    )
    args = parser.parse_args(argv)
    formats = dict(item.split("=", 1) for item in args.format)
    templates = load_templates(_paths(args.samples), _paths(args.raw) if args.raw else [])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for name, found in sorted(templates.items()):
        if args.only and name not in args.only:
            continue
        if not any(t.failure for t in found):
            print(f"{name}: no failure sample, no log", file=sys.stderr)
            continue
        began = time.perf_counter()
        summary = generate(
            found,
            args.lines,
            args.out_dir / f"{name}.log",
            seed=args.seed,
            family=formats.get(name),
            benign=args.benign,
            per_day=args.per_day,
        )
        summary["seconds"] = round(time.perf_counter() - began, 2)
        manifest[name] = summary
        print(json.dumps({"filter": name, **summary}), file=sys.stderr)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
