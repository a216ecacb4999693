"""What the end-to-end tests share: a lab with the real daemon in it, and how they judge it.

Every end-to-end test starts a lab (``SshLab``, a mail, service or remote-access lab, or a
bare ``netns.Lab``), runs the real ``bruteguard run`` in the lab's server namespace and
judges by behaviour: bans seen in ``bans --json``, failures counted in ``status --json``,
connections refused. ``LabDaemons`` (the ``lab_daemons`` fixture of conftest.py) starts
them and takes every lab down afterwards, checking that nothing of it is left;
``file_daemon`` runs the daemon on a log file the test writes itself.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bgdaemon import Bruteguard
from labkit import poll_until
from netns import Host, existing_namespaces

__all__ = [
    "FAMILIES",
    "LabDaemons",
    "address",
    "banned",
    "counted",
    "failures",
    "file_daemon",
    "leftovers",
    "processes_mentioning",
    "refused",
    "service_jail",
    "write_failure",
]

FAMILIES = ["ipv4", "ipv6"]
SETTLE = 1.0  # seconds the daemon gets to read on before a count is taken as final


class AnyLab(Protocol):
    """What ``LabDaemons`` needs of a lab: ``labkit.DaemonLab`` and its subclasses."""

    workdir: Path

    @property
    def server(self) -> Host: ...

    def __enter__(self) -> Any: ...

    def close(self) -> None: ...

    def diagnostics(self) -> str: ...


L = TypeVar("L", bound=AnyLab)


def address(host: Host, family: str) -> str:
    """``host``'s address of ``family`` ("ipv4" or "ipv6")."""
    return host.ipv4 if family == "ipv4" else host.ipv6


def refused(client: Host, addr: str, port: int = 22) -> bool:
    """A TCP connect from ``client`` fails (refused or dropped: either way, banned)."""
    return not client.tcp_connect(addr, port, timeout=1.5)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain ``text`` (to prove a lab stopped)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").replace("\0", " ")
        except OSError:
            continue
        if text in argv:
            found.append(argv)
    return found


def leftovers(lab: Any) -> list[str]:
    """What of a closed ``DaemonLab`` still exists: namespaces, or processes naming its
    directory."""
    left = sorted({host.name for host in lab.lab.hosts} & existing_namespaces())
    return left + processes_mentioning(str(lab.workdir))


def failures(daemon: Bruteguard, jail: str) -> int:
    """The failures the daemon has counted in ``jail`` (``status --json``)."""
    status = json.loads(daemon.cli("status", "--json").stdout)
    return next(j["failures"] for j in status["jails"] if j["name"] == jail)


def counted(daemon: Bruteguard, jail: str, count: int) -> None:
    """Wait until ``jail`` has counted ``count`` failures; after the daemon had time to
    read on, it must still be exactly ``count`` (one attempt is counted once)."""
    poll_until(lambda: failures(daemon, jail) >= count, 15, f"{count} failures counted", daemon.log)
    time.sleep(SETTLE)
    assert failures(daemon, jail) == count, daemon.log()


def banned(lab: AnyLab, daemon: Bruteguard, addr: str, jail: str) -> dict[str, Any]:
    """Wait until ``addr`` is banned in ``jail``; fail with both logs if not."""
    ban = poll_until(
        lambda: daemon.ban_of(addr),
        30,
        f"a ban of {addr}",
        lambda: f"{daemon.log()}\n--- lab:\n{lab.diagnostics()}",
    )
    assert ban["jail"] == jail, ban
    return ban


def service_jail(log: Path, maxretry: int, **settings: Any) -> dict[str, Any]:
    """A built-in jail's table, turned on, reading ``log``: ``maxretry`` failures in 10
    minutes ban for 5 minutes; ``settings`` add or override keys."""
    return {
        "enabled": True,
        "logpath": [str(log)],
        "maxretry": maxretry,
        "findtime": "10m",
        "bantime": "300s",
        **settings,
    }


def write_failure(log: Path, addr: str, pid: int) -> None:
    """Append the syslog line sshd ``pid`` writes for one wrong password from ``addr``,
    stamped now, to ``log``."""
    stamp = time.strftime("%b %e %H:%M:%S")
    with log.open("a") as handle:
        handle.write(
            f"{stamp} lab sshd[{pid}]: Failed password for root from {addr} port 4{pid} ssh2\n"
        )


class LabDaemons:
    """Labs started for one test, each with the real daemon in its server namespace.

    ``start`` enters the lab and starts ``bruteguard run`` there with ``jails``;
    ``close`` stops every lab (the daemon dies with the lab's namespace) and, unless told
    otherwise, fails the test when a namespace or process of one is left.
    """

    def __init__(self, tmp_path: Path, exe: Path, make_config: Callable[..., Path]) -> None:
        self.tmp_path = tmp_path
        self.exe = exe
        self.make_config = make_config
        self.labs: list[AnyLab] = []

    def start(
        self, lab: L, jails: dict[str, Any], log_name: str = "bruteguard.log", **settings: Any
    ) -> tuple[L, Bruteguard]:
        """Enter ``lab`` and start the daemon there with ``jails`` and top-level
        ``settings``; its output goes to ``tmp_path / log_name``."""
        self.labs.append(lab)
        lab.__enter__()
        config = self.make_config(jails=jails, **settings)
        daemon = Bruteguard(self.exe, config, lab.server, self.tmp_path / log_name)
        daemon.start()
        return lab, daemon

    def close(self, check: bool = True) -> None:
        for lab in self.labs:
            lab.close()
        if check:
            for lab in self.labs:
                assert not leftovers(lab), f"the lab left these behind: {leftovers(lab)}"


@contextlib.contextmanager
def file_daemon(
    host: Host,
    tmp_path: Path,
    exe: Path,
    make_config: Callable[..., Path],
    sshd: dict[str, Any],
    **settings: Any,
) -> Iterator[tuple[Bruteguard, Path]]:
    """``bruteguard run`` in ``host``'s namespace, its sshd jail (``sshd`` adds settings)
    following ``tmp_path/auth.log``, which the test writes; yields the daemon and the log,
    then stops the daemon (SIGTERM)."""
    log = tmp_path / "auth.log"
    log.touch()
    config = make_config(
        jails={"sshd": {"backend": "file", "logpath": [str(log)], **sshd}}, **settings
    )
    daemon = Bruteguard(exe, config, host, tmp_path / "bruteguard.log")
    daemon.start()
    try:
        yield daemon, log
    finally:
        daemon.terminate()
