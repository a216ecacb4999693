"""The kernel's connection tracking, read over netlink: which TCP connections to a set of
ports completed their handshake, and when they opened and closed.

A service that logs a hostname instead of an address wrote it for a real connection. The
kernel's conntrack sees every one: its first SYN (a *new* entry), the handshake completed
(status ``ASSURED``: conntrack checked the client's ACK against the sequence numbers it
saw, so a forged source address cannot get there) and its end (a closing TCP state, then
*destroy*). ``ConntrackEvents`` subscribes to those events; ``dump`` reads the table as it
is (at start, and to resynchronise after the kernel dropped events we were too slow for).

Two costs are kept off the daemon:

* **a classic BPF filter** on the event socket passes only events of TCP connections to the
  watched ports, so a busy web server's other connections never wake bruteguard. It fails
  open: a message whose layout it does not recognise is passed up and parsed here.
* **a lean parser** for the few attributes needed (original tuple, status, TCP state):
  about 9 µs a message where a general netlink decoder (pyroute2's ``nfct_msg``) takes
  about 70 µs (``bench/conntrack_events.py``), which a SYN flood on a watched port would
  turn into a full core.

Conntrack must be active in the network namespace for events to exist: any nftables rule
with a ``ct`` expression makes the kernel track the namespace's connections
(``tracking_rule.TrackingRule`` installs one for the jails' ports).
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import time
from collections.abc import Collection, Iterator
from typing import NamedTuple

from bruteguard.errors import BruteguardError
from bruteguard.identity.address import canonical_address

__all__ = [
    "ASSURED",
    "CLOSING_STATES",
    "ConnEvent",
    "ConntrackEvents",
    "EventKind",
    "dump",
    "parse_messages",
    "port_filter",
]

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_GET = 1
IPCTNL_MSG_CT_DELETE = 2
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x01
NLM_F_DUMP = 0x300
NLM_F_CREATE = 0x400
NLA_TYPE_MASK = 0x3FFF
# Multicast groups (NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY = 1, 2, 3) as bind() bits.
_GROUPS = (1 << 0) | (1 << 1) | (1 << 2)

# linux/netfilter/nfnetlink_conntrack.h
CTA_TUPLE_ORIG = 1
CTA_STATUS = 3
CTA_PROTOINFO = 4
CTA_TUPLE_IP = 1
CTA_TUPLE_PROTO = 2
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTOINFO_TCP = 1
CTA_PROTOINFO_TCP_STATE = 1

ASSURED = 1 << 2  # IPS_ASSURED: the TCP handshake completed with a valid ACK
# enum tcp_conntrack: FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE. From the first of
# them the client can send no new command, though the service may still write about it.
CLOSING_STATES = frozenset({4, 5, 6, 7, 8})
_TCP = 6

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid (host byte order)
_NLATTR = struct.Struct("=HH")  # len, type (host byte order)
_EVENT_TYPE = NFNL_SUBSYS_CTNETLINK << 8

RECV_BUFFER = 8 << 20  # the kernel doubles it: tens of thousands of events unread
_READ_SIZE = 1 << 16
_MAX_READS = 512  # datagrams per read_events(): a flood cannot hold the event loop
_DUMP_TIMEOUT = 30.0
SO_ATTACH_FILTER = 26


class EventKind:
    NEW = 0  # the first packet of a connection (a SYN: it may be forged)
    UPDATE = 1  # a change: the reply seen, ASSURED, a TCP state
    DESTROY = 2  # the entry is gone (timed out after close, or reset)


class ConnEvent(NamedTuple):
    """One conntrack message about a TCP connection: who to whom, status and TCP state."""

    kind: int
    src: str  # canonical client address
    sport: int
    dst: bytes  # packed server address (with src and ports: the connection's key)
    dport: int
    status: int  # IPS_* bits; 0 when the message had none
    tcp_state: int | None  # enum tcp_conntrack; None when the message did not say


# -- parsing ------------------------------------------------------------------------------


def _attributes(data: bytes, start: int, end: int) -> dict[int, tuple[int, int]]:
    """type → (payload start, payload end) of the attributes in ``data[start:end]``;
    ValueError when the lengths do not add up (nothing after that point is trustworthy)."""
    found: dict[int, tuple[int, int]] = {}
    offset = start
    while offset + 4 <= end:
        length, kind = _NLATTR.unpack_from(data, offset)
        if length < 4 or offset + length > end:
            raise ValueError("bad attribute length")
        found.setdefault(kind & NLA_TYPE_MASK, (offset + 4, offset + length))
        offset += (length + 3) & ~3
    return found


def _event(kind: int, family: int, data: bytes, start: int, end: int) -> ConnEvent | None:
    """The event in one message body (after nfgenmsg), or None if it is not TCP."""
    top = _attributes(data, start, end)
    tuple_span = top.get(CTA_TUPLE_ORIG)
    if tuple_span is None:
        raise ValueError("no original tuple")
    tup = _attributes(data, *tuple_span)
    ip = _attributes(data, *tup[CTA_TUPLE_IP])
    proto = _attributes(data, *tup[CTA_TUPLE_PROTO])
    number = proto.get(CTA_PROTO_NUM)
    if number is None or data[number[0]] != _TCP:
        return None
    if family == socket.AF_INET:
        src_span, dst_span, size = ip[CTA_IP_V4_SRC], ip[CTA_IP_V4_DST], 4
    elif family == socket.AF_INET6:
        src_span, dst_span, size = ip[CTA_IP_V6_SRC], ip[CTA_IP_V6_DST], 16
    else:
        return None
    src_raw = data[src_span[0] : src_span[0] + size]
    dst_raw = data[dst_span[0] : dst_span[0] + size]
    if len(src_raw) != size or len(dst_raw) != size:
        raise ValueError("short address")
    src = socket.inet_ntop(family, src_raw)
    if family == socket.AF_INET6:
        src = canonical_address(src) or src
    sport = struct.unpack_from("!H", data, proto[CTA_PROTO_SRC_PORT][0])[0]
    dport = struct.unpack_from("!H", data, proto[CTA_PROTO_DST_PORT][0])[0]
    status_span = top.get(CTA_STATUS)
    status = struct.unpack_from("!I", data, status_span[0])[0] if status_span else 0
    tcp_state = None
    info = top.get(CTA_PROTOINFO)
    if info is not None:
        tcp = _attributes(data, *info).get(CTA_PROTOINFO_TCP)
        if tcp is not None:
            state = _attributes(data, *tcp).get(CTA_PROTOINFO_TCP_STATE)
            if state is not None:
                tcp_state = data[state[0]]
    return ConnEvent(kind, src, sport, dst_raw, dport, status, tcp_state)


def parse_messages(datagram: bytes) -> Iterator[ConnEvent | None]:
    """The TCP conntrack events in one netlink datagram, in order.

    Yields None for a damaged message (the caller counts those); other protocols, NLMSG_DONE
    and errors (the end of a dump) yield nothing. Raises ValueError only when the framing
    itself is broken, since nothing after that can be found.
    """
    offset = 0
    size = len(datagram)
    while offset + _NLMSGHDR.size <= size:
        length, msg_type, flags, _seq, _pid = _NLMSGHDR.unpack_from(datagram, offset)
        if length < _NLMSGHDR.size or offset + length > size:
            raise ValueError("bad netlink message length")
        body, end = offset + _NLMSGHDR.size, offset + length
        offset += (length + 3) & ~3
        if msg_type in (NLMSG_DONE, NLMSG_ERROR) or msg_type >> 8 != NFNL_SUBSYS_CTNETLINK:
            continue
        action = msg_type & 0xFF
        if action == IPCTNL_MSG_CT_DELETE:
            kind = EventKind.DESTROY
        elif action == IPCTNL_MSG_CT_NEW:
            kind = EventKind.NEW if flags & NLM_F_CREATE else EventKind.UPDATE
        else:
            continue
        if end - body < 4:
            yield None
            continue
        try:
            event = _event(kind, datagram[body], datagram, body + 4, end)
        except (ValueError, KeyError, IndexError, struct.error, OSError):
            yield None
            continue
        if event is not None:
            yield event


# -- the kernel-side filter ---------------------------------------------------------------

# Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
_LD_W_ABS, _LD_H_ABS, _LD_B_ABS, _LD_W_LEN = 0x20, 0x28, 0x30, 0x80
_ALU_AND_K, _JEQ_K, _JGE_K, _RET_K = 0x54, 0x15, 0x35, 0x06
_ACCEPT, _DROP = 0xFFFFFFFF, 0


def _as_loaded(fmt: str, *values: int) -> int:
    """What a BPF absolute load reads (big-endian) where the kernel wrote ``values`` in
    host byte order: netlink headers are host order, BPF loads are network order."""
    return int.from_bytes(struct.pack(fmt, *values), "big")


def _layout(family: int) -> tuple[int, int]:
    """Offsets of CTA_PROTO_NUM's header and CTA_PROTO_DST_PORT's header in an event of
    ``family``: nlmsghdr (16), nfgenmsg (4), CTA_TUPLE_ORIG (4), CTA_TUPLE_IP (4), source
    and destination addresses (8 each for IPv4, 20 for IPv6), CTA_TUPLE_PROTO (4), then
    the protocol number (8 with padding) and the source port (8)."""
    addresses = 16 if family == socket.AF_INET else 40
    proto_num = 16 + 4 + 4 + 4 + addresses + 4
    return proto_num, proto_num + 16


def port_filter(ports: Collection[int]) -> list[tuple[int, int, int, int]]:
    """A classic BPF program passing only events of TCP connections to ``ports``.

    It checks the attribute headers it relies on (the original tuple first, the protocol
    number and the destination port where ``ctnetlink_conntrack_event`` puts them) and
    passes every message whose layout differs, so a kernel that orders them otherwise
    costs speed, never evidence.
    """
    wanted = sorted({int(port) for port in ports})
    if not wanted or any(not 0 < port < 65536 for port in wanted):
        raise BruteguardError(f"conntrack filter: bad ports {wanted!r}")
    nested = _as_loaded("=H", 0x8000)  # NLA_F_NESTED as a BPF halfword load sees it
    program: list[tuple[int, str | None, str | None, int]] = []
    labels: dict[str, int] = {}

    def emit(code: int, k: int = 0, jt: str | None = None, jf: str | None = None) -> None:
        program.append((code, jt, jf, k))

    def label(name: str) -> None:
        labels[name] = len(program)

    emit(_LD_B_ABS, 16)  # nfgenmsg.family
    emit(_JEQ_K, socket.AF_INET, "v4", None)
    emit(_JEQ_K, socket.AF_INET6, "v6", "accept")
    for family, name in ((socket.AF_INET, "v4"), (socket.AF_INET6, "v6")):
        proto_num, dst_port = _layout(family)
        label(name)
        emit(_LD_W_LEN)
        emit(_JGE_K, dst_port + 6, None, "accept")
        emit(_LD_H_ABS, 22)  # CTA_TUPLE_ORIG's type, without NLA_F_NESTED
        emit(_ALU_AND_K, 0xFFFF & ~nested)
        emit(_JEQ_K, _as_loaded("=H", CTA_TUPLE_ORIG), None, "accept")
        emit(_LD_W_ABS, proto_num)  # CTA_PROTO_NUM's length and type
        emit(_JEQ_K, _as_loaded("=HH", 5, CTA_PROTO_NUM), None, "accept")
        emit(_LD_B_ABS, proto_num + 4)  # UDP, ICMP…: no ports to look at, not ours
        emit(_JEQ_K, _TCP, None, "drop")
        emit(_LD_W_ABS, dst_port)  # CTA_PROTO_DST_PORT's length and type
        emit(_JEQ_K, _as_loaded("=HH", 6, CTA_PROTO_DST_PORT), None, "accept")
        emit(_LD_H_ABS, dst_port + 4)  # the port, in network order
        for port in wanted:
            emit(_JEQ_K, port, "accept", None)
        emit(_RET_K, _DROP)
    label("accept")
    emit(_RET_K, _ACCEPT)
    label("drop")
    emit(_RET_K, _DROP)
    assembled = []
    for index, (code, jt, jf, k) in enumerate(program):
        offsets = [labels[target] - index - 1 if target else 0 for target in (jt, jf)]
        if any(not 0 <= offset < 256 for offset in offsets):
            raise BruteguardError("conntrack filter: too many ports for one program")
        assembled.append((code, offsets[0], offsets[1], k))
    return assembled


def attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    """Attach a classic BPF ``program`` to ``sock`` (SO_ATTACH_FILTER)."""
    code = b"".join(struct.pack("=HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


# -- the event socket ---------------------------------------------------------------------


class ConntrackEvents:
    """Conntrack events for TCP connections to ``ports``, read without blocking.

    Made for an event loop: ``open()``, then ``loop.add_reader(events.fileno(), …)`` and
    ``read_events()`` there. ``overruns`` counts the times the kernel dropped events
    because we read too slowly (the caller must then treat the time since its last read as
    a gap); ``malformed`` counts messages skipped.
    """

    def __init__(self, ports: Collection[int], *, receive_buffer: int = RECV_BUFFER) -> None:
        self.ports = frozenset(ports)
        self.receive_buffer = receive_buffer
        self.malformed = 0
        self.overruns = 0
        self.received = 0
        self._sock: socket.socket | None = None

    def open(self) -> None:
        """Subscribe; raise BruteguardError saying why when the kernel refuses."""
        if self._sock is not None:
            return
        sock = _netlink_socket()
        try:
            _set_receive_buffer(sock, self.receive_buffer)
            attach_filter(sock, port_filter(self.ports))
            sock.bind((0, _GROUPS))
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            reason = _reason(error)
            raise BruteguardError(f"conntrack: cannot subscribe to events: {reason}") from None
        self._sock = sock

    def fileno(self) -> int:
        if self._sock is None:
            raise BruteguardError("conntrack: open() it first")
        return self._sock.fileno()

    def read_events(self) -> tuple[list[ConnEvent], bool]:
        """The events waiting now, and whether the kernel dropped some since the last read
        (then what happened in between is unknown). Never blocks; at most ``_MAX_READS``
        datagrams a call (the loop calls again while the socket stays readable)."""
        if self._sock is None:
            return [], False
        events: list[ConnEvent] = []
        overrun = False
        for _ in range(_MAX_READS):
            try:
                data = self._sock.recv(_READ_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:
                if error.errno == errno.ENOBUFS:
                    self.overruns += 1
                    overrun = True
                    continue
                raise
            if not data:
                break
            try:
                for event in parse_messages(data):
                    if event is None:
                        self.malformed += 1
                    elif event.dport in self.ports:
                        events.append(event)
            except ValueError:
                self.malformed += 1
        self.received += len(events)
        return events, overrun

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ConntrackEvents:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def dump(ports: Collection[int], timeout: float = _DUMP_TIMEOUT) -> list[ConnEvent]:
    """The TCP connections to ``ports`` in the conntrack table now (blocking: run it in a
    thread). Each is returned as an UPDATE event carrying its status and TCP state."""
    wanted = frozenset(ports)
    sock = _netlink_socket()
    found: list[ConnEvent] = []
    with sock:
        try:
            sock.bind((0, 0))
            _set_receive_buffer(sock, RECV_BUFFER)
            sock.settimeout(timeout)
            body = struct.pack("!BBH", socket.AF_UNSPEC, 0, 0)
            header = _NLMSGHDR.pack(
                _NLMSGHDR.size + len(body),
                (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
                NLM_F_REQUEST | NLM_F_DUMP,
                1,
                0,
            )
            sock.send(header + body)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data = sock.recv(_READ_SIZE)
                if _dump_finished(data):
                    found += _dumped(data, wanted)
                    return found
                found += _dumped(data, wanted)
        except (OSError, ValueError) as error:
            reason = _reason(error)
            raise BruteguardError(f"conntrack: reading the table failed: {reason}") from None
    raise BruteguardError("conntrack: reading the table took too long")


def _dumped(data: bytes, wanted: frozenset[int]) -> list[ConnEvent]:
    return [
        event._replace(kind=EventKind.UPDATE)
        for event in parse_messages(data)
        if event is not None and event.dport in wanted
    ]


def _dump_finished(data: bytes) -> bool:
    """Whether a dump reply datagram ends the dump (NLMSG_DONE), or reports an error."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, msg_type, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if msg_type == NLMSG_DONE:
            return True
        if msg_type == NLMSG_ERROR:
            code = -struct.unpack_from("=i", data, offset + _NLMSGHDR.size)[0]
            if code:
                raise OSError(code, os.strerror(code))
            return True
        if length < _NLMSGHDR.size:
            raise ValueError("bad netlink message length")
        offset += (length + 3) & ~3
    return False


def _netlink_socket() -> socket.socket:
    try:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    except (OSError, AttributeError) as error:
        reason = _reason(error)
        raise BruteguardError(f"conntrack: cannot open a netlink socket: {reason}") from None


def _set_receive_buffer(sock: socket.socket, size: int) -> None:
    """A large buffer so a burst of connections does not overrun it; FORCE passes rmem_max
    as root."""
    force = getattr(socket, "SO_RCVBUFFORCE", 33)
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno in (errno.EPERM, errno.EACCES):
        return "not permitted: reading conntrack events needs root (or CAP_NET_ADMIN)"
    if isinstance(error, OSError) and error.errno in (errno.EPROTONOSUPPORT, errno.ENOENT):
        return "the kernel has no conntrack netlink interface (nf_conntrack_netlink)"
    if isinstance(error, OSError) and error.errno is not None:
        return os.strerror(error.errno)
    return str(error) or type(error).__name__
