"""Every hostile corpus file (tests/data/hostile/*.txt) through the real matcher, with the sshd
and pure-ftpd jails both listening: client-controlled text never supplies an address.

A case says what may come out of its line (format at the top of pureftpd.txt): the real
peer's address, a host name handed on, or nothing. Each is checked as a replayed file (an
address is counted) and as a live log (pure-ftpd's host is PTR text even when it reads as an
address, so it is handed on instead), and each file is also fed whole, as one log. The
decoys a file declares must never appear in anything reported, in any form.
"""

from __future__ import annotations

import calendar
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from bruteguard.match.engine import Matcher, Stream

HOSTILE = Path(__file__).parent / "data" / "hostile"
REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))
MATCHER = Matcher({"sshd": "sshd", "pure-ftpd": "pure-ftpd"})
DOCUMENTATION = [
    ipaddress.ip_network(net)
    for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]
_TOKEN = re.compile(rb"[0-9A-Fa-f:.]*[0-9A-Fa-f]")


@dataclass(frozen=True)
class Case:
    file: str
    number: int  # line number in the file
    expected: str  # an address, "named:NAME" or "none"
    why: str
    line: bytes
    decoys: frozenset[str]


def read_corpus(path: Path) -> list[Case]:
    """The cases of one file; its "# decoys:" comment lines say what must never come out."""
    decoys: set[str] = set()
    rows: list[tuple[int, bytes]] = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if raw.startswith(b"# decoys:"):
            decoys.update(as_address(word) for word in raw[9:].decode().split())
        elif raw and not raw.startswith(b"#"):
            rows.append((number, raw))
    cases = []
    for number, raw in rows:
        expected, why, line = raw.split(b"\t", 2)
        case = Case(path.name, number, expected.decode(), why.decode(), line, frozenset(decoys))
        cases.append(case)
    return cases


def as_address(text: str) -> str:
    """The canonical address ``text`` is (IPv4-mapped → IPv4), or "" if it is none."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


FILES = sorted(HOSTILE.iterdir())
CASES = [case for path in FILES for case in read_corpus(path)]


def reported(stream: Stream, line: bytes) -> tuple[list[str], list[str]]:
    """(counted addresses, names handed on) for ``line`` fed to ``stream``."""
    hits = stream.feed(line + b"\n")
    return [hit[1] for hit in hits], [hit[1] for hit in stream.take_named()]


def assert_no_decoy(case: Case, hosts: list[str]) -> None:
    for host in hosts:
        assert as_address(host) not in case.decoys, (case.why, host)
        assert not any(decoy in host for decoy in case.decoys), (case.why, host)


# -- the corpus itself ---------------------------------------------------------------------------


def test_every_file_is_a_corpus_with_decoys() -> None:
    assert {path.name for path in FILES} >= {"sshd.txt", "pureftpd.txt"}
    for path in FILES:
        cases = read_corpus(path)
        assert path.suffix == ".txt" and cases, path
        assert cases[0].decoys, f"{path.name} declares no '# decoys:'"
        assert all(case.decoys == cases[0].decoys for case in cases)


def test_corpus_is_large_enough() -> None:
    by_file = {path.name: len(read_corpus(path)) for path in FILES}
    assert sum(by_file.values()) >= 40
    assert by_file["pureftpd.txt"] >= 12
    kinds = {
        case.expected.split(":", 1)[0]
        if case.expected.startswith(("named:", "waits:"))
        else as_address(case.expected) or "none"
        for case in CASES
    }
    assert {"named", "none"} <= kinds and len(kinds) >= 4


def test_expectations_are_well_formed() -> None:
    for case in CASES:
        if case.expected == "none" or case.expected.startswith(("named:", "waits:")):
            continue
        assert as_address(case.expected) == case.expected, (case.file, case.number)
        assert case.expected not in case.decoys


def test_only_documentation_addresses() -> None:
    for case in CASES:
        for token in _TOKEN.findall(case.line):
            address = as_address(token.decode())
            if address and (b"." in token or b":" in token):
                ip = ipaddress.ip_address(address)
                assert any(ip in net for net in DOCUMENTATION), (case.file, case.number, token)


# -- each case ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[f"{c.file[:-4]}-{c.number}" for c in CASES])
def test_case_reports_only_what_it_may(case: Case) -> None:
    replayed = reported(MATCHER.stream(reference=REFERENCE), case.line)
    live = reported(MATCHER.stream(), case.line)
    for counted, named in (replayed, live):
        assert_no_decoy(case, counted + named)
        if case.expected == "none":
            assert counted == [], case.why
            assert not [name for name in named if as_address(name)], case.why
        elif case.expected.startswith("named:"):
            assert (counted, named) == ([], [case.expected[6:]]), case.why
        elif case.expected.startswith("waits:"):
            assert (counted, named) == ([], []), case.why
        else:
            assert {as_address(host) for host in counted + named} == {case.expected}, case.why
    if as_address(case.expected):
        assert replayed[0] and not replayed[1], case.why  # replayed, an address is counted
    if case.expected.startswith("waits:"):  # the address it names for its attempt's verdict
        stream = MATCHER.stream(reference=REFERENCE)
        reported(stream, case.line)
        shown = stream.last_match()
        assert shown is not None and as_address(shown[1]) == case.expected[6:], case.why


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_file_as_one_log(path: Path) -> None:
    """Fed whole, a file still reports only its real peers (and its named hosts)."""
    cases = read_corpus(path)
    stream = MATCHER.stream(reference=REFERENCE)
    hits = stream.feed(b"".join(case.line + b"\n" for case in cases))
    named = [hit[1] for hit in stream.take_named()]
    assert stream.stats.lines == len(cases)
    assert {hit[1] for hit in hits} == {
        case.expected for case in cases if as_address(case.expected)
    }
    assert {f"named:{name}" for name in named} >= {
        case.expected for case in cases if case.expected.startswith("named:")
    }
    assert_no_decoy(cases[0], [hit[1] for hit in hits] + named)


def test_all_files_interleaved_as_one_log() -> None:
    """sshd and pure-ftpd lines mixed in one log, as on a host that runs both."""
    by_file = [read_corpus(path) for path in FILES]
    mixed: list[Case] = []
    for index in range(max(len(cases) for cases in by_file)):
        mixed += [cases[index] for cases in by_file if index < len(cases)]
    stream = MATCHER.stream(reference=REFERENCE)
    hits = stream.feed(b"".join(case.line + b"\n" for case in mixed))
    addresses = {hit[1] for hit in hits}
    assert addresses == {case.expected for case in mixed if as_address(case.expected)}
    decoys = frozenset().union(*(case.decoys for case in mixed))
    assert not addresses & decoys
