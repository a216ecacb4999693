"""Who is connected to a port: crafted /proc/net tables, then the real kernel's in a lab."""

from __future__ import annotations

import json
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bruteguard.identity.socket_table import connected_peers
from netns import Host, Lab, require_root_netns

HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
    "   uid  timeout inode\n"
)
ESTABLISHED, SYN_RECV, TIME_WAIT, CLOSE_WAIT, LISTEN, NEW_SYN_RECV = 1, 3, 6, 8, 10, 12


def proc_hex(address: str) -> str:
    """An address as the kernel prints it: each 32-bit word in host byte order, %08X."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    packed = socket.inet_pton(family, address)
    words = struct.unpack(f"={len(packed) // 4}I", packed)
    return "".join(f"{word:08X}" for word in words)


def row(n: int, local: str, lport: int, remote: str, rport: int, state: int) -> str:
    return (
        f"{n:4d}: {proc_hex(local)}:{lport:04X} {proc_hex(remote)}:{rport:04X} {state:02X}"
        " 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20"
        " 4 30 10 -1\n"
    )


@pytest.fixture
def proc_net(tmp_path: Path) -> Path:
    tcp = [
        row(0, "0.0.0.0", 22, "0.0.0.0", 0, LISTEN),
        row(1, "192.0.2.1", 22, "198.51.100.7", 50000, ESTABLISHED),
        row(2, "192.0.2.1", 22, "198.51.100.8", 50001, TIME_WAIT),
        row(3, "192.0.2.1", 2222, "198.51.100.9", 50002, ESTABLISHED),  # another port
        row(4, "192.0.2.1", 22, "203.0.113.66", 50003, LISTEN),  # LISTEN never counts
        row(5, "192.0.2.1", 22, "203.0.113.5", 50004, SYN_RECV),  # half-open
        "   6: junk junk junk\n",
        "   7: 0100007F:0016 XYZ:0000 01 trailing\n",
        "   8: 0100007F:0016 0100007F:C350\n",  # no state
        "\n",
    ]
    tcp6 = [
        row(0, "::", 22, "::", 0, LISTEN),
        row(1, "2001:db8::1", 22, "2001:db8:0:0:0:0:0:77", 40000, CLOSE_WAIT),
        row(2, "::ffff:192.0.2.1", 22, "::ffff:203.0.113.9", 40001, ESTABLISHED),
        row(3, "2001:db8::1", 22, "2001:db8::99", 40002, NEW_SYN_RECV),  # half-open
        "   4: 00000000000000000000000000000000:0016 0000:0000 01\n",  # short address
    ]
    (tmp_path / "tcp").write_text(HEADER + "".join(tcp), encoding="ascii")
    (tmp_path / "tcp6").write_text(HEADER + "".join(tcp6), encoding="ascii")
    return tmp_path


def test_peers_on_watched_port_in_every_state_but_listen(proc_net: Path) -> None:
    assert connected_peers([22], str(proc_net)) == {
        "198.51.100.7",
        "198.51.100.8",
        "2001:db8::77",  # RFC 5952, as the firewall and the store write it
        "203.0.113.9",  # IPv4-mapped client of a dual-stack socket: plain IPv4
    }


def test_half_open_only_on_request(proc_net: Path) -> None:
    peers = connected_peers([22], str(proc_net), include_half_open=True)
    assert {"203.0.113.5", "2001:db8::99"} <= peers
    assert "203.0.113.66" not in peers


def test_other_ports_and_several_ports(proc_net: Path) -> None:
    assert connected_peers([2222], str(proc_net)) == {"198.51.100.9"}
    assert connected_peers([2222, 22], str(proc_net)) >= {"198.51.100.9", "198.51.100.7"}
    assert connected_peers([21], str(proc_net)) == set()
    assert connected_peers([], str(proc_net)) == set()


def test_missing_tables_mean_no_peers(tmp_path: Path, proc_net: Path) -> None:
    assert connected_peers([22], str(tmp_path / "nowhere")) == set()
    (proc_net / "tcp6").unlink()  # a kernel without IPv6
    assert connected_peers([22], str(proc_net)) == {"198.51.100.7", "198.51.100.8"}


def test_binary_junk_is_skipped(tmp_path: Path) -> None:
    good = row(1, "192.0.2.1", 22, "198.51.100.7", 1, ESTABLISHED)
    (tmp_path / "tcp").write_bytes(
        HEADER.encode() + b"\xff\xfe\x00:0016 \x80\x81 01\n" + good.encode()
    )
    assert connected_peers([22], str(tmp_path)) == {"198.51.100.7"}


# -- the real kernel's table, in a lab -----------------------------------------------------

WATCHED = 2222
OTHER = 8080

# Listens on WATCHED with separate IPv4 and IPv6-only sockets and on OTHER dual-stack (IPv4
# clients appear as ::ffff:…); accepts and holds every connection, never closing one.
_HOLD_SERVER = """
import selectors, socket, sys
watched, other = int(sys.argv[1]), int(sys.argv[2])
listeners = []
for family, host, port, v6only in ((socket.AF_INET, "0.0.0.0", watched, None),
                                   (socket.AF_INET6, "::", watched, 1),
                                   (socket.AF_INET6, "::", other, 0)):
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6only is not None:
        server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    server.bind((host, port))
    server.listen(16)
    listeners.append(server)
selector = selectors.DefaultSelector()
for server in listeners:
    selector.register(server, selectors.EVENT_READ)
held = []
print("ready", flush=True)
while True:
    for key, _ in selector.select(timeout=120):
        held.append(key.fileobj.accept()[0])
"""

# Connects to each ADDRESS PORT pair, says so, and holds the connections until stdin closes.
_HOLD_CLIENT = """
import socket, sys
args = sys.argv[1:]
held = [socket.create_connection((args[i], int(args[i + 1])), timeout=5)
        for i in range(0, len(args), 2)]
print("connected", flush=True)
sys.stdin.read()
"""

_PEERS = """
import json, sys
from bruteguard.identity.socket_table import connected_peers
print(json.dumps(sorted(connected_peers([int(port) for port in sys.argv[1:]]))))
"""


def start(host: Host, script: str, args: list[str], expect: str) -> subprocess.Popen:
    process = host.popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], 15)
    line = process.stdout.readline().strip() if readable else ""
    if line != expect:
        process.kill()
        _, stderr = process.communicate(timeout=10)
        pytest.fail(f"{script.splitlines()[1]!r} in {host.name} did not start: {stderr}")
    return process


def peers(host: Host, *ports: int) -> set[str]:
    result = host.run([sys.executable, "-c", _PEERS, *map(str, ports)], timeout=30)
    return set(json.loads(result.stdout))


@pytest.fixture
def lab() -> Iterator[Lab]:
    require_root_netns()
    with Lab(prefix="bgsock") as lab:
        start(lab.server, _HOLD_SERVER, [str(WATCHED), str(OTHER)], "ready")
        yield lab


@pytest.mark.netns
def test_connected_peers_in_a_namespace(lab: Lab) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    server = lab.server
    assert peers(server, WATCHED, OTHER) == set()  # listening sockets are not peers
    held = start(
        attacker,
        _HOLD_CLIENT,
        [server.ipv4, str(WATCHED), server.ipv6, str(WATCHED)],
        "connected",
    )
    start(innocent, _HOLD_CLIENT, [server.ipv4, str(OTHER), server.ipv6, str(OTHER)], "connected")

    assert peers(server, WATCHED) == {attacker.ipv4, attacker.ipv6}
    # The other port's clients are there (IPv4 through a dual-stack socket), but only there.
    assert peers(server, OTHER) == {innocent.ipv4, innocent.ipv6}
    assert peers(server, WATCHED, OTHER) == {
        attacker.ipv4,
        attacker.ipv6,
        innocent.ipv4,
        innocent.ipv6,
    }

    # A client that hung up stays a candidate while the server still has its socket
    # (CLOSE_WAIT here: the server never closes).
    held.kill()
    held.communicate(timeout=10)
    deadline = time.monotonic() + 10
    while len(close_wait(server, WATCHED)) < 2:
        assert time.monotonic() < deadline, "the server's sockets never reached CLOSE_WAIT"
        time.sleep(0.1)
    assert peers(server, WATCHED) == {attacker.ipv4, attacker.ipv6}


def close_wait(host: Host, port: int) -> list[str]:
    """The server's sockets on ``port`` whose client hung up (as ``ss`` sees them)."""
    argv = ["ss", "-Htn", "state", "close-wait", "sport", "=", f":{port}"]
    return host.run(argv, timeout=30).stdout.splitlines()
