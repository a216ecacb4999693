"""The real ``bruteguard run`` inside a lab's server namespace, and its CLI, for e2e tests."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path
from typing import Any

from netns import Host
from sshlab import poll_until

__all__ = ["Bruteguard"]


class Bruteguard:
    """The real daemon, run in the lab's server namespace, and its CLI."""

    def __init__(self, exe: Path, config: Path, host: Host, logfile: Path) -> None:
        self.exe = exe
        self.config = config
        self.host = host
        self.logfile = logfile
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start ``bruteguard run`` and wait until its control socket answers."""
        with self.logfile.open("ab") as log:
            self.process = self.host.popen(
                [str(self.exe), "run", "--verbose", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

        def answers() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"bruteguard run exited early:\n{self.log()}")
            return self.cli("status", check=False).returncode == 0

        poll_until(answers, 30, "`bruteguard status` to answer after start", self.log)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``bruteguard ARGS --config FILE`` in the server namespace."""
        result = self.host.run(
            [str(self.exe), *args, "--config", str(self.config)], check=False, timeout=30
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"bruteguard {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n--- daemon log:\n{self.log()}"
            )
        return result

    def bans(self) -> list[dict[str, Any]]:
        """``bruteguard bans --json``, parsed."""
        bans = json.loads(self.cli("bans", "--json").stdout)
        assert isinstance(bans, list), bans
        return bans

    def ban_of(self, ip: str) -> dict[str, Any] | None:
        """The listed ban of exactly ``ip`` (an address or a network, compared as such)."""
        wanted = ipaddress.ip_network(ip, strict=False)
        for ban in self.bans():
            if ipaddress.ip_network(ban["ip"], strict=False) == wanted:
                return ban
        return None

    def terminate(self) -> int:
        """SIGTERM, then the exit status (bounded wait)."""
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=20)

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to clean up."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=20)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")[-6000:]
