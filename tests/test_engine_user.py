"""A ``<USER>`` that can end at one place only (``Signature.user_ends_once``) is read first
end to last, and must capture what the greedy loop captures: proved for every signature
that says so (what follows its user can't match from two places of one line), then shown
on hostile user names and on every sample line, through both loops."""

from __future__ import annotations

import calendar
import random
import re

import interegular
import pytest

from bruteguard.match import engine
from bruteguard.match.engine import Matcher
from bruteguard.match.signature import ADDR, COUNT, HOST, SAME_USER, SESSION, USER, Signature
from bruteguard.match.signatures import FILTERS, get_filter

REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))
HEAD = "Nov 23 06:50:01 host sshd[7]: "
# Each placeholder and class as the bytes PCRE2 reads it (no Unicode whitespace: a byte
# 0xa0 is \S to PCRE2), so that the language checked is never smaller than the matched one.
_PLAIN = {
    HOST: "[^ \t\n\r\f\v]+",
    ADDR: "[0-9A-Fa-f:.]{2,45}",
    USER: "[^\n]*",
    COUNT: "[0-9]{1,6}",
    SESSION: "[0-9A-Fa-f]{1,16}",
    "\\S": "[^ \t\n\r\f\v]",
    "\\s": "[ \t\n\r\f\v]",
    "\\d": "[0-9]",
    ".": "[^\n]",
}


_IN_CLASS = {"\\s": " \t\n\r\f\v", "\\d": "0-9", "\\n": "\n", "\\t": "\t", "\\r": "\r"}


def _every_signature() -> list[tuple[str, Signature]]:
    found = {}
    for name in sorted(FILTERS):
        for form in get_filter(name).forms():
            for signature in (*form.signatures, *form.breakin):
                found.setdefault(signature, name)
    return [(name, signature) for signature, name in found.items()]


def _language(rest: str) -> str:
    """What follows a user, then a syslog repeat's "]" and blanks, as an expression whose
    language holds every line end PCRE2 can match there: possessive and atomic forms read
    as plain ones (they only refuse), placeholders and classes spelt out."""
    out, at, in_class = [], 0, False
    while at < len(rest):
        char = rest[at]
        if char == "\\":
            escape = rest[at : at + 2]
            if in_class:  # a class's own \s or \d, as bytes; no other class shorthand
                if escape[1:].isalpha() and escape not in _IN_CLASS:
                    raise ValueError(f"{escape} in a class: not read here")
                out.append(_IN_CLASS.get(escape, escape))
            elif escape[1:].isalpha() and escape not in _PLAIN and escape not in _IN_CLASS:
                raise ValueError(f"{escape}: not read here")  # \w, \b, \D …: Unicode's
            else:
                out.append(_PLAIN.get(escape, escape))
            at += 2
            continue
        placeholder = next((p for p in _PLAIN if p.startswith("<") and rest.startswith(p, at)), "")
        if placeholder and not in_class:
            out.append(_PLAIN[placeholder])
            at += len(placeholder)
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            out.append(char)
            at += 1
            for prefix in ("^", "]"):  # a class's leading "^" or "]" is no end
                if rest.startswith(prefix, at):
                    out.append(prefix)
                    at += 1
            continue
        elif char == ".":
            char = _PLAIN["."]
        elif char == "+" and out and out[-1][-1:] in ("*", "+", "?", "}"):
            char = ""  # possessive: a match of the plain form too
        out.append(char)
        at += 1
    return "".join(out) + "\\]?[ \t]*"


def _ends_once(signature: Signature) -> bool:
    """Whether no line end matches what follows the signature's user from two places: then
    at most one end of the user can lead to a match."""
    rest = signature.message.split(USER, 1)[1]
    if SAME_USER in rest or re.search(r"\\[gkK1-9]|\(\?[=!<>(P]|\(\*", rest):
        return False  # back-references, lookarounds, conditions: not read here
    try:
        text = _language(rest)
    except ValueError:
        return False
    once = interegular.parse_pattern(text).to_fsm()
    later = interegular.parse_pattern(f"[^\n]+{text}").to_fsm()
    return (once & later).empty()


SAYS_SO = [(name, s) for name, s in _every_signature() if s.user_ends_once]


def test_sshd_says_so_of_its_commonest_messages() -> None:
    assert {s.name for name, s in SAYS_SO if name == "sshd"} >= {
        "failed-auth",
        "invalid-user",
        "closed-preauth-user",
    }


@pytest.mark.parametrize("signature", [s for _, s in SAYS_SO], ids=lambda s: s.name)
def test_a_user_said_to_end_once_can_end_at_one_place_only(signature: Signature) -> None:
    assert f"{USER} " in signature.message
    assert _ends_once(signature)


def test_the_proof_refuses_what_can_end_twice() -> None:
    """Not vacuous: a message whose user can end at two places is refused."""
    twice = Signature("twice", engine.Role.CONFIRM, r"for <USER> from <HOST>(?: from \S+)?")
    assert not _ends_once(twice)
    dotted = Signature("dotted", engine.Role.CONFIRM, r"for <USER> from <HOST> port \d+(?:: .*)?")
    assert not _ends_once(dotted)
    once = Signature("once", engine.Role.CONFIRM, r"for <USER> from <HOST> port \d+")
    assert _ends_once(once)


def _loops(monkeypatch: pytest.MonkeyPatch, jails: dict[str, str]) -> tuple[Matcher, Matcher]:
    """The catalogue with each user read first end to last where it says so, and with every
    user read greedily."""
    first = Matcher(jails)
    with monkeypatch.context() as patched:
        patched.setattr(engine, "_USER_ENDING_ONCE", engine._USER_BEFORE_BLANK)
        greedy = Matcher(jails)
    return first, greedy


def _feed(matcher: Matcher, text: bytes) -> tuple[list, object]:
    stream = matcher.stream(reference=REFERENCE, keep_lines=True)
    return stream.feed(text), stream.stats


HOSTILE = [
    "a b",
    " a  b ",
    "x from 198.51.100.7 port 1 ssh2",
    "x from 198.51.100.7 port 1 ssh2 from 198.51.100.8",
    "invalid user root",
    "root from 198.51.100.7",
    "from",
    "from 198.51.100.7 port",
    "x 198.51.100.7 port 22 [preauth]",
    "x 198.51.100.7 port 22: Too many authentication failures [preauth]",
    "y from 198.51.100.7 not allowed because not listed in AllowUsers",
    "z from 198.51.100.7 port 22 ssh2 [preauth]",
    "",
]
MESSAGES = [
    "Failed password for {} from {} port 22 ssh2",
    "Failed password for invalid user {} from {} port 22 ssh2",
    "Failed password for {} from {}",
    "Invalid user {} from {} port 4242",
    "Invalid user {} from {}",
    "error: PAM: Authentication failure for {} from {}",
    "User {} from {} not allowed because not listed in AllowUsers",
    "error: maximum authentication attempts exceeded for {} from {} port 22 ssh2 [preauth]",
    "Disconnecting authenticating user {} {} port 22: Too many authentication failures [preauth]",
    "Connection closed by authenticating user {} {} port 22 [preauth]",
    "Disconnected from invalid user {} {} port 22 [preauth]",
    "message repeated 2 times: [ Failed password for {} from {} port 22 ssh2]",
]


@pytest.mark.parametrize("message", MESSAGES)
def test_a_hostile_user_name_leaves_sshd_its_own_address(
    monkeypatch: pytest.MonkeyPatch, message: str
) -> None:
    """Spaces, an address, "invalid user", sshd's own tail inside the name: the address
    counted is the one sshd wrote last, the user all before it, as the greedy loop reads."""
    first, greedy = _loops(monkeypatch, {"sshd": "sshd"})
    for user in HOSTILE:
        line = f"{HEAD}{message.format(user, '203.0.113.9')}\n".encode()
        hits, stats = _feed(first, line)
        assert (hits, stats) == _feed(greedy, line)
        # sshd's own "invalid user " before a name is no part of it
        named = user.removeprefix("invalid user ") if "for {}" in message else user
        assert hits and {(hit[1], hit[2]) for hit in hits} == {("203.0.113.9", named or None)}


def test_every_sample_and_its_mutations_read_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sshd sample line, and seeded mutations of it that put hostile user names (or
    nothing) in place of its words: the same hits, users, addresses and counts."""
    first, greedy = _loops(monkeypatch, {"sshd": "sshd"})
    chance = random.Random(1818)  # seeded: the same lines every run
    lines = []
    for name, signature in _every_signature():
        for sample in signature.samples if name == "sshd" else ():
            lines.append(sample)
            words = sample.split(" ")
            for _ in range(8):
                mutated = list(words)
                at = chance.randrange(len(mutated))
                mutated[at : at + chance.randint(0, 2)] = [chance.choice(HOSTILE)]
                lines.append(" ".join(mutated))
    text = "".join(f"{HEAD}{line}\n" for line in lines).encode()
    hits, stats = _feed(first, text)
    assert (hits, stats) == _feed(greedy, text)
    assert stats.matched > len(lines) // 10
