"""The real daemon's allow list (dry-run enforcer): a file re-read on schedule, and ``ban``
refusing an allowed target without ``--force``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_daemon import BIN, Daemon, _failure, _wait


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    instance = Daemon(tmp_path, maxretry=1)
    allowed = tmp_path / "admins.txt"
    allowed.write_text("198.51.100.0/28\n")
    with instance.config.open("r+") as config:
        text = config.read()
        config.seek(0)
        # Top-level keys go before the first table.
        config.write(
            f'ignoreip_file = ["{allowed}"]\nallow_refresh = "1s"\nallow_admin = false\n' + text
        )
    yield instance
    if instance.process is not None and instance.process.poll() is None:
        instance.process.kill()
        instance.process.wait(timeout=20)


def test_an_address_added_to_the_file_is_never_banned_from_the_next_refresh(
    daemon: Daemon, tmp_path: Path
) -> None:
    daemon.start()
    daemon.append(_failure(1, "198.51.100.3"))  # listed from the start
    (tmp_path / "admins.txt").write_text("198.51.100.0/28\n# new laptop\n203.0.113.77\n")
    _wait(lambda: "203.0.113.77/32" in daemon.errors(), what="the file to be read again")
    daemon.append(_failure(2, "203.0.113.77") + _failure(3, "203.0.113.78"))
    bans = _wait(daemon.bans, what="the unlisted address's ban")
    assert [ban["ip"] for ban in bans] == ["203.0.113.78"]
    assert daemon.stop() == 0


def test_ban_of_an_allowed_target_asks_for_force(daemon: Daemon) -> None:
    daemon.start()
    refused = daemon.cli("ban", "198.51.100.0/24", check=False)
    assert refused.returncode != 0
    assert "allow list (198.51.100.0/28)" in refused.stderr and "--force" in refused.stderr
    assert daemon.bans() == []
    daemon.cli("ban", "198.51.100.0/24", "--force")
    assert [ban["ip"] for ban in daemon.bans()] == ["198.51.100.0/24"]
    daemon.cli("ban", "198.51.100.99")  # outside the list: no question asked
    assert daemon.stop() == 0


def test_ban_refuses_the_address_of_the_session_it_is_typed_in(daemon: Daemon) -> None:
    daemon.start()
    env = {**os.environ, "SSH_CONNECTION": "203.0.113.40 50022 192.0.2.1 22"}
    argv = [str(BIN), "ban", "203.0.113.0/24", "--config", str(daemon.config)]
    refused = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "your SSH session comes from" in refused.stderr
    assert daemon.bans() == []
    forced = subprocess.run([*argv, "--force"], env=env, capture_output=True, text=True, timeout=30)
    assert forced.returncode == 0, forced.stderr
    assert [ban["ip"] for ban in daemon.bans()] == ["203.0.113.0/24"]
    assert daemon.stop() == 0
