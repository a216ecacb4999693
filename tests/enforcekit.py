"""What the enforcer tests share: a lab with listeners, a small jail, ban builders, probes.

The enforcer tests (nftables, ipset, iptables, route, hosts.deny, pf/ipfw) each prove their
enforcer the same way: a ``netns.Lab`` whose server listens on ``SSH`` (a jail's port) and
``WEB`` (in no jail), bans built for "now", and a TCP connect from a client namespace over
IPv4 and IPv6 (``reaches``). Tests that need no clock (file contents, exact argv) build
bans at the fixed ``NOW`` instead (``ban_at``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from bruteguard.enforce import Enforcer
from bruteguard.enforce._commands import run
from bruteguard.errors import EnforcerError
from bruteguard.model import Ban
from netns import Host, Lab, require_root_netns

__all__ = [
    "ALLOWED",
    "BLOCKED",
    "JAILS_WITH_ALLOW",
    "NOW",
    "OPEN",
    "SSH",
    "WEB",
    "CountingRunner",
    "Jail",
    "Network",
    "ban",
    "ban_at",
    "ban_blocks_jail_ports_only",
    "ban_without_ports_blocks_every_protocol",
    "both",
    "lab_fixture",
    "listening_lab",
    "reaches",
    "seconds_until_lifted",
    "set_up",
    "udp_echo",
    "udp_reaches",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SSH = 2222  # protected by the sshd jail
WEB = 8080  # in no jail with ports: must stay reachable for clients banned in sshd
ECHO = 5353  # a UDP echo service in no jail: only a jail with no ports (recidive) blocks it
NOW = 1_700_000_000.0  # the clock of tests that run no firewall
_POLL = 0.25  # seconds between connection attempts while waiting for a ban to lift

# Fixed child scripts: addresses and ports arrive as argv, never as code.
_UDP_ECHO_SCRIPT = """
import socket, sys
server = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
server.bind(("::", int(sys.argv[1])))
print("ready", flush=True)
while True:
    data, peer = server.recvfrom(512)
    server.sendto(data, peer)
"""
_UDP_ASK_SCRIPT = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
with socket.socket(family, socket.SOCK_DGRAM) as ask:
    ask.settimeout(float(sys.argv[3]))
    try:
        ask.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
        sys.exit(0 if ask.recv(512) == b"ping" else 1)
    except OSError:
        sys.exit(1)
"""

BLOCKED = {"v4": False, "v6": False}
OPEN = {"v4": True, "v6": True}


@dataclass(frozen=True)
class Jail:
    """The ``JailRule`` an enforcer's ``setup`` takes (``config.JailConfig`` duck type)."""

    name: str
    ports: tuple[int, ...] = (SSH,)
    protocol: str = "tcp"
    allow: tuple[str | Network, ...] = ()
    ratelimit: tuple[int, float] | None = None


# Lab clients: attacker 192.0.2.10 / 2001:db8::a, innocent .11 / ::b, allowed .12 / ::c.
ALLOWED = (ipaddress.ip_network("192.0.2.12/32"), ipaddress.ip_network("2001:db8::c/128"))
JAILS_WITH_ALLOW = [Jail("sshd", allow=ALLOWED), Jail("web-auth", (8443,)), Jail("recidive", ())]


@contextlib.contextmanager
def listening_lab(prefix: str, clients: Sequence[str] = ("attacker", "innocent")) -> Iterator[Lab]:
    """A lab (root and namespaces required) whose server listens on ``SSH`` and ``WEB``."""
    require_root_netns()
    with Lab(clients=clients, prefix=prefix) as lab:
        lab.server.listen_tcp(SSH)
        lab.server.listen_tcp(WEB)
        yield lab


def lab_fixture(prefix: str, clients: Sequence[str] = ("attacker", "innocent")) -> Any:
    """A module's ``lab`` fixture: ``lab = lab_fixture("bgx")`` (a fresh lab per test)."""

    @pytest.fixture
    def lab() -> Iterator[Lab]:
        with listening_lab(prefix, clients) as made:
            yield made

    return lab


E = TypeVar("E")


def set_up(make: Callable[..., E], host: Host, jails: Sequence[Jail], **options: Any) -> E:
    """An enforcer that runs its commands in ``host``'s namespace, set up with ``jails``."""
    enforcer = make(argv_prefix=host.exec_prefix, **options)
    enforcer.setup(jails)  # type: ignore[attr-defined]
    return enforcer


def ban(ip: str, seconds: float = 3600, jail: str = "sshd") -> Ban:
    """A ban of ``ip`` from now for ``seconds`` (negative: one that has already ended)."""
    now = time.time()
    return Ban(ip=ip, jail=jail, start=now, until=now + seconds)


def ban_at(ip: str, jail: str = "sshd", until: float = NOW + 600) -> Ban:
    """A ban at the fixed ``NOW``, for tests whose enforcer never looks at the clock."""
    return Ban(ip=ip, jail=jail, start=NOW, until=until)


def both(host: Host, jail: str = "sshd") -> list[Ban]:
    """Bans of the host's IPv4 and IPv6 address."""
    return [ban(host.ipv4, jail=jail), ban(host.ipv6, jail=jail)]


def reaches(client: Host, server: Host, port: int = SSH) -> dict[str, bool]:
    """Whether ``client`` can open a TCP connection to ``server``, over IPv4 and IPv6."""
    return {
        "v4": client.tcp_connect(server.ipv4, port, timeout=1.0),
        "v6": client.tcp_connect(server.ipv6, port, timeout=1.0),
    }


def udp_echo(server: Host, port: int = ECHO) -> subprocess.Popen:
    """Start a UDP echo server on ``port`` (IPv4 and IPv6) in ``server``; return when ready."""
    process = server.popen(
        [sys.executable, "-c", _UDP_ECHO_SCRIPT, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], 10.0)
    assert readable and process.stdout.readline().strip() == "ready", "UDP echo did not start"
    return process


def udp_reaches(client: Host, server: Host, port: int = ECHO) -> dict[str, bool]:
    """Whether ``client`` gets its datagram echoed by ``server``, over IPv4 and IPv6."""

    def asks(address: str) -> bool:
        argv = [sys.executable, "-c", _UDP_ASK_SCRIPT, address, str(port), "1.0"]
        return client.run(argv, check=False, timeout=15).returncode == 0

    return {"v4": asks(server.ipv4), "v6": asks(server.ipv6)}


def ban_without_ports_blocks_every_protocol(lab: Lab, enforcer: Enforcer) -> None:
    """A ban in a jail with no ports (``recidive`` of ``JAILS_WITH_ALLOW``, protocol tcp)
    refuses the address everywhere: every TCP port and UDP too, over IPv4 and IPv6; other
    clients still reach everything; the unban lets the address back in."""
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    udp_echo(lab.server)
    assert udp_reaches(attacker, lab.server) == OPEN
    enforcer.ban(both(attacker, jail="recidive"), time.time())
    assert reaches(attacker, lab.server, SSH) == BLOCKED
    assert reaches(attacker, lab.server, WEB) == BLOCKED
    assert udp_reaches(attacker, lab.server) == BLOCKED
    assert udp_reaches(innocent, lab.server) == OPEN
    assert reaches(innocent, lab.server, WEB) == OPEN
    enforcer.unban(both(attacker, jail="recidive"))
    assert udp_reaches(attacker, lab.server) == OPEN
    assert reaches(attacker, lab.server, WEB) == OPEN


def ban_blocks_jail_ports_only(lab: Lab, enforcer: Enforcer) -> None:
    """The scenario every packet-filter enforcer must pass: the attacker's IPv4 and IPv6
    bans refuse it at once on the jail's port, and only there; other clients still reach
    it. Ends with both of the attacker's addresses banned in ``sshd``."""
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    assert reaches(attacker, lab.server) == OPEN
    enforcer.ban(both(attacker), time.time())
    started = time.monotonic()
    assert reaches(attacker, lab.server) == BLOCKED
    assert time.monotonic() - started < 1.5, "reject must refuse at once, not time out"
    assert reaches(innocent, lab.server) == OPEN
    assert reaches(attacker, lab.server, WEB) == OPEN


@dataclass
class CountingRunner:
    """The real ``_commands.run``, recording each argv (and failing the first ``fail``
    command), for the ipset and iptables enforcers' ``runner``."""

    fail: str | None = None
    calls: list[list[str]] = field(default_factory=list)

    def __call__(
        self,
        argv_prefix: Sequence[str],
        argv: Sequence[str],
        stdin: str | None,
        timeout: float,
        package_hint: str,
    ) -> str:
        self.calls.append(list(argv))
        if argv[0] == self.fail:
            self.fail = None
            raise EnforcerError(f"{argv[0]} failed (injected for this test)")
        return run(argv_prefix, argv, stdin, timeout, package_hint)


def seconds_until_lifted(
    enforcer: Any, client: Host, server: Host, seconds: float = 2.0, limit: float = 8.0
) -> float:
    """Ban ``client``'s IPv4 address for ``seconds``; assert it is refused at once; return
    how long until it connects again by itself (``inf`` if not within ``limit``)."""
    enforcer.ban([ban(client.ipv4, seconds=seconds)], time.time())
    started = time.monotonic()
    assert not client.tcp_connect(server.ipv4, SSH, timeout=1.0), "the ban did not block"
    while time.monotonic() - started < limit:
        if client.tcp_connect(server.ipv4, SSH, timeout=1.0):
            return time.monotonic() - started
        time.sleep(_POLL)
    return math.inf
