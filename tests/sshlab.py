"""A real OpenSSH server logging through a real rsyslogd into a real auth.log, inside a Lab.

End-to-end tests need the lines bruteguard will meet in production, written by the programs
that write them there. ``SshLab`` builds a ``netns.Lab`` and, in its server namespace, starts
``tests/sshlab-launch.sh`` as PID 1 of private mount and PID namespaces: that script gives
the server its own ``/dev`` (so ``/dev/log`` exists only there) and ``/run``, then runs
rsyslogd and ``sshd -D``. The host's ``/dev``, firewall and syslog are never touched.

A throw-away local user with a random name and password exists for the life of the lab, so
tests can fail logins (wrong password) and succeed at them (right password) over real SSH.
The name is unique per lab: two test runs at once must neither share nor delete each
other's user, nor reset each other's password.

Everything is argv lists; the only text written into config files is this module's own
(paths under the lab's work directory, the user name, the listen addresses).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal, TypeVar

from netns import Host, Lab

__all__ = ["SSH_PORT", "SshLab", "Timestamps", "poll_until", "user_exists"]

SSH_PORT = 22
TEST_USER_PREFIX = "bgssh"
LAUNCHER = Path(__file__).with_name("sshlab-launch.sh")

Timestamps = Literal["traditional", "rfc3339"]

# rsyslog's built-in templates: ``Nov 23 06:50:01 host sshd[12]: …`` and
# ``2024-11-23T06:50:01.123456+00:00 host sshd[12]: …``.
_TEMPLATES: dict[str, str] = {
    "traditional": "RSYSLOG_TraditionalFileFormat",
    "rfc3339": "RSYSLOG_FileFormat",
}

T = TypeVar("T")


def poll_until(
    probe: Callable[[], T],
    timeout: float,
    what: str,
    details: Callable[[], str] | None = None,
    interval: float = 0.25,
) -> T:
    """Call ``probe`` until it returns something truthy; fail naming ``what`` at the deadline.

    Every wait in the end-to-end tests goes through here, so none can hang a CI run.
    ``details`` (e.g. a daemon's log) is read only when the wait fails.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            message = f"timed out after {timeout:g}s waiting for {what}"
            raise AssertionError(f"{message}\n{details()}" if details else message)
        time.sleep(interval)


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True, **kw)


def user_exists(name: str) -> bool:
    """Whether a local account ``name`` exists (to prove a lab removed its user)."""
    return subprocess.run(["id", "-u", name], capture_output=True).returncode == 0


class SshLab:
    """A Lab whose server runs sshd (password logins, PAM) logging to ``auth_log``."""

    def __init__(
        self,
        workdir: Path,
        clients: Iterable[str] = ("attacker", "innocent"),
        timestamps: Timestamps = "traditional",
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.auth_log = self.workdir / "auth.log"
        self.timestamps = timestamps
        self.user = f"{TEST_USER_PREFIX}{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(12)
        self.lab = Lab(clients, prefix="bgssh")
        self._launcher: subprocess.Popen | None = None
        self._created_user = False

    # -- life cycle ---------------------------------------------------------------------

    def __enter__(self) -> SshLab:
        self.lab.__enter__()
        try:
            self._create_user()
            self._write_configs()
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the daemons, delete the namespaces and the test user (safe to call twice)."""
        try:
            self._stop()
        finally:
            try:
                self.lab.close()
            finally:
                self._delete_user()

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
        work.mkdir(parents=True, exist_ok=True)
        (work / "rsyslog").mkdir(exist_ok=True)
        self.auth_log.touch()
        template = _TEMPLATES[self.timestamps]
        (work / "rsyslog.conf").write_text(
            f'global(workDirectory="{work}/rsyslog")\n'
            'module(load="imuxsock" SysSock.Name="/dev/log" SysSock.RateLimit.Interval="0")\n'
            f'auth,authpriv.* action(type="omfile" file="{self.auth_log}" template="{template}")\n'
        )
        key = work / "ssh_host_ed25519_key"
        if not key.exists():
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sshlab", "-f", str(key)])
        (work / "sshd_config").write_text(
            f"Port {SSH_PORT}\n"
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

    def _start(self) -> None:
        argv = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                "--kill-child", "--mount-proc",
                "/bin/bash", str(LAUNCHER), str(self.workdir)]  # fmt: skip
        stderr = open(self.workdir / "launcher.stderr", "wb")  # noqa: SIM115 - closed below
        try:
            self._launcher = self.lab.server.popen(
                argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
            )
        finally:
            stderr.close()

        def ready() -> bool:
            if self._launcher is not None and self._launcher.poll() is not None:
                raise RuntimeError(f"sshd lab launcher exited: {self.diagnostics()}")
            return bool(
                self.find_lines(r"^.* sshd\[\d+\]: Server listening on 0\.0\.0\.0 port 22\.$")
                and self.find_lines(r"^.* sshd\[\d+\]: Server listening on :: port 22\.$")
            )

        poll_until(ready, 20, "sshd's 'Server listening' lines in auth.log", self.diagnostics)

    def _stop(self) -> None:
        launcher, self._launcher = self._launcher, None
        if launcher is None or launcher.poll() is not None:
            return
        # unshare ignores SIGTERM while it waits, so: SIGKILL it → --kill-child kills the
        # launcher, PID 1 of the namespace → the kernel kills every process left in it
        # (rsyslogd, sshd and its session children).
        launcher.kill()
        launcher.wait(timeout=10)

    # -- observing the log --------------------------------------------------------------

    def find_lines(self, pattern: str) -> list[str]:
        """Lines of auth.log matching the (anchored) regex ``pattern``."""
        regex = re.compile(pattern)
        text = self.auth_log.read_text(encoding="utf-8", errors="replace")
        return [line for line in text.splitlines() if regex.match(line)]

    def wait_for_log(self, pattern: str, timeout: float = 10.0, count: int = 1) -> list[str]:
        """Wait until auth.log holds ``count`` lines matching ``pattern``; return them."""

        def enough() -> list[str]:
            lines = self.find_lines(pattern)
            return lines if len(lines) >= count else []

        return poll_until(
            enough, timeout, f"{count} line(s) matching {pattern!r}", self.diagnostics
        )

    def diagnostics(self) -> str:
        """The tails of the launcher's stderr, the ssh clients' outcomes and auth.log."""
        parts = []
        for path in (self.workdir / "launcher.stderr", self.workdir / "clients.log", self.auth_log):
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").splitlines()[-30:]
                parts.append(f"--- {path.name}:\n" + "\n".join(tail))
        return "\n".join(parts)

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
        argv = [
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
        env = {**os.environ, "SSHPASS": self.password if password is None else password}
        started = time.monotonic()
        try:
            result = client.run(argv, check=False, env=env, timeout=timeout)
            output = f"{result.stdout.strip()!r} {result.stderr.strip()}"
            outcome = f"{' '.join(command)}: exit {result.returncode}: {output}"
        except subprocess.TimeoutExpired:
            result, outcome = None, f"no answer within {timeout:g}s"
        with (self.workdir / "clients.log").open("a") as log:
            took = time.monotonic() - started
            log.write(f"{client.name} -> {addr} as {user or self.user}: {outcome} ({took:.1f}s)\n")
        return result if result is not None and result.returncode == 0 else None
