"""A block's signatures dispatched on the first byte of the message: most are never tried.

PCRE2 tries the alternatives of a group one after the other. A line of sshd that no
signature reads (``pam_unix(sshd:auth): check pass; user unknown``) used to enter and leave
every set of the block (~565 instructions), and ``Connection closed by … [preauth]`` came
after twenty others. Here each signature's possible first bytes are worked out from its
expression, and the block becomes one alternative per class of first bytes that the same
signatures can start with::

    (?|(?=[F])(?|(*MARK:3)(?|Failed …|Failed …)|(*MARK:4)(?|Failed publickey …))
      |(?=[I])(?|(*MARK:0)(?|I(?:nvalid|llegal) user …))
      |…)

A line's first byte passes one lookahead only (the classes are disjoint), and that
alternative holds, in their order, exactly the signatures that can start with that byte.
The ones left out cannot match the line at all, so the first signature that matches, its
set's mark and its captures are those of the plain alternation: nothing but speed changes.
Where the analysis is unsure (a back-reference, a scoped option, an expression that may
match the empty string) a signature counts as starting with any byte, and is in every
alternative.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

__all__ = ["ANY", "by_first_byte", "first_bytes", "plain"]

ANY: frozenset[int] = frozenset(range(256))
# What a dispatched block may cost in expression size: signatures that may start with any
# byte are copied into every class, and PCRE2 compiles at most 64 KiB.
_MAX_GROWTH = 3

_SPACE = frozenset(b" \t\n\x0b\x0c\r")
_DIGIT = frozenset(b"0123456789")
_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_HSPACE = frozenset(b" \t\xa0")
_VSPACE = frozenset(b"\n\x0b\x0c\r\x85")
_ESCAPED_SETS = {
    "d": _DIGIT,
    "D": ANY - _DIGIT,
    "s": _SPACE,
    "S": ANY - _SPACE,
    "w": _WORD,
    "W": ANY - _WORD,
    "h": _HSPACE,
    "H": ANY - _HSPACE,
    "v": _VSPACE,
    "V": ANY - _VSPACE,
    "N": ANY - {10},
}
_ESCAPED_BYTES = {"n": 10, "t": 9, "r": 13, "f": 12, "e": 27, "a": 7}
# Zero-width escapes: they consume nothing, so the next item's bytes come first.
_ZERO_WIDTH = frozenset("bBAzZG")
_QUANTIFIER = re.compile(r"(?:[?*+]|\{(\d+)(?:,(\d*))?\})[?+]?")
_HEX = re.compile(r"x(?:\{([0-9A-Fa-f]{1,2})\}|([0-9A-Fa-f]{1,2}))")
# An expression's tokens, as far as its structure goes: comments, escapes (with their
# braces), classes (with escapes and POSIX classes inside), "(", ")", "|", and runs of
# anything else.
_TOKEN = re.compile(
    r"\(\?#[^)]*\)|\\[xgkpPoN]\{[^}]*\}|\\k<[^>]*>|\\k'[^']*'|\\.|"
    r"\[\^?\]?(?:\[:[a-z]+:\]|\\.|[^\]\\])*\]|[()|]|[^()|\[\\]+|\[",
    re.DOTALL,
)


class _Unsure(Exception):
    """A construct the analysis does not follow: the signature may start with any byte."""


def first_bytes(expression: str) -> frozenset[int]:
    """The bytes a match of ``expression`` (compiled as bytes, without PCRE2_UTF, at the
    engine's options) can begin with: a superset, ``ANY`` when unsure or when it can match
    the empty string."""
    try:
        found, nullable, end = _Reader(expression).alternation(0)
    except (_Unsure, IndexError, ValueError):
        return ANY
    if nullable or end != len(expression):
        return ANY
    return frozenset(found)


class _Reader:
    """Reads an expression's leading items: what each can begin with, and whether it may
    match nothing. The groups and alternatives are found first, in one pass of a compiled
    tokenizer, so that whatever follows the first item that consumes a byte is stepped
    over at once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.close_of: dict[int, int] = {}  # "(" → its ")"
        self.stops: dict[int, list[int]] = {}  # depth → where its sequences end ("|", ")")
        opened: list[int] = []
        for token in _TOKEN.finditer(text):
            spelled = token.group()
            if spelled == "\\Q":
                raise _Unsure("\\Q")
            if spelled in ("|", ")"):
                self.stops.setdefault(len(opened), []).append(token.start())
            if spelled == "(":
                opened.append(token.start())
            elif spelled == ")":
                self.close_of[opened.pop()] = token.start()
        if opened:
            raise _Unsure("an unclosed group")

    def alternation(self, at: int, depth: int = 0) -> tuple[set[int], bool, int]:
        """Alternatives up to an unmatched ``)`` or the end."""
        found: set[int] = set()
        nullable = False
        while True:
            more, empty, at = self.sequence(at, depth)
            found |= more
            nullable = nullable or empty
            if at < len(self.text) and self.text[at] == "|":
                at += 1
                continue
            return found, nullable, at

    def sequence(self, at: int, depth: int) -> tuple[set[int], bool, int]:
        """Items up to ``|``, ``)`` or the end; only those up to the first that must
        consume a byte add to what the sequence begins with (the rest are stepped over)."""
        found: set[int] = set()
        text = self.text
        while at < len(text) and text[at] not in "|)":
            more, empty, at = self.item(at, depth)
            quantifier = _QUANTIFIER.match(text, at)
            if quantifier:
                spelled = quantifier.group(0)
                empty = empty or spelled[0] in "?*" or (spelled[0] == "{" and spelled[1] == "0")
                at = quantifier.end()
            found |= more
            if not empty:
                stops = self.stops.get(depth, [])
                after = bisect.bisect_left(stops, at)
                return found, False, stops[after] if after < len(stops) else len(text)
        return found, True, at

    def item(self, at: int, depth: int) -> tuple[set[int], bool, int]:
        """One atom: (bytes it can begin with, whether it may match nothing, where it ends)."""
        text = self.text
        char = text[at]
        if char == "(":
            return self.group(at, depth)
        reader = {"[": self.bracket, "\\": self.escape}.get(char)
        if reader:
            return reader(at)
        if char == ".":
            return set(ANY - {10}), False, at + 1
        if char in "^$":
            return set(), True, at + 1
        if char in "*+?{" and not (char == "{" and not _QUANTIFIER.match(text, at)):
            raise _Unsure(char)
        return {char.encode()[0]}, False, at + 1

    def group(self, at: int, depth: int) -> tuple[set[int], bool, int]:
        text = self.text
        if text.startswith("(?#", at):
            return set(), True, text.index(")", at) + 1
        if text.startswith(("(?=", "(?!", "(?<=", "(?<!"), at):
            # Consumes nothing (a lookaround may only narrow what follows).
            return set(), True, self.close_of[at] + 1
        if text.startswith(("(?:", "(?|", "(?>"), at):
            start = at + 3
        elif text.startswith(("(?", "(*"), at):
            raise _Unsure("an option, a verb, a reference or a named group")
        else:
            start = at + 1
        found, nullable, end = self.alternation(start, depth + 1)
        return found, nullable, self.close(end)

    def close(self, at: int) -> int:
        if at >= len(self.text) or self.text[at] != ")":
            raise _Unsure("an unclosed group")
        return at + 1

    def escape(self, at: int) -> tuple[set[int], bool, int]:
        letter = self.text[at + 1]
        if letter in _ESCAPED_SETS:
            return set(_ESCAPED_SETS[letter]), False, at + 2
        if letter in _ZERO_WIDTH:
            return set(), True, at + 2
        value, end = self._escaped_byte(at)
        return {value}, False, end

    def _escaped_byte(self, at: int) -> tuple[int, int]:
        """The byte of an escape that stands for one (``\\n``, ``\\xhh``, ``\\[``)."""
        letter = self.text[at + 1]
        if letter in _ESCAPED_BYTES:
            return _ESCAPED_BYTES[letter], at + 2
        hexadecimal = _HEX.match(self.text, at + 1)
        if hexadecimal:
            return int(hexadecimal.group(1) or hexadecimal.group(2), 16), hexadecimal.end()
        if letter.isascii() and not letter.isalnum():
            return ord(letter), at + 2
        raise _Unsure(f"\\{letter}")  # back-references, \p, \Q, \K, octal …

    def bracket(self, at: int) -> tuple[set[int], bool, int]:
        """A character class ``[…]`` (ranges, escapes; POSIX classes are not followed)."""
        text = self.text
        at += 1
        negated = text[at] == "^"
        at += negated
        members: set[int] = set()
        first = True
        while text[at] != "]" or first:
            first = False
            if text.startswith("[:", at):
                raise _Unsure("a POSIX class")
            if text[at] == "\\" and text[at + 1] in _ESCAPED_SETS:
                members |= _ESCAPED_SETS[text[at + 1]]
                at += 2
                continue
            low, at = self._class_byte(at)
            if text[at] == "-" and text[at + 1] != "]":
                if text[at + 1] == "\\" and text[at + 2] in _ESCAPED_SETS:
                    raise _Unsure("a range to a class escape")
                high, at = self._class_byte(at + 1)
                members |= set(range(low, high + 1))
            else:
                members.add(low)
        return (set(ANY) - members) if negated else members, False, at + 1

    def _class_byte(self, at: int) -> tuple[int, int]:
        if self.text[at] == "\\":
            return self._escaped_byte(at)
        char = self.text[at]
        if not char.isascii():
            raise _Unsure("a multi-byte character in a class")
        return ord(char), at + 1


def plain(entries: Sequence[tuple[int, str]]) -> str:
    """Signatures as alternatives in their order: ``(*MARK:N)(?|…)`` per run of one set."""
    runs: list[tuple[int, list[str]]] = []
    for mark, body in entries:
        if runs and runs[-1][0] == mark:
            runs[-1][1].append(body)
        else:
            runs.append((mark, [body]))
    return "|".join(f"(*MARK:{mark})(?|{'|'.join(bodies)})" for mark, bodies in runs)


def by_first_byte(entries: Sequence[tuple[int, str]]) -> str:
    """``plain(entries)``, dispatched on the message's first byte (see the module's
    docstring). Signatures that may start with any byte and come after all others are
    tried once, last, instead of in every class; a block whose copies would grow the
    expression too much stays plain."""
    firsts = [first_bytes(body) for _, body in entries]
    last = len(entries)
    while last and firsts[last - 1] is ANY:
        last -= 1
    # Each byte's signatures (by index, in order); bytes with the same list share a class.
    starting: list[list[int]] = [[] for _ in range(256)]
    for index in range(last):
        for byte in firsts[index]:
            starting[byte].append(index)
    classes: dict[tuple[int, ...], list[int]] = {}
    for byte, members in enumerate(starting):
        if members:
            classes.setdefault(tuple(members), []).append(byte)
    alternatives = [
        f"(?={_class(bytes_)})(?|{plain([entries[i] for i in members])})"
        for members, bytes_ in sorted(classes.items())
    ]
    if last < len(entries):
        alternatives.append(plain(entries[last:]))
    dispatched = "|".join(alternatives)
    flat = plain(entries)
    if len(classes) < 2 or len(dispatched) > _MAX_GROWTH * len(flat):
        return flat
    return dispatched


def _class(members: Sequence[int]) -> str:
    """A character class of byte values, as ranges of ``\\xhh``."""
    ranges: list[str] = []
    start = previous = members[0]
    for byte in [*members[1:], -1]:
        if byte == previous + 1:
            previous = byte
            continue
        low = f"\\x{start:02x}"
        ranges.append(low if start == previous else f"{low}-\\x{previous:02x}")
        start = previous = byte
    return f"[{''.join(ranges)}]"
