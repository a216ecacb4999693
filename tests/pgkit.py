"""A PostgreSQL cluster of the test's own, in a temporary directory (Debian's binaries).

Tests that stop and restart the database cannot use the machine's server, and CI on a fresh
machine has none running: each cluster here is initdb'd into a directory the ``postgres``
user owns (PostgreSQL refuses to run as root), listens on a free loopback port and on a unix
socket in that directory, trusts local connections, and is stopped and removed afterwards.

Given a lab namespace (``Cluster(namespace=lab.server)``), the server runs inside it and
listens on that namespace's address instead of loopback, where the lab's other namespaces
reach it over TCP like hosts reach a database server; logins from the lab's network need
the role's password (scram), and the test itself still comes in through the unix socket.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from labkit import process_alive
from netns import Host

__all__ = ["PG_BIN", "Cluster"]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
_USER = "postgres"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """One running PostgreSQL: ``dsn(user=..., dbname=...)`` to reach it, ``stop``/``start``
    or ``kill`` to play the outage, ``destroy`` at the end; in ``namespace`` if given."""

    def __init__(self, namespace: Host | None = None) -> None:
        missing = [tool for tool in ("initdb", "pg_ctl") if not (PG_BIN / tool).exists()]
        if missing:
            raise RuntimeError(f"{PG_BIN}: {missing} missing: apt-get install postgresql")
        account = pwd.getpwnam(_USER)
        self.dir = Path(tempfile.mkdtemp(prefix="bg-pg-"))
        os.chown(self.dir, account.pw_uid, account.pw_gid)
        self.data = self.dir / "data"
        self.namespace = namespace
        self.address = namespace.ipv4 if namespace is not None else "127.0.0.1"
        self.port = _free_port()
        self._as_postgres(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                _USER,
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"listen_addresses = '{self.address}'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
                "shared_buffers = 16MB\nmax_connections = 40\n"
            )
        if namespace is not None:
            lab = ipaddress.ip_network(f"{self.address}/24", strict=False)
            hba = self.data / "pg_hba.conf"
            with open(hba, "a", encoding="utf-8") as rules:
                rules.write(f"host all all {lab} scram-sha-256\n")
        self.start()

    def _as_postgres(self, argv: list[str], in_namespace: bool = False) -> None:
        """Run ``argv`` as the postgres user (in the cluster's namespace if asked: only
        the server's start needs it; signals and files reach it from anywhere)."""
        prefix = self.namespace.exec_prefix if in_namespace and self.namespace else []
        result = subprocess.run(
            [*prefix, "runuser", "-u", _USER, "--", *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            log = ""
            with contextlib.suppress(OSError):
                log = (self.dir / "log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{argv[0]} failed: {result.stdout}{result.stderr}\n{log}")

    def start(self) -> None:
        self._as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.dir / "log"),
                "start",
            ],
            in_namespace=True,
        )

    def stop(self) -> None:
        """Stop at once (``immediate``: like a crash, no goodbye to the clients)."""
        self._as_postgres(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", "immediate", "stop"]
        )

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash or the OOM killer would, and return once its
        backends, orphaned, have noticed and gone: the next ``start`` recovers from the WAL."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        # The postmaster must be reaped too, not only dead: the next one finds its PID in
        # postmaster.pid and refuses to start while even a zombie holds it.
        while (left := self._processes()) or Path(f"/proc/{pid}").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres processes {left or pid} outlived the postmaster")
            time.sleep(0.05)

    def _processes(self) -> list[int]:
        """The live processes of this cluster: every one of them works in its data directory
        (a backend forked a moment before the kill too)."""
        found = []
        for cwd in Path("/proc").glob("[0-9]*/cwd"):
            with contextlib.suppress(OSError):
                if Path(os.readlink(cwd)) == self.data and process_alive(int(cwd.parent.name)):
                    found.append(int(cwd.parent.name))
        return found

    def require_password(self, role: str) -> None:
        """From now on ``role`` logs in over TCP with its password (scram), not on trust."""
        hba = self.data / "pg_hba.conf"
        rule = f"host all {role} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rule + hba.read_text(encoding="utf-8"), encoding="utf-8")
        self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "reload"])
        time.sleep(0.5)  # the postmaster re-reads pg_hba.conf on SIGHUP, asynchronously

    def dsn(self, user: str = _USER, dbname: str = "postgres") -> str:
        """Over TCP: loopback, or the namespace's address (reachable from the lab only)."""
        return f"host={self.address} port={self.port} user={user} dbname={dbname} connect_timeout=3"

    def socket_dsn(self, user: str = _USER, dbname: str = "postgres") -> str:
        """Through the unix socket: reachable from any network namespace of this machine."""
        return f"host={self.dir} port={self.port} user={user} dbname={dbname} connect_timeout=3"

    def destroy(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                _USER,
                "--",
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.dir, ignore_errors=True)
