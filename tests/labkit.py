"""What the daemon labs share: a launcher run as PID 1 of private namespaces in a
``netns.Lab``'s server, one log file written by the lab's rsyslogd, and bounded waits.

``SshLab`` (sshd) and ``FtpLab`` (pure-ftpd and dnsmasq) differ in what they write before
their launcher starts and in how they know it is ready. The rest is here, once: starting the
launcher and waiting for it, stopping it so that no daemon outlives ``close()``, cleaning up
after a failed start, and reading the log the way a test needs (anchored patterns, bounded
waits, the files to show when a wait fails).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar, Literal, Self, TypeVar

from netns import Host, Lab

__all__ = ["DaemonLab", "Timestamps", "poll_until", "process_alive"]

Timestamps = Literal["traditional", "rfc3339"]

# rsyslog's built-in templates: ``Nov 23 06:50:01 host sshd[12]: …`` and
# ``2024-11-23T06:50:01.123456+00:00 host sshd[12]: …``.
_TEMPLATES: dict[str, str] = {
    "traditional": "RSYSLOG_TraditionalFileFormat",
    "rfc3339": "RSYSLOG_FileFormat",
}

_POLL = 0.1  # seconds between looks at the log or the sockets: a lab starts in about 1 s

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


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


class DaemonLab:
    """A ``netns.Lab`` whose server runs the daemons ``LAUNCHER`` starts, logging to ``log_path``.

    A subclass names its launcher, its prefix (of the namespaces and of the random test
    user's name) and its log file; it writes what the launcher reads in ``_prepare`` and says
    in ``_ready`` when its daemons serve. ``user`` and ``password`` are fresh and random.
    """

    LAUNCHER: ClassVar[Path]
    PREFIX: ClassVar[str]
    LOG_NAME: ClassVar[str]
    READY: ClassVar[str]  # what ``_ready`` waits for, for the message when it times out
    DIAGNOSED: ClassVar[tuple[str, ...]] = ()  # more work files that ``diagnostics`` shows

    def __init__(self, workdir: Path, clients: Iterable[str], timestamps: Timestamps) -> None:
        self.workdir = Path(workdir).resolve()
        self.log_path = self.workdir / self.LOG_NAME
        self.timestamps = timestamps
        self.user = f"{self.PREFIX}{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(12)
        self.lab = Lab(clients, prefix=self.PREFIX)
        self._launcher: subprocess.Popen | None = None
        self._namespace_pid: int | None = None

    @property
    def server(self) -> Host:
        return self.lab.server

    @property
    def clients(self) -> dict[str, Host]:
        return self.lab.clients

    @property
    def launcher_pid(self) -> int | None:
        """The host PID of the launcher, PID 1 of the lab's private namespaces (if running)."""
        return self._namespace_pid

    # -- what a subclass provides -------------------------------------------------------

    def _prepare(self) -> None:
        """Write what the launcher reads (the lab's namespaces exist already)."""
        raise NotImplementedError

    def _ready(self) -> bool:
        """Whether the daemons serve (called until it is true, at most 20 s)."""
        raise NotImplementedError

    # -- life cycle ---------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.lab.__enter__()
        try:
            self._prepare()
            self._launch()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the daemons and delete the namespaces (safe to call twice)."""
        try:
            self._stop()
        finally:
            self.lab.close()

    def _launch(self) -> None:
        argv = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                "--kill-child", "--mount-proc",
                "/bin/bash", str(self.LAUNCHER), str(self.workdir)]  # fmt: skip
        stderr = open(self.workdir / "launcher.stderr", "wb")  # noqa: SIM115 - closed below
        try:
            self._launcher = self.lab.server.popen(
                argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
            )
        finally:
            stderr.close()

        def ready() -> bool:
            if self._launcher is not None and self._launcher.poll() is not None:
                raise RuntimeError(f"{self.LAUNCHER.name} exited: {self.diagnostics()}")
            return self._ready()

        poll_until(ready, 20, self.READY, self.diagnostics, _POLL)
        self._namespace_pid = self._find_namespace_pid()

    def _find_namespace_pid(self) -> int:
        """The host PID of the launcher (PID 1 inside), the child unshare forked."""
        assert self._launcher is not None
        pid = self._launcher.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if len(children) != 1:
            raise RuntimeError(f"unshare {pid} has children {children}, expected one")
        return int(children[0])

    def _stop(self) -> None:
        launcher, self._launcher = self._launcher, None
        namespace_pid, self._namespace_pid = self._namespace_pid, None
        if launcher is None or launcher.poll() is not None:
            return
        # unshare ignores SIGTERM while it waits, so: SIGKILL it → --kill-child kills the
        # launcher, PID 1 of the namespace → the kernel kills every process left in it
        # (rsyslogd, the daemons and their session children).
        launcher.kill()
        launcher.wait(timeout=10)
        if namespace_pid is not None:
            # PID 1 dies by its parent-death signal, a moment later; then the kernel has
            # killed the rest. Return only then, so no daemon outlives close().
            poll_until(lambda: not process_alive(namespace_pid), 10, "the lab's PID 1 to die")

    # -- the log ------------------------------------------------------------------------

    def _write_rsyslog_conf(self, selector: str) -> None:
        """rsyslog.conf for the launcher's rsyslogd: what ``selector`` (e.g.
        ``auth,authpriv.*``) picks from /dev/log goes to ``log_path``, an empty file now."""
        work = self.workdir
        work.mkdir(parents=True, exist_ok=True)
        (work / "rsyslog").mkdir(exist_ok=True)
        self.log_path.touch()
        template = _TEMPLATES[self.timestamps]
        (work / "rsyslog.conf").write_text(
            f'global(workDirectory="{work}/rsyslog")\n'
            'module(load="imuxsock" SysSock.Name="/dev/log" SysSock.RateLimit.Interval="0")\n'
            f'{selector} action(type="omfile" file="{self.log_path}" template="{template}")\n'
        )

    def find_lines(self, pattern: str) -> list[str]:
        """Lines of the lab's log matching the (anchored) regex ``pattern``."""
        regex = re.compile(pattern)
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return [line for line in text.splitlines() if regex.match(line)]

    def wait_for_log(self, pattern: str, timeout: float = 10.0, count: int = 1) -> list[str]:
        """Wait until the lab's log holds ``count`` lines matching ``pattern``; return them."""

        def enough() -> list[str]:
            lines = self.find_lines(pattern)
            return lines if len(lines) >= count else []

        return poll_until(
            enough, timeout, f"{count} line(s) matching {pattern!r}", self.diagnostics, _POLL
        )

    def diagnostics(self) -> str:
        """The tails of the launcher's stderr, the clients' outcomes, the subclass's own
        files and the lab's log."""
        parts = []
        for name in ("launcher.stderr", "clients.log", *self.DIAGNOSED, self.LOG_NAME):
            with contextlib.suppress(OSError):
                tail = (self.workdir / name).read_text(errors="replace").splitlines()[-30:]
                parts.append(f"--- {name}:\n" + "\n".join(tail))
        return "\n".join(parts)

    def _log_client(self, line: str) -> None:
        """One line in clients.log: what a client did, for ``diagnostics``."""
        with (self.workdir / "clients.log").open("a") as log:
            log.write(line + "\n")
