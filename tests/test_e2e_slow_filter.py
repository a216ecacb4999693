"""A backtracking imported filter under a hostile flood degrades its own jail only (issue 18).

The real daemon in an ``SshLab``'s server namespace follows the real sshd's auth.log (the
built-in sshd jail) and an application log whose jail uses an imported fail2ban filter with
a catastrophic-backtracking pattern. While the test floods that log with lines that make
the pattern spend its whole per-line time (once 200 of them held every jail for 10 s), an
attacker fails its sshd logins: it must be refused within a second of its last needed
failure, ``status`` must answer promptly and show the slow jail degraded, and once the
flood is over the slow jail must match an ordinary line again and say it keeps up.
"""

from __future__ import annotations

import re
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from bgdaemon import Bruteguard
from bruteguard.control import request
from sshlab import SSH_PORT, SshLab, poll_until, sshd_jail

pytestmark = pytest.mark.netns

MAXRETRY = 3
EVIL_FILTER = "[Definition]\nfailregex = ^\\s*login failed for (?:\\w|\\w\\w)+ from <HOST>$\n"
BURSTS = 300  # the flood, until the checks end: at most 300 bursts of 40 hostile lines, 0.2 s apart
BURST_LINES = 40


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def _hostile() -> bytes:
    return f"{_stamp()} login failed for {'a' * 40}!\n".encode()


def _flood(path: Path, stop: threading.Event) -> None:
    for _ in range(BURSTS):
        if stop.is_set():
            return
        with path.open("ab") as log:
            log.write(_hostile() * BURST_LINES)
        time.sleep(0.2)


def _status(daemon: Bruteguard) -> tuple[dict, float]:
    """``status`` through the control socket (a path, the same from any namespace) and how
    long the daemon took to answer."""
    socket_path = tomllib.loads(daemon.config.read_text())["socket"]
    started = time.monotonic()
    status = request(socket_path, "status")
    return status, time.monotonic() - started


def _jail(status: dict, name: str) -> dict:
    (jail,) = [jail for jail in status["jails"] if jail["name"] == name]
    return jail


def test_a_backtracking_filter_under_a_flood_leaves_sshd_banning_within_a_second(
    netns_root: None,
    tmp_path: Path,
    bruteguard_exe: Path,
    make_config: Callable[..., Path],
) -> None:
    evil = tmp_path / "slowapp.conf"
    evil.write_text(EVIL_FILTER)
    app_log = tmp_path / "slowapp.log"
    app_log.touch()
    with SshLab(tmp_path / "sshlab") as ssh:
        config = make_config(
            jails={
                "sshd": sshd_jail(ssh.auth_log, MAXRETRY, 300),
                "slowapp": {
                    "filter": str(evil),
                    "backend": "file",
                    "logpath": [str(app_log)],
                    "port": [8080],
                    "maxretry": 5,
                    "findtime": "10m",
                    "bantime": "300s",
                },
            }
        )
        daemon = Bruteguard(bruteguard_exe, config, ssh.lab.server, tmp_path / "bruteguard.log")
        daemon.start()
        server, attacker_ip = ssh.lab.server.ipv4, ssh.lab.clients["attacker"].ipv4
        attacker = ssh.lab.clients["attacker"]
        failed = (
            rf"^.* sshd\[\d+\]: Failed password for {re.escape(ssh.user)} "
            rf"from {re.escape(attacker_ip)} port \d+ ssh2$"
        )

        stop = threading.Event()
        flood = threading.Thread(target=_flood, args=(app_log, stop))
        flood.start()
        try:
            poll_until(
                lambda: _slow_and_dropping(daemon), 20, "the slow jail to be degraded", daemon.log
            )
            for attempt in range(1, MAXRETRY + 1):
                assert not ssh.ssh_password_attempt(attacker, server, password="wrong-password")
                last_failure = time.monotonic()  # sshd wrote its line before it answered
                ssh.wait_for_log(failed, timeout=10, count=attempt)
            refused_after = _seconds_until_refused(attacker, server, last_failure)
            assert refused_after is not None and refused_after < 1.0, (
                f"the attacker was not refused within 1 s of its last failure "
                f"({refused_after}) while the slow jail was flooded\n{daemon.log()}"
            )
            status, took = _status(daemon)
            print(f"refused {refused_after:.3f}s after the last failure; status in {took:.2f}s")
            assert flood.is_alive(), "the flood ended before the checks: make it longer"
        finally:
            stop.set()
            flood.join(timeout=30)
        assert took < 1.0, f"status took {took:.1f}s to answer during the flood"
        assert status["degraded"] == ["slowapp"] and status["over_budget"] == ["slowapp"]
        slow = _jail(status, "slowapp")
        assert slow["state"] == "degraded" and slow["matching"]["over_budget"]
        assert slow["matching"]["dropped_lines"] > 0
        assert _jail(status, "sshd")["state"] == "protected"
        assert attacker_ip in _jail(status, "sshd")["banned"]
        whole_log = daemon.logfile.read_text(errors="replace")
        assert "jail slowapp degraded: its filter is over its time budget" in whole_log
        text = daemon.cli("status").stdout
        assert "DEGRADED: slowapp cannot match their log in time" in text

        # The flood is over: once the lane has worked off the hostile batches it still held,
        # an ordinary line (one a second, as ordinary traffic goes on) is matched and the
        # jail keeps up again.
        def ordinary_line_matched() -> bool:
            with app_log.open("ab") as log:
                log.write(f"{_stamp()} login failed for bob from 203.0.113.9\n".encode())
            time.sleep(1)
            return _jail(_status(daemon)[0], "slowapp")["failures"] >= 1

        poll_until(
            ordinary_line_matched, 30, "the slow jail to match ordinary lines again", daemon.log
        )
        status, _ = _status(daemon)
        assert status["degraded"] == [] and status["over_budget"] == [], status
        assert _jail(status, "slowapp")["state"] == "protected"
        assert ssh.innocent_can_login(server), ssh.diagnostics()


def _slow_and_dropping(daemon: Bruteguard) -> bool:
    status, _ = _status(daemon)
    return "slowapp" in status.get("over_budget", [])


def _seconds_until_refused(client, server: str, since: float) -> float | None:
    """How long after ``since`` a connect to sshd from ``client`` first failed (None: not
    within 5 s). A probe that fails was refused from its start, so its start counts."""
    deadline = since + 5
    while time.monotonic() < deadline:
        probe = time.monotonic()
        if not client.tcp_connect(server, SSH_PORT, timeout=0.3):
            return probe - since
        time.sleep(0.02)
    return None
