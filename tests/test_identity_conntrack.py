"""Conntrack over netlink: the parser, the kernel-side port filter, and the real kernel.

Messages for the parser and the filter are built by pyroute2's own netlink encoder (an
independent implementation of the format), then by the real kernel in a lab: connections
to a watched port, to another port, a forged SYN from scapy, a flood that overruns the
socket. The filter is a classic BPF program; besides the kernel's netlink socket it runs on
any socket, so a datagram socket pair shows exactly which messages it passes.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator

import pytest
from pyroute2.netlink.nfnetlink.nfctsocket import nfct_msg

from bruteguard.errors import BruteguardError
from bruteguard.identity.conntrack import (
    ConnEvent,
    EventKind,
    attach_filter,
    parse_messages,
    port_filter,
)
from bruteguard.identity.tracking_rule import TABLE, TrackingRule
from netns import Host, Lab, require_root_netns

NEW, DELETE = 0, 2
NLM_F_CREATE = 0x400


def _message(
    action: int = NEW,
    *,
    flags: int = 0,
    family: int = socket.AF_INET,
    src: str = "192.0.2.10",
    dst: str = "192.0.2.1",
    sport: int = 40000,
    dport: int = 21,
    proto: int = 6,
    status: int | None = 14,
    state: int | None = 3,
    before: list | None = None,
) -> bytes:
    """One ctnetlink message as the kernel lays it out (pyroute2 encodes it)."""
    v = "V4" if family == socket.AF_INET else "V6"
    tuple_attrs = [
        ["CTA_TUPLE_IP", {"attrs": [[f"CTA_IP_{v}_SRC", src], [f"CTA_IP_{v}_DST", dst]]}],
        [
            "CTA_TUPLE_PROTO",
            {
                "attrs": [
                    ["CTA_PROTO_NUM", proto],
                    ["CTA_PROTO_SRC_PORT", sport],
                    ["CTA_PROTO_DST_PORT", dport],
                ]
            },
        ],
    ]
    attrs = [*(before or []), ["CTA_TUPLE_ORIG", {"attrs": tuple_attrs}]]
    if status is not None:
        attrs.append(["CTA_STATUS", status])
    if state is not None:
        tcp = {"attrs": [["CTA_PROTOINFO_TCP_STATE", state]]}
        attrs.append(["CTA_PROTOINFO", {"attrs": [["CTA_PROTOINFO_TCP", tcp]]}])
    message = nfct_msg()
    message["header"]["type"] = (1 << 8) | action
    message["header"]["flags"] = flags
    message["nfgen_family"] = family
    message["attrs"] = attrs
    message.encode()
    return bytes(message.data)


# -- the parser -------------------------------------------------------------------------------


def test_new_update_and_destroy_events() -> None:
    datagram = (
        _message(flags=NLM_F_CREATE, status=8, state=1)
        + _message(status=14, state=3)
        + _message(DELETE, family=socket.AF_INET6, src="2001:db8::10", dst="2001:db8::1",
                   status=14, state=None)
    )  # fmt: skip
    server4 = socket.inet_pton(socket.AF_INET, "192.0.2.1")
    server6 = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    assert list(parse_messages(datagram)) == [
        ConnEvent(EventKind.NEW, "192.0.2.10", 40000, server4, 21, 8, 1),
        ConnEvent(EventKind.UPDATE, "192.0.2.10", 40000, server4, 21, 14, 3),
        ConnEvent(EventKind.DESTROY, "2001:db8::10", 40000, server6, 21, 14, None),
    ]


def test_other_protocols_are_skipped_and_damaged_messages_yield_none() -> None:
    udp = _message(proto=17)
    no_tuple = _message()[:20]  # header and nfgenmsg only
    no_tuple = struct.pack("=I", len(no_tuple)) + no_tuple[4:]
    assert list(parse_messages(udp + no_tuple + _message(sport=1))) == [
        None,
        ConnEvent(EventKind.UPDATE, "192.0.2.10", 1, socket.inet_aton("192.0.2.1"), 21, 14, 3),
    ]


def test_broken_framing_raises() -> None:
    good = _message()
    broken = struct.pack("=I", len(good) + 100) + good[4:]
    with pytest.raises(ValueError, match="length"):
        list(parse_messages(broken))


def test_a_mapped_address_and_no_status() -> None:
    [event] = parse_messages(
        _message(family=socket.AF_INET6, src="2001:DB8:0:0::7", dst="2001:db8::1", status=None)
    )
    assert event is not None and (event.src, event.status) == ("2001:db8::7", 0)


# -- the kernel-side filter -------------------------------------------------------------------


@pytest.fixture
def filtered() -> Iterator[tuple[socket.socket, socket.socket]]:
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with sender, receiver:
        attach_filter(receiver, port_filter([21, 2121]))
        receiver.setblocking(False)
        yield sender, receiver


def _passes(pair: tuple[socket.socket, socket.socket], message: bytes) -> bool:
    sender, receiver = pair
    sender.send(message)
    try:
        return receiver.recv(65536) == message
    except BlockingIOError:
        return False


@pytest.mark.parametrize(
    ("message", "passes"),
    [
        pytest.param(_message(dport=21), True, id="ipv4-watched"),
        pytest.param(_message(dport=2121), True, id="ipv4-second-port"),
        pytest.param(_message(dport=22), False, id="ipv4-other-port"),
        pytest.param(_message(dport=21, proto=17), False, id="udp"),
        pytest.param(_message(family=socket.AF_INET6, src="2001:db8::7", dst="2001:db8::1"),
                     True, id="ipv6-watched"),
        pytest.param(_message(family=socket.AF_INET6, src="2001:db8::7", dst="2001:db8::1",
                              dport=80), False, id="ipv6-other-port"),
        pytest.param(_message(DELETE, dport=21, status=None, state=None), True, id="destroy"),
        # A layout the filter does not know is passed up, never dropped unread.
        pytest.param(_message(dport=22, before=[["CTA_MARK", 7]]), True, id="unknown-layout"),
        pytest.param(_message(dport=22)[:40], True, id="short"),
        pytest.param(_message(dport=22)[:16] + b"\x07" + _message(dport=22)[17:], True,
                     id="unknown-family"),
    ],
)  # fmt: skip
def test_the_filter_passes_watched_tcp_ports_and_what_it_cannot_read(
    filtered: tuple[socket.socket, socket.socket], message: bytes, passes: bool
) -> None:
    assert _passes(filtered, message) is passes


def test_bad_port_lists_are_refused() -> None:
    for ports in ([], [0], [70000]):
        with pytest.raises(BruteguardError, match="bad ports"):
            port_filter(ports)


def test_rule_script() -> None:
    assert TrackingRule().script([2222, 21, 21]).splitlines() == [
        f"add table inet {TABLE}",
        f"add chain inet {TABLE} input"
        " { type filter hook input priority filter - 2; policy accept; }",
        f"flush chain inet {TABLE} input",
        f"add rule inet {TABLE} input tcp dport {{ 21, 2222 }} ct state new counter",
    ]


# -- the real kernel, in a lab ----------------------------------------------------------------

WATCHED = 2222
OTHER = 8080

# In the server namespace: install the rule, subscribe, say "ready"; on "go", read until
# quiet (bounded), then print the events (and what a dump of the table finds) as JSON.
_READER = """
import json, select, sys, time
from bruteguard.identity.conntrack import ConntrackEvents, dump
from bruteguard.identity.tracking_rule import TrackingRule
watched, other, buffer = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
TrackingRule().setup([watched, other])
events = ConntrackEvents([watched], receive_buffer=buffer)
events.open()
print("ready", flush=True)
seen, overruns = [], 0
for command in sys.stdin:
    quiet_since = time.monotonic()
    deadline = quiet_since + 10
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 1.0:
        select.select([events.fileno()], [], [], 0.2)
        got, overrun = events.read_events()
        overruns += overrun
        if got:
            quiet_since = time.monotonic()
            seen += [[e.kind, e.src, e.dport, e.status, e.tcp_state] for e in got]
    table = [[e.src, e.dport, e.status, e.tcp_state] for e in dump([watched, other])]
    print(json.dumps({"events": seen, "table": table, "overruns": overruns,
                      "delivered": events.received + events.malformed}), flush=True)
    seen = []
"""

# A TCP SYN from a forged source, the way an attacker frames a host it does not own.
_FORGE = """
import sys
from scapy.all import IP, IPv6, TCP, send
source, target, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
layer = IPv6 if ":" in target else IP
send(layer(src=source, dst=target) / TCP(sport=40404, dport=port, flags="S"), verbose=0)
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

_UNPRIVILEGED = """
import os
from bruteguard.errors import BruteguardError
from bruteguard.identity.conntrack import ConntrackEvents
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
try:
    ConntrackEvents([22]).open()
except BruteguardError as error:
    print(error)
"""


def nft(host: Host, *args: str) -> str:
    return host.run(["nft", *args], timeout=30).stdout


@pytest.fixture
def lab() -> Iterator[Lab]:
    require_root_netns()
    with Lab(prefix="bgct") as lab:
        lab.server.listen_tcp(WATCHED)
        lab.server.listen_tcp(OTHER)
        yield lab


class _Reader:
    """The _READER child in the server namespace."""

    def __init__(self, lab: Lab, buffer: int = 8 << 20) -> None:
        argv = [sys.executable, "-c", _READER, str(WATCHED), str(OTHER), str(buffer)]
        self.process = lab.server.popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], 30)
        if not readable:
            self.process.kill()
            pytest.fail(f"the conntrack reader stopped: {self.process.communicate(timeout=10)[1]}")
        return self.process.stdout.readline().strip()

    def report(self) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        return json.loads(self._line())

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.mark.netns
def test_real_connections_on_the_watched_port_only(lab: Lab) -> None:
    server, attacker, innocent = lab.server, lab.clients["attacker"], lab.clients["innocent"]
    reader = _Reader(lab)
    for address in (server.ipv4, server.ipv6):
        assert attacker.tcp_connect(address, WATCHED)
        assert innocent.tcp_connect(address, OTHER)
    # A forged SYN "from" the innocent: the server's SYN-ACK goes to a host that never
    # asked, so the handshake never completes.
    forged = [sys.executable, "-c", _FORGE, innocent.ipv4, server.ipv4, str(WATCHED)]
    attacker.run(forged, timeout=60)
    report = reader.report()
    reader.close()

    events = report["events"]
    assert {e[2] for e in events} == {WATCHED}
    assert report["delivered"] == len(events), "the kernel passed up only the watched port"
    assured = {e[1] for e in events if e[3] & 4}
    assert assured == {attacker.ipv4, attacker.ipv6}
    assert {e[1] for e in events if e[0] == EventKind.NEW} == {
        attacker.ipv4, attacker.ipv6, innocent.ipv4,
    }, "the forged SYN is seen, and never completes"  # fmt: skip
    closing = {e[1] for e in events if e[4] in (4, 5, 6, 7, 8)}
    # The innocent host is up: it answers the SYN-ACK it never asked for with a reset.
    assert closing == {attacker.ipv4, attacker.ipv6, innocent.ipv4}
    table = {(address, port) for address, port, _, _ in report["table"]}
    assert (attacker.ipv4, WATCHED) in table and (innocent.ipv6, OTHER) in table
    assert (innocent.ipv4, WATCHED) in table, "the forged entry, closed unassured"


@pytest.mark.netns
def test_rule_is_idempotent_and_its_own_table(lab: Lab) -> None:
    server = lab.server
    nft(server, "add", "table", "inet", "admin")
    rule = TrackingRule(argv_prefix=server.exec_prefix)
    rule.setup([22])
    rule.setup([2222, 21])
    listed = nft(server, "list", "chain", "inet", TABLE, "input")
    assert "tcp dport { 21, 2222 } ct state new counter" in listed
    assert listed.count("ct state new") == 1
    rule.teardown()
    rule.teardown()  # already gone: fine
    assert nft(server, "list", "tables").split() == ["table", "inet", "admin"]


@pytest.mark.netns
def test_open_without_privileges_says_why(lab: Lab) -> None:
    result = lab.server.run([sys.executable, "-c", _UNPRIVILEGED], timeout=30)
    assert "needs root (or CAP_NET_ADMIN)" in result.stdout, result.stderr


BURST = 300


@pytest.mark.netns
def test_an_overrun_is_reported_and_reading_goes_on(lab: Lab) -> None:
    server, attacker, innocent = lab.server, lab.clients["attacker"], lab.clients["innocent"]
    reader = _Reader(lab, buffer=4096)
    attacker.run([sys.executable, "-c", _BURST, server.ipv4, str(WATCHED), str(BURST)], timeout=120)
    first = reader.report()
    assert first["overruns"] >= 1, "events were lost, and it said so"
    assert innocent.tcp_connect(server.ipv6, WATCHED)
    second = reader.report()
    reader.close()
    assert {e[1] for e in second["events"]} == {innocent.ipv6}
