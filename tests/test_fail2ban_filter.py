"""Loading and running fail2ban-style filters, with small filter files written for each test.

(fail2ban's own filters and logs are exercised by test_fail2ban_compat.py.)
"""

from __future__ import annotations

import calendar
import logging
import textwrap
import time
from pathlib import Path

import pytest

from bruteguard.errors import ConfigError
from bruteguard.fail2ban import Fail2banFilter, FilterError, LineResult, load_filter
from bruteguard.fail2ban.conffile import parse_spec
from bruteguard.fail2ban.tags import translate

NOW = calendar.timegm((2024, 3, 1, 12, 0, 0))


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def utc(text: str) -> float:
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


def run(flt_dir: Path, spec: str, lines: list[str], **kw: object) -> list[LineResult]:
    flt = load_filter(spec, dirs=[flt_dir])
    matcher = flt.matcher(now=lambda: NOW, logtimezone="UTC", **kw)  # type: ignore[arg-type]
    out: list[LineResult] = []
    for line in lines:
        out += matcher.process(line)
    return out


SIMPLE = """
[Definition]
failregex = ^\\s*auth failed for <F-USER>\\S+</F-USER> from <HOST>$
            ^\\s*bad key from <HOST>$
ignoreregex =
# the date is cut out of the line: what is left starts with the space that followed it
datepattern = ^%%Y-%%m-%%d %%H:%%M:%%S
"""


# --- spec -----------------------------------------------------------------------------------


def test_spec_is_name_and_options() -> None:
    assert parse_spec("sshd") == ("sshd", {})
    assert parse_spec("sshd[mode=aggressive, port=\"22, 2222\", x='a]b']") == (
        "sshd",
        {"mode": "aggressive", "port": "22, 2222", "x": "a]b"},
    )
    assert parse_spec("sshd[mode=ddos][logtype=journal]") == (
        "sshd",
        {"mode": "ddos", "logtype": "journal"},
    )
    with pytest.raises(FilterError):
        parse_spec("sshd[mode]")


def test_filter_error_is_a_config_error_naming_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no nosuch\.conf or nosuch\.local in"):
        load_filter("nosuch", dirs=[tmp_path])
    with pytest.raises(FilterError, match="a name is"):
        load_filter("ss hd", dirs=[tmp_path])


# --- files, includes, interpolation ---------------------------------------------------------


def test_simple_filter_matches_and_reports_user_host_time(tmp_path: Path) -> None:
    write(tmp_path, "simple.conf", SIMPLE)
    results = run(
        tmp_path,
        "simple",
        [
            "2024-02-29 10:00:00 auth failed for alice from 192.0.2.7",
            "2024-02-29 10:00:01 nothing to see",
            "2024-02-29 10:00:02 bad key from 2001:db8::5",
        ],
    )
    assert [r.match for r in results] == [True, False, True]
    first = results[0]
    assert (first.line, first.host, first.user, first.time) == (
        1,
        "192.0.2.7",
        "alice",
        utc("2024-02-29 10:00:00"),
    )
    assert first.pattern == r"^\s*auth failed for <F-USER>\S+</F-USER> from <HOST>$"
    assert results[1].line == 2 and results[1].host is None
    assert results[2].host == "2001:db8::5" and results[2].user is None


def test_local_file_and_conf_d_override_in_fail2ban_order(tmp_path: Path) -> None:
    write(tmp_path, "f.conf", SIMPLE)
    write(
        tmp_path,
        "f.d/10-more.conf",
        """
        [Definition]
        failregex = ^from-d-conf <HOST>$
        """,
    )
    write(
        tmp_path,
        "f.local",
        """
        [Definition]
        failregex = <known/failregex>
                    ^from-local <HOST>$
        """,
    )
    flt = load_filter("f", dirs=[tmp_path])
    assert flt.failregex == (r"^from-d-conf <HOST>$", r"^from-local <HOST>$")
    assert [p.name for p in flt.files] == ["f.conf", "10-more.conf", "f.local"]


def test_includes_before_after_and_their_local(tmp_path: Path) -> None:
    write(
        tmp_path,
        "common.conf",
        """
        [INCLUDES]
        after = common-after.conf
        [DEFAULT]
        _daemon = \\S+
        __prefix = %(_daemon)s\\[\\d+\\]:
        [lt_file]
        prefix = <__prefix>\\s+
        """,
    )
    write(tmp_path, "common.local", "[DEFAULT]\n_daemon = myd\n")
    write(tmp_path, "common-after.conf", "[DEFAULT]\nextra = after\n")
    write(
        tmp_path,
        "svc.conf",
        """
        [INCLUDES]
        before = common.conf
        [Definition]
        failregex = ^<lt_<logtype>/prefix>denied <HOST> %(extra)s$
        logtype = file
        datepattern = {NONE}
        """,
    )
    flt = load_filter("svc", dirs=[tmp_path])
    names = [p.name for p in flt.files]
    # a file's own includes come right after it, its .local after those
    assert names == ["common.conf", "common-after.conf", "common.local", "svc.conf"]
    # _daemon from common.local overrides common.conf even inside %(__prefix)s
    assert flt.failregex == (r"^myd\[\d+\]:\s+denied <HOST> after$",)
    results = run(tmp_path, "svc", ["myd[1]: denied 198.51.100.3 after"])
    assert results[0].match and results[0].host == "198.51.100.3"
    assert results[0].time == NOW  # {NONE}: the line carries no date, so it is "now"


def test_init_options_and_jail_options_and_modes(tmp_path: Path) -> None:
    write(
        tmp_path,
        "m.conf",
        """
        [Definition]
        normal = ^fail <HOST>$
        aggressive = %(normal)s
                     ^probe <HOST> port <port>$
        failregex = <<mode>>
        datepattern = {NONE}
        [Init]
        mode = normal
        port = \\d+
        """,
    )
    assert load_filter("m", dirs=[tmp_path]).failregex == (r"^fail <HOST>$",)
    aggressive = load_filter("m[mode=aggressive]", dirs=[tmp_path])
    assert aggressive.failregex == (r"^fail <HOST>$", r"^probe <HOST> port \d+$")
    assert aggressive.options["known/port"] == r"\d+"
    custom = load_filter('m[mode=aggressive, port="22"]', dirs=[tmp_path])
    assert custom.failregex[1] == r"^probe <HOST> port 22$"
    results = run(tmp_path, 'm[mode=aggressive, port="22"]', ["probe 192.0.2.1 port 22"])
    assert results[0].match and results[0].host == "192.0.2.1"


def test_journalmatch_maxlines_and_logtype_from_backend(tmp_path: Path) -> None:
    write(
        tmp_path,
        "j.conf",
        """
        [DEFAULT]
        logtype = file
        [lt_file]
        pre = FILE
        [lt_journal]
        pre = JOURNAL
        [Definition]
        failregex = ^<lt_<logtype>/pre> <HOST>$
        maxlines = 3
        journalmatch = _SYSTEMD_UNIT=a.service + _COMM=a
                       SYSLOG_IDENTIFIER="my app"
        """,
    )
    flt = load_filter("j", dirs=[tmp_path])
    assert flt.maxlines == 3
    assert flt.journalmatch == [
        "_SYSTEMD_UNIT=a.service",
        "+",
        "_COMM=a",
        "+",
        "SYSLOG_IDENTIFIER=my app",
    ]
    assert flt.failregex == ("^FILE <HOST>$",)
    assert load_filter("j", dirs=[tmp_path], logtype="journal").failregex == ("^JOURNAL <HOST>$",)
    # a jail's own option wins over the backend's
    assert load_filter("j[logtype=file]", dirs=[tmp_path], logtype="journal").failregex == (
        "^FILE <HOST>$",
    )


def test_path_spec_with_options(tmp_path: Path) -> None:
    path = write(tmp_path / "elsewhere", "p.conf", SIMPLE.replace("bad key", "<word>"))
    flt = load_filter(f"{path}[word=stolen key]")
    assert flt.name == "p"
    assert flt.failregex[1] == r"^\s*stolen key from <HOST>$"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[Definition]\nfailregex = ^x %(nope)s <HOST>$\n", r"f\.conf \[Definition\] failregex"),
        ("[Definition]\nfailregex = ^x 100% <HOST>$\n", "must be written '%%'"),
        ("[Definition]\nfailregex = ^x <a> <HOST>$\na = <a>\n", "loop"),
        ("[Definition]\nfailregex = ^x (<HOST>$\n", "cannot compile"),
        ("[Definition]\nfailregex = ^x no host here$\n", "captures no host"),
        ("[Definition]\nfailregex =\n", "failregex is empty"),
        ("[Definition]\nfailregex = ^<HOST>$\nmaxlines = two\n", "maxlines"),
        ("[Definition]\nfailregex = ^<HOST>$\ndatepattern = %%Q\n", "datepattern"),
        ("[Definition\nfailregex = ^<HOST>$\n", r"f\.conf"),
    ],
)
def test_broken_filters_are_refused_with_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    write(tmp_path, "f.conf", text)
    with pytest.raises(FilterError, match=message):
        load_filter("f", dirs=[tmp_path])


# --- tags -----------------------------------------------------------------------------------


def test_tags_become_named_groups(tmp_path: Path) -> None:
    write(
        tmp_path,
        "t.conf",
        """
        [Definition]
        failregex = ^a <ADDR>$
                    ^b <IP4>/<CIDR>$
                    ^c <IP6>$
                    ^d <DNS>$
                    ^e <SUBNET>$
                    ^f <F-ID/> port <F-PORT/>$
                    ^g user=<F-ALT_USER>\\S+</F-ALT_USER> name=<F-USER>\\S*</F-USER> <HOST>$
                    ^h <F-SESSION>\\w+</F-SESSION> from <HOST></F-NEVEROPENED>$
        datepattern = {NONE}
        """,
    )
    lines = [
        "a [2001:db8::1]",
        "b 198.51.100.9/24",
        "c 2001:db8:0:1::7",
        "d attacker.example.org",
        "e 192.0.2.0/28",
        "f session-42 port ssh",
        "g user=root name= ::ffff:203.0.113.5",
        "h abc123 from host-1.example</F-NEVEROPENED>",
    ]
    r = run(tmp_path, "t", lines)
    assert all(x.match for x in r), r
    assert r[0].host == "2001:db8::1" and r[0].fields["ip6"] == "2001:db8::1"
    assert r[1].host == "198.51.100.9" and r[1].fields["cidr"] == "24"
    assert r[2].host == "2001:db8:0:1::7"
    assert r[3].host == "attacker.example.org" and r[3].fields["dns"] == "attacker.example.org"
    assert r[4].host == "192.0.2.0" and r[4].fields["cidr"] == "28"
    assert (r[5].host, r[5].fid, r[5].fields["fport"]) == (None, "session-42", "ssh")
    assert r[6].user == "root" and r[6].host == "203.0.113.5"  # mapped IPv4 is the IPv4
    assert r[7].fields["session"] == "abc123" and r[7].host == "host-1.example"


def test_usedns_no_makes_host_an_address_only() -> None:
    assert "dns" in translate("<HOST>")
    assert "dns" not in translate("<HOST>", dns=False)
    # a group-scoped flag is kept scoped, as fail2ban rewrites it
    assert translate("^x (?:(?i)abc) <IP4>$").startswith("^x (?i:abc) ")


def test_names_are_reported_as_text_never_resolved(tmp_path: Path) -> None:
    write(tmp_path, "simple.conf", SIMPLE)
    r = run(tmp_path, "simple", ["2024-02-29 10:00:00 bad key from does-not-exist.invalid"])
    assert r[0].match and r[0].host == "does-not-exist.invalid"


# --- prefregex, ignoreregex, order ----------------------------------------------------------


def test_prefregex_content_first_match_wins_and_ignoreregex(tmp_path: Path) -> None:
    write(
        tmp_path,
        "pr.conf",
        """
        [Definition]
        prefregex = ^\\S+ svc\\[\\d+\\]: <F-CONTENT>.+</F-CONTENT>$
        failregex = ^login failed from <HOST>
                    ^login failed from <HOST> for <F-USER>\\S+</F-USER>$
        ignoreregex = for trusted$
        datepattern = {NONE}
        """,
    )
    r = run(
        tmp_path,
        "pr",
        [
            "host svc[1]: login failed from 192.0.2.1 for bob",
            "host svc[1]: login failed from 192.0.2.2 for trusted",
            "host other[1]: login failed from 192.0.2.3 for bob",
        ],
    )
    assert r[0].match and r[0].user is None  # the first failregex won
    assert r[0].pattern == "^login failed from <HOST>"
    assert not r[1].match  # ignoreregex
    assert not r[2].match  # prefregex did not match


def test_nofail_and_mlfid_join_lines_of_one_connection(tmp_path: Path) -> None:
    write(
        tmp_path,
        "ml.conf",
        """
        [Definition]
        prefregex = ^<F-MLFID>conn \\d+</F-MLFID>: <F-CONTENT>.+</F-CONTENT>$
        failregex = ^<F-NOFAIL>connect from</F-NOFAIL> <HOST>$
                    ^auth failed for <F-USER>\\S+</F-USER>$
                    ^<F-MLFFORGET>closed</F-MLFFORGET>$
                    ^<F-NOFAIL><F-MLFFORGET>login ok</F-MLFFORGET></F-NOFAIL>$
        datepattern = {NONE}
        """,
    )
    r = run(
        tmp_path,
        "ml",
        [
            "conn 1: connect from 198.51.100.20",  # not a failure, remembers the address
            "conn 2: connect from 198.51.100.21",
            "conn 1: auth failed for alice",  # the address comes from line 1
            "conn 1: auth failed for bob",
            "conn 1: closed",  # forgets connection 1
            "conn 1: auth failed for carol",  # no address known any more: not reported
            "conn 2: login ok",
            "conn 2: auth failed for dave",
        ],
    )
    assert [x.match for x in r] == [False, False, True, True, True, False, False, False]
    assert (r[2].line, r[2].host, r[2].user) == (3, "198.51.100.20", "alice")
    # every user of the connection is kept; each failure line is reported once
    assert r[3].users == ("alice", "bob") and r[3].attempts == 1
    assert r[4].host == "198.51.100.20"


def test_maxlines_buffers_lines_until_the_pattern_completes(tmp_path: Path) -> None:
    write(
        tmp_path,
        "two.conf",
        """
        [Definition]
        failregex = ^session (?P<sid>\\d+) from <HOST>\\n(?:.*\\n)*?session (?P=sid) failed$
        maxlines = 3
        datepattern = {NONE}
        """,
    )
    r = run(
        tmp_path,
        "two",
        [
            "session 7 from 192.0.2.44",
            "unrelated",
            "session 7 failed",
            "session 7 failed",
        ],
    )
    assert [x.match for x in r] == [False, False, True, False]
    assert r[2].line == 3 and r[2].host == "192.0.2.44" and r[2].attempts == 3


def test_dateless_line_takes_a_recent_date_and_journal_time_is_used(tmp_path: Path) -> None:
    write(tmp_path, "simple.conf", SIMPLE)
    flt = load_filter("simple", dirs=[tmp_path])
    m = flt.matcher(now=lambda: NOW, logtimezone="UTC")
    dated = m.process("2024-03-01 11:59:30 bad key from 192.0.2.1")[0]
    dateless = m.process("bad key from 192.0.2.2")[0]
    assert dated.time == utc("2024-03-01 11:59:30")
    assert dateless.match and dateless.time == dated.time
    journal = m.process("bad key from 192.0.2.3", when=1234.5)[0]
    assert journal.match and journal.time == 1234.5
    old = flt.matcher(now=lambda: NOW, logtimezone="UTC")
    old.process("2024-01-01 00:00:00 bad key from 192.0.2.1")
    assert old.process("bad key from 192.0.2.2")[0].time is None  # too old to inherit


# --- hostile patterns -----------------------------------------------------------------------


def _catastrophic_filter(tmp_path: Path) -> Fail2banFilter:
    """A filter whose first pattern backtracks on a long run of a's not followed by $."""
    write(
        tmp_path,
        "slow.conf",
        """
        [Definition]
        failregex = ^login from <HOST> user (a|aa)+$
                    ^bad key from <HOST>$
        datepattern = {NONE}
        """,
    )
    return load_filter("slow", dirs=[tmp_path])


def test_catastrophic_pattern_times_out_and_the_matcher_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    matcher = _catastrophic_filter(tmp_path).matcher(now=lambda: NOW, timeout=0.05)
    lines = [
        "login from 192.0.2.1 user " + "a" * 60 + "!",
        "bad key from 192.0.2.2",
        "login from 192.0.2.3 user aaa",
    ]
    caplog.set_level(logging.WARNING, logger="bruteguard.fail2ban")
    started = time.monotonic()
    results = [matcher.process(line)[0] for line in lines]
    assert time.monotonic() - started < 5
    assert [r.match for r in results] == [False, True, True]
    assert matcher.timeouts == [(1, "^login from <HOST> user (a|aa)+$")]
    assert any(
        "line 1" in rec.getMessage() and "(a|aa)+" in rec.getMessage() for rec in caplog.records
    )


def test_a_flood_of_timeouts_is_counted_each_but_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Hostile lines must not fill the log as well as the CPU: one warning a minute."""
    matcher = _catastrophic_filter(tmp_path).matcher(now=lambda: NOW, timeout=0.02)
    caplog.set_level(logging.WARNING, logger="bruteguard.fail2ban")
    for n in range(5):
        matcher.process(f"login from 192.0.2.{n} user " + "a" * 60 + "!")
    assert [number for number, _ in matcher.timeouts] == [1, 2, 3, 4, 5]
    warnings = [rec.getMessage() for rec in caplog.records]
    assert len(warnings) == 1 and "line 1" in warnings[0]
    assert "counted, not logged, for 60 s" in warnings[0]


def test_catastrophic_datepattern_times_out_and_the_matcher_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Date templates run on the line too: a datepattern gets the same budget."""
    write(
        tmp_path,
        "slowdate.conf",
        """
        [Definition]
        failregex = ^\\s*bad key from <HOST>$
        datepattern = ^(?:a|aa)+x %%Y-%%m-%%d %%H:%%M:%%S
        """,
    )
    flt = load_filter("slowdate", dirs=[tmp_path])
    matcher = flt.matcher(now=lambda: NOW, timeout=0.05, logtimezone="UTC")
    lines = [
        "a" * 60 + "! 2024-03-01 11:59:00 bad key from 192.0.2.1",
        "aax 2024-03-01 11:59:30 bad key from 192.0.2.2",
    ]
    caplog.set_level(logging.WARNING, logger="bruteguard.fail2ban")
    started = time.monotonic()
    results = [matcher.process(line)[0] for line in lines]
    assert time.monotonic() - started < 5
    assert [(r.match, r.host) for r in results] == [(False, None), (True, "192.0.2.2")]
    assert results[1].time == utc("2024-03-01 11:59:30")
    assert [number for number, _ in matcher.timeouts] == [1]
    assert "(?:a|aa)+x" in matcher.timeouts[0][1]
    assert any("line 1" in rec.getMessage() for rec in caplog.records)


def test_a_newline_inside_a_message_cannot_pose_as_a_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        "nl.conf",
        """
        [Definition]
        failregex = ^rejected (?P<sid>\\d+)\\n^peer <HOST>$
        maxlines = 2
        datepattern = {NONE}
        """,
    )
    forged = run(tmp_path, "nl", ["rejected 1\npeer 192.0.2.66"])
    assert not forged[0].match
    real = run(tmp_path, "nl", ["rejected 1", "peer 192.0.2.66"])
    assert real[1].match and real[1].host == "192.0.2.66"
