"""``scan``/``report`` (per-address series, decided a jail at a time) and ``scan --json`` (hit
by hit, as the daemon decides) must ban alike: same targets, times, steps and reasons.

IPv6 attackers are banned per /64, so the two paths meet hardest where several addresses of
one /64 interleave in the log; IPv4 neighbours of one /24 add network bans (escalation).
The logs' times never go back: a line late across two addresses of one /64 is stepped at
its time by the text path and on arrival by ``--json`` (see ``detect._in_time_order``).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import random
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bruteguard.config import Config, config_from_dict
from bruteguard.model import Ban
from bruteguard.scan import scan_logs

START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC).timestamp()
# Two addresses of one /64, one of another /64, IPv4 neighbours in one /24 and a stranger.
ADDRESSES = [
    "2001:db8:0:1::a",
    "2001:db8:0:1::b",
    "2001:db8:0:1:ffff::1",
    "2001:db8:0:2::7",
    "198.51.100.7",
    "198.51.100.8",
    "198.51.100.9",
    "203.0.113.5",
]


def line(moment: float, address: str, pid: int) -> str:
    stamp = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return f"{stamp} web1 sshd[{pid}]: Failed password for root from {address} port 4{pid} ssh2"


def noise(moment: float, pid: int) -> str:
    stamp = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return f"{stamp} web1 CRON[{pid}]: pam_unix(cron:session): session closed for user root"


def write_log(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(text + "\n" for text in lines), encoding="utf-8")
    os.utime(path, (START + 86400, START + 86400))
    return path


def both_modes(paths: list[Path], config: Config) -> tuple[list[Ban], list[Ban]]:
    """The bans of the text path (no ``on_hits``) and of the ``--json`` path, sorted."""
    jails = list(config.jails.values())
    names = [str(path) for path in paths]
    text = scan_logs(names, config, jails, workers=1).bans
    json_mode = scan_logs(names, config, jails, lambda hits, bans: None, workers=1).bans
    order = lambda ban: (ban.start, ban.jail, ban.ip)  # noqa: E731
    return sorted(text, key=order), sorted(json_mode, key=order)


def random_config(rng: random.Random) -> Config:
    sshd = {
        "maxretry": rng.randint(2, 4),
        "findtime": rng.choice([30, 60, 600]),
        "bantime": rng.choice([60, 600, 3600]),
        "bantime_factor": rng.choice([1.0, 2.0]),
        "subnet_maxretry": rng.choice([0, 2, 3]),
        "subnet_findtime": "1h",
    }
    return config_from_dict({"enforcers": ["dry-run"], "jails": {"sshd": sshd}})


def random_log(rng: random.Random, moment: float) -> tuple[list[str], float]:
    """Bursts and lulls from a shuffled set of addresses: their first lines come in any
    order, and addresses of one /64 interleave."""
    chosen = rng.sample(ADDRESSES, rng.randint(2, len(ADDRESSES)))
    lines = []
    for pid in range(100, 100 + rng.randint(5, 80)):
        moment += rng.choice([0, 1, 2, 5, 20, 45, 90, 400, 700, 4000])
        if rng.random() < 0.1:
            lines.append(noise(moment, pid))
        else:
            lines.append(line(moment, rng.choice(chosen), pid))
    return lines, moment


@pytest.mark.parametrize("seed", range(150))
def test_text_and_json_scans_ban_alike_on_random_logs(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    config = random_config(rng)
    moment, paths = START, []
    for part in range(rng.choice([1, 1, 2])):  # a rotated log, then the current one
        lines, moment = random_log(rng, moment)
        paths.append(write_log(tmp_path / f"auth.log.{part}", lines))
    text, json_mode = both_modes(paths, config)
    assert text == json_mode


# Two addresses of one /64 take turns: A A B, then after the ban B A B. Joined address by
# address (A's three times, then B's), the late B line completed the first window and the
# second ban was lost: 1 ban of the /64 in text, 2 in JSON. An IPv4 attacker and cron noise
# make the 11 lines.
ELEVEN_LINES = [
    line(START + 0, "2001:db8:0:1::a", 100),
    line(START + 1, "2001:db8:0:1::a", 101),
    noise(START + 1, 102),
    line(START + 2, "2001:db8:0:1::b", 103),
    line(START + 10, "198.51.100.7", 104),
    line(START + 11, "198.51.100.7", 105),
    line(START + 12, "198.51.100.7", 106),
    noise(START + 300, 107),
    line(START + 700, "2001:db8:0:1::b", 108),
    line(START + 701, "2001:db8:0:1::a", 109),
    line(START + 702, "2001:db8:0:1::b", 110),
]


def test_eleven_lines_with_one_v6_prefix_ban_alike_in_text_and_json(
    tmp_path: Path, bruteguard_exe: Path, make_config
) -> None:
    log = write_log(tmp_path / "auth.log", ELEVEN_LINES)
    sshd = {"maxretry": 3, "findtime": "1m", "bantime": "10m"}
    config = config_from_dict({"enforcers": ["dry-run"], "jails": {"sshd": sshd}})
    text, json_mode = both_modes([log], config)
    assert text == json_mode
    assert [(ban.ip, ban.start - START) for ban in text] == [
        ("2001:db8:0:1::/64", 2.0),
        ("198.51.100.7", 12.0),
        ("2001:db8:0:1::/64", 702.0),
    ]
    # The commands themselves: the text summary and the JSON summary count 3 bans each.
    path = make_config(enforcers=["dry-run"], jails={"sshd": sshd})
    run = lambda *args: subprocess.run(  # noqa: E731
        [str(bruteguard_exe), "scan", *args, str(log), "--config", str(path)],
        capture_output=True,
        timeout=60,
        check=True,
        env={**os.environ, "TZ": "UTC"},
    ).stdout.decode()
    assert ", 3 bans, " in run().splitlines()[-1]
    *events, summary = (json.loads(row) for row in run("--json").splitlines())
    assert summary["bans"] == 3
    assert [(e["ip"], e["time"]) for e in events if e["type"] == "ban"] == [
        ("2001:db8:0:1::/64", "2026-11-23T06:00:02Z"),
        ("198.51.100.7", "2026-11-23T06:00:12Z"),
        ("2001:db8:0:1::/64", "2026-11-23T06:11:42Z"),
    ]
    # Each ban right after the failure that completed it (for a /64: one of its addresses).
    for before, event in itertools.pairwise(events):
        if event["type"] == "ban":
            assert before["type"] == "failure" and before["time"] == event["time"], before
            assert ipaddress.ip_address(before["ip"]) in ipaddress.ip_network(event["ip"])
