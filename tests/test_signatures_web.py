"""Web applications' signatures beyond single lines: one attempt counted once across the lines
Grafana writes for it, a syslog tag with a variable part (the WP fail2ban plugin's
``wordpress(HOST)``), Gitea's repeated user name as a back-reference, and the compiled
catalogue staying within what PCRE2 can hold."""

from __future__ import annotations

import calendar
from unittest import mock

import pytest

from bruteguard.match.engine import Matcher
from bruteguard.match.signature import ProgramPattern, Role, Signature, program_regex
from bruteguard.match.signatures import FILTERS, Filter

REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))

GRAFANA_ERROR = (
    b"logger=context userId=0 orgId=0 uname= t=2026-11-23T06:50:01.1Z level=info"
    b' msg="Invalid username or password" error="invalid username or password"'
    b" remote_addr=%s traceID="
)
GRAFANA_REQUEST = (
    b"logger=context userId=0 orgId=0 uname= t=2026-11-23T06:50:01.2Z level=info"
    b' msg="Request Completed" method=POST path=/login status=401 remote_addr=%s'
    b" time_ms=92 duration=92ms size=42 referer= handler=/login"
)


def _hits(jails: dict[str, str], text: bytes) -> list[tuple]:
    return Matcher(jails).stream(reference=REFERENCE).feed(text)


def test_a_grafana_login_writes_two_lines_and_counts_once() -> None:
    one = b"198.51.100.7"
    lines = GRAFANA_ERROR % one + b"\n" + GRAFANA_REQUEST % one + b"\n"
    assert [hit[1] for hit in _hits({"grafana": "grafana"}, lines * 3)] == ["198.51.100.7"] * 3


def test_a_grafana_request_line_alone_counts() -> None:
    lines = b"".join(GRAFANA_REQUEST % a + b"\n" for a in (b"198.51.100.7", b"2001:db8::7"))
    assert [hit[1] for hit in _hits({"grafana": "grafana"}, lines)] == [
        "198.51.100.7",
        "2001:db8::7",
    ]


def test_program_patterns_match_the_whole_tag_only() -> None:
    lines = (
        b"Nov 23 06:50:01 web wordpress(example.org)[12]: Empty username from 198.51.100.7\n"
        b"Nov 23 06:50:01 web wordpress(ex ample)[12]: Empty username from 203.0.113.9\n"
        b"Nov 23 06:50:01 web wordpressx(example.org)[12]: Empty username from 203.0.113.9\n"
        b"Nov 23 06:50:01 web wp(example.org/blog)[12]: Empty username from 2001:db8::7\n"
    )
    hits = _hits({"wp-fail2ban": "wp-fail2ban"}, lines)
    assert [hit[1] for hit in hits] == ["198.51.100.7", "2001:db8::7"]
    assert program_regex("a.b") == r"a\.b"
    assert program_regex(ProgramPattern(r"a\(x\)")) == r"a\(x\)"


def test_a_back_reference_names_a_placeholder_and_other_groups_are_refused() -> None:
    echo = Signature("echo", Role.CONFIRM, r"for <USER> from <HOST>: name=\g{-2}")
    stray = Signature("stray", Role.CONFIRM, r"for (x) from <HOST>")
    with mock.patch.dict(FILTERS, {"t": Filter("t", ("t",), (echo,))}):
        text = b"Nov 23 06:50:01 h t[1]: for a b from 198.51.100.7: name=a b\n"
        assert [hit[1:3] for hit in _hits({"t": "t"}, text)] == [("198.51.100.7", "a b")]
        assert _hits({"t": "t"}, text.replace(b"name=a b", b"name=a c")) == []
    with (
        mock.patch.dict(FILTERS, {"t": Filter("t", ("t",), (stray,))}),
        pytest.raises(ValueError, match="groups only"),
    ):
        Matcher({"t": "t"})


def test_the_whole_catalogue_compiles_in_few_parts() -> None:
    """PCRE2 (link size 2) holds at most 64K code units in one expression, and a bounded
    repeat of a group is copied that many times (the access-log head once cost a fifth of
    the whole): every built-in filter together fits in a few parts."""
    matcher = Matcher({name: name for name in FILTERS})
    assert matcher.pattern is not None
    assert matcher.pattern.parts <= 3
    web = Matcher({"nginx-http-flood": "nginx-http-flood", "wordpress": "wordpress"})
    assert web.pattern is not None and web.pattern.parts == 1
