"""A tiny test network built from ``ip netns`` and veth pairs, so tests use real packets.

A ``Lab`` makes one server namespace with a bridge and one namespace per client, each client
wired to the bridge by a veth pair. Nothing is created in the host's own namespace, so the
host's interfaces and firewall are never touched; ``__exit__`` kills what the lab started
and deletes every namespace it made, also when the test failed.

Every command is an argv list (iproute2, python); nothing goes through a shell.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

__all__ = [
    "CommandError",
    "Host",
    "Lab",
    "existing_namespaces",
    "require_root_netns",
]

SERVER_IPV4 = "192.0.2.1"
SERVER_IPV6 = "2001:db8::1"

# Fixed child scripts: addresses and ports arrive as argv, never as code.
_CONNECT_SCRIPT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
except OSError:
    sys.exit(1)
"""

_LISTEN_SCRIPT = """
import socket, sys
server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
server.bind(("::", int(sys.argv[1])))
server.listen(64)
print("ready", flush=True)
while True:
    conn, _ = server.accept()
    conn.close()
"""


class CommandError(subprocess.CalledProcessError):
    """A failed command whose message shows its stderr (what a failing test needs to see)."""

    def __str__(self) -> str:
        stderr = self.stderr.strip() if isinstance(self.stderr, str) else self.stderr
        return f"{super().__str__()}\nstderr: {stderr}"


def _run(argv: Sequence[str], check: bool = True, **kw: Any) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    result = subprocess.run(list(argv), check=False, **kw)
    if check and result.returncode != 0:
        raise CommandError(result.returncode, list(argv), result.stdout, result.stderr)
    return result


class Host:
    """One network namespace and its addresses; runs commands inside it."""

    def __init__(self, name: str, ipv4: str, ipv6: str) -> None:
        self.name = name
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self._processes: list[subprocess.Popen] = []

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.ipv4!r}, {self.ipv6!r})"

    @property
    def exec_prefix(self) -> list[str]:
        """The argv prefix that runs a command in this namespace (for ``argv_prefix=``)."""
        return ["ip", "netns", "exec", self.name]

    def run(
        self, argv: Sequence[str], check: bool = True, **kw: Any
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` inside the namespace; text output is captured unless ``kw`` says not."""
        return _run([*self.exec_prefix, *argv], check=check, **kw)

    def popen(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen:
        """Start ``argv`` inside the namespace; the lab kills it on exit."""
        process = subprocess.Popen([*self.exec_prefix, *argv], **kw)
        self._processes.append(process)
        return process

    def tcp_connect(self, addr: str, port: int, timeout: float = 2.0) -> bool:
        """True if a TCP handshake from this namespace to ``addr``:``port`` completes."""
        argv = [sys.executable, "-c", _CONNECT_SCRIPT, addr, str(port), str(timeout)]
        result = self.run(argv, check=False, timeout=timeout + 10)
        return result.returncode == 0

    def listen_tcp(self, port: int, ready_timeout: float = 10.0) -> subprocess.Popen:
        """Start an accept-and-close TCP server on ``port`` (IPv4 and IPv6); return when ready."""
        process = self.popen(
            [sys.executable, "-c", _LISTEN_SCRIPT, str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        readable, _, _ = select.select([process.stdout], [], [], ready_timeout)
        if not readable or process.stdout.readline().strip() != "ready":
            process.kill()
            _, stderr = process.communicate(timeout=10)
            raise RuntimeError(
                f"TCP listener on port {port} in {self.name} did not start: {stderr}"
            )
        return process

    def kill_processes(self) -> None:
        """Kill and reap every process started through this host."""
        for process in self._processes:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
                process.communicate(timeout=10)
        self._processes.clear()


class Lab:
    """A server namespace with a bridge and one veth-connected namespace per client.

    Server: 192.0.2.1/24 and 2001:db8::1/64; client *i*: 192.0.2.(10+i) and 2001:db8::(10+i).
    Names are ``<prefix>-<random>-<role>`` so parallel runs never collide.
    """

    def __init__(
        self, clients: Iterable[str] = ("attacker", "innocent"), prefix: str | None = None
    ):
        self.client_names = tuple(clients)
        if len(self.client_names) > 200:
            raise ValueError("a lab has at most 200 clients")
        self.prefix = f"{prefix or 'bg'}-{secrets.token_hex(3)}"
        self.server = Host(f"{self.prefix}-server", SERVER_IPV4, SERVER_IPV6)
        self.clients: dict[str, Host] = {
            name: Host(f"{self.prefix}-{name}", f"192.0.2.{10 + i}", f"2001:db8::{10 + i:x}")
            for i, name in enumerate(self.client_names)
        }
        self.namespaces: list[str] = []

    @property
    def hosts(self) -> list[Host]:
        return [self.server, *self.clients.values()]

    def __enter__(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _add_namespace(self, host: Host) -> None:
        _run(["ip", "netns", "add", host.name])
        self.namespaces.append(host.name)
        _run(["ip", "-n", host.name, "link", "set", "lo", "up"])

    def _build(self) -> None:
        server = self.server.name
        self._add_namespace(self.server)
        _run(["ip", "-n", server, "link", "add", "br0", "type", "bridge"])
        _run(["ip", "-n", server, "addr", "add", f"{SERVER_IPV4}/24", "dev", "br0"])
        _run(["ip", "-n", server, "addr", "add", f"{SERVER_IPV6}/64", "dev", "br0", "nodad"])
        _run(["ip", "-n", server, "link", "set", "br0", "up"])
        for i, host in enumerate(self.clients.values()):
            self._add_namespace(host)
            port = f"port{i}"
            # Both ends are created inside lab namespaces: the host namespace gets nothing.
            _run(["ip", "-n", server, "link", "add", port, "type", "veth",
                  "peer", "name", "eth0", "netns", host.name])  # fmt: skip
            _run(["ip", "-n", server, "link", "set", port, "master", "br0", "up"])
            _run(["ip", "-n", host.name, "addr", "add", f"{host.ipv4}/24", "dev", "eth0"])
            _run(["ip", "-n", host.name, "addr", "add", f"{host.ipv6}/64", "dev", "eth0", "nodad"])
            _run(["ip", "-n", host.name, "link", "set", "eth0", "up"])

    def close(self) -> None:
        """Kill the lab's processes and delete its namespaces (safe to call twice)."""
        for host in self.hosts:
            host.kill_processes()
        errors = []
        for name in reversed(self.namespaces):
            result = _run(["ip", "netns", "delete", name], check=False)
            if result.returncode != 0:
                errors.append(f"{name}: {result.stderr.strip()}")
        self.namespaces.clear()
        if errors:
            raise RuntimeError("could not delete lab namespaces: " + "; ".join(errors))


def existing_namespaces() -> set[str]:
    """Names of all network namespaces ``ip netns`` knows (to prove a lab cleaned up)."""
    output = _run(["ip", "netns", "list"]).stdout
    return {line.split()[0] for line in output.splitlines() if line.strip()}


def require_root_netns() -> None:
    """Fail (never skip) a test that needs network namespaces when it cannot have them."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root to create network namespaces (run the suite as root)")
    if shutil.which("ip") is None:
        pytest.fail("this test needs iproute2's `ip` command (apt-get install iproute2)")
