"""fail2ban and SSHGuard as ``bench/flood.py`` runs them: their configs and their processes.

Why here: a flood is only meaningful beside the tools people already run, set up as Debian
ships them and with the same thresholds as ours. Each peer runs inside the bench's
throw-away namespace (``ip netns exec``), every file it writes (config, socket, pid file,
database, log) lives in the bench's temporary directory, and every process it starts is in
one process group the bench kills on every way out: the host's firewall and its own
fail2ban or SSHGuard (if any) are never touched.

- **fail2ban** (Debian's ``fail2ban``): ``fail2ban-server -f`` with its own config
  directory, a copy of ``/etc/fail2ban`` without the host's ``*.local`` and ``jail.d/``
  files plus a ``jail.local`` with one ``sshd`` jail on the bench's file (backend pyinotify
  when ``python3-pyinotify`` is installed, as Debian recommends, else polling), the
  ``nftables-multiport`` banaction (table ``inet f2b-table``, sets ``addr-set-sshd`` and
  ``addr6-set-sshd``; one ``nft`` fork per ban), and ``maxretry``/``findtime``/``bantime``
  equal to ours. It bans single addresses, IPv6 included (no /64).
- **SSHGuard** (Debian's ``sshguard``): the pipeline ``/usr/sbin/sshguard`` builds,
  ``sshg-logtail FILE | sshg-parser | sshg-blocker FLAGS | sshg-fw-nft-sets``, started
  here without the wrapper because the wrapper always sources the host's
  ``/etc/sshguard/sshguard.conf``. SSHGuard scores 10 per failure, so its threshold is
  ``maxretry * 10``; ``-N 64`` blocks IPv6 attackers by /64 as bruteguard does (tables
  ``ip sshguard`` and ``ip6 sshguard``, interval set ``attackers``; one ``nft`` fork per
  block).

    python bench/flood.py --peers --rate 1000 10000 --seconds 10
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

__all__ = [
    "FAIL2BAN_CONFIG",
    "FAIL2BAN_SERVER",
    "SSHGUARD_LIBEXEC",
    "Group",
    "fail2ban_argv",
    "fail2ban_backend",
    "fail2ban_config",
    "missing",
    "sshguard_argvs",
]

FAIL2BAN_SERVER = "/usr/bin/fail2ban-server"
FAIL2BAN_CONFIG = Path("/etc/fail2ban")
SSHGUARD_LIBEXEC = Path("/usr/libexec/sshguard")
INSTALL_HINT = "apt-get install -y fail2ban python3-pyinotify sshguard nftables"


def missing(peer: str) -> str:
    """Empty if ``peer``'s Debian package is installed, else what to install."""
    needed = {
        "fail2ban": [Path(FAIL2BAN_SERVER), FAIL2BAN_CONFIG / "jail.conf"],
        "sshguard": [SSHGUARD_LIBEXEC / name for name in
                     ("sshg-logtail", "sshg-parser", "sshg-blocker", "sshg-fw-nft-sets")],
    }[peer]  # fmt: skip
    absent = [str(path) for path in needed if not path.exists()]
    return f"{', '.join(absent)} missing ({INSTALL_HINT})" if absent else ""


def fail2ban_backend() -> str:
    """``pyinotify`` when the system Python that runs fail2ban has it, else ``polling``."""
    probe = subprocess.run(
        ["/usr/bin/python3", "-c", "import pyinotify"], capture_output=True, check=False,
        timeout=30,
    )  # fmt: skip
    return "pyinotify" if probe.returncode == 0 else "polling"


def fail2ban_config(
    workdir: Path,
    log: Path,
    *,
    maxretry: int,
    findtime: int,
    bantime: int,
    backend: str = "polling",
    source: Path = FAIL2BAN_CONFIG,
) -> Path:
    """A fail2ban config directory in ``workdir``: Debian's files, one sshd jail on ``log``.

    The host's own choices (``*.local``, ``jail.d/``, ``fail2ban.d/``) are left out so the
    run does not depend on them; socket, pid file, database and log go to ``workdir``.
    """
    if backend not in ("polling", "pyinotify"):
        raise ValueError(f"backend {backend!r}: polling or pyinotify")
    target = workdir / "fail2ban"
    shutil.copytree(
        source, target, ignore=shutil.ignore_patterns("*.local", "jail.d", "fail2ban.d")
    )
    (target / "jail.d").mkdir()
    (target / "fail2ban.d").mkdir()
    (target / "fail2ban.local").write_text(
        "[Definition]\n"
        "loglevel = INFO\n"
        f"logtarget = {workdir / 'fail2ban.log'}\n"
        f"socket = {workdir / 'fail2ban.sock'}\n"
        f"pidfile = {workdir / 'fail2ban.pid'}\n"
        f"dbfile = {workdir / 'fail2ban.sqlite3'}\n",
        encoding="utf-8",
    )
    (target / "jail.local").write_text(
        "[DEFAULT]\n"
        "banaction = nftables-multiport\n"
        "banaction_allports = nftables-allports\n\n"
        "[sshd]\n"
        "enabled = true\n"
        "port = ssh\n"
        f"logpath = {log}\n"
        f"backend = {backend}\n"
        f"maxretry = {maxretry}\n"
        f"findtime = {findtime}\n"
        f"bantime = {bantime}\n",
        encoding="utf-8",
    )
    return target


def fail2ban_argv(config: Path, workdir: Path) -> list[str]:
    """The server in the foreground on ``config`` (``-x``: a stale socket is removed)."""
    return [FAIL2BAN_SERVER, "-f", "-x", "-c", str(config),
            "-s", str(workdir / "fail2ban.sock"), "-p", str(workdir / "fail2ban.pid")]  # fmt: skip


def sshguard_argvs(log: Path, *, maxretry: int, findtime: int, bantime: int) -> list[list[str]]:
    """The four stages of ``/usr/sbin/sshguard`` on ``log``, thresholds equal to ours."""
    return [
        [str(SSHGUARD_LIBEXEC / "sshg-logtail"), str(log)],
        [str(SSHGUARD_LIBEXEC / "sshg-parser")],
        [str(SSHGUARD_LIBEXEC / "sshg-blocker"), "-a", str(maxretry * 10), "-p", str(bantime),
         "-s", str(findtime), "-N", "64", "-n", "32"],
        [str(SSHGUARD_LIBEXEC / "sshg-fw-nft-sets")],
    ]  # fmt: skip


class Group:
    """Processes started in one new process group (a pipeline's stages chained by pipes),
    each prefixed with ``prefix`` (``ip netns exec NS``), all ended by :meth:`stop`."""

    def __init__(self, prefix: list[str], argvs: list[list[str]], output: Path) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self._output = output.open("ab")
        upstream = None
        try:
            for index, argv in enumerate(argvs):
                last = index == len(argvs) - 1
                process = subprocess.Popen(
                    prefix + argv,
                    stdin=upstream if upstream is not None else subprocess.DEVNULL,
                    stdout=self._output if last else subprocess.PIPE,
                    stderr=self._output,
                    process_group=0 if not self.processes else self.processes[0].pid,
                )  # fmt: skip
                if upstream is not None:
                    upstream.close()  # the next stage holds it now
                upstream = process.stdout
                self.processes.append(process)
        except BaseException:
            self.stop()
            raise

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def alive(self) -> bool:
        return all(process.poll() is None for process in self.processes)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the group (the stages and their children), SIGKILL after ``grace``."""
        if self.processes:
            group = self.processes[0].pid
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(group, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline and any(p.poll() is None for p in self.processes):
                    time.sleep(0.05)
                if all(p.poll() is not None for p in self.processes):
                    break
            for process in self.processes:
                if process.poll() is None:
                    process.kill()
                process.wait(timeout=10)
        self._output.close()
