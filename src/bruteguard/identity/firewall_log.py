"""New connections to a service's ports, as the kernel saw them (nftables ``log group``).

When a service logs a hostname instead of an address, the clients that opened a connection
to its port shortly before the failure are the candidates for who it was, even if their
socket is already gone. Two parts give that record:

* ``ConnectionLogRule`` owns its own table, ``inet bruteguard_connlog``, and never touches
  any other (bans live in ``inet bruteguard``). One base chain ``input`` (hook input,
  priority ``filter - 2``, policy accept, so it only watches) holds one rule::

      tcp dport { 21, 22 } tcp flags & (syn | ack) == syn log group 7301

  The table is ``inet``, so IPv4 and IPv6 are both logged. ``setup`` rebuilds the chain in
  one ``nft -f -`` transaction; ``teardown`` deletes the table in another.
* ``ConnectionLog`` reads those records over nfnetlink_log (``NETLINK_NETFILTER``, nflog
  group 7301), copying only the first 80 bytes of each packet: the IP and TCP headers. It
  keeps ``(time, address, port)`` for ``keep`` seconds, at most ``limit`` records.

Why nflog and not the ``log`` statement and syslog: the kernel discards ``log`` output from
every network namespace but the initial one unless the host-wide sysctl
``net.netfilter.nf_log_all_netns`` is set, while nfnetlink_log works in any namespace and
needs neither syslog nor parsing kernel text.

What a record proves: a packet with that *source address* asked for a connection. A SYN can
be forged, so a record alone does not prove the peer could complete a handshake; the socket
table (``socket_table.connected_peers``) is the stronger evidence while the socket exists.
The SYN is logged before bruteguard's ban chain (``filter - 1``) and the usual filter
chains (``filter``) decide on it, so clients they refuse appear too.

One nflog group has one reader per network namespace: a second ``open`` (another bruteguard,
ulogd on the same group) is refused, and says so.

Time is the reader's clock when ``drain`` reads the record (``time.time()`` unless the
caller passes ``now``): records are sent at once (queue threshold 1), so that is within
milliseconds of the SYN. Records are kept in arrival order; should the clock step back, a
record takes the time of the one before it, so every lookup can stop at its window's start.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from collections import deque
from collections.abc import Collection, Iterator, Sequence

from bruteguard.enforce.nftables import run_nft
from bruteguard.errors import BruteguardError, EnforcerError
from bruteguard.identity.address import canonical_address

__all__ = [
    "DEFAULT_GROUP",
    "TABLE",
    "ConnectionLog",
    "ConnectionLogRule",
]

DEFAULT_GROUP = 7301
TABLE = "bruteguard_connlog"

# linux/netlink.h, linux/netfilter/nfnetlink.h, linux/netfilter/nfnetlink_log.h
NETLINK_NETFILTER = 12
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x01
NLM_F_ACK = 0x04
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
NFULA_PAYLOAD = 9
NFULA_CFG_CMD = 1
NFULA_CFG_MODE = 2
NFULA_CFG_NLBUFSIZ = 3
NFULA_CFG_TIMEOUT = 4
NFULA_CFG_QTHRESH = 5
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 0x02
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid (host byte order)
_NFGENMSG = struct.Struct("!BBH")  # family, version, res_id (network order)
_NLATTR = struct.Struct("=HH")  # len, type
_PACKET_TYPE = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET
_CONFIG_TYPE = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG

COPY_RANGE = 80  # IPv4 with options (≤ 60) or IPv6 (40) plus the TCP ports
RECV_BUFFER = 4 << 20  # the kernel doubles it: ~10,000 records (~830 bytes each) unread
_READ_SIZE = 1 << 16
_ACK_TIMEOUT = 5.0  # seconds to wait for the kernel's answer to a configuration request
_MAX_READS = 512  # datagrams per drain(): one record each at queue threshold 1
_IPV6_SKIPPABLE = frozenset({0, 43, 60})  # hop-by-hop, routing, destination options
_IPV6_FRAGMENT = 44
_TCP = 6


def _check_group(group: int) -> int:
    if isinstance(group, bool) or not isinstance(group, int) or not 0 <= group <= 0xFFFF:
        raise BruteguardError(f"nflog group must be a number from 0 to 65535, not {group!r}")
    return group


# -- the nftables rule -------------------------------------------------------------------


class ConnectionLogRule:
    """The ``inet bruteguard_connlog`` table that logs new TCP connections to nflog.

    ``argv_prefix`` is put before the nft argv (``["ip", "netns", "exec", "NS"]`` targets
    a namespace), as for ``NftablesEnforcer``; ``nft`` names the binary.
    """

    def __init__(
        self,
        group: int = DEFAULT_GROUP,
        *,
        nft: str = "nft",
        argv_prefix: Sequence[str] = (),
        timeout: float = 60.0,
    ) -> None:
        self.group = _check_group(group)
        self.nft = nft
        self.argv_prefix = tuple(argv_prefix)
        self.timeout = timeout

    def script(self, ports: Collection[int]) -> str:
        """The ``nft -f`` script ``setup`` applies (one transaction)."""
        checked = sorted(set(map(_check_port, ports)))
        table = f"inet {TABLE}"
        lines = [
            f"add table {table}",
            f"add chain {table} input"
            " { type filter hook input priority filter - 2; policy accept; }",
            f"flush chain {table} input",
        ]
        if checked:
            lines.append(
                f"add rule {table} input tcp dport {{ {', '.join(map(str, checked))} }}"
                f" tcp flags & (syn | ack) == syn log group {self.group}"
            )
        return "\n".join(lines) + "\n"

    def setup(self, ports: Collection[int]) -> None:
        """Create the table and chain if missing and make its rule log exactly ``ports``.

        Idempotent: calling it again (a reload with other ports) replaces the rule.
        """
        self._apply(self.script(ports))

    def teardown(self) -> None:
        """Delete ``inet bruteguard_connlog`` and nothing else; fine if it is gone already."""
        self._apply(f"add table inet {TABLE}\ndelete table inet {TABLE}\n")

    def _apply(self, script: str) -> None:
        run_nft(self.argv_prefix, self.nft, ["-f", "-"], script, self.timeout)


def _check_port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise EnforcerError(f"{port!r} is not a port number")
    return port


# -- the nflog reader --------------------------------------------------------------------


class ConnectionLog:
    """Records of new connections from nflog group ``group``, kept ``keep`` seconds.

    Made for an event loop: ``open()``, then ``loop.add_reader(log.fileno(), log.drain)``;
    ``drain`` never blocks. ``seen`` answers who connected to which ports when. Counters:
    ``received`` records, ``malformed`` messages skipped, ``overruns`` (the kernel dropped
    records because the socket buffer was full), ``dropped`` (old records pushed out by
    ``limit``).
    """

    def __init__(
        self,
        group: int = DEFAULT_GROUP,
        *,
        keep: float = 300.0,
        limit: int = 100_000,
        receive_buffer: int = RECV_BUFFER,
    ) -> None:
        self.group = _check_group(group)
        if not keep > 0 or limit < 1 or receive_buffer < 1:
            raise BruteguardError("connection log: keep, limit and buffer must be positive")
        self.keep = keep
        self.limit = limit
        self.receive_buffer = receive_buffer
        self.received = 0
        self.malformed = 0
        self.overruns = 0
        self.dropped = 0
        self._records: deque[tuple[float, str, int]] = deque()
        self._sock: socket.socket | None = None

    # -- socket --------------------------------------------------------------------------

    def open(self) -> None:
        """Bind to the nflog group; raise BruteguardError saying why if that is refused."""
        if self._sock is not None:
            return
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        except (OSError, AttributeError) as error:
            raise BruteguardError(
                f"connection log: cannot open a netfilter netlink socket: {_reason(error)}"
            ) from None
        try:
            sock.bind((0, 0))
            _set_receive_buffer(sock, self.receive_buffer)
            self._configure(sock)
            sock.setblocking(False)
        except BruteguardError:
            sock.close()
            raise
        except (OSError, ValueError) as error:
            sock.close()
            raise BruteguardError(f"connection log: {_reason(error)}") from None
        self._sock = sock

    def _configure(self, sock: socket.socket) -> None:
        """Bind the group, copy 80 bytes a packet, send each record at once. Each request
        is acknowledged; a refusal becomes a clear error."""
        sock.settimeout(_ACK_TIMEOUT)
        requests = [
            _attribute(NFULA_CFG_CMD, struct.pack("B", NFULNL_CFG_CMD_BIND)),
            _attribute(NFULA_CFG_MODE, struct.pack("!IBx", COPY_RANGE, NFULNL_COPY_PACKET)),
            _attribute(NFULA_CFG_QTHRESH, struct.pack("!I", 1)),
            _attribute(NFULA_CFG_TIMEOUT, struct.pack("!I", 1)),  # 1/100 s
        ]
        for seq, body in enumerate(requests, start=1):
            header = _NFGENMSG.pack(socket.AF_UNSPEC, 0, self.group)
            payload = header + body
            message = _NLMSGHDR.pack(
                _NLMSGHDR.size + len(payload), _CONFIG_TYPE, NLM_F_REQUEST | NLM_F_ACK, seq, 0
            )
            sock.send(message + payload)
            code = self._acknowledgement(sock, seq)
            if code:
                raise BruteguardError(_bind_error(code, self.group))

    def _acknowledgement(self, sock: socket.socket, seq: int) -> int:
        """The errno the kernel answered request ``seq`` with (0: accepted). Records that
        arrive first (the group is bound by then) are kept. Waits at most 5 seconds."""
        deadline = time.monotonic() + _ACK_TIMEOUT
        while time.monotonic() < deadline:
            try:
                data = sock.recv(_READ_SIZE)
            except OSError as error:
                if error.errno != errno.ENOBUFS:
                    raise
                self.overruns += 1  # a flood already: the answer may be lost with it
                continue
            for msg_type, _flags, msg_seq, body in _messages(data):
                if msg_type == NLMSG_ERROR and msg_seq == seq and len(body) >= 4:
                    return -struct.unpack_from("=i", body)[0]
            self.feed(data, time.time())
        return errno.ETIMEDOUT

    def fileno(self) -> int:
        if self._sock is None:
            raise BruteguardError("connection log: open() it first")
        return self._sock.fileno()

    def close(self) -> None:
        """Close the socket (the kernel unbinds the group); records stay readable."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ConnectionLog:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- records -------------------------------------------------------------------------

    def drain(self, now: float | None = None) -> int:
        """Read the pending messages without blocking; return how many records it added.

        At most ``_MAX_READS`` datagrams a call, so a flood cannot hold the event loop: the
        loop calls again while the socket stays readable.
        """
        if self._sock is None:
            return 0
        added = 0
        stamp = time.time() if now is None else now
        for _ in range(_MAX_READS):
            try:
                data = self._sock.recv(_READ_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:
                if error.errno == errno.ENOBUFS:
                    self.overruns += 1  # the kernel dropped records; the rest still come
                    continue
                raise
            if not data:
                break
            added += self.feed(data, stamp)
        self.expire(stamp)
        return added

    def feed(self, datagram: bytes, now: float) -> int:
        """Record the packets of one netlink datagram; return how many. ``drain`` uses it;
        tests and replays can hand it bytes. Malformed messages are counted and skipped."""
        added = 0
        if self._records and now < self._records[-1][0]:
            now = self._records[-1][0]  # clock stepped back: keep the deque in time order
        try:
            messages = list(_messages(datagram))
        except ValueError:
            self.malformed += 1
            return 0
        for msg_type, _flags, _seq, body in messages:
            if msg_type in (NLMSG_DONE, NLMSG_ERROR):
                continue
            found = _packet(body) if msg_type == _PACKET_TYPE else None
            if found is None:
                self.malformed += 1
                continue
            if len(self._records) >= self.limit:
                self._records.popleft()
                self.dropped += 1
            self._records.append((now, *found))
            added += 1
        self.received += added
        return added

    def expire(self, now: float) -> None:
        """Drop records older than ``keep`` seconds (``drain`` does this each time)."""
        horizon = now - self.keep
        records = self._records
        while records and records[0][0] < horizon:
            records.popleft()

    def seen(self, ports: Collection[int], since: float, until: float) -> set[str]:
        """Addresses that opened a connection to one of ``ports`` within [since, until].

        Walks back from the newest record and stops at ``since``: a lookup costs the
        records of its window, not all that are kept.
        """
        wanted = frozenset(ports)
        found: set[str] = set()
        for stamp, address, port in reversed(self._records):
            if stamp < since:
                break
            if stamp <= until and port in wanted:
                found.add(address)
        return found

    def __len__(self) -> int:
        return len(self._records)


# -- netlink format ----------------------------------------------------------------------


def _align(length: int) -> int:
    return (length + 3) & ~3


def _attribute(kind: int, value: bytes) -> bytes:
    length = _NLATTR.size + len(value)
    return _NLATTR.pack(length, kind) + value + bytes(_align(length) - length)


def _messages(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, seq, body) of each netlink message in a datagram; ValueError if the
    framing itself is broken (nothing after that point can be trusted)."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            raise ValueError("bad netlink message length")
        yield kind, flags, seq, data[offset + _NLMSGHDR.size : offset + length]
        offset += _align(length)


def _payload(body: bytes) -> tuple[int, bytes] | None:
    """The nfgenmsg family and the NFULA_PAYLOAD attribute of a packet message."""
    if len(body) < _NFGENMSG.size:
        return None
    family = body[0]
    offset = _NFGENMSG.size
    while offset + _NLATTR.size <= len(body):
        length, kind = _NLATTR.unpack_from(body, offset)
        if length < _NLATTR.size or offset + length > len(body):
            return None
        if kind & NLA_TYPE_MASK == NFULA_PAYLOAD:
            return family, body[offset + _NLATTR.size : offset + length]
        offset += _align(length)
    return None


def _packet(body: bytes) -> tuple[str, int] | None:
    """(canonical source address, TCP destination port) of a logged packet, or None."""
    found = _payload(body)
    if found is None:
        return None
    family, packet = found
    if family == socket.AF_INET and packet[:1] and packet[0] >> 4 == 4:
        return _ipv4(packet)
    if family == socket.AF_INET6 and packet[:1] and packet[0] >> 4 == 6:
        return _ipv6(packet)
    return None


def _ipv4(packet: bytes) -> tuple[str, int] | None:
    header = (packet[0] & 0x0F) * 4
    if header < 20 or len(packet) < header + 4 or packet[9] != _TCP:
        return None
    if struct.unpack_from("!H", packet, 6)[0] & 0x1FFF:
        return None  # a later fragment: no TCP header here
    address = socket.inet_ntop(socket.AF_INET, packet[12:16])
    return address, struct.unpack_from("!H", packet, header + 2)[0]


def _ipv6(packet: bytes) -> tuple[str, int] | None:
    if len(packet) < 40:
        return None
    following, offset = packet[6], 40
    for _ in range(8):  # a bounded walk over extension headers
        if following == _TCP:
            break
        if len(packet) < offset + 8:
            return None
        if following in _IPV6_SKIPPABLE:
            following, offset = packet[offset], offset + (packet[offset + 1] + 1) * 8
        elif following == _IPV6_FRAGMENT:
            if struct.unpack_from("!H", packet, offset + 2)[0] & 0xFFF8:
                return None  # a later fragment: no TCP header here
            following, offset = packet[offset], offset + 8
        else:
            return None
    if following != _TCP or len(packet) < offset + 4:
        return None
    address = canonical_address(socket.inet_ntop(socket.AF_INET6, packet[8:24]))
    if address is None:
        return None
    return address, struct.unpack_from("!H", packet, offset + 2)[0]


# -- errors ------------------------------------------------------------------------------


def _set_receive_buffer(sock: socket.socket, size: int) -> None:
    """A large buffer so a burst of SYNs does not overrun it; FORCE passes rmem_max as root."""
    force = getattr(socket, "SO_RCVBUFFORCE", 33)
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno in (errno.EPERM, errno.EACCES):
        return "not permitted: reading the kernel's nflog needs root (or CAP_NET_ADMIN)"
    if isinstance(error, OSError) and error.errno is not None:
        return os.strerror(error.errno)
    return str(error) or type(error).__name__


def _bind_error(code: int, group: int) -> str:
    if code in (errno.EPERM, errno.EACCES, errno.EBUSY):
        # The kernel says EPERM both without CAP_NET_ADMIN and when another socket (ulogd,
        # a second bruteguard) holds the group.
        return (
            f"connection log: binding nflog group {group} was refused ({os.strerror(code)}):"
            " it needs root (or CAP_NET_ADMIN), and no other program (ulogd, another"
            " bruteguard) may hold the same group"
        )
    if code in (errno.EOPNOTSUPP, errno.ENOENT, errno.EPROTONOSUPPORT, errno.EINVAL):
        return (
            f"connection log: the kernel refused nflog group {group} ({os.strerror(code)}):"
            " is nfnetlink_log available (CONFIG_NETFILTER_NETLINK_LOG)?"
        )
    return f"connection log: the kernel refused nflog group {group}: {os.strerror(code)}"
