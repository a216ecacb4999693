"""The syslog head read in C (``_core``'s syslog_head, then the body anchored after it) takes
exactly the lines, stamps and fields the whole expression takes: every head spelling the
frame knows, near misses of each, and seeded mutations of them, through both paths."""

from __future__ import annotations

import calendar
import random

import pytest

from bruteguard.match import engine
from bruteguard.match.engine import Matcher

REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))

HEADS = [
    "Nov 23 06:50:01 host ",
    "Nov  2 06:50:01 host ",
    "Nov 2 06:50:01 host ",
    "Nov 02 06:50:01 web-1.example.org ",
    "Nov 23 06:50:01.123456 host ",
    "Nov 23 06:50:01.1234567890 host ",
    "Nov 23 06:50:01. host ",
    "Nov 35 06:50:01 host ",
    "Nov 45 06:50:01 host ",
    "Nov 23 6:50:01 host ",
    "nov 23 06:50:01 host ",
    "NOV 23 06:50:01 host ",
    "Nov 23 06:50:01  host ",
    "Nov 23 06:50:01\thost ",
    "Nov 23 06:50:01 ",
    "Nov 23 06:50:01 host\t",
    "Nov 23 06:50:01 myapp: ",
    "Nov 23 06:50:01 host: ",
    "Nov 23 06:50:01 a[b ",
    "Nov 23 06:50:01 " + "h" * 255 + " ",
    "Nov 23 06:50:01 " + "h" * 256 + " ",
    "2026-11-23T06:50:01.123456+01:00 host ",
    "2026-11-23T06:50:01+0100 host ",
    "2026-11-23T06:50:01-01:30 host ",
    "2026-11-23T06:50:01Z host ",
    "2026-11-23T06:50:01z host ",
    "2026-11-23T06:50:01+01:0 host ",
    "2026-11-23T06:50:01+1 host ",
    "2026-11-23 06:50:01 ",
    "2026-11-23 06:50:01 host ",
    "2026-11-23X06:50:01 host ",
    "2018-12-20 10:09:05.180218+0000 host ",
    "<38>1 2026-11-23T06:50:01Z host ",
    "<38>12 2026-11-23T06:50:01.5Z host ",
    "<3800>1 2026-11-23T06:50:01Z host ",
    "<38>123 2026-11-23T06:50:01Z host ",
    "<38>1 Nov 23 06:50:01 host ",
    "Jan  1 00:00:00 <10.5> host ",
    "Jan  1 00:00:00 <10.5> ",
    "Jan  1 00:00:00 <10.5> sshd ",
    "Jan  1 00:00:00 <1000.5> host ",
    "Jun 20 02:18:39 vps auth.info ",
    "Jun 20 02:18:39 auth.info ",
    "Jun 20 02:18:39 vps authpriv.notice ",
    "Jun 20 02:18:39 vps local7.err ",
    "Jun 20 02:18:39 vps local8.err ",
    "Jun 20 02:18:39 vps local.err ",
    "Jun 20 02:18:39 vps auth.error ",
    "Jun 20 02:18:39 vps auth.warning ",
    "Jun 20 02:18:39 vps auth.warn ",
    "Jun 20 02:18:39 vps auth.inf ",
    "Jun 20 02:18:39 vps auth.info: ",
    "Jun 20 02:18:39 vps solaris-cron.info ",
    "Jun 20 02:18:39 vps abcdefghijklm.info ",
    "Jun 20 02:18:39 vps x.info ",
    "Jun 20 02:18:39 vps Auth.info ",
    "Jun 20 02:18:39 vps auth.info auth.info ",
    "",
]
MESSAGES = [
    "sshd[1234]: Failed password for root from 198.51.100.7 port 22 ssh2",
    "sshd[1235]: Failed password for invalid user a b from 198.51.100.8 port 22 ssh2",
    "sshd[1236]: Invalid user oracle from 2001:db8::7 port 4242",
    "sshd: Failed password for bob from 198.51.100.9 port 22 ssh2",
    "sshd-session[77]: Failed password for root from 203.0.113.4 port 22 ssh2",
    "sshd[1237] Failed password for root from 203.0.113.5 port 22 ssh2",
    "sshd 1238 - - Failed password for root from 203.0.113.6 port 22 ssh2",
    'sshd 1238 - [meta x="]"] Failed password for root from 203.0.113.10 port 22 ssh2',
    "[sshd] Failed password for root from 203.0.113.7 port 22 ssh2",
    "sshd[1239]: [ID 800047 auth.info] Failed password for root from 203.0.113.8 port 22 ssh2",
    "sshd[1240]: message repeated 3 times: [ Failed password for root from 203.0.113.9 port"
    " 22 ssh2]",
    "sshd[1241]: Connection closed by authenticating user root 192.0.2.1 port 22 [preauth]",
    "sshd[1241]: Failed password for root from 192.0.2.1 port 22 ssh2 \t ",
    "CRON[42]: pam_unix(cron:session): session opened for user root",
    "sshd[1242]: pam_unix(sshd:auth): check pass; user unknown",
    "host sshd[1243]: Failed password for root from 192.0.2.2 port 22 ssh2",
    "dropbear[311]: Bad password attempt for 'root' from 192.0.2.3:5022",
    "postfix/smtpd[12]: warning: unknown[192.0.2.4]: SASL LOGIN authentication failed: x",
]
# The sshd jail (two units: its body runs without the program gate), and catalogues of
# three units (gated), one of them with a program pattern (postfix-INSTANCE/…).
CATALOGUES = [
    {"sshd": "sshd"},
    {"sshd": "sshd", "dropbear": "dropbear"},
    {"sshd": "sshd", "postfix": "postfix"},
]


def _both(
    monkeypatch: pytest.MonkeyPatch, jails: dict[str, str] = CATALOGUES[0]
) -> tuple[Matcher, Matcher]:
    fast = Matcher(jails)
    with monkeypatch.context() as patched:
        patched.setattr(engine, "_syslog_body", lambda _units, _parts: None)
        slow = Matcher(jails)
    assert fast.pattern.syslog_body and not slow.pattern.syslog_body
    return fast, slow


def _same(fast: Matcher, slow: Matcher, lines: list[str], end: str = "\n") -> int:
    """Both paths' hits and counts on ``lines``; returns how many lines matched."""
    text = ("\n".join(lines) + end).encode("utf-8", "surrogateescape")
    a = fast.stream(reference=REFERENCE, keep_lines=True)
    b = slow.stream(reference=REFERENCE, keep_lines=True)
    found = a.feed(text)
    assert found == b.feed(text)
    assert a.stats == b.stats
    return a.stats.matched


@pytest.mark.parametrize("jails", CATALOGUES)
def test_every_head_spelling_reads_the_same(
    monkeypatch: pytest.MonkeyPatch, jails: dict[str, str]
) -> None:
    fast, slow = _both(monkeypatch, jails)
    lines = [head + message for head in HEADS for message in MESSAGES]
    matched = _same(fast, slow, lines)
    # Not a vacuous comparison: most spellings are read, and their near misses are not.
    assert len(lines) * 0.3 < matched < len(lines) * 0.75


@pytest.mark.parametrize("jails", CATALOGUES)
def test_mutated_heads_read_the_same(
    monkeypatch: pytest.MonkeyPatch, jails: dict[str, str]
) -> None:
    fast, slow = _both(monkeypatch, jails)
    chance = random.Random(18)  # seeded: the same lines every run
    alphabet = "Nov 0123456789:.-+TZz<>[]\t:aulth.ifoxsd"
    lines = []
    for _ in range(6000):
        head = list(chance.choice(HEADS))
        for _ in range(chance.randint(1, 3)):
            at = chance.randint(0, len(head))
            change = chance.randint(0, 2)
            if change == 0 and at < len(head):
                del head[at]
            elif change == 1:
                head.insert(at, chance.choice(alphabet))
            elif at < len(head):
                head[at] = chance.choice(alphabet)
        lines.append("".join(head) + chance.choice(MESSAGES))
    matched = _same(fast, slow, lines)
    assert 200 < matched < 3000


def test_crlf_and_a_last_line_without_newline_read_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast, slow = _both(monkeypatch)
    lines = [f"{HEADS[0]}{MESSAGES[0]}\r", "no head at all", f"{HEADS[21]}{MESSAGES[2]}"]
    assert _same(fast, slow, lines) == 2
    assert _same(fast, slow, lines, end="") == 2
    assert _same(fast, slow, [*lines, "Jan  1 00:00:00 <10.5> host sshd"], end="") == 2
