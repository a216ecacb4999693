"""New-connection records from nflog: crafted netlink messages, then the real kernel in a lab."""

from __future__ import annotations

import json
import select
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bruteguard.errors import BruteguardError, EnforcerError
from bruteguard.identity.firewall_log import TABLE, ConnectionLog, ConnectionLogRule
from netns import Host, Lab, require_root_netns

# -- crafted messages, in the kernel's format (linux/netfilter/nfnetlink_log.h) -------------

PACKET_TYPE = (4 << 8) | 0  # NFNL_SUBSYS_ULOG, NFULNL_MSG_PACKET
NFULA_PACKET_HDR, NFULA_PAYLOAD = 1, 9


def attribute(kind: int, value: bytes) -> bytes:
    length = 4 + len(value)
    return struct.pack("=HH", length, kind) + value + bytes(-length % 4)


def message(body: bytes, kind: int = PACKET_TYPE) -> bytes:
    length = 16 + len(body)
    return struct.pack("=IHHII", length, kind, 0, 0, 0) + body + bytes(-length % 4)


def tcp(dport: int, sport: int = 40000) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 65535, 0, 0)


def ipv4(source: str, payload: bytes, protocol: int = 6, frag: int = 0, ihl: int = 5) -> bytes:
    options = bytes((ihl - 5) * 4)
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        ihl * 4 + len(payload),
        1,
        frag,
        64,
        protocol,
        0,
        socket.inet_pton(socket.AF_INET, source),
        socket.inet_pton(socket.AF_INET, "192.0.2.1"),
    )
    return header + options + payload


def ipv6(source: str, payload: bytes, next_header: int = 6, extension: bytes = b"") -> bytes:
    header = struct.pack(
        "!IHBB16s16s",
        6 << 28,
        len(extension) + len(payload),
        next_header,
        64,
        socket.inet_pton(socket.AF_INET6, source),
        socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
    )
    return header + extension + payload


def logged(family: int, packet: bytes) -> bytes:
    """One NFULNL_MSG_PACKET message as the kernel sends it (header, then payload)."""
    body = struct.pack("!BBH", family, 0, 7301)
    body += attribute(NFULA_PACKET_HDR, struct.pack("!HBx", 0x0800, 1))
    body += attribute(NFULA_PAYLOAD, packet)
    return message(body)


V4 = socket.AF_INET
V6 = socket.AF_INET6


def test_ipv4_and_ipv6_records() -> None:
    log = ConnectionLog()
    datagram = logged(V4, ipv4("198.51.100.7", tcp(22))) + logged(
        V6, ipv6("2001:db8:0:0::77", tcp(21))
    )
    assert log.feed(datagram, 100.0) == 2
    assert log.seen([22], 0, 200) == {"198.51.100.7"}
    assert log.seen([21], 0, 200) == {"2001:db8::77"}
    assert log.seen([21, 22], 0, 200) == {"198.51.100.7", "2001:db8::77"}
    assert log.seen([80], 0, 200) == set()
    assert (log.received, log.malformed, len(log)) == (2, 0, 2)


def test_headers_the_parser_must_step_over() -> None:
    log = ConnectionLog()
    hop_by_hop = bytes([6, 0]) + bytes(6)  # next: TCP, 8 bytes long
    first_fragment = bytes([6, 0, 0, 0]) + bytes(4)  # offset 0: the TCP header follows
    datagram = (
        logged(V4, ipv4("198.51.100.8", tcp(22), ihl=8))  # IPv4 options
        + logged(V6, ipv6("2001:db8::8", tcp(22), next_header=0, extension=hop_by_hop))
        + logged(V6, ipv6("2001:db8::9", tcp(22), next_header=44, extension=first_fragment))
        + logged(V6, ipv6("::ffff:203.0.113.9", tcp(22)))  # mapped: the IPv4 address
    )
    assert log.feed(datagram, 5.0) == 4
    assert log.seen([22], 0, 10) == {"198.51.100.8", "2001:db8::8", "2001:db8::9", "203.0.113.9"}


@pytest.mark.parametrize(
    "bad",
    [
        logged(V4, ipv4("198.51.100.7", tcp(22))[:22]),  # cut inside the TCP ports
        logged(V4, ipv4("198.51.100.7", tcp(22), protocol=17)),  # UDP
        logged(V4, ipv4("198.51.100.7", tcp(22), frag=0x0010)),  # a later fragment
        logged(V6, ipv4("198.51.100.7", tcp(22))),  # family says IPv6, packet is IPv4
        logged(V4, ipv6("2001:db8::7", tcp(22))),
        logged(V6, ipv6("2001:db8::7", tcp(22))[:30]),
        logged(V6, ipv6("2001:db8::7", tcp(22), next_header=59)),  # no next header
        logged(
            V6,
            ipv6("2001:db8::7", tcp(22), next_header=44, extension=bytes([6, 0, 0, 8, 0, 0, 0, 0])),
        ),
        logged(V4, b""),
        message(struct.pack("!BBH", V4, 0, 7301)),  # no payload attribute
        message(struct.pack("!BBH", V4, 0, 7301) + struct.pack("=HH", 200, NFULA_PAYLOAD)),
        message(b"\x02"),  # shorter than nfgenmsg
        message(b"", kind=(4 << 8) | 1),  # not a packet message
    ],
)
def test_malformed_messages_are_counted_not_fatal(bad: bytes) -> None:
    log = ConnectionLog()
    good = logged(V4, ipv4("198.51.100.7", tcp(22)))
    assert log.feed(bad + good, 1.0) == 1
    assert log.malformed == 1
    assert log.seen([22], 0, 2) == {"198.51.100.7"}


def test_broken_framing_drops_the_datagram_only() -> None:
    log = ConnectionLog()
    assert log.feed(struct.pack("=IHHII", 9999, PACKET_TYPE, 0, 0, 0), 1.0) == 0
    assert log.feed(struct.pack("=IHHII", 3, PACKET_TYPE, 0, 0, 0), 1.0) == 0
    assert log.malformed == 2
    assert log.feed(logged(V4, ipv4("198.51.100.7", tcp(22))), 2.0) == 1


def test_window_keep_and_limit() -> None:
    log = ConnectionLog(keep=60, limit=3)
    for moment, address in ((100.0, "198.51.100.1"), (150.0, "198.51.100.2")):
        log.feed(logged(V4, ipv4(address, tcp(22))), moment)
    assert log.seen([22], 120, 160) == {"198.51.100.2"}
    assert log.seen([22], 100, 100) == {"198.51.100.1"}  # both ends are inside
    assert log.seen([22], 151, 300) == set()
    log.expire(170.0)  # 100 is older than 60 s now
    assert log.seen([22], 0, 1000) == {"198.51.100.2"}
    for i in range(3, 6):
        log.feed(logged(V4, ipv4(f"198.51.100.{i}", tcp(22))), 160.0 + i)
    assert len(log) == 3 and log.dropped == 1  # the oldest went first
    assert log.seen([22], 0, 1000) == {"198.51.100.3", "198.51.100.4", "198.51.100.5"}


def test_clock_stepping_back_keeps_lookups_right() -> None:
    log = ConnectionLog()
    log.feed(logged(V4, ipv4("198.51.100.1", tcp(22))), 200.0)
    log.feed(logged(V4, ipv4("198.51.100.2", tcp(22))), 190.0)  # stored at 200
    log.feed(logged(V4, ipv4("198.51.100.3", tcp(22))), 210.0)
    assert log.seen([22], 195, 205) == {"198.51.100.1", "198.51.100.2"}


def test_bad_arguments() -> None:
    with pytest.raises(BruteguardError, match="nflog group"):
        ConnectionLog(group=70000)
    with pytest.raises(BruteguardError, match="nflog group"):
        ConnectionLogRule(group=True)
    with pytest.raises(BruteguardError, match="positive"):
        ConnectionLog(keep=0)
    with pytest.raises(EnforcerError, match="not a port"):
        ConnectionLogRule().script([22, 0])
    with pytest.raises(EnforcerError, match="not a port"):
        ConnectionLogRule().script(["22; flush ruleset"])  # type: ignore[list-item]
    unopened = ConnectionLog()
    assert unopened.drain() == 0
    with pytest.raises(BruteguardError, match="open"):
        unopened.fileno()


def test_rule_script() -> None:
    script = ConnectionLogRule(group=42).script([2222, 21, 21])
    assert script.splitlines() == [
        f"add table inet {TABLE}",
        f"add chain inet {TABLE} input"
        " { type filter hook input priority filter - 2; policy accept; }",
        f"flush chain inet {TABLE} input",
        f"add rule inet {TABLE} input tcp dport {{ 21, 2222 }}"
        " tcp flags & (syn | ack) == syn log group 42",
    ]


# -- the real kernel, in a lab --------------------------------------------------------------

WATCHED = 2222
OTHER = 8080

# Inside the server namespace: install the rule, bind the log, say "ready"; on "go", read
# until the log has been quiet for a while (bounded), then print what it saw as JSON.
_READER = """
import json, select, sys, time
from bruteguard.errors import BruteguardError
from bruteguard.identity.firewall_log import ConnectionLog, ConnectionLogRule
watched, other = int(sys.argv[1]), int(sys.argv[2])
ConnectionLogRule().setup([watched])
log = ConnectionLog()
log.open()
try:
    ConnectionLog().open()
    second = None
except BruteguardError as error:
    second = str(error)
print("ready", flush=True)
sys.stdin.readline()
quiet_since = time.monotonic()
deadline = quiet_since + 10
while time.monotonic() < deadline and time.monotonic() - quiet_since < 1.0:
    select.select([log.fileno()], [], [], 0.2)
    if log.drain():
        quiet_since = time.monotonic()
print(json.dumps({
    "watched": sorted(log.seen([watched], 0, time.time())),
    "other": sorted(log.seen([other], 0, time.time())),
    "malformed": log.malformed,
    "overruns": log.overruns,
    "second": second,
}), flush=True)
log.close()
"""

_UNPRIVILEGED = """
import os
from bruteguard.errors import BruteguardError
from bruteguard.identity.firewall_log import ConnectionLog
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
try:
    ConnectionLog().open()
except BruteguardError as error:
    print(error)
"""


def nft(host: Host, *args: str) -> str:
    return host.run(["nft", *args], timeout=30).stdout


def tables(host: Host) -> set[str]:
    return {line.strip() for line in nft(host, "list", "tables").splitlines() if line.strip()}


@pytest.fixture
def lab() -> Iterator[Lab]:
    require_root_netns()
    with Lab(prefix="bgflog") as lab:
        server = lab.server
        nft(server, "add", "table", "inet", "admin")
        nft(server, "add", "chain", "inet", "admin", "input",
            "{ type filter hook input priority 0; policy accept; }")  # fmt: skip
        nft(server, "add", "rule", "inet", "admin", "input", "tcp", "dport", "22", "counter")
        server.listen_tcp(WATCHED)
        server.listen_tcp(OTHER)
        yield lab


@pytest.mark.netns
def test_new_connections_are_seen_on_watched_ports_only(lab: Lab) -> None:
    server, attacker, innocent = lab.server, lab.clients["attacker"], lab.clients["innocent"]
    reader = server.popen(
        [sys.executable, "-c", _READER, str(WATCHED), str(OTHER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdin is not None and reader.stdout is not None
    readable, _, _ = select.select([reader.stdout], [], [], 20)
    if not readable or reader.stdout.readline().strip() != "ready":
        reader.kill()
        pytest.fail(f"the nflog reader did not start: {reader.communicate(timeout=10)[1]}")
    assert f"table inet {TABLE}" in tables(server)

    for host, port in ((attacker, WATCHED), (innocent, OTHER)):
        assert host.tcp_connect(server.ipv4, port)
        assert host.tcp_connect(server.ipv6, port)

    stdout, stderr = reader.communicate("go\n", timeout=30)
    assert reader.returncode == 0, stderr
    report = json.loads(stdout)
    assert report["watched"] == sorted([attacker.ipv4, attacker.ipv6])
    assert report["other"] == []  # not watched: the kernel never logged it
    assert (report["malformed"], report["overruns"]) == (0, 0)
    assert "refused" in report["second"]  # one reader per group, and it says so

    rule = ConnectionLogRule(argv_prefix=server.exec_prefix)
    rule.teardown()
    assert tables(server) == {"table inet admin"}
    assert "tcp dport 22 counter" in nft(server, "list", "table", "inet", "admin")
    rule.teardown()  # already gone: fine
    assert tables(server) == {"table inet admin"}


@pytest.mark.netns
def test_setup_is_idempotent_and_replaces_ports(lab: Lab) -> None:
    server = lab.server
    rule = ConnectionLogRule(group=99, argv_prefix=server.exec_prefix)
    rule.setup([22])
    rule.setup([2222, 21])
    chain = json.loads(nft(server, "-j", "list", "chain", "inet", TABLE, "input"))["nftables"]
    (base,) = [item["chain"] for item in chain if "chain" in item]
    assert (base["hook"], base["prio"], base["policy"]) == ("input", -2, "accept")
    rules = [item["rule"] for item in chain if "rule" in item]
    assert len(rules) == 1
    listed = nft(server, "list", "chain", "inet", TABLE, "input")
    assert "tcp dport { 21, 2222 }" in listed
    assert "log group 99" in listed
    rule.setup([])
    assert "log group" not in nft(server, "list", "chain", "inet", TABLE, "input")
    rule.teardown()
    assert tables(server) == {"table inet admin"}


@pytest.mark.netns
def test_open_without_privileges_says_why(lab: Lab) -> None:
    result = lab.server.run([sys.executable, "-c", _UNPRIVILEGED], timeout=30)
    assert "needs root (or CAP_NET_ADMIN)" in result.stdout, result.stderr


# Binds with a tiny buffer and reads nothing until "go": a burst then overruns it. Prints
# what the first drain found, then (on "again") what a drain after one more connection found.
_OVERRUN_READER = """
import json, select, sys, time
from bruteguard.identity.firewall_log import ConnectionLog, ConnectionLogRule
watched = int(sys.argv[1])
ConnectionLogRule().setup([watched])
log = ConnectionLog(receive_buffer=4096)
log.open()
print("ready", flush=True)

def drain_until_quiet():
    quiet_since = time.monotonic()
    deadline = quiet_since + 10
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 1.0:
        select.select([log.fileno()], [], [], 0.2)
        if log.drain():
            quiet_since = time.monotonic()

sys.stdin.readline()
drain_until_quiet()
print(json.dumps({"received": log.received, "overruns": log.overruns}), flush=True)
sys.stdin.readline()
since = time.time()
drain_until_quiet()
print(json.dumps(sorted(log.seen([watched], since, time.time()))), flush=True)
"""

# COUNT bounded connections to ADDRESS PORT from one process; exits 1 if any failed.
_BURST = """
import socket, sys
address, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
failed = 0
for _ in range(count):
    try:
        socket.create_connection((address, port), timeout=2).close()
    except OSError:
        failed += 1
sys.exit(1 if failed else 0)
"""

BURST = 300


@pytest.mark.netns
def test_overrun_is_counted_and_reading_goes_on(lab: Lab) -> None:
    server, attacker, innocent = lab.server, lab.clients["attacker"], lab.clients["innocent"]
    reader = server.popen(
        [sys.executable, "-c", _OVERRUN_READER, str(WATCHED)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdin is not None and reader.stdout is not None

    def line() -> str:
        assert reader.stdout is not None
        readable, _, _ = select.select([reader.stdout], [], [], 30)
        if not readable:
            reader.kill()
            pytest.fail(f"the nflog reader stopped: {reader.communicate(timeout=10)[1]}")
        return reader.stdout.readline().strip()

    assert line() == "ready"
    burst = [sys.executable, "-c", _BURST, server.ipv4, str(WATCHED), str(BURST)]
    attacker.run(burst, timeout=120)
    reader.stdin.write("go\n")
    reader.stdin.flush()
    first = json.loads(line())
    assert first["overruns"] >= 1
    assert 0 < first["received"] < BURST  # some records were lost, and it said so

    assert innocent.tcp_connect(server.ipv6, WATCHED)
    reader.stdin.write("again\n")
    reader.stdin.flush()
    assert json.loads(line()) == [innocent.ipv6]
    reader.stdin.close()
    reader.wait(timeout=10)
