"""fail2ban filters as jail filters in the engine: matched beside the compiled pass on the
same chunks, with the same outputs (attempts with addresses, names handed to the identity
stage, replay series), and a time budget that keeps a pathological pattern from stopping
the jail."""

from __future__ import annotations

import calendar
from pathlib import Path

from bruteguard.match.engine import Matcher

REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))
LOG = (
    b"Nov 23 06:50:01 host sshd[12]: Failed password for root from 198.51.100.7 port 5 ssh2\n"
    b"Nov 23 06:50:02 host sshd[13]: Failed password for admin from 2001:db8::9 port 6 ssh2\n"
    b"Nov 23 06:50:03 host sshd[14]: Failed password for bob from scanner.example.net port 7"
    b" ssh2\n"
    b"Nov 23 06:50:04 host sshd[15]: Accepted password for ann from 192.0.2.4 port 8 ssh2\n"
)


def test_builtin_and_imported_jails_read_the_same_chunk() -> None:
    matcher = Matcher({"ours": "sshd", "theirs": "fail2ban:sshd"})
    assert matcher.jails == ("ours", "theirs")
    stream = matcher.stream(reference=REFERENCE)
    hits = stream.feed(LOG)
    by_jail = {jail: [(h[1], h[2]) for h in hits if h[3] == jail] for jail in matcher.jails}
    assert (
        by_jail["ours"] == by_jail["theirs"] == [("198.51.100.7", "root"), ("2001:db8::9", "admin")]
    )
    assert [h[0] for h in hits] == sorted(h[0] for h in hits)
    named = stream.take_named()
    assert sorted((n[1], n[2], n[3]) for n in named) == [
        ("scanner.example.net", "bob", "ours"),
        ("scanner.example.net", "bob", "theirs"),
    ]
    assert stream.stats.lines == 4  # every line counted once, however many matchers read it
    assert stream.stats.attempts == 4 and stream.stats.unattributed == 2


def test_a_replay_series_is_the_same_for_an_imported_filter() -> None:
    matcher = Matcher({"ours": "sshd", "theirs": "fail2ban:sshd"})
    series = matcher.new_series()
    matcher.stream(reference=REFERENCE).collect(LOG, series)
    ours, theirs, shared = series
    assert shared == {}, "two filters: each line is each one's own"
    assert set(ours) == set(theirs) == {"198.51.100.7", "2001:db8::9"}
    for address in ours:
        assert bytes(ours[address][0]) == bytes(theirs[address][0])  # the same packed times
        assert ours[address][1] == theirs[address][1]  # the same users tried


def test_only_imported_jails_compile_nothing(tmp_path: Path) -> None:
    own = tmp_path / "app.conf"
    own.write_text("[Definition]\nfailregex = ^\\s*denied <F-USER>\\S+</F-USER> from <HOST>$\n")
    matcher = Matcher({"app": str(own)})
    assert matcher.pattern is None
    stream = matcher.stream(reference=REFERENCE)
    hits = stream.feed(b"2026-11-23 06:50:01 denied eve from 203.0.113.5\n")
    assert [(h[1], h[2], h[3]) for h in hits] == [("203.0.113.5", "eve", "app")]


def test_a_pattern_out_of_time_skips_its_line_and_the_jail_goes_on(tmp_path: Path) -> None:
    evil = tmp_path / "evil.conf"
    evil.write_text("[Definition]\nfailregex = ^\\s*(a|aa)+ from <HOST>$\n")
    matcher = Matcher({"evil": str(evil), "sshd": "sshd"})
    stream = matcher.stream(reference=REFERENCE)
    chunk = (
        b"2026-11-23 06:50:01 aaa from 198.51.100.1\n"
        + b"2026-11-23 06:50:02 "
        + b"a" * 60
        + b"! from 198.51.100.2\n"
        + b"2026-11-23 06:50:03 aaaa from 198.51.100.3\n"
        + LOG[: LOG.index(b"\n") + 1]
    )
    hits = stream.feed(chunk)
    assert sorted((h[1], h[3]) for h in hits) == [
        ("198.51.100.1", "evil"),
        ("198.51.100.3", "evil"),
        ("198.51.100.7", "sshd"),
    ]
    assert stream.stats.match_errors == 1
    more = stream.feed(b"2026-11-23 06:51:00 aa from 198.51.100.4\n")
    assert [(h[1], h[3]) for h in more] == [("198.51.100.4", "evil")]
