"""The compiled pass (``bruteguard.match._core``) through the engine: the replay's fast path
(``collect``) counts exactly what the daemon's path (``feed``) counts, hostile input is
bounded, and bad patterns are clear errors."""

from __future__ import annotations

import calendar
from array import array
from collections import Counter
from pathlib import Path

import pytest

from bruteguard.match import _core
from bruteguard.match.engine import Matcher

DATA = Path(__file__).parent / "data"
REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))
MATCHER = Matcher({"sshd": "sshd"})
LOGS = sorted((DATA / "sshd").glob("*.log"))


def collected(data: bytes, chunk: int | None = None) -> dict[str, list[float]]:
    stream = MATCHER.stream(reference=REFERENCE)
    series = MATCHER.new_series()
    step = chunk or len(data) or 1
    lines = data.splitlines(keepends=True)
    batch: list[bytes] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= step:
            stream.collect(b"".join(batch), series)
            batch, size = [], 0
    stream.collect(b"".join(batch), series)
    by_address, shared = series
    assert shared == {}, "one jail shares its lines with no other"
    return {address: array("d", packed).tolist() for address, (packed, _) in by_address.items()}


@pytest.mark.parametrize("log", LOGS, ids=lambda path: path.name)
def test_collect_counts_what_feed_counts(log: Path) -> None:
    data = log.read_bytes()
    hits = MATCHER.stream(reference=REFERENCE).feed(data)
    expected: dict[str, list[float]] = {}
    for moment, address, _user, _jail, _line in hits:
        expected.setdefault(address, []).append(moment)
    assert collected(data) == expected
    assert collected(data, chunk=200) == expected


def test_collect_counts_users_per_address() -> None:
    data = b"".join(
        f"Nov 23 06:50:0{n} host sshd[{100 + n}]: Failed password for invalid user {user}"
        f" from 203.0.113.5 port 4{n} ssh2\n".encode()
        for n, user in enumerate(["admin", "admin", "oracle", "\xe9t\xe9".encode().decode()])
    )
    series = MATCHER.new_series()
    MATCHER.stream(reference=REFERENCE).collect(data, series)
    by_address, _shared = series
    _packed, users = by_address["203.0.113.5"]
    assert users == {b"admin": 2, b"oracle": 1, "été".encode(): 1}


def test_a_forged_repeat_count_is_bounded() -> None:
    line = (
        b"Nov 23 06:50:01 host sshd[7]: message repeated 999999 times:"
        b" [ Failed password for root from 203.0.113.5 port 22 ssh2]\n"
    )
    assert Counter(hit[1] for hit in MATCHER.stream(reference=REFERENCE).feed(line)) == {
        "203.0.113.5": 1000
    }


def test_one_connection_writing_its_peer_plain_and_ipv4_mapped_counts_once() -> None:
    """OpenSSH 3.9 gave pam "203.0.113.5" and wrote "::ffff:203.0.113.5" itself."""
    data = (
        b"Nov 23 06:50:01 host sshd[7]: Invalid user x from ::ffff:203.0.113.5\n"
        b"Nov 23 06:50:02 host sshd[7]: pam_unix(sshd:auth): authentication failure; logname="
        b" uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5 \n"
        b"Nov 23 06:50:03 host sshd[7]: Failed password for invalid user x from"
        b" ::FFFF:203.0.113.5 port 5 ssh2\n"
        b"Nov 23 06:50:04 host sshd[8]: Invalid user y from ::ffff:203.0.113.5\n"
        b"Nov 23 06:50:05 host sshd[8]: Failed password for invalid user y from"
        b" ::ffff:198.51.100.5 port 5 ssh2\n"
    )
    hits = MATCHER.stream(reference=REFERENCE).feed(data)
    assert Counter(hit[1] for hit in hits) == {"203.0.113.5": 2, "198.51.100.5": 1}


@pytest.mark.parametrize(
    ("user", "message"),
    [
        (" a  b ", "Failed password for invalid user {} from {} port 1 ssh2"),
        ("x from 198.51.100.7 port 1 ssh2", "Failed password for {} from {} port 5 ssh2"),
        ("\tx y\t", "Invalid user {} from {} port 2"),
        ("", "Invalid user {} from {}"),
        (
            "root 198.51.100.7 port 1 [preauth] ",
            "Disconnected from invalid user {} {} port 3 [preauth]",
        ),
    ],
)
def test_a_user_name_with_blanks_is_read_whole_and_sshd_names_the_address(
    user: str, message: str
) -> None:
    """A <USER> before a blank is read a word at a time (engine's ``_USER_BEFORE_BLANK``):
    it must still end at the last place where sshd's own tail follows, as ``(.*)`` did."""
    line = "Nov 23 06:50:01 host sshd[7]: " + message.format(user, "203.0.113.9") + "\n"
    hits = MATCHER.stream(reference=REFERENCE).feed(line.encode())
    assert [(hit[1], hit[2]) for hit in hits] == [("203.0.113.9", user or None)]


def test_any_buffer_is_accepted() -> None:
    line = b"Nov 23 06:50:01 host sshd[7]: Failed password for root from 203.0.113.5 port 2 ssh2\n"
    for chunk in (line, bytearray(line), memoryview(line)):
        assert [hit[1] for hit in MATCHER.stream(reference=REFERENCE).feed(chunk)] == [
            "203.0.113.5"
        ]


def test_a_bad_pattern_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="offset"):
        _core.Pattern(b"(unclosed")
    assert _core.Pattern(b"(a)(?:b)(c)?").groups == 2


def test_span_summarises_packed_times() -> None:
    assert _core.span(array("d", [5.0, 1.0, 9.0, 3.0]).tobytes()) == (4, 1.0, 9.0)
    with pytest.raises(ValueError):
        _core.span(b"")


def every_sample_line() -> bytes:
    """Every line of every signature data file and sshd capture, as one mixed log."""
    lines = []
    for path in sorted((DATA / "signatures").glob("*.txt")):
        for raw in path.read_bytes().splitlines():
            if raw and not raw.startswith(b"#"):
                lines.append(raw.partition(b"\t")[2])
    for path in LOGS:
        lines += path.read_bytes().splitlines()
    return b"\n".join(lines) + b"\n"


def test_a_catalogue_too_large_for_one_expression_is_searched_in_parts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PCRE2 compiles at most 64 KiB: past that the expression is split, and the parts,
    searched together, count exactly what one expression does, line for line."""
    from bruteguard.match import engine
    from bruteguard.match.signatures import FILTERS

    every = {name: name for name in FILTERS}
    whole = Matcher(every)
    monkeypatch.setattr(engine, "_compiles", lambda expression: len(expression) < 12_000)
    split = Matcher(every)
    assert split.pattern.parts > whole.pattern.parts + 1
    log = every_sample_line()
    hits = whole.stream(reference=REFERENCE, keep_lines=True).feed(log)
    assert hits, "the sample lines count"
    assert split.stream(reference=REFERENCE, keep_lines=True).feed(log) == hits


def test_a_pattern_has_at_most_64_parts() -> None:
    with pytest.raises(ValueError, match="parts"):
        _core.Pattern(tuple(b"a" for _ in range(65)))
    assert _core.Pattern((b"(a)", b"(b)(c)")).groups == 2
    assert _core.compiles(b"(a)") and not _core.compiles(b"(unclosed")
