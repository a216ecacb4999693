"""The first-byte dispatch of a block's signatures (``match.dispatch``) changes nothing but
speed: what each signature can start with is a superset of what it matches, and the
dispatched catalogue reads every line (the signature corpora, the hostile corpus, and
random mutations of them) exactly as the plain alternation does: the same set, time, host
and user, the same attempts and names, line by line."""

from __future__ import annotations

import calendar
import random
from pathlib import Path

import pytest

from bruteguard.match import dispatch, engine
from bruteguard.match.engine import Matcher, _body
from bruteguard.match.signature import ProgramPattern
from bruteguard.match.signatures import FILTERS
from test_engine_core import every_sample_line

DATA = Path(__file__).parent / "data"
REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))
EVERY = {name: name for name in FILTERS}


@pytest.mark.parametrize(
    ("expression", "starts"),
    [
        ("Failed (\\S+) for", b"F"),
        ("(?:error: )?maximum", b"em"),
        ("(?:(?:error|fatal): )?(?:kex|Read)", b"efkR"),
        ("I(?:nvalid|llegal) user", b"I"),
        ("[Aa]uth", b"Aa"),
        ("[a-c\\]]x", b"abc]"),
        ("\\[?sshd", b"[s"),
        ("\\x41|\\x{42}|\\ty", b"AB\t"),
        ("(?=x)y|(?!z)w", b"yw"),
        ("\\bword", b"w"),
        ("(?:a?b*)c", b"abc"),
        ("c{0,3}d", b"cd"),
        ("é", "é".encode()[:1]),
        ("(?|(x)|(y))z", b"xy"),
        ("\\d{1,3}", b"0123456789"),
    ],
)
def test_first_bytes_of_an_expression(expression: str, starts: bytes) -> None:
    assert dispatch.first_bytes(expression) == frozenset(starts)


def test_first_bytes_of_classes_that_stand_for_many() -> None:
    assert dispatch.first_bytes("\\S+ x") == dispatch.ANY - frozenset(b" \t\n\x0b\x0c\r")
    assert dispatch.first_bytes("[^ \\n]x") == dispatch.ANY - {32, 10}
    assert dispatch.first_bytes(".x") == dispatch.ANY - {10}


@pytest.mark.parametrize(
    "expression",
    [
        "(.*)",  # may match nothing: any byte may follow
        "x?",
        "(?i:abc)",  # a scoped option: not followed
        "\\1abc",
        "\\g{-1}x",
        "(*MARK:1)x",
        "[[:alpha:]]x",
        "\\Qx\\E",
        "(unclosed",
    ],
)
def test_first_bytes_is_any_when_unsure(expression: str) -> None:
    assert dispatch.first_bytes(expression) is dispatch.ANY


def test_later_constructs_do_not_matter_once_a_byte_is_consumed() -> None:
    assert dispatch.first_bytes("x(?i:y)\\g{-1}[[:alpha:]]\\x{41}(*MARK:a)") == {ord("x")}


def test_every_signature_sample_starts_with_one_of_its_first_bytes() -> None:
    checked = 0
    for filter_ in FILTERS.values():
        for form in filter_.forms():
            if not form.frame.example:  # the samples are whole lines
                continue
            for signature in (*form.signatures, *form.breakin):
                starts = dispatch.first_bytes(_body(signature)[1])
                for sample in signature.samples:
                    if sample.startswith("message repeated "):  # the frame reads that
                        continue
                    assert sample.encode()[0] in starts, (signature.name, sample)
                    checked += 1
    assert checked > 300


def test_plain_keeps_the_order_and_joins_runs_of_one_set() -> None:
    entries = [(0, "a"), (0, "b"), (1, "c"), (0, "d")]
    assert dispatch.plain(entries) == "(*MARK:0)(?|a|b)|(*MARK:1)(?|c)|(*MARK:0)(?|d)"


def test_each_class_keeps_the_order_of_its_signatures() -> None:
    entries = [(0, "ab"), (1, "(?:x )?ac"), (2, "b"), (3, "x y")]
    assert dispatch.by_first_byte(entries) == (
        "(?=[\\x61])(?|(*MARK:0)(?|ab)|(*MARK:1)(?|(?:x )?ac))"
        "|(?=[\\x78])(?|(*MARK:1)(?|(?:x )?ac)|(*MARK:3)(?|x y))"
        "|(?=[\\x62])(?|(*MARK:2)(?|b))"
    )


def test_signatures_that_start_anywhere_at_the_end_are_tried_once_last() -> None:
    entries = [(0, "ab"), (1, "b"), (2, "(.*)")]
    assert dispatch.by_first_byte(entries).endswith("|(*MARK:2)(?|(.*))")
    # …but one in the middle is in every class (here three), where its order puts it.
    middle = dispatch.by_first_byte([(0, "ab"), (1, "(.*)"), (2, "b")])
    assert middle.count("(*MARK:1)(?|(.*))") == 3


def _sample_lines() -> list[bytes]:
    """Every signature's samples as whole lines of its frames, and the corpora."""
    lines = every_sample_line().splitlines()
    for path in sorted((DATA / "hostile").glob("*.txt")):
        for raw in path.read_bytes().splitlines():
            if raw and not raw.startswith(b"#"):
                lines.append(raw.rpartition(b"\t")[2])
    for filter_ in FILTERS.values():
        for form in filter_.forms():
            program = next((p for p in form.programs if not isinstance(p, ProgramPattern)), "")
            prefix = f"{form.frame.example}{program}[4242]: " if program else form.frame.example
            for signature in (*form.signatures, *form.breakin):
                lines += [f"{prefix}{sample}".encode() for sample in signature.samples]
    return lines


def _mutations(lines: list[bytes], count: int, seed: int) -> list[bytes]:
    """Lines a signature almost reads: a message's first byte changed, words dropped,
    doubled or swapped, rsyslog's repeat wrapper, cut short, random bytes in between."""
    rng = random.Random(seed)
    alphabet = b" :[]()=-./\\\"'<>#0123456789abcdefABCDEFxyzXYZ\xc3\xa9\x00\t"
    out: list[bytes] = []
    for _ in range(count):
        line = bytearray(rng.choice(lines))
        how = rng.randrange(7)
        if how == 0 and b": " in line:  # another first byte of the message
            at = line.index(b": ") + 2
            if at < len(line):
                line[at] = rng.choice(alphabet + b"FIeCDRpUfbmk")
        elif how == 1:
            words = bytes(line).split(b" ")
            at = rng.randrange(len(words))
            if rng.random() < 0.5:
                del words[at]
            else:
                words.insert(at, words[rng.randrange(len(words))])
            line = bytearray(b" ".join(words))
        elif how == 2 and b": " in line:
            at = line.index(b": ") + 2
            line = line[:at] + b"message repeated 3 times: [ " + line[at:] + b"]"
        elif how == 3:
            line = line[: rng.randrange(len(line) + 1)]
        elif how == 4:
            for _ in range(rng.randrange(1, 4)):
                line.insert(rng.randrange(len(line) + 1), rng.choice(alphabet))
        elif how == 5:
            words = bytes(line).split(b" ")
            a, b = rng.randrange(len(words)), rng.randrange(len(words))
            words[a], words[b] = words[b], words[a]
            line = bytearray(b" ".join(words))
        out.append(bytes(line).replace(b"\n", b" "))
    return out


@pytest.fixture(scope="module")
def both() -> tuple[Matcher, Matcher]:
    dispatched = Matcher(EVERY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "_alternatives", dispatch.plain)
        plain = Matcher(EVERY)
    return dispatched, plain


def test_the_catalogue_is_dispatched(both: tuple[Matcher, Matcher]) -> None:
    dispatched, plain = both
    assert dispatched._checks == plain._checks
    assert dispatched.pattern.groups == plain.pattern.groups


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dispatched_and_plain_read_every_line_alike(
    both: tuple[Matcher, Matcher], seed: int
) -> None:
    """Line by line: the same hits, the same names for the identity stage, and the same
    last match (its time, host and user text), whatever the line counted."""
    samples = _sample_lines()
    lines = samples + _mutations(samples, 6000, seed) if seed else samples
    dispatched, plain = (m.stream(reference=REFERENCE, keep_lines=True) for m in both)
    matched = 0
    for line in lines:
        chunk = line + b"\n"
        hits = dispatched.feed(chunk)
        assert hits == plain.feed(chunk), line
        assert dispatched.take_named() == plain.take_named(), line
        last = dispatched.last_match()
        assert last == plain.last_match(), line
        matched += last is not None
    assert dispatched.stats == plain.stats
    assert matched > len(samples) // 2


def test_the_sshd_jail_reads_the_captured_logs_alike() -> None:
    """The jail the benchmark scans, on its own (one block, so other classes)."""
    dispatched = Matcher({"sshd": "sshd", "sshd-ddos": "sshd-ddos"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "_alternatives", dispatch.plain)
        plain = Matcher({"sshd": "sshd", "sshd-ddos": "sshd-ddos"})
    assert dispatched.pattern is not plain.pattern
    for log in sorted((DATA / "sshd").glob("*.log")):
        data = log.read_bytes()
        ours = dispatched.stream(reference=REFERENCE, keep_lines=True).feed(data)
        assert ours == plain.stream(reference=REFERENCE, keep_lines=True).feed(data), log.name


def test_a_block_stays_plain_when_dispatch_cannot_help_or_grows_it_too_much() -> None:
    one_class = [(0, "ab"), (1, "ac")]
    assert dispatch.by_first_byte(one_class) == dispatch.plain(one_class)
    # A long signature that may start anywhere, in the middle: copied into every class.
    copied = [(n, f"{chr(97 + n)}x") for n in range(8)]
    copied.insert(4, (9, "(?:" + "y" * 400 + ")*"))
    assert dispatch.by_first_byte(copied) == dispatch.plain(copied)
