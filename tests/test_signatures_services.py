"""Every built-in filter's sample lines (tests/data/signatures/*.txt) through the real
one-pass matcher with ALL built-in filters compiled together, as a host running every
service's jail would: each line must give exactly what its file says, and nothing that a
file lists as a decoy may ever come out.

A data file says which filter its lines are for (``# filter: NAME``), where their format
comes from (``# source:``), and the addresses hostile text carries (``# decoys:``). Each
case is ``EXPECTED<TAB>LINE``; EXPECTED is ``ADDR`` (one attempt), ``ADDR*N`` (N attempts),
either with `` user=NAME``, ``named:NAME`` (no attempt; the name is handed to the identity
stage) or ``none``. Lines ``+<TAB>LINE`` before a case are fed before its line, in the same
stream (a session's opening line, for services whose later lines carry only a session id);
the case's EXPECTED is what all of them give together.
"""

from __future__ import annotations

import calendar
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest

from bruteguard.match.engine import Matcher
from bruteguard.match.signature import Role
from bruteguard.match.signatures import FILTERS

DATA = Path(__file__).parent / "data" / "signatures"
REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))
ALL = Matcher({name: name for name in FILTERS})


@dataclass(frozen=True)
class Case:
    file: str
    number: int
    filter: str
    expected: str
    line: bytes
    decoys: frozenset[str]
    before: bytes = b""  # lines fed first, in the same stream


def canonical(text: str) -> str:
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def read_cases(path: Path) -> list[Case]:
    headers: dict[str, str] = {}
    decoys: set[str] = set()
    cases = []
    before = b""
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if raw.startswith(b"+\t"):
            before += raw[2:] + b"\n"
            continue
        if raw.startswith(b"#"):
            key, _, value = raw[1:].decode().strip().partition(":")
            if key == "decoys":
                decoys.update(canonical(word) for word in value.split())
            else:
                headers.setdefault(key, value.strip())
            continue
        if not raw.strip():
            continue
        expected, _, line = raw.partition(b"\t")
        assert line, f"{path.name}:{number}: EXPECTED<TAB>LINE"
        cases.append(
            Case(
                path.name,
                number,
                headers.get("filter", ""),
                expected.decode(),
                line,
                frozenset(),
                before,
            )
        )
        before = b""
    assert headers.get("filter") in FILTERS, f"{path.name}: '# filter:' names no built-in filter"
    assert headers.get("source"), f"{path.name}: say where the lines come from (# source:)"
    return [
        Case(c.file, c.number, c.filter, c.expected, c.line, frozenset(decoys), c.before)
        for c in cases
    ]


FILES = sorted(DATA.glob("*.txt"))
CASES = [case for path in FILES for case in read_cases(path)]


def outcome(line: bytes, before: bytes = b"") -> tuple[list[tuple], list[tuple]]:
    """(attempts, named) of one line alone (after ``before``), replayed."""
    stream = ALL.stream(reference=REFERENCE)
    hits = stream.feed(before + line + b"\n")
    return hits, stream.take_named()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.file}:{c.number}" for c in CASES])
def test_line_gives_what_its_file_says(case: Case) -> None:
    hits, named = outcome(case.line, case.before)
    reported = {str(hit[1]) for hit in hits} | {str(hit[1]) for hit in named}
    for decoy in case.decoys:
        assert decoy not in reported, f"decoy {decoy} reported for {case.line!r}"
    if case.expected == "none":
        assert (hits, named) == ([], []), case.line
        return
    if case.expected.startswith("named:"):
        assert hits == []
        assert {(hit[1], hit[3]) for hit in named} == {(case.expected[6:], case.filter)}
        return
    spec, _, user = case.expected.partition(" user=")
    address, _, times = spec.partition("*")
    assert named == []
    mine = [hit for hit in hits if hit[3] == case.filter]
    assert len(mine) == int(times or 1), (case.line, hits)
    assert {hit[1] for hit in mine} == {canonical(address)}
    if " user=" in case.expected:
        assert {hit[2] for hit in mine} == {user or None}
    assert all(abs(hit[0] - REFERENCE) < 400 * 86400 for hit in mine), "a time within a year"


def test_every_built_in_filter_has_sample_data() -> None:
    covered = {case.filter for case in CASES}
    assert set(FILTERS) - {"sshd", "sshd-ddos", "pure-ftpd"} <= covered


SAMPLES = [
    pytest.param(name, form, signature, sample, id=f"{name}-{form.frame.name}-{signature.name}-{i}")
    for name, service in FILTERS.items()
    for form in service.forms()
    for signature in form.signatures
    for i, sample in enumerate(signature.samples)
]


@pytest.mark.parametrize(("name", "form", "signature", "sample"), SAMPLES)
def test_every_signature_sample_counts(name, form, signature, sample) -> None:
    """A signature's own samples, framed as its log writes them, count for its jail (a
    session's opening counts nothing: it names the address of the session's later lines,
    which the data files show; so do a line that names no client, a close that settles one,
    and a refusal that waits for its verdict: tests/test_signatures_sshd.py)."""
    assert signature.samples, signature.name
    program = f"{form.programs[0]}[4242]: " if form.programs else ""
    line = f"{form.frame.example}{program}{sample}".encode()
    hits, named = outcome(line)
    if signature.role is Role.OPEN or signature.keyed >= 2 or signature.waits:
        assert (hits, named) == ([], []), line
        return
    assert [h for h in hits if h[3] == name] or [h for h in named if h[3] == name], line


SSHD_LINE = (
    b"Nov 23 06:50:02 host sshd[12]: Failed password for root from 198.51.100.99 port 5 ssh2"
)
LONG_USER_CASES = [
    case
    for case in CASES
    if " user=" in case.expected
    and case.expected.split(" user=", 1)[1]
    and case.expected.split(" user=", 1)[1].encode() in case.line
]


@pytest.mark.parametrize(
    "case", LONG_USER_CASES, ids=[f"{c.file}:{c.number}" for c in LONG_USER_CASES]
)
def test_a_long_user_name_never_makes_the_pass_give_up(case: Case) -> None:
    """8 KB of client text (a user name) in any service's line, with every built-in filter
    compiled: PCRE2 never gives up on the line (which would skip it for every filter), the
    address is still the service's own, and the next line still counts."""
    user = case.expected.split(" user=", 1)[1].encode()
    line = case.line.replace(user, user + b"a" * 8000, 1)
    stream = ALL.stream(reference=REFERENCE)
    hits = stream.feed(case.before + line + b"\n" + SSHD_LINE + b"\n")
    assert stream.stats.match_errors == 0
    address = canonical(case.expected.split(" ", 1)[0].split("*", 1)[0])
    assert {hit[1] for hit in hits if hit[3] != "sshd"} <= {address}
    assert [hit[1] for hit in hits if hit[3] == "sshd"] == ["198.51.100.99"]


@pytest.mark.parametrize(
    "junk",
    [
        b"x" * 20000,
        b'[\\"' * 6000,
        b"[x " * 6000 + b'[23/Nov/2026:06:50:01 +0100] "GET / HTTP/1.1" 401 5',
        b'198.51.100.9 - - [23/Nov/2026:06:50:01 +0100] "GET /' + b"a%22" * 4000 + b'" 401 5',
        b'2026/11/23 06:50:01 [error] 1#1: *5 user "' + b"u" * 9000 + b'": password mismatch',
        b"kernel: [1.0] DROP IN=eth0 OUT= " + b"OPT (00) " * 2000 + b"SRC=198.51.100.9",
        b"dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<"
        + b"rip=203.0.113.9, " * 900
        + b">",
    ],
)
def test_long_hostile_lines_cost_no_match_errors(junk: bytes) -> None:
    stream = ALL.stream(reference=REFERENCE)
    hits = stream.feed(b"Nov 23 06:50:01 host " + junk + b"\n" + junk + b"\n" + SSHD_LINE + b"\n")
    assert stream.stats.match_errors == 0
    assert "203.0.113.9" not in {hit[1] for hit in hits}
    assert [hit[1] for hit in hits if hit[3] == "sshd"] == ["198.51.100.99"]


DOCS = Path(__file__).parent.parent / "docs"


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_the_catalogue_documents_every_filter_and_signature(name: str) -> None:
    catalogue = (DOCS / "signatures.md").read_text()
    assert f"| `{name}` |" in catalogue, f"{name} missing from the table in docs/signatures.md"
    pages = catalogue + "".join(p.read_text() for p in (DOCS / "signatures").glob("*.md"))
    for form in FILTERS[name].forms():
        for signature in form.signatures:
            assert signature.name in pages, f"{name}: signature {signature.name} undocumented"


def test_vsftpds_pam_line_and_its_fail_login_are_one_attempt() -> None:
    """pam_unix announces the attempt; vsftpd's FAIL LOGIN (same pid) is its verdict."""
    log = (
        b"Nov 23 15:45:02 host vsftpd[20160]: pam_unix(vsftpd:auth): check pass; user unknown\n"
        b"Nov 23 15:45:02 host vsftpd[20160]: pam_unix(vsftpd:auth): authentication failure;"
        b" logname= uid=0 euid=0 tty=ftp ruser=bob rhost=198.51.100.7 \n"
        b'Nov 23 15:45:04 host vsftpd[20160]: [bob] FAIL LOGIN: Client "198.51.100.7"\n'
        b"Nov 23 15:45:05 host vsftpd[20161]: pam_unix(vsftpd:auth): authentication failure;"
        b" logname= uid=0 euid=0 tty=ftp ruser=eve rhost=198.51.100.8 \n"
    )
    hits = Matcher({"vsftpd": "vsftpd"}).stream(reference=REFERENCE).feed(log)
    assert [(h[1], h[2]) for h in hits] == [("198.51.100.7", None), ("198.51.100.8", None)]
