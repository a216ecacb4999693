"""``bruteguard scan`` and ``bruteguard report`` on logs written here, checked line by line.

The logs use OpenSSH's real message formats. Times are made deterministic twice over: the
child runs with ``TZ=XST-2`` (a POSIX zone two hours east of UTC, no tz database needed) and
every file's modification time is set, because a syslog stamp has no year and takes the one
that puts it no later than a day after the file's mtime.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import os
import re
import subprocess
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bruteguard.cli import scan as cli_scan

README = Path(__file__).resolve().parent.parent / "README.md"
ZONE = "XST-2"
LOCAL = timezone(timedelta(hours=2))
MTIME = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


def bruteguard(
    exe: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {key: value for key, value in os.environ.items() if key != "FORCE_COLOR"}
    return subprocess.run(
        [str(exe), *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=120,
        env={**env, "TZ": ZONE, "COLUMNS": "200"},
    )


def write_log(path: Path, lines: list[str], mtime: float = MTIME) -> Path:
    data = "".join(line + "\n" for line in lines).encode()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def utc(local: str) -> str:
    """``2026-11-23 06:50:01`` in the test zone → the ISO 8601 UTC text scan must print."""
    moment = datetime.fromisoformat(local).replace(tzinfo=LOCAL)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def failure(local: str, ip: str, user: str | None) -> dict[str, Any]:
    return {"type": "failure", "time": utc(local), "ip": ip, "user": user, "jail": "sshd"}


def ban(local: str, ip: str, until: str) -> dict[str, Any]:
    return {"type": "ban", "time": utc(local), "ip": ip, "jail": "sshd", "until": utc(until)}


def scan_json(
    exe: Path, *args: str, stdin: bytes | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run ``scan --json``; every stdout line must be one JSON object, the last a summary."""
    done = bruteguard(exe, "scan", "--json", *args, stdin=stdin)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
    assert done.stdout.endswith(b"\n")
    objects = [json.loads(line) for line in done.stdout.decode("utf-8").split("\n")[:-1]]
    assert all(isinstance(item, dict) for item in objects)
    *events, summary = objects
    assert summary["type"] == "summary"
    assert all(event["type"] in {"failure", "ban"} for event in events)
    return events, summary


@pytest.fixture
def jail_config(make_config: Callable[..., Path]) -> Path:
    """3 failures within 1 minute → a 10 minute ban."""
    return make_config(
        enforcers=["dry-run"],
        jails={"sshd": {"maxretry": 3, "findtime": "1m", "bantime": "10m"}},
    )


# Five attackers, one legitimate login, noise from another program. Comments: what counts.
ATTACK_LOG = [
    # 203.0.113.5: one attempt written three times (Invalid user, pam, Failed) counts once.
    "Nov 23 06:50:01 web1 sshd[1001]: Invalid user admin from 203.0.113.5 port 41234",
    "Nov 23 06:50:03 web1 sshd[1001]: pam_unix(sshd:auth): check pass; user unknown",
    "Nov 23 06:50:03 web1 sshd[1001]: pam_unix(sshd:auth): authentication failure; logname="
    " uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5 ",
    "Nov 23 06:50:05 web1 sshd[1001]: Failed password for invalid user admin from 203.0.113.5"
    " port 41234 ssh2",
    "Nov 23 06:50:06 web1 CRON[2200]: pam_unix(cron:session): session opened for user root(uid=0)"
    " by (uid=0)",
    "Nov 23 06:50:20 web1 sshd[1001]: Failed password for invalid user admin from 203.0.113.5"
    " port 41234 ssh2",
    # 198.51.100.7: first of four.
    "Nov 23 06:50:21 web1 sshd[1102]: Failed password for root from 198.51.100.7 port 52311 ssh2",
    # 203.0.113.5: third attempt within a minute → ban.
    "Nov 23 06:50:40 web1 sshd[1001]: Failed password for invalid user admin from 203.0.113.5"
    " port 41234 ssh2",
    "Nov 23 06:50:41 web1 sshd[1001]: Connection closed by invalid user admin 203.0.113.5 port"
    " 41234 [preauth]",
    # 203.0.113.5 while banned: a failure, but no new decision.
    "Nov 23 06:51:00 web1 sshd[1003]: Failed password for root from 203.0.113.5 port 41300 ssh2",
    "Nov 23 06:51:05 web1 sshd[1103]: Failed password for root from 198.51.100.7 port 52312 ssh2",
    # 198.51.100.7: three in 61 s is no ban; the fourth makes three in 18 s.
    "Nov 23 06:51:22 web1 sshd[1104]: Failed password for root from 198.51.100.7 port 52313 ssh2",
    "Nov 23 06:51:23 web1 sshd[1105]: Failed password for ubuntu from 198.51.100.7 port 52314 ssh2",
    # 192.0.2.44 (IPv4-mapped in one line): three in exactly findtime → ban.
    "Nov 23 06:52:00 web1 sshd[1201]: Failed publickey for invalid user git from"
    " ::ffff:192.0.2.44 port 4022 ssh2: RSA SHA256:AbCd+/9",
    "Nov 23 06:52:30 web1 sshd[1202]: Connection closed by 192.0.2.44 port 4023 [preauth]",
    "Nov 23 06:53:00 web1 sshd[1203]: Did not receive identification string from 192.0.2.44"
    " port 4024",
    "Nov 23 06:53:10 web1 sshd[1301]: Accepted publickey for deploy from 2001:db8::10 port 50000"
    " ssh2: ED25519 SHA256:u6mRbjnLLzJ4wXa+Kp9Jm9T0GnG4a5n1Yx2Cz3Qm0xY",
    "Nov 23 06:53:10 web1 sshd[1301]: pam_unix(sshd:session): session opened for user deploy"
    "(uid=1000) by (uid=0)",
    # 2001:db8::66: one attempt; the disconnect of the same connection does not count again.
    "Nov 23 06:53:11 web1 sshd[1302]: Failed password for invalid user oracle from 2001:db8::66"
    " port 40022 ssh2",
    "Nov 23 06:53:12 web1 sshd[1302]: Received disconnect from 2001:db8::66 port 40022:11: Bye"
    " Bye [preauth]",
    # 203.0.113.5 after its ban ended: counts afresh → a second ban (bantime_factor 2: 20m).
    "Nov 23 07:01:00 web1 sshd[1004]: Failed password for root from 203.0.113.5 port 41400 ssh2",
    "Nov 23 07:01:10 web1 sshd[1005]: Failed password for root from 203.0.113.5 port 41401 ssh2",
    "Nov 23 07:01:20 web1 sshd[1006]: Failed password for root from 203.0.113.5 port 41402 ssh2",
    # 198.51.100.9: rsyslog folds two identical lines into one "message repeated" line.
    "Nov 23 07:01:58 web1 sshd[1401]: Failed password for root from 198.51.100.9 port 5000 ssh2",
    "Nov 23 07:02:00 web1 sshd[1401]: message repeated 2 times: [ Failed password for root from"
    " 198.51.100.9 port 5000 ssh2]",
]

D = "2026-11-23 "
ATTACK_EVENTS = [
    failure(D + "06:50:01", "203.0.113.5", "admin"),
    failure(D + "06:50:20", "203.0.113.5", "admin"),
    failure(D + "06:50:21", "198.51.100.7", "root"),
    failure(D + "06:50:40", "203.0.113.5", "admin"),
    ban(D + "06:50:40", "203.0.113.5", D + "07:00:40"),
    failure(D + "06:51:00", "203.0.113.5", "root"),
    failure(D + "06:51:05", "198.51.100.7", "root"),
    failure(D + "06:51:22", "198.51.100.7", "root"),
    failure(D + "06:51:23", "198.51.100.7", "ubuntu"),
    ban(D + "06:51:23", "198.51.100.7", D + "07:01:23"),
    failure(D + "06:52:00", "192.0.2.44", "git"),
    failure(D + "06:52:30", "192.0.2.44", None),
    failure(D + "06:53:00", "192.0.2.44", None),
    ban(D + "06:53:00", "192.0.2.44", D + "07:03:00"),
    failure(D + "06:53:11", "2001:db8::66", "oracle"),
    failure(D + "07:01:00", "203.0.113.5", "root"),
    failure(D + "07:01:10", "203.0.113.5", "root"),
    failure(D + "07:01:20", "203.0.113.5", "root"),
    ban(D + "07:01:20", "203.0.113.5", D + "07:21:20"),  # the second ban lasts twice as long
    failure(D + "07:01:58", "198.51.100.9", "root"),
    failure(D + "07:02:00", "198.51.100.9", "root"),
    failure(D + "07:02:00", "198.51.100.9", "root"),
    ban(D + "07:02:00", "198.51.100.9", D + "07:12:00"),
]


# -- the --json contract -------------------------------------------------------------------


def test_json_lists_every_failure_and_ban_in_log_order(
    bruteguard_exe: Path, jail_config: Path, tmp_path: Path
) -> None:
    log = write_log(tmp_path / "auth.log", ATTACK_LOG)
    events, summary = scan_json(bruteguard_exe, str(log), "--config", str(jail_config))
    assert events == ATTACK_EVENTS
    assert summary["lines"] == len(ATTACK_LOG)
    assert summary["failures"] == 18
    assert summary["bans"] == 5
    assert isinstance(summary["seconds"], float) and 0 <= summary["seconds"] < 60
    assert summary["per_jail"] == {"sshd": 18}
    assert set(summary) == {"type", "lines", "failures", "per_jail", "bans", "seconds"}


def test_json_failures_per_address_and_ban_times_follow_the_jail(
    bruteguard_exe: Path, jail_config: Path, tmp_path: Path
) -> None:
    """Independently of order: counts per address, ban = the maxretry-th failure + bantime,
    doubled for each earlier ban of the address (the default bantime_factor 2)."""
    log = write_log(tmp_path / "auth.log", ATTACK_LOG)
    events, _ = scan_json(bruteguard_exe, str(log), "--config", str(jail_config))
    failures = [e for e in events if e["type"] == "failure"]
    assert Counter(e["ip"] for e in failures) == {
        "203.0.113.5": 7,
        "198.51.100.7": 4,
        "192.0.2.44": 3,
        "198.51.100.9": 3,
        "2001:db8::66": 1,
    }
    earlier: Counter[str] = Counter()
    for event in events:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
        if event["type"] == "ban":
            assert set(event) == {"type", "time", "ip", "jail", "until"}
            start = datetime.fromisoformat(event["time"])
            length = timedelta(minutes=10) * 2 ** earlier[event["ip"]]
            assert datetime.fromisoformat(event["until"]) - start == length
            earlier[event["ip"]] += 1
            before = [f for f in failures if f["ip"] == event["ip"] and f["time"] <= event["time"]]
            assert before and before[-1]["time"] == event["time"]
        else:
            assert set(event) == {"type", "time", "ip", "user", "jail"}


def test_json_times_from_iso_stamps_with_and_without_offsets(
    bruteguard_exe: Path, tmp_path: Path
) -> None:
    log = write_log(
        tmp_path / "auth.log",
        [
            "2026-11-23T08:15:01.904512+01:00 bastion sshd[5101]: Invalid user ubuntu from"
            " 203.0.113.5 port 39120",
            "2026-11-23T09:00:05+0100 gw sshd-session[6101]: Failed password for root from"
            " 203.0.113.6 port 39121 ssh2",
            "2026-11-23T06:50:01Z gw sshd[6102]: Failed password for root from 203.0.113.7 port 1"
            " ssh2",
            "2026-11-23T06:50:02-05:00 gw sshd[6103]: Failed password for root from 203.0.113.8"
            " port 2 ssh2",
            # No offset: local time of the machine (here XST-2).
            "2026-11-23T06:50:03 gw sshd[6104]: Failed password for root from 203.0.113.9 port 3"
            " ssh2",
        ],
    )
    events, summary = scan_json(bruteguard_exe, str(log))
    assert [(e["time"], e["ip"]) for e in events] == [
        ("2026-11-23T07:15:01Z", "203.0.113.5"),
        ("2026-11-23T08:00:05Z", "203.0.113.6"),
        ("2026-11-23T06:50:01Z", "203.0.113.7"),
        ("2026-11-23T11:50:02Z", "203.0.113.8"),
        ("2026-11-23T04:50:03Z", "203.0.113.9"),
    ]
    assert summary["failures"] == 5


def test_syslog_stamps_take_the_year_from_the_files_mtime(
    bruteguard_exe: Path, tmp_path: Path
) -> None:
    """New Year in the log: December is last year, January this year; a January stamp more
    than a day after the file was last written is from the January before."""
    log = write_log(
        tmp_path / "auth.log",
        [
            "Dec 31 23:59:58 web1 sshd[1]: Failed password for root from 203.0.113.5 port 1 ssh2",
            "Jan  1 00:00:05 web1 sshd[2]: Failed password for root from 203.0.113.6 port 2 ssh2",
            "Jan  3 06:00:00 web1 sshd[3]: Failed password for root from 203.0.113.7 port 3 ssh2",
        ],
        mtime=datetime(2027, 1, 1, 12, tzinfo=UTC).timestamp(),
    )
    events, _ = scan_json(bruteguard_exe, str(log))
    assert [e["time"] for e in events] == [
        "2026-12-31T21:59:58Z",
        "2026-12-31T22:00:05Z",
        "2026-01-03T04:00:00Z",
    ]


def test_ignoreip_and_loopback_are_counted_but_never_banned(
    bruteguard_exe: Path, make_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = make_config(
        ignoreip=["198.51.100.0/24"],
        jails={"sshd": {"maxretry": 2, "findtime": "1h", "ignoreip": ["2001:db8:1::/48"]}},
    )
    lines = [
        f"Nov 23 06:50:{second:02d} web1 sshd[{100 + second}]: Failed password for root from"
        f" {address} port {4000 + second} ssh2"
        for second, address in enumerate(
            ["198.51.100.7", "127.0.0.1", "2001:db8:1::5", "203.0.113.5"] * 2
        )
    ]
    events, summary = scan_json(
        bruteguard_exe, str(write_log(tmp_path / "a.log", lines)), "-c", str(config)
    )
    assert Counter(e["ip"] for e in events if e["type"] == "failure") == {
        "198.51.100.7": 2,
        "127.0.0.1": 2,
        "2001:db8:1::5": 2,
        "203.0.113.5": 2,
    }
    assert [e["ip"] for e in events if e["type"] == "ban"] == ["203.0.113.5"]
    assert summary["bans"] == 1


def test_unknown_jail_is_a_clear_error(bruteguard_exe: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / "auth.log", ATTACK_LOG)
    done = bruteguard(bruteguard_exe, "scan", "--jail", "nosuch", str(log))
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.startswith(b"bruteguard: no jail named 'nosuch' (jails: ")
    assert b"recidive, " in done.stderr and b", sshd, sshd-ddos" in done.stderr


def test_readme_documents_the_json_contract_the_program_follows(
    bruteguard_exe: Path, jail_config: Path, tmp_path: Path
) -> None:
    """The README's example objects carry exactly the keys scan prints, type by type."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## `bruteguard scan --json` (a public contract)", 1)[1]
    example = section.split("```json\n", 1)[1].split("```", 1)[0]
    documented = {}
    for line in example.splitlines():
        item = json.loads(line)
        documented[item["type"]] = list(item)
    log = write_log(tmp_path / "auth.log", ATTACK_LOG)
    events, summary = scan_json(bruteguard_exe, str(log), "--config", str(jail_config))
    printed = {event["type"]: list(event) for event in events}
    printed["summary"] = list(summary)
    assert documented == printed
    for key in ("`type`", "`time`", "`until`", "`ip`", "`user`", "`jail`", "`summary`"):
        assert key in section


# -- human output: scan and report ---------------------------------------------------------


def test_plain_scan_prints_addresses_bans_and_a_summary(
    bruteguard_exe: Path, jail_config: Path, tmp_path: Path
) -> None:
    log = write_log(tmp_path / "auth.log", ATTACK_LOG)
    done = bruteguard(bruteguard_exe, "scan", str(log), "--config", str(jail_config))
    assert done.returncode == 0 and done.stderr == b""
    text = done.stdout.decode()
    table, bans, summary = text.split("\n\n")
    rows = [row.split() for row in table.splitlines()]
    assert rows == [
        ["ADDRESS", "FAILURES", "BANS"],
        ["203.0.113.5", "7", "2"],
        ["198.51.100.7", "4", "1"],
        ["192.0.2.44", "3", "1"],
        ["198.51.100.9", "3", "1"],
        ["2001:db8::66", "1", "0"],
    ]
    ban_lines = bans.splitlines()
    assert ban_lines[0] == "bans the jails would have made:"
    # Local time (the machine's zone), as the log itself writes it.
    assert [line.split() for line in ban_lines[1:]] == [
        [
            "2026-11-23",
            start,
            "sshd",
            ip,
            "until",
            "2026-11-23",
            until,
            "(3",
            "failures",
            "in",
            span,
        ]
        for start, ip, until, span in [
            ("06:50:40", "203.0.113.5", "07:00:40", "39s)"),
            ("06:51:23", "198.51.100.7", "07:01:23", "18s)"),
            ("06:53:00", "192.0.2.44", "07:03:00", "1m)"),
            ("07:01:20", "203.0.113.5", "07:21:20", "20s)"),  # its second: twice as long
            ("07:02:00", "198.51.100.9", "07:12:00", "2s)"),
        ]
    ]
    assert summary.startswith(f"{len(ATTACK_LOG)} lines, 18 failures from 5 addresses, 5 bans, ")
    assert summary.endswith(" lines/s)\n")


def report_rows(output: str) -> list[list[str]]:
    """The cells of each body row of rich's table (box-drawing │ separates cells)."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]


def test_report_shows_the_top_offenders(
    bruteguard_exe: Path, jail_config: Path, tmp_path: Path
) -> None:
    log = write_log(tmp_path / "auth.log", ATTACK_LOG)
    done = bruteguard(bruteguard_exe, "report", str(log), "--top", "3", "-c", str(jail_config))
    assert done.returncode == 0 and done.stderr == b""
    output = done.stdout.decode()
    assert output.startswith("Top 3 offenders")
    header = next(line for line in output.splitlines() if "count" in line)
    assert [h.strip() for h in header.strip("┃").split("┃")] == [
        "count",
        "address",
        "first seen",
        "last seen",
        "users tried",
    ]
    assert report_rows(output) == [
        ["7", "203.0.113.5", D + "06:50:01", D + "07:01:20", "root, admin"],
        ["4", "198.51.100.7", D + "06:50:21", D + "06:51:23", "root, ubuntu"],
        ["3", "192.0.2.44", D + "06:52:00", D + "06:53:00", "git"],
    ]
    assert f"{len(ATTACK_LOG)} lines, 18 failures from 5 addresses, 5 bans" in output


def test_report_default_shows_at_most_twenty_rows(bruteguard_exe: Path, tmp_path: Path) -> None:
    lines = [
        f"Nov 23 06:{minute:02d}:00 web1 sshd[{minute}]: Failed password for root from"
        f" 203.0.113.{minute} port 22 ssh2"
        for minute in range(1, 31)
    ]
    done = bruteguard(bruteguard_exe, "report", str(write_log(tmp_path / "a.log", lines)))
    assert done.returncode == 0
    rows = report_rows(done.stdout.decode())
    assert len(rows) == 20
    assert all(row[0] == "1" for row in rows)


# -- several logs, compressed logs, stdin --------------------------------------------------


def test_several_logs_and_a_gzipped_rotation_are_one_history(
    bruteguard_exe: Path, jail_config: Path, tmp_path: Path
) -> None:
    """An attacker whose three tries straddle two rotations is banned, as it would be live."""

    def attempt(stamp: str, pid: int) -> str:
        return (
            f"Nov 23 {stamp} web1 sshd[{pid}]: Failed password for invalid user pi from"
            f" 203.0.113.9 port {pid} ssh2"
        )

    noise = "Nov 23 06:59:00 web1 systemd[1]: Started session-7.scope - Session 7 of User root."
    oldest = write_log(tmp_path / "auth.log.2.gz", [noise, attempt("06:59:50", 1)])
    older = write_log(tmp_path / "auth.log.1", [attempt("07:00:10", 2), noise])
    current = write_log(tmp_path / "auth.log", [noise, noise, attempt("07:00:30", 3)])
    assert oldest.read_bytes()[:2] == b"\x1f\x8b"

    events, summary = scan_json(
        bruteguard_exe, str(oldest), str(older), str(current), "-c", str(jail_config)
    )
    assert events == [
        failure(D + "06:59:50", "203.0.113.9", "pi"),
        failure(D + "07:00:10", "203.0.113.9", "pi"),
        failure(D + "07:00:30", "203.0.113.9", "pi"),
        ban(D + "07:00:30", "203.0.113.9", D + "07:10:30"),
    ]
    assert (summary["lines"], summary["failures"], summary["bans"]) == (7, 3, 1)


def test_gzipped_log_scans_like_the_plain_one(
    bruteguard_exe: Path, jail_config: Path, tmp_path: Path
) -> None:
    plain = write_log(tmp_path / "auth.log", ATTACK_LOG)
    packed = write_log(tmp_path / "auth.log.2.gz", ATTACK_LOG)
    events, summary = scan_json(bruteguard_exe, str(packed), "-c", str(jail_config))
    assert events == ATTACK_EVENTS
    assert summary["lines"] == len(ATTACK_LOG)
    report = bruteguard(bruteguard_exe, "report", str(packed), "-c", str(jail_config))
    assert report_rows(report.stdout.decode()) == report_rows(
        bruteguard(bruteguard_exe, "report", str(plain), "-c", str(jail_config)).stdout.decode()
    )


def test_dash_reads_standard_input(bruteguard_exe: Path, jail_config: Path, tmp_path: Path) -> None:
    iso = [
        f"2026-11-23T0{hour}:00:0{n}+02:00 web1 sshd[{n}]: Failed password for root from"
        f" 198.51.100.{hour} port {n} ssh2"
        for hour, n in [(6, 1), (6, 2), (7, 3), (6, 4)]
    ]
    data = "".join(line + "\n" for line in iso).encode()
    events, summary = scan_json(bruteguard_exe, "-", "-c", str(jail_config), stdin=data)
    assert events == [
        failure(D + "06:00:01", "198.51.100.6", "root"),
        failure(D + "06:00:02", "198.51.100.6", "root"),
        failure(D + "07:00:03", "198.51.100.7", "root"),
        failure(D + "06:00:04", "198.51.100.6", "root"),
        ban(D + "06:00:04", "198.51.100.6", D + "06:10:04"),
    ]
    assert summary["lines"] == 4

    # A file and stdin in one run: one history, in the order given.
    first = write_log(tmp_path / "auth.log.1", ATTACK_LOG)
    events, summary = scan_json(bruteguard_exe, str(first), "-", "-c", str(jail_config), stdin=data)
    assert events[: len(ATTACK_EVENTS)] == ATTACK_EVENTS
    assert len(events) == len(ATTACK_EVENTS) + 5
    assert summary["lines"] == len(ATTACK_LOG) + 4

    report = bruteguard(bruteguard_exe, "report", "-", stdin=data)
    assert report.returncode == 0
    assert report_rows(report.stdout.decode())[0][:2] == ["3", "198.51.100.6"]


def test_a_large_log_split_across_cores_counts_like_a_sequential_read(
    bruteguard_exe: Path, tmp_path: Path
) -> None:
    """Over 32 MiB scan splits a plain file between worker processes; stdin is read whole.

    Connections (pids) whose lines straddle a cut must still count once.
    """
    lines: list[str] = []
    expected: Counter[str] = Counter()
    for n in range(90_000):
        stamp = f"2026-11-23T{6 + n // 36000:02d}:{n // 600 % 60:02d}:{n // 10 % 60:02d}+02:00"
        address = f"203.0.113.{n % 97 + 1}"
        lines.append(
            f"{stamp} web1 sshd[{n}]: Invalid user u{n % 13} from {address} port {n % 60000}"
        )
        lines.append(
            f"{stamp} web1 sshd[{n}]: Failed password for invalid user u{n % 13} from {address}"
            f" port {n % 60000} ssh2"
        )
        lines.append(f"{stamp} web1 sshd[{n}]: Connection closed by {address} port 1 [preauth]")
        lines.append(
            f"{stamp} web1 CRON[{n}]: (root) CMD (   cd / && run-parts --report)" + "#" * 40
        )
        expected[address] += 1
    log = write_log(tmp_path / "auth.log", lines)
    assert log.stat().st_size > 32 << 20

    from_file, file_summary = scan_json(bruteguard_exe, str(log))
    from_stdin, stdin_summary = scan_json(bruteguard_exe, "-", stdin=log.read_bytes())
    assert Counter(e["ip"] for e in from_file if e["type"] == "failure") == expected
    assert from_file == from_stdin
    assert file_summary["lines"] == stdin_summary["lines"] == len(lines)
    assert file_summary["failures"] == 90_000
    assert file_summary["bans"] == stdin_summary["bans"] > 0


def test_a_split_log_streams_its_attempts_chunk_by_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``scan --json`` memory must not grow with the log: a worker hands its segment's
    attempts over a chunk at a time (waiting in its pipe), never as one list, and the
    attempts and bans are those of a sequential read, in the same order."""
    from bruteguard import scan
    from bruteguard.config import config_from_dict

    log = write_log(tmp_path / "auth.log", ATTACK_LOG * 400)
    config = config_from_dict({"enforcers": ["dry-run"]})
    jails = [config.jails["sshd"]]
    monkeypatch.setattr(scan, "CHUNK_SIZE", 16 << 10)
    runs = {}
    for workers in (1, 3):
        monkeypatch.setattr(scan, "PARALLEL_MIN_SIZE", 1 if workers > 1 else 1 << 40)
        calls: list[tuple[list, list]] = []
        summary = scan.scan_logs(
            [str(log)],
            config,
            jails,
            lambda hits, bans, calls=calls: calls.append((hits, bans)),
            workers=workers,
        )
        runs[workers] = calls, summary
    (sequential, alone), (split, together) = runs[1], runs[3]
    hits_of = lambda calls: [tuple(hit) for hits, _ in calls for hit in hits]  # noqa: E731
    assert hits_of(split) == hits_of(sequential)
    assert [ban for _, bans in split for ban in bans] == together.bans == alone.bans
    assert (together.lines, together.failures) == (alone.lines, alone.failures)
    per_chunk = max(len(hits) for hits, _ in sequential)
    assert len(split) > 3 * 2  # several parts from every segment…
    assert max(len(hits) for hits, _ in split) <= per_chunk  # …none bigger than a chunk's


@pytest.mark.parametrize("streaming", [False, True])
def test_a_worker_that_fails_fails_the_scan_clearly_and_leaves_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streaming: bool
) -> None:
    """An OSError in a worker (a log gone unreadable mid-scan) comes back as that OSError,
    any other failure as a RuntimeError naming it; every worker is reaped either way."""
    from bruteguard import scan
    from bruteguard.config import config_from_dict

    log = write_log(tmp_path / "auth.log", ATTACK_LOG * 400)
    config = config_from_dict({"enforcers": ["dry-run"]})
    jails = [config.jails["sshd"]]
    monkeypatch.setattr(scan, "CHUNK_SIZE", 16 << 10)
    monkeypatch.setattr(scan, "PARALLEL_MIN_SIZE", 1)
    chunks_of = scan._segment_chunks
    on_hits = (lambda hits, bans: None) if streaming else None
    for error in (OSError(5, "Input/output error", str(log)), ValueError("bad")):

        def failing(stream, path, start, end, advance, error=error):
            for number, chunk in enumerate(chunks_of(stream, path, start, end, advance)):
                if start and number == 2:  # a worker's segment, a few chunks in
                    raise error
                yield chunk

        monkeypatch.setattr(scan, "_segment_chunks", failing)
        expected = OSError if isinstance(error, OSError) else RuntimeError
        with pytest.raises(expected) as raised:
            scan.scan_logs([str(log)], config, jails, on_hits, workers=3)
        assert str(log) in str(raised.value) or "ValueError: bad" in str(raised.value)
        with pytest.raises(ChildProcessError):
            os.waitpid(-1, os.WNOHANG)  # no child left, not even a zombie


# -- logs that cannot be read --------------------------------------------------------------


def assert_one_line_error(done: subprocess.CompletedProcess[bytes], *fragments: str) -> None:
    assert done.returncode == 1, done
    stderr = done.stderr.decode()
    assert stderr.startswith("bruteguard: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr, (fragment, stderr)


@pytest.mark.parametrize("command", [["scan"], ["scan", "--json"], ["report"]])
def test_missing_log_is_a_clear_error_before_any_output(
    bruteguard_exe: Path, tmp_path: Path, command: list[str]
) -> None:
    good = write_log(tmp_path / "auth.log", ATTACK_LOG)
    missing = tmp_path / "auth.log.9"
    done = bruteguard(bruteguard_exe, *command, str(good), str(missing))
    assert_one_line_error(done, str(missing), "No such file or directory")
    assert done.stdout == b""


@pytest.mark.parametrize("kind", ["directory", "below a file"])
def test_unreadable_log_path_is_a_clear_error(
    bruteguard_exe: Path, tmp_path: Path, kind: str
) -> None:
    good = write_log(tmp_path / "auth.log", ATTACK_LOG)
    path = tmp_path if kind == "directory" else good / "x"
    reason = "Is a directory" if kind == "directory" else "Not a directory"
    for command in (["scan", "--json"], ["report"]):
        done = bruteguard(bruteguard_exe, *command, str(path))
        assert_one_line_error(done, str(path), reason)
        assert done.stdout == b""


def test_corrupt_or_truncated_gzip_is_a_clear_error(bruteguard_exe: Path, tmp_path: Path) -> None:
    whole = gzip.compress(("\n".join(ATTACK_LOG * 200) + "\n").encode(), mtime=0)
    truncated = tmp_path / "auth.log.2.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    garbage = tmp_path / "auth.log.3.gz"
    garbage.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    for path in (truncated, garbage):
        for command in (["scan", "--json"], ["scan"], ["report"]):
            done = bruteguard(bruteguard_exe, *command, str(path))
            assert_one_line_error(done, str(path), "corrupt or truncated")


# -- counts that mean one thing ------------------------------------------------------------

SCANNERS = [  # sshd's pre-auth noise: the second line is sshd-ddos's too
    "Nov 23 07:10:01 web1 sshd[2301]: Received disconnect from 203.0.113.77: 11: Bye Bye [preauth]",
    "Nov 23 07:10:05 web1 sshd[2302]: Connection closed by 203.0.113.78 [preauth]",
    "Nov 23 07:10:06 web1 sshd[2304]: Connection closed by 203.0.113.78 [preauth]",
    "Nov 23 07:10:09 web1 sshd[2303]: Failed password for root from 203.0.113.78 port 2 ssh2",
]


def test_a_line_two_jails_count_is_one_failure_and_each_jail_says_its_own(
    bruteguard_exe: Path, make_config: Callable[..., Path], tmp_path: Path
) -> None:
    """sshd-ddos counts sshd's scanner lines too: the totals and the table count each
    attempt once, as `bruteguard test` does; the jails' own counts stand beside them."""
    config = make_config(enforcers=["dry-run"], jails={"sshd": {}, "sshd-ddos": {}})
    log = write_log(tmp_path / "auth.log", SCANNERS)
    events, summary = scan_json(bruteguard_exe, str(log), "--config", str(config))
    assert Counter((e["ip"], e["jail"]) for e in events) == {
        ("203.0.113.77", "sshd"): 1,
        ("203.0.113.78", "sshd"): 3,
        ("203.0.113.78", "sshd-ddos"): 2,
    }
    assert (summary["failures"], summary["per_jail"]) == (4, {"sshd": 4, "sshd-ddos": 2})
    done = bruteguard(bruteguard_exe, "scan", str(log), "--config", str(config))
    text = done.stdout.decode()
    assert "4 lines, 4 failures (sshd 4, sshd-ddos 2) from 2 addresses" in text
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[1:3]}
    assert rows == {"203.0.113.78": ["3", "0"], "203.0.113.77": ["1", "0"]}
    report = bruteguard(bruteguard_exe, "report", str(log), "-c", str(config)).stdout.decode()
    assert [row[:2] for row in report_rows(report)] == [
        ["3", "203.0.113.78"],
        ["1", "203.0.113.77"],
    ]
    tested = bruteguard(bruteguard_exe, "test", "sshd", str(log)).stdout.decode()
    assert tested.rstrip().endswith("4 attempts counted")


def test_an_address_in_a_banned_network_shows_that_ban(
    bruteguard_exe: Path, jail_config: Path, tmp_path: Path
) -> None:
    """IPv6 attackers are banned by /64: each address of it shows the ban it is under."""
    lines = [
        f"Nov 23 06:50:0{n} web1 sshd[{n}]: Failed password for root from 2001:db8:7::{n}"
        " port 22 ssh2"
        for n in range(1, 4)
    ]
    log = write_log(tmp_path / "auth.log", lines)
    done = bruteguard(bruteguard_exe, "scan", str(log), "--config", str(jail_config))
    text = done.stdout.decode()
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[1:4]}
    assert rows == {f"2001:db8:7::{n}": ["1", "1"] for n in range(1, 4)}
    assert "2001:db8:7::/64" in text


# -- progress on a terminal, whole lines in a pipe -----------------------------------------


def on_a_terminal(
    exe: Path, *args: str, stdout_too: bool = False
) -> tuple[subprocess.CompletedProcess[bytes], bytes]:
    """Run ``bruteguard ARGS`` with stderr on a pseudo-terminal (120x40, as a person's) and
    stdout piped (or on the terminal too): the finished process and what the terminal got."""
    import fcntl
    import struct
    import termios

    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {key: value for key, value in os.environ.items() if key not in ("FORCE_COLOR", "TERM")}
    try:
        process = subprocess.Popen(
            [str(exe), *args],
            stdin=subprocess.DEVNULL,
            stdout=terminal if stdout_too else subprocess.PIPE,
            stderr=terminal,
            env={**env, "TZ": ZONE, "TERM": "xterm-256color"},
        )
        os.close(terminal)
        terminal = -1
        shown: list[bytes] = []

        def read_terminal() -> None:  # until the child's end closes (EIO on Linux)
            while True:
                try:
                    data = os.read(controller, 65536)
                except OSError:
                    return
                if not data:
                    return
                shown.append(data)

        reader = threading.Thread(target=read_terminal, daemon=True)
        reader.start()
        stdout, _ = process.communicate(timeout=120)  # meanwhile: a full pipe would block it
        reader.join(timeout=30)
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    return subprocess.CompletedProcess(
        process.args, process.returncode, stdout or b"", b""
    ), b"".join(shown)


@pytest.mark.parametrize("command", ["scan", "report"])
def test_a_terminal_sees_a_progress_bar_a_pipe_sees_nothing(
    bruteguard_exe: Path, jail_config: Path, tmp_path: Path, command: str
) -> None:
    log = write_log(tmp_path / "auth.log", ATTACK_LOG * 2000)
    args = (command, str(log), "-c", str(jail_config))
    done, shown = on_a_terminal(bruteguard_exe, *args)
    assert done.returncode == 0
    assert b"reading auth.log" in shown
    size = log.stat().st_size / 1e6
    assert f"{size:.1f}/{size:.1f} MB".encode() in shown  # the bar reached the whole log
    piped = bruteguard(bruteguard_exe, *args)
    assert piped.returncode == 0 and piped.stderr == b""
    assert done.stdout.split(b"\n")[:-2] == piped.stdout.split(b"\n")[:-2]  # but the timing


def test_no_bar_over_json_streaming_to_the_same_terminal(
    bruteguard_exe: Path, jail_config: Path, tmp_path: Path
) -> None:
    log = write_log(tmp_path / "auth.log", ATTACK_LOG * 200)
    args = ("scan", "--json", str(log), "-c", str(jail_config))
    done, shown = on_a_terminal(bruteguard_exe, *args)
    assert b"reading auth.log" in shown  # stdout piped: the bar is alone on the terminal
    done, shown = on_a_terminal(bruteguard_exe, *args, stdout_too=True)
    assert done.returncode == 0
    assert b"reading auth.log" not in shown
    summary = re.search(rb'"failures":([0-9]+)', shown)
    assert summary is not None and int(summary[1]) > 3000
    assert shown.count(b'{"type":"failure"') == int(summary[1])  # every line whole, in order


def test_report_in_a_pipe_keeps_every_row_on_one_line(bruteguard_exe: Path, tmp_path: Path) -> None:
    """No terminal, no width to wrap at (not even COLUMNS): a row is one whole line."""
    users = [f"user-with-a-long-name-{n}" for n in range(8)]
    lines = [
        f"Nov 23 06:50:{n:02d} web1 sshd[{n}]: Failed password for invalid user {user} from"
        f" 203.0.113.5 port 4{n} ssh2"
        for n, user in enumerate(users)
    ]
    log = write_log(tmp_path / "auth.log", lines)
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS", "LINES")}
    done = subprocess.run(
        [str(bruteguard_exe), "report", str(log)],
        capture_output=True,
        timeout=120,
        env={**env, "TZ": ZONE},
    )
    assert done.returncode == 0, done.stderr
    (row,) = report_rows(done.stdout.decode())
    assert row[:2] == ["8", "203.0.113.5"]
    assert sorted(row[4].split(", ")) == sorted(users)
    assert max(map(len, done.stdout.decode().splitlines())) > 200


def test_scan_tells_progress_in_bytes_of_the_logs_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain, gzipped and split across worker processes: the steps add up to the files'
    sizes (compressed bytes for a .gz), so a bar ends at 100%."""
    from bruteguard import scan
    from bruteguard.config import config_from_dict

    plain = write_log(tmp_path / "auth.log", ATTACK_LOG * 500)
    rotated = write_log(tmp_path / "auth.log.2.gz", ATTACK_LOG * 500)
    config = config_from_dict({"enforcers": ["dry-run"]})
    jails = [config.jails["sshd"]]
    for paths, workers in (([plain, rotated], 1), ([plain], 3)):
        monkeypatch.setattr(scan, "PARALLEL_MIN_SIZE", 1 if workers > 1 else 32 << 20)
        for on_hits in (None, lambda hits, bans: None):
            steps: list[int] = []
            names = [str(path) for path in paths]
            scan.scan_logs(names, config, jails, on_hits, workers=workers, advance=steps.append)
            assert sum(steps) == scan.log_sizes(names) == sum(p.stat().st_size for p in paths)
            assert all(step > 0 for step in steps)
            assert len(steps) >= (3 if workers > 1 else 2)


@pytest.mark.parametrize(
    "cidr",
    [
        "2001:db8::/64",
        "2001:db8:1:2:3:4:5:6/64",
        "2001:DB8::1/48",
        "::ffff:198.51.100.7/120",
        "::/0",
        "198.51.100.7/24",
        "198.51.100.0/24",
        "0.0.0.0/0",
        "198.51.100.7/32",
        "198.51.100.7/08",
    ],
)
def test_a_ban_network_is_read_as_ipaddress_reads_it(cidr: str) -> None:
    network = ipaddress.ip_network(cidr, strict=False)
    expected = (network.version, network.prefixlen, int(network.network_address))
    assert cli_scan._network_start(cidr) == expected
