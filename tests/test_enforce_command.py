"""The command enforcer runs a real program (a small Python script that records its argv)."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import enforcekit
from bruteguard.enforce.command import CommandEnforcer, allowed_pieces, run_argv
from bruteguard.errors import EnforcerError
from bruteguard.model import Ban

RECORDER = """
import json, sys
with open(sys.argv[1], "a", encoding="utf-8") as log:
    log.write(json.dumps(sys.argv[2:]) + "\\n")
"""

FAILING = """
import sys
sys.stderr.write("boom: table is locked\\n")
sys.exit(3)
"""

SLEEPER = """
import pathlib, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
pathlib.Path(sys.argv[1]).write_text(str(child.pid))
time.sleep(30)
"""


@dataclass(frozen=True)
class Jail(enforcekit.Jail):
    """Two ports by default: the ``{ports}`` placeholder joins them."""

    ports: tuple[int, ...] = (22, 2222)


@pytest.fixture
def recorder(tmp_path: Path) -> tuple[Path, Path]:
    script = tmp_path / "record.py"
    script.write_text(RECORDER)
    return script, tmp_path / "calls.jsonl"


def calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def make(script: Path, log: Path, **kw: object) -> CommandEnforcer:
    base = [sys.executable, str(script), str(log)]
    return CommandEnforcer(
        [*base, "ban", "{ip}", "--jail={jail}", "{until}", "{seconds}", "{ports}", "{protocol}"],
        [*base, "unban", "{ip}", "{jail}", "{{literal}}"],
        **kw,
    )


def test_ban_and_unban_run_with_exact_argv(recorder: tuple[Path, Path]) -> None:
    script, log = recorder
    enforcer = make(script, log)
    enforcer.setup([Jail("sshd"), Jail("recidive", ports=(), protocol="udp")])
    now = 1_700_000_000.0
    enforcer.ban(
        [
            Ban("203.0.113.9", "sshd", now, now + 600.2),
            Ban("::ffff:198.51.100.4", "recidive", now, math.inf),
            Ban("2001:db8::7", "sshd", now, now - 1),  # expired: not run
        ],
        now,
    )
    assert calls(log) == [
        ["ban", "203.0.113.9", "--jail=sshd", "1700000601", "601", "22,2222", "tcp"],
        ["ban", "198.51.100.4", "--jail=recidive", "0", "0", "all", "udp"],
    ]
    log.unlink()
    enforcer.unban([Ban("2001:db8::7", "sshd", now, now - 1)])
    assert calls(log) == [["unban", "2001:db8::7", "sshd", "{literal}"]]


def test_allowed_hosts_are_cut_out_of_a_banned_network(recorder: tuple[Path, Path]) -> None:
    script, log = recorder
    enforcer = make(script, log)
    enforcer.setup([Jail("sshd", allow=("198.51.100.128/25", "203.0.113.0/24"))])
    now = time.time()
    enforcer.ban(
        [Ban("198.51.100.0/24", "sshd", now, now + 60), Ban("203.0.113.5", "sshd", now, now + 60)],
        now,
    )
    assert [call[1] for call in calls(log)] == ["198.51.100.0/25"]


def test_allowed_pieces() -> None:
    import ipaddress

    net = ipaddress.ip_network
    pieces = allowed_pieces(net("192.0.2.0/24"), [net("192.0.2.7/32"), net("2001:db8::/32")])
    assert len(pieces) == 8 and net("192.0.2.7/32") not in pieces
    assert sum(piece.num_addresses for piece in pieces) == 255
    assert allowed_pieces(net("192.0.2.0/28"), [net("192.0.2.0/24")]) == []


def test_hostile_address_and_jail_never_reach_the_command(
    recorder: tuple[Path, Path], tmp_path: Path
) -> None:
    script, log = recorder
    enforcer = make(script, log)
    enforcer.setup([Jail("sshd")])
    pwned = tmp_path / "pwned"
    now = time.time()
    for ip in [f"$(touch {pwned})", f"203.0.113.9; touch {pwned}", "203.0.113.9 -rf", ""]:
        with pytest.raises(EnforcerError, match="not an IP address"):
            enforcer.ban([Ban(ip, "sshd", now, now + 60)], now)
    with pytest.raises(EnforcerError, match="cannot be used"):
        enforcer.ban([Ban("203.0.113.9", "ssh d", now, now + 60)], now)
    with pytest.raises(EnforcerError, match="cannot be used"):
        enforcer.setup([Jail("my jail")])
    assert calls(log) == [] and not pwned.exists()


def test_templates_are_validated_at_construction(recorder: tuple[Path, Path]) -> None:
    script, log = recorder
    good = [sys.executable, str(script), str(log), "{ip}"]
    with pytest.raises(EnforcerError, match=r"unknown placeholder \{address\}"):
        CommandEnforcer([*good, "{address}"], good)
    with pytest.raises(EnforcerError, match="unknown placeholder"):
        CommandEnforcer(good, [*good, "{print $1}"])
    with pytest.raises(EnforcerError, match="argv list, not a shell"):
        CommandEnforcer("iptables -I INPUT -s {ip} -j DROP", good)  # type: ignore[arg-type]
    with pytest.raises(EnforcerError, match="cannot be a placeholder"):
        CommandEnforcer(["{ip}", "x"], good)
    with pytest.raises(EnforcerError, match="unknown placeholder"):
        CommandEnforcer(good, good, setup_argv=[sys.executable, "{jail}"])


def test_setup_teardown_and_reconcile_order(recorder: tuple[Path, Path]) -> None:
    script, log = recorder
    base = [sys.executable, str(script), str(log)]
    enforcer = make(script, log, setup_argv=[*base, "setup"], teardown_argv=[*base, "teardown"])
    enforcer.setup([Jail("sshd")])
    now = time.time()
    enforcer.reconcile(
        [Ban("203.0.113.9", "sshd", now, now + 60), Ban("203.0.113.10", "sshd", now, now - 5)], now
    )
    enforcer.teardown()
    assert [call[:2] for call in calls(log)] == [
        ["setup"], ["teardown"], ["setup"], ["ban", "203.0.113.9"], ["teardown"],
    ]  # fmt: skip


def test_failure_reports_stderr_and_exit_code(tmp_path: Path) -> None:
    script = tmp_path / "fail.py"
    script.write_text(FAILING)
    enforcer = CommandEnforcer([sys.executable, str(script), "{ip}"], [sys.executable, "-c", ""])
    enforcer.setup([Jail("sshd")])
    now = time.time()
    with pytest.raises(
        EnforcerError, match=r"sshd 203\.0\.113\.9: .*exit 3.*boom: table is locked"
    ):
        enforcer.ban([Ban("203.0.113.9", "sshd", now, now + 60)], now)
    with pytest.raises(EnforcerError, match=r"\(and 1 more\)"):
        enforcer.ban(
            [Ban("203.0.113.9", "sshd", now, now + 60), Ban("203.0.113.8", "sshd", now, now + 60)],
            now,
        )


def test_timeout_kills_the_command_and_its_children(tmp_path: Path) -> None:
    script = tmp_path / "sleep.py"
    script.write_text(SLEEPER)
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(EnforcerError, match="did not finish within 1s"):
        run_argv([sys.executable, str(script), str(pid_file)], timeout=1)
    assert time.monotonic() - started < 5
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the command's own child must die with it"


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_check_names_a_missing_program(recorder: tuple[Path, Path]) -> None:
    script, log = recorder
    assert make(script, log).check() is None
    missing = CommandEnforcer(["/nonexistent/ban-it", "{ip}"], [sys.executable, "{ip}"])
    assert "/nonexistent/ban-it" in (missing.check() or "")
    missing.setup([Jail("sshd")])
    now = time.time()
    with pytest.raises(EnforcerError, match="not found"):
        missing.ban([Ban("203.0.113.9", "sshd", now, now + 60)], now)
