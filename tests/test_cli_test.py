"""``bruteguard test FILTER LOG``: the real command on real-format logs, built-in and fail2ban
filters alike, the ``--json`` contract of the README, and a pathological imported pattern
that runs out of time on one line while the rest of the log is still matched."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

SSHD_LOG = (
    "Nov 23 06:50:01 host sshd[12]: Invalid user bob from 198.51.100.7 port 5\n"
    "Nov 23 06:50:03 host sshd[12]: Failed password for invalid user bob from 198.51.100.7"
    " port 5 ssh2\n"
    "Nov 23 06:50:04 host sshd[13]: Accepted publickey for ann from 192.0.2.4 port 6 ssh2\n"
    "Nov 23 06:50:05.250 host sshd[14]: Failed password for root from ::ffff:203.0.113.9"
    " port 7 ssh2\n"
    "Nov 23 06:50:06 host sshd[15]: Failed password for root from scanner.example.net port 8"
    " ssh2\n"
)


def run(exe: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TZ": "UTC"}
    return subprocess.run(
        [str(exe), "test", *args],
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.fixture
def sshd_log(tmp_path: Path) -> Path:
    path = tmp_path / "auth.log"
    path.write_text(SSHD_LOG)
    moment = datetime(2026, 12, 1).timestamp()
    os.utime(path, (moment, moment))  # the year of a syslog stamp comes from the file
    return path


def verdicts(done: subprocess.CompletedProcess[str]) -> list[dict]:
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(set(row) == {"line", "match", "host", "user", "time"} for row in rows)
    return rows


def test_built_in_filter_json_is_one_object_per_line(bruteguard_exe: Path, sshd_log: Path) -> None:
    rows = verdicts(run(bruteguard_exe, "sshd", str(sshd_log), "--json"))
    assert [(r["line"], r["match"], r["host"], r["user"], r["time"]) for r in rows] == [
        (1, True, "198.51.100.7", "bob", "2026-11-23T06:50:01"),
        (2, True, "198.51.100.7", "bob", "2026-11-23T06:50:03"),
        (3, False, None, None, None),
        (4, True, "203.0.113.9", "root", "2026-11-23T06:50:05.250000"),
        (5, True, "scanner.example.net", "root", "2026-11-23T06:50:06"),  # never resolved
    ]


def test_fail2ban_filter_by_name_with_options(bruteguard_exe: Path, sshd_log: Path) -> None:
    plain = verdicts(run(bruteguard_exe, "fail2ban:sshd", str(sshd_log), "--json"))
    assert [(r["match"], r["host"], r["user"]) for r in plain][:4] == [
        (True, "198.51.100.7", "bob"),
        (True, "198.51.100.7", "bob"),
        (False, None, None),
        (True, "203.0.113.9", "root"),
    ]
    assert plain[0]["time"] == "2026-11-23T06:50:01"
    # the raw name pam wrote, never resolved
    assert (plain[4]["match"], plain[4]["host"]) == (True, "scanner.example.net")
    aggressive = run(bruteguard_exe, "fail2ban:sshd", str(sshd_log), "--opt", "mode=aggressive")
    bracketed = run(bruteguard_exe, "fail2ban:sshd[mode=aggressive]", str(sshd_log))
    assert aggressive.returncode == bracketed.returncode == 0
    assert aggressive.stdout == bracketed.stdout


def test_fail2ban_filter_file_by_path_and_stdin(bruteguard_exe: Path, tmp_path: Path) -> None:
    own = tmp_path / "myapp.conf"
    own.write_text(
        "[Definition]\n_daemon = myapp\n"
        "failregex = ^\\s*\\S+ %(_daemon)s\\[\\d+\\]: login failed for <F-USER>\\S+</F-USER>"
        " from <HOST>$\n"
    )
    log = b"2026-11-23T06:50:01+00:00 host myapp[3]: login failed for eve from 2001:db8::7\n"
    rows = verdicts(run(bruteguard_exe, str(own), "-", "--json", stdin=log))
    assert rows == [
        {
            "line": 1,
            "match": True,
            "host": "2001:db8::7",
            "user": "eve",
            "time": "2026-11-23T06:50:01",
        }
    ]


def test_summary_counts_each_attempt_once(bruteguard_exe: Path, sshd_log: Path) -> None:
    done = run(bruteguard_exe, "sshd", str(sshd_log), "--missed")
    assert done.returncode == 0, done.stderr
    assert "      3  missed  Nov 23 06:50:04" in done.stdout
    # lines 1 and 2 are one attempt; line 4 another; line 5's (a name) a third
    assert done.stdout.rstrip().endswith("5 lines, 4 matched, 1 missed; 3 attempts counted")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nosuch", "LOG"), "unknown filter 'nosuch'"),
        (("sshd", "LOG", "--opt", "mode=aggressive"), "built-in filters take no options"),
        (("fail2ban:nosuch", "LOG"), "nosuch"),
        (("sshd", "/nonexistent/auth.log"), "/nonexistent/auth.log: cannot read the log"),
        (("fail2ban:sshd", "LOG", "--opt", "novalue"), "expected KEY=VALUE"),
    ],
)
def test_mistakes_are_one_line_errors(
    bruteguard_exe: Path, sshd_log: Path, args: tuple[str, ...], message: str
) -> None:
    done = run(bruteguard_exe, *(str(sshd_log) if a == "LOG" else a for a in args))
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_pathological_pattern_runs_out_of_time_and_matching_goes_on(
    bruteguard_exe: Path, tmp_path: Path
) -> None:
    evil = tmp_path / "evil.conf"
    evil.write_text("[Definition]\nfailregex = ^\\s*(a|aa)+ from <HOST>$\n")
    log = tmp_path / "evil.log"
    log.write_text(
        "2026-11-23 06:50:01 aaa from 198.51.100.1\n"
        f"2026-11-23 06:50:02 {'a' * 60}! from 198.51.100.2\n"  # exponential backtracking
        "2026-11-23 06:50:03 aaaa from 198.51.100.3\n"
    )
    done = run(bruteguard_exe, str(evil), str(log), "--json")
    rows = verdicts(done)
    assert [(r["match"], r["host"]) for r in rows] == [
        (True, "198.51.100.1"),
        (False, None),
        (True, "198.51.100.3"),
    ]
    assert "line 2" in done.stderr and "(a|aa)+" in done.stderr


def test_a_line_naming_a_host_shows_that_name_and_its_time(
    bruteguard_exe: Path, tmp_path: Path
) -> None:
    """pam's announcement under sshd's UseDNS names the host and waits for sshd's verdict
    (which carries the address): alone, it counts nothing, but the line is shown as the
    contract says, with the raw name and the time."""
    log = tmp_path / "auth.log"
    log.write_text(
        "Nov 23 06:50:01 host sshd[12]: pam_unix(sshd:auth): authentication failure; logname="
        " uid=0 euid=0 tty=ssh ruser= rhost=host.example.net  user=root\n"
        "Nov 23 06:50:02 host sshd[13]: pam_unix(sshd:auth): authentication failure; logname="
        " uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.7\r\n"
    )
    moment = datetime(2026, 12, 1).timestamp()
    os.utime(log, (moment, moment))
    rows = verdicts(run(bruteguard_exe, "sshd", str(log), "--json"))
    assert [(r["match"], r["host"], r["user"], r["time"]) for r in rows] == [
        (True, "host.example.net", "root", "2026-11-23T06:50:01"),
        (True, "198.51.100.7", None, "2026-11-23T06:50:02"),  # a CRLF line: no "\r" in it
    ]


def test_a_line_naming_no_client_has_no_host_and_a_time(
    bruteguard_exe: Path, tmp_path: Path
) -> None:
    log = tmp_path / "error_log"
    log.write_text(
        "2026-11-23 22:37:08: (connections.c.299) SSL: 1 error:140780E5:SSL routines:"
        "SSL23_READ:ssl handshake failure\n"
    )
    rows = verdicts(run(bruteguard_exe, "sw-cp-server", str(log), "--json"))
    assert [(r["match"], r["host"], r["time"]) for r in rows] == [
        (True, None, "2026-11-23T22:37:08")
    ]


def test_a_line_whose_stamp_is_no_real_time_is_not_a_match(
    bruteguard_exe: Path, tmp_path: Path
) -> None:
    """The daemon drops such a line (it cannot be placed in any window): so does `test`."""
    log = tmp_path / "error.log"
    log.write_text(
        "261399 17:56:13 [Warning] Access denied for user 'root'@'198.51.100.8'"
        " (using password: YES)\n"
    )
    done = run(bruteguard_exe, "mysqld", str(log), "--json")
    assert [(r["match"], r["time"]) for r in verdicts(done)] == [(False, None)]
    summary = run(bruteguard_exe, "mysqld", str(log)).stdout
    assert "1 lines, 0 matched, 1 missed" in summary


def test_readme_documents_the_json_contract_the_program_follows(
    bruteguard_exe: Path, sshd_log: Path
) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## `bruteguard test FILTER LOG --json` (a public contract)", 1)[1]
    example = section.split("```json\n", 1)[1].split("```", 1)[0]
    documented = [json.loads(line) for line in example.splitlines()]
    printed = verdicts(run(bruteguard_exe, "sshd", str(sshd_log), "--json"))
    stamp = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?$"
    for row in documented + printed:
        assert list(row) == ["line", "match", "host", "user", "time"]
        assert isinstance(row["line"], int) and isinstance(row["match"], bool)
        assert row["time"] is None or re.match(stamp, row["time"])
        assert (row["time"] is None) == (not row["match"])
        assert row["match"] or row["host"] is None


def test_a_session_line_gets_the_address_its_session_opened_with(
    bruteguard_exe: Path, tmp_path: Path
) -> None:
    """OpenSMTPD writes the address only on a session's first line: the refused attempt's
    line is shown with it (and the 535 that confirms the same attempt is not counted again)."""
    path = tmp_path / "mail.log"
    path.write_text(
        "Dec  4 22:19:34 mx smtpd[47]: 2bb3a961c3a34fad smtp connected address=198.51.100.7"
        " host=<unknown>\n"
        "Dec  4 22:19:35 mx smtpd[47]: 2bb3a961c3a34fad smtp authentication user=bob"
        " result=permfail\n"
        'Dec  4 22:19:36 mx smtpd[47]: 2bb3a961c3a34fad smtp failed-command command="AUTH'
        ' PLAIN (...)" result="535 Authentication failed"\n'
    )
    moment = datetime(2026, 12, 5).timestamp()
    os.utime(path, (moment, moment))
    rows = verdicts(run(bruteguard_exe, "opensmtpd", str(path), "--json"))
    assert [(r["match"], r["host"], r["user"]) for r in rows] == [
        (True, "198.51.100.7", None),  # the opening line names the address, counts nothing
        (True, "198.51.100.7", "bob"),
        (True, None, None),
    ]


# RedHat-era pam_unix (Linux-PAM 0.7x, support.c): its lines went to /var/log/messages
# (facility auth), sshd's verdicts to /var/log/secure (authpriv). One line per connection.
MESSAGES_LOG = (
    "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0"
    " euid=0 tty=NODEVssh ruser= rhost=198.51.100.7 \n"
    "Jun 14 15:16:02 combo sshd(pam_unix)[19937]: check pass; user unknown\n"
    "Jun 14 15:16:02 combo sshd(pam_unix)[19937]: authentication failure; logname= uid=0"
    " euid=0 tty=NODEVssh ruser= rhost=198.51.100.7  user=root\n"
)


def test_a_log_of_pam_refusals_alone_counts_nothing_and_says_why(
    bruteguard_exe: Path, tmp_path: Path
) -> None:
    """pam_unix's refusal waits for sshd's verdict (a directory user's rightful login starts
    with one too): a log without sshd's own lines counts nothing, and `test` says why."""
    log = tmp_path / "messages"
    log.write_text(MESSAGES_LOG)
    done = run(bruteguard_exe, "sshd", str(log))
    assert done.returncode == 0, done.stderr
    summary, hint = done.stdout.rstrip().splitlines()[-2:]
    assert summary == "3 lines, 2 matched, 1 missed; 0 attempts counted"
    assert "PAM refusal waiting for the service's own verdict" in hint
    assert "/var/log/secure" in hint

    # With sshd's verdict for one of them (the same pid), that attempt counts, once.
    log.write_text(
        MESSAGES_LOG + "Jun 14 15:16:04 combo sshd[19937]: Failed password for root from"
        " 198.51.100.7 port 4242 ssh2\n"
    )
    done = run(bruteguard_exe, "sshd", str(log))
    assert done.stdout.rstrip().endswith("4 lines, 3 matched, 1 missed; 1 attempts counted")
