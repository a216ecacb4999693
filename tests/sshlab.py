"""A real OpenSSH server logging through a real rsyslogd into a real auth.log, inside a Lab.

End-to-end tests need the lines bruteguard will meet in production, written by the programs
that write them there. ``SshLab`` builds a ``netns.Lab`` and, in its server namespace, starts
``tests/sshlab-launch.sh`` as PID 1 of private mount and PID namespaces: that script gives
the server its own ``/dev`` (so ``/dev/log`` exists only there) and ``/run``, then runs
rsyslogd and ``sshd -D``. The host's ``/dev``, firewall and syslog are never touched. The
life cycle and the log reading it shares with ``FtpLab`` are ``labkit.DaemonLab``'s.

A throw-away local user with a random name and password exists for the life of the lab, so
tests can fail logins (wrong password) and succeed at them (right password) over real SSH.
The name is unique per lab: two test runs at once must neither share nor delete each
other's user, nor reset each other's password.

Everything is argv lists; the only text written into config files is this module's own
(paths under the lab's work directory, the user name, the listen addresses).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from labkit import DaemonLab, Timestamps, poll_until
from netns import Host

__all__ = ["SSH_PORT", "SshLab", "Timestamps", "poll_until", "sshd_jail", "user_exists"]

SSH_PORT = 22


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True, **kw)


def sshd_jail(auth_log: Path, maxretry: int, bantime: int) -> dict[str, object]:
    """The config table of an sshd jail reading the lab's auth.log (findtime 10 minutes)."""
    return {
        "backend": "file",
        "logpath": [str(auth_log)],
        "maxretry": maxretry,
        "findtime": "10m",
        "bantime": f"{bantime}s",
    }


def user_exists(name: str) -> bool:
    """Whether a local account ``name`` exists (to prove a lab removed its user)."""
    return subprocess.run(["id", "-u", name], capture_output=True).returncode == 0


class SshLab(DaemonLab):
    """A Lab whose server runs sshd (password logins, PAM) logging to ``auth_log``."""

    LAUNCHER = Path(__file__).with_name("sshlab-launch.sh")
    PREFIX = "bgssh"
    LOG_NAME = "auth.log"
    READY = "sshd's 'Server listening' lines in auth.log"

    def __init__(
        self,
        workdir: Path,
        clients: Iterable[str] = ("attacker", "innocent"),
        timestamps: Timestamps = "traditional",
        extra_config: str = "",
    ) -> None:
        super().__init__(workdir, clients, timestamps)
        self.auth_log = self.log_path
        self.extra_config = extra_config
        self._created_user = False

    # -- life cycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop the daemons, delete the namespaces and the test user (safe to call twice)."""
        try:
            super().close()
        finally:
            self._delete_user()

    def _prepare(self) -> None:
        self._create_user()
        self._write_configs()

    def _ready(self) -> bool:
        return bool(
            self.find_lines(r"^.* sshd\[\d+\]: Server listening on 0\.0\.0\.0 port 22\.$")
            and self.find_lines(r"^.* sshd\[\d+\]: Server listening on :: port 22\.$")
        )

    def _create_user(self) -> None:
        # The name is fresh, so useradd fails rather than adopt someone else's account.
        _run(["useradd", "--no-create-home", "--home-dir", "/nonexistent",
              "--shell", "/bin/sh", "--user-group", self.user])  # fmt: skip
        self._created_user = True
        _run(["chpasswd"], input=f"{self.user}:{self.password}\n")

    def _delete_user(self) -> None:
        if self._created_user:
            _run(["userdel", self.user])
            self._created_user = False

    def _write_configs(self) -> None:
        work = self.workdir
        self._write_rsyslog_conf("auth,authpriv.*")
        key = work / "ssh_host_ed25519_key"
        if not key.exists():
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sshlab", "-f", str(key)])
        # sshd takes the first value of a keyword: the caller's lines (a test's own text)
        # come first and win; AllowUsers lines add up.
        (work / "sshd_config").write_text(
            self.extra_config + f"Port {SSH_PORT}\n"
            "ListenAddress 0.0.0.0\n"
            "ListenAddress ::\n"
            f"HostKey {key}\n"
            f"PidFile {work}/sshd.pid\n"
            "UsePAM yes\n"
            "PasswordAuthentication yes\n"
            "KbdInteractiveAuthentication no\n"
            "PubkeyAuthentication no\n"
            "AuthorizedKeysFile none\n"
            "PermitRootLogin no\n"
            f"AllowUsers {self.user}\n"
            "SyslogFacility AUTH\n"
            "LogLevel INFO\n"
            "MaxAuthTries 3\n"
            "UseDNS no\n"
            "PrintMotd no\n"
            "PrintLastLog no\n"
        )

    # -- clients ------------------------------------------------------------------------

    def ssh_password_attempt(
        self,
        client: Host,
        addr: str,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 15.0,
    ) -> bool:
        """One password login from ``client``'s namespace running ``true``: True if it worked.

        One connection makes exactly one password attempt (NumberOfPasswordPrompts=1), so
        a failed call is one ``Failed password`` line in auth.log.
        """
        return self._ssh(client, addr, ["true"], user, password, timeout) is not None

    def innocent_can_login(self, addr: str, client: str = "innocent") -> bool:
        """The right password from ``client`` (default: the innocent one) opens a session.

        Proven by the session itself: the remote ``id -un`` must print the lab's user.
        """
        result = self._ssh(self.lab.clients[client], addr, ["id", "-un"])
        return result is not None and result.stdout.strip() == self.user

    def _ssh(
        self,
        client: Host,
        addr: str,
        command: list[str],
        user: str | None = None,
        password: str | None = None,
        timeout: float = 15.0,
    ) -> subprocess.CompletedProcess | None:
        """Run ``command`` (this module's own words) over ssh; the result if it exited 0."""
        argv = self._ssh_argv(addr, command, user, timeout)
        env = {**os.environ, "SSHPASS": self.password if password is None else password}
        started = time.monotonic()
        try:
            result = client.run(argv, check=False, env=env, timeout=timeout)
            output = f"{result.stdout.strip()!r} {result.stderr.strip()}"
            outcome = f"{' '.join(command)}: exit {result.returncode}: {output}"
        except subprocess.TimeoutExpired:
            result, outcome = None, f"no answer within {timeout:g}s"
        took = time.monotonic() - started
        self._log_client(f"{client.name} -> {addr} as {user or self.user}: {outcome} ({took:.1f}s)")
        return result if result is not None and result.returncode == 0 else None

    def open_session(self, client: Host, addr: str, command: list[str]) -> subprocess.Popen:
        """A logged-in session from ``client`` running ``command`` in the background (the
        right password): its output and exit status say whether it lived to the end."""
        argv = self._ssh_argv(addr, command, None, 15.0)
        env = {**os.environ, "SSHPASS": self.password}
        self._log_client(f"{client.name} -> {addr}: session {' '.join(command)}")
        return client.popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def _ssh_argv(
        self, addr: str, command: list[str], user: str | None, timeout: float
    ) -> list[str]:
        return [
            "sshpass", "-e",
            "ssh", "-F", "/dev/null",
            "-o", "BatchMode=no",
            "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "PreferredAuthentications=password",
            "-o", "PubkeyAuthentication=no",
            "-o", "NumberOfPasswordPrompts=1",
            "-o", "ConnectionAttempts=1",
            "-o", f"ConnectTimeout={max(1, int(timeout / 3))}",
            "-o", "LogLevel=ERROR",
            "-p", str(SSH_PORT),
            "-l", user or self.user,
            "--", addr, *command,
        ]  # fmt: skip
