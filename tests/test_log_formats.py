"""sshd's lines as every syslog daemon frames them, and with CRLF line ends: the same
attempt, the same address, the same moment, whatever wrote the log.

The framings are the ones real daemons write (rsyslog's traditional and RFC 3339
templates, RFC 5424 with and without ``<PRI>``, busybox with and without the host and its
``facility.level``, FreeBSD syslogd ``-v``, macOS, rsyslog 8 without the colon after the
pid, Dovecot's own file with ``YYYY-MM-DD`` stamps). A whole real OpenSSH log converted to
CRLF must give exactly what the LF file gives, through the compiled pass and through
fail2ban's own filter.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bruteguard.match.engine import Matcher

DATA = Path(__file__).parent / "data"
REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))
MESSAGE = "Invalid user admin from 198.51.100.7 port 4242"
UTC = calendar.timegm((2026, 11, 2, 15, 40, 14))


@pytest.mark.parametrize(
    ("line", "moment"),
    [
        pytest.param(f"Nov  2 15:40:14 host sshd[12]: {MESSAGE}", UTC, id="bsd"),
        pytest.param(f"Nov 2 15:40:14 host sshd[12]: {MESSAGE}", UTC, id="bsd-unpadded-day"),
        pytest.param(f"Nov 2 15:40:14 sshd[12]: {MESSAGE}", UTC, id="busybox-S-no-host"),
        pytest.param(f"Nov  2 15:40:14 vps auth.info sshd[12]: {MESSAGE}", UTC, id="busybox"),
        pytest.param(f"Nov  2 15:40:14 vps authpriv.notice sshd[12]: {MESSAGE}", UTC,
                     id="busybox-authpriv"),
        pytest.param(f"Nov  2 15:40:14 <10.5> host sshd[12]: {MESSAGE}", UTC,
                     id="freebsd-syslogd-v"),
        pytest.param(f"2026-11-02T16:40:14.123456+01:00 host sshd[12]: {MESSAGE}", UTC + 0.123456,
                     id="rfc3339-microseconds-offset"),
        pytest.param(f"2026-11-02T15:40:14Z host sshd[12]: {MESSAGE}", UTC, id="rfc3339-z"),
        pytest.param(f"2026-11-02 10:40:14.180218-0500 localhost sshd[12]: {MESSAGE}",
                     UTC + 0.180218, id="macos"),
        pytest.param(f"<38>1 2026-11-02T15:40:14.000Z host sshd 12 - - {MESSAGE}", UTC,
                     id="rfc5424"),
        pytest.param(f"<38>1 2026-11-02T15:40:14Z host sshd - - - {MESSAGE}", UTC,
                     id="rfc5424-no-procid"),
        pytest.param(f'<38>1 2026-11-02T15:40:14Z host sshd 12 ID47 [exampleSDID@32473 iut="3"'
                     f' eventSource="Application"][meta note="a \\"quoted\\" \\]"] {MESSAGE}',
                     UTC, id="rfc5424-structured-data"),
        pytest.param(f"<38>1 2026-11-02T15:40:14Z host sshd 12 - - \ufeff{MESSAGE}", UTC,
                     id="rfc5424-bom"),
        pytest.param(f"2026-11-02T15:40:14.021457+00:00 evse sshd 12 - - {MESSAGE}", UTC + 0.021457,
                     id="sysklogd-rfc5424-without-pri"),
        pytest.param(f"2026-11-02T15:40:14.058908+00:00 bastion sshd[12] {MESSAGE}",
                     UTC + 0.058908, id="rsyslog8-no-colon"),
        pytest.param(f"Nov  2 15:40:14 host sshd-session[12]: {MESSAGE}", UTC,
                     id="openssh98-sshd-session"),
    ],
)  # fmt: skip
def test_one_attempt_whatever_the_syslog_framing(
    local_zone: Callable[[str], ZoneInfo], line: str, moment: float
) -> None:
    local_zone("UTC")
    found = Matcher({"sshd": "sshd"}).stream(reference=REFERENCE).feed(f"{line}\n".encode())
    assert [(h[0], h[1], h[2]) for h in found] == [(pytest.approx(moment), "198.51.100.7", "admin")]


@pytest.mark.parametrize(
    "line",
    [
        # Another program quoting sshd, with or without a host: never sshd's line.
        f"Nov  2 15:40:14 host myapp: sshd[12]: {MESSAGE}",
        f"Nov  2 15:40:14 host auth.info myapp[3]: sshd[12]: {MESSAGE}",
        f"<38>1 2026-11-02T15:40:14Z host myapp 3 - - sshd[12]: {MESSAGE}",
        # A facility.level that is no facility: the program would be "notes.info".
        f"Nov  2 15:40:14 host notes.info sshd[12]: {MESSAGE}x",
        # A day that is no day, a time that is no time.
        f"Nov 32 15:40:14 host sshd[12]: {MESSAGE}",
        f"2026-11-02 25:40:14 host sshd[12]: {MESSAGE}",
    ],
)
def test_lines_that_are_not_sshds_count_nothing(line: str) -> None:
    found = Matcher({"sshd": "sshd"}).stream(reference=REFERENCE).feed(f"{line}\n".encode())
    assert [h[1] for h in found] == [], line


def test_dovecots_own_file_with_ymd_stamps(local_zone: Callable[[str], ZoneInfo]) -> None:
    local_zone("UTC")
    line = (
        "2026-11-02 15:40:14 imap-login: Info: Disconnected: Connection closed (auth failed,"
        " 2 attempts in 8 secs): user=<bob>, method=PLAIN, rip=198.51.100.7, lip=192.0.2.1\n"
    )
    found = Matcher({"dovecot": "dovecot"}).stream(reference=REFERENCE).feed(line.encode())
    assert [(h[0], h[1], h[2]) for h in found] == [(UTC, "198.51.100.7", "bob")] * 2


def _hits(jail_filter: str, text: bytes) -> list[tuple]:
    stream = Matcher({"sshd": jail_filter}).stream(reference=REFERENCE, keep_lines=True)
    return [(h[0], h[1], h[2], h[4]) for h in stream.feed(text)]


LOGS = sorted((DATA / "sshd").glob("*.log"))
# fail2ban 1.0.2's sshd filter predates OpenSSH 9.8's sshd-session: it finds nothing there.
CASES = [("sshd", log) for log in LOGS] + [
    ("fail2ban:sshd", log) for log in LOGS if "sshd_session" not in log.name
]


@pytest.mark.parametrize(("jail_filter", "log"), CASES, ids=lambda v: getattr(v, "stem", v))
def test_a_crlf_log_gives_exactly_what_the_lf_log_gives(jail_filter: str, log: Path) -> None:
    lf = log.read_bytes()
    crlf = lf.replace(b"\n", b"\r\n")
    expected = _hits(jail_filter, lf)
    assert expected, "the log has failures to find"
    assert _hits(jail_filter, crlf) == expected
    assert not any(b"\r" in (user or "").encode() for _, _, user, _ in expected)


def test_a_lone_cr_inside_a_line_is_text_not_a_line_end() -> None:
    """Only CR before LF is a line end: a CR inside a field cannot end a line early and let
    the text after it pose as the service's tail."""
    line = (
        b"Nov  2 15:40:14 host sshd[12]: Failed password for x from 203.0.113.9 port 22 ssh2"
        b"\r from 198.51.100.7 port 5 ssh2\n"
    )
    assert [h[1] for h in _hits("sshd", line)] != ["203.0.113.9"]
