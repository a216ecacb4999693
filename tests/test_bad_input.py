"""Bad input for ``bruteguard scan``/``report``: never a crash, and the valid lines still count.

Logs meet binary garbage (a crashed disk, a mis-rotated file), bytes that are not UTF-8 (user
names are whatever the client sent), NUL runs, megabyte lines, a last line cut short, and
other services' chatter. Each test surrounds such input with real OpenSSH failures whose
count is known, and checks the exact counts, the summary's line count, and that every
output is clean UTF-8 with no terminal control bytes.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bruteguard.sources import MAX_LINE

MTIME = 1795996800.0  # 2026-12-01T00:00:00Z: fixes the year of syslog stamps


def failure_line(n: int, address: str, user: bytes = b"root") -> bytes:
    """A real, complete 'Failed password' line, one attempt of its own connection."""
    return (
        f"Nov 23 06:{n // 60 % 60:02d}:{n % 60:02d} web1 sshd[{3000 + n}]: ".encode()
        + b"Failed password for invalid user "
        + user
        + f" from {address} port {40000 + n} ssh2".encode()
    )


def run(exe: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {key: value for key, value in os.environ.items() if key != "FORCE_COLOR"}
    done = subprocess.run(
        [str(exe), *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        env={**env, "TZ": "UTC", "COLUMNS": "200"},
    )
    assert b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    return done


def scan(exe: Path, path: str, stdin: bytes = b"") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    done = run(exe, "scan", "--json", path, stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    text = done.stdout.decode("utf-8")  # strict: the output is always valid UTF-8
    *events, summary = (json.loads(line) for line in text.splitlines())
    assert summary["type"] == "summary"
    return events, summary


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    os.utime(path, (MTIME, MTIME))
    return path


def line_count(data: bytes) -> int:
    """Lines as scan counts them: newline-terminated ones, plus an unterminated last one."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def hostile_log() -> tuple[bytes, Counter[str]]:
    """Valid failures (counted in the Counter) around every kind of bad line."""
    rng = random.Random(20261123)
    expected: Counter[str] = Counter()
    parts: list[bytes] = []

    def good(n: int, address: str, user: bytes = b"root") -> None:
        parts.append(failure_line(n, address, user) + b"\n")
        expected[address] += 1

    good(1, "203.0.113.1")
    # Binary garbage, with and without newlines inside it.
    parts.append(rng.randbytes(64 * 1024) + b"\n")
    good(2, "203.0.113.2")
    parts.append(bytes(rng.randrange(256) for _ in range(4096)).replace(b"\n", b"\xff") + b"\n")
    # Invalid UTF-8 in user names (counted) and elsewhere.
    good(3, "203.0.113.3", b"\xff\xfe\xc3(")
    good(4, "2001:db8::4", b"adm\xe9n")
    parts.append(b"Nov 23 06:00:05 web\xff1 sshd[3005]: Accepted password for \xc0\xaf from x\n")
    parts.append(b"Nov 23 06:00:06 web1 sshd[3006]: Failed password \xed\xa0\x80 from 1 ssh2\n")
    good(7, "203.0.113.7")
    # NUL bytes: a run of them (a crash's zero-filled block) and one inside a user name.
    parts.append(b"\x00" * 8192 + b"\n")
    parts.append(b"\x00\n\x00\x00\n")
    good(8, "203.0.113.8", b"ro\x00ot")
    # A 1 MB line of text, and one of garbage, between valid ones.
    parts.append(b"Nov 23 06:00:09 web1 kernel: " + b"A" * 1_000_000 + b"\n")
    good(10, "198.51.100.10")
    parts.append(rng.randbytes(1_000_000).replace(b"\n", b" ") + b"\n")
    good(11, "198.51.100.11")
    # Other services' lines, some with addresses and failure words in them.
    parts += [
        b"Nov 23 06:00:12 web1 postfix/smtpd[811]: warning: unknown[198.51.100.50]: SASL LOGIN"
        b" authentication failed: UGFzc3dvcmQ6\n",
        b"Nov 23 06:00:12 web1 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2"
        b" secs): user=<admin>, method=PLAIN, rip=198.51.100.51, lip=192.0.2.1\n",
        b"Nov 23 06:00:12 web1 kernel: [UFW BLOCK] IN=eth0 OUT= SRC=198.51.100.52 DST=192.0.2.1"
        b" PROTO=TCP SPT=5 DPT=22\n",
        b"Nov 23 06:00:12 web1 vsftpd[900]: pam_unix(vsftpd:auth): authentication failure;"
        b" logname= uid=0 euid=0 tty=ftp ruser=x rhost=198.51.100.53\n",
        b'198.51.100.54 - - [23/Nov/2026:06:00:12 +0000] "POST /wp-login.php HTTP/1.1" 401\n',
        b"Nov 23 06:00:12 web1 sshdx[3012]: Failed password for root from 198.51.100.55 port 1"
        b" ssh2\n",
    ]
    good(13, "198.51.100.13")
    # Lines cut short in the middle (a writer that died): nothing to count in them.
    parts += [
        b"Nov 23 06:00:14 web1 sshd[3014]: Failed password for root from 203.0.1\n",
        b"Nov 23 06:00:14 web1 sshd[3015]: Failed password for root fr\n",
        b"Nov 23 06:00:14 web1 sshd[30\n",
        b"Nov 23 06:0\n",
        b"\n\n\r\n",
    ]
    good(15, "198.51.100.15")
    # Escape sequences in a user name (terminal injection): counted, shown harmlessly.
    good(16, "198.51.100.16", b"\x1b[2J\x1b]0;owned\x07\r\x9b31m")
    good(17, "198.51.100.17", "x\u009by\u202ez".encode())  # C1 CSI, right-to-left override
    # The last line is complete but has no newline (the file ends mid-write): it counts.
    parts.append(failure_line(18, "2001:db8::17"))
    expected["2001:db8::17"] += 1
    return b"".join(parts), expected


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, Counter[str]]:
    data, expected = hostile_log()
    path = write(tmp_path_factory.mktemp("bad") / "auth.log", data)
    return path, data, expected


def test_scan_counts_valid_failures_around_bad_input_exactly(
    bruteguard_exe: Path, hostile: tuple[Path, bytes, Counter[str]]
) -> None:
    path, data, expected = hostile
    events, summary = scan(bruteguard_exe, str(path))
    failures = [e for e in events if e["type"] == "failure"]
    assert Counter(e["ip"] for e in failures) == expected
    assert summary["failures"] == sum(expected.values()) == len(failures)
    assert summary["lines"] == line_count(data)
    assert summary["bans"] == 0


def test_user_names_that_are_not_text_stay_visible_and_valid_json(
    bruteguard_exe: Path, hostile: tuple[Path, bytes, Counter[str]]
) -> None:
    events, _ = scan(bruteguard_exe, str(hostile[0]))
    users = {e["ip"]: e["user"] for e in events}
    assert users["203.0.113.3"] == "\\xff\\xfe\\xc3("
    assert users["2001:db8::4"] == "adm\\xe9n"
    assert users["203.0.113.8"] == "ro\x00ot"
    assert users["198.51.100.16"] == "\x1b[2J\x1b]0;owned\x07\r\\x9b31m"
    assert users["198.51.100.17"] == "x\u009by\u202ez"
    assert users["2001:db8::17"] == "root"


def test_compressed_and_piped_bad_input_count_the_same(
    bruteguard_exe: Path, hostile: tuple[Path, bytes, Counter[str]], tmp_path: Path
) -> None:
    path, data, _ = hostile
    from_file = scan(bruteguard_exe, str(path))
    packed = write(tmp_path / "auth.log.2.gz", gzip.compress(data, mtime=0))
    from_gzip = scan(bruteguard_exe, str(packed))
    from_stdin = scan(bruteguard_exe, "-", stdin=data)
    assert from_gzip[0] == from_file[0]
    # From stdin a syslog stamp's year comes from the clock, not an mtime: compare the rest.
    assert [{**e, "time": None} for e in from_stdin[0]] == [
        {**e, "time": None} for e in from_file[0]
    ]
    assert from_gzip[1]["lines"] == from_stdin[1]["lines"] == from_file[1]["lines"]


def test_plain_scan_and_report_survive_bad_input_and_neutralise_control_bytes(
    bruteguard_exe: Path, hostile: tuple[Path, bytes, Counter[str]]
) -> None:
    path, data, expected = hostile
    for command in ("scan", "report"):
        done = run(bruteguard_exe, command, str(path))
        assert done.returncode == 0 and done.stderr == b""
        text = done.stdout.decode("utf-8")
        for control in ("\x1b", "\x07", "\r", "\x00", "\x9b", "\u202e"):
            assert control not in text, (command, repr(control))
        assert f"{line_count(data)} lines, {sum(expected.values())} failures" in text
    report = run(bruteguard_exe, "report", str(path), "--top", "50").stdout.decode()
    # Control characters escaped; the byte 0x9b (not UTF-8) was already the text "\\x9b".
    assert "\\x1b[2J\\x1b]0;owned\\x07\\r\\x9b31m" in report
    assert "ro\\x00ot" in report
    assert "x\\x9by\\u202ez" in report


def test_a_log_of_nothing_but_garbage_is_a_clean_empty_scan(
    bruteguard_exe: Path, tmp_path: Path
) -> None:
    rng = random.Random(7)
    data = rng.randbytes(3 << 20)
    path = write(tmp_path / "garbage.log", data)
    events, summary = scan(bruteguard_exe, str(path))
    assert events == []
    assert summary["lines"] == line_count(data) and summary["failures"] == 0
    events, summary = scan(bruteguard_exe, str(write(tmp_path / "empty.log", b"")))
    assert events == []
    assert (summary["lines"], summary["failures"], summary["bans"]) == (0, 0, 0)


def test_a_line_split_across_read_chunks_still_counts(bruteguard_exe: Path, tmp_path: Path) -> None:
    """Lines longer than any buffer boundary a reader might use: the failures after them."""
    filler = b"Nov 23 06:00:00 web1 kernel: " + b"x" * 900_000 + b"\n"
    data = b"".join(
        filler + failure_line(n, f"203.0.113.{n}") + b"\n" for n in range(1, 21)
    )  # ~18 MB: past the 8 MiB read size twice
    events, summary = scan(bruteguard_exe, str(write(tmp_path / "auth.log", data)))
    assert [e["ip"] for e in events if e["type"] == "failure"] == [
        f"203.0.113.{n}" for n in range(1, 21)
    ]
    assert summary["lines"] == 40


def test_a_line_longer_than_the_daemon_accepts_is_skipped_by_scan_too(
    bruteguard_exe: Path, tmp_path: Path
) -> None:
    huge_user = b"u" * (MAX_LINE + 10)
    data = (
        failure_line(1, "203.0.113.1")
        + b"\n"
        + failure_line(2, "198.51.100.99", huge_user)
        + b"\n"
        + failure_line(3, "203.0.113.3")
        + b"\n"
    )
    events, summary = scan(bruteguard_exe, str(write(tmp_path / "auth.log", data)))
    assert [e["ip"] for e in events] == ["203.0.113.1", "203.0.113.3"]
    assert summary["lines"] == 3


# Runs the command and prints its exit status and peak RSS. A small process of its own does
# the waiting because a child's ru_maxrss includes its parent's memory at fork time.
_MEASURE = (
    "import os, subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_pid, status, usage = os.wait4(child.pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


def _peak_rss_kib(exe: Path, path: Path) -> int:
    """Peak resident memory (KiB) of one ``bruteguard scan --json`` process."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(exe), "scan", "--json", str(path)],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert done.stderr == b""
    status, peak = map(int, done.stdout.split())
    assert status == 0
    return peak


def test_memory_stays_bounded_on_a_huge_line_without_newline(
    bruteguard_exe: Path, tmp_path: Path
) -> None:
    small = write(tmp_path / "small.log", failure_line(1, "203.0.113.1") + b"\n")
    baseline = _peak_rss_kib(bruteguard_exe, small)
    rng = random.Random(3)
    huge = write(
        tmp_path / "huge.log",
        rng.randbytes(30 << 20).replace(b"\n", b" ") + b"\n" + failure_line(2, "203.0.113.2"),
    )
    peak = _peak_rss_kib(bruteguard_exe, huge)
    assert peak - baseline < 48 * 1024, f"scan grew by {(peak - baseline) // 1024} MiB"
