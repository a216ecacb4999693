"""Ban elements straight to the kernel: one nfnetlink batch, no nft script.

Why: a ban round that only adds elements to sets that exist cost about 1 ms of CPU through
libnftables (parse the script, fetch nft's cache over netlink, build the batch), most of
the firewall's share of the daemon's CPU under a flood. This module builds with ``struct``
the batch nft would send for the same script and sends it on one ``NETLINK_NETFILTER``
socket: per set ``add element`` (timeout 1s, so each element surely exists), ``delete
element``, ``add element`` with the new timeout (older kernels leave an existing element's
timeout alone on a plain add).

nfnetlink applies everything between ``BATCH_BEGIN`` and ``BATCH_END`` as one transaction:
if any message is refused, none of the batch is applied. Every message asks for an
acknowledgement (``NLM_F_ACK``), and the batch counts as applied only once each of them
has answered "no error". The kernel handles the whole batch while ``send`` runs, so the
answers are already waiting when it returns.

Why not pyroute2, the netlink library the project prefers (DESIGN.md): its nftables calls
send each change as a batch of its own, and a transaction of several (``begin``/``commit``)
is sent without reading the kernel's answers. The refresh needs three changes in one
transaction (no moment without the element), and a ban must never be taken as in the
kernel when the kernel refused it; its synchronous API also runs an event loop per call.

Constants: linux/netlink.h, linux/netfilter.h, linux/netfilter/nfnetlink.h and
linux/netfilter/nf_tables.h (checked against linux-libc-dev for kernel 6.18; these numbers
are kernel ABI and never change).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import socket
import struct
import threading
from collections.abc import Iterable, Mapping, Sequence

from bruteguard.enforce.libnft import enter_netns
from bruteguard.errors import EnforcerError

__all__ = ["MOST_ELEMENTS", "NetlinkRefused", "SetElementChannel", "replace_batch"]

# linux/netlink.h
_NETLINK_NETFILTER = 12
_SOL_NETLINK = 270
_NETLINK_CAP_ACK = 10  # errors echo the refused message's header only, not its payload
_NLMSG_ERROR = 2
_NLM_F_REQUEST = 0x1
_NLM_F_ACK = 0x4
_NLM_F_CREATE = 0x400
_NLA_F_NESTED = 0x8000
# linux/netfilter.h, linux/netfilter/nfnetlink.h
_NFPROTO_UNSPEC = 0
_NFPROTO_INET = 1
_NFNETLINK_V0 = 0
_NFNL_SUBSYS_NFTABLES = 10
_NFNL_MSG_BATCH_BEGIN = 16  # NLMSG_MIN_TYPE
_NFNL_MSG_BATCH_END = 17
# linux/netfilter/nf_tables.h
_NFT_MSG_NEWSETELEM = 12
_NFT_MSG_DELSETELEM = 14
_NFTA_SET_ELEM_LIST_TABLE = 1
_NFTA_SET_ELEM_LIST_SET = 2
_NFTA_SET_ELEM_LIST_ELEMENTS = 3
_NFTA_LIST_ELEM = 1
_NFTA_SET_ELEM_KEY = 1
_NFTA_SET_ELEM_TIMEOUT = 4
_NFTA_DATA_VALUE = 1

_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
_GENMSG = struct.Struct(">BBH")  # struct nfgenmsg (res_id is big-endian)
_ERROR = struct.Struct("=i")  # struct nlmsgerr's error, after the header
# An attribute's length is 16 bits, so a message's element list holds at most 64 KiB:
# elements go in messages of _PER_MESSAGE (40 bytes each at most: IPv6 with a timeout).
_PER_MESSAGE = 1024
# A batch is one send, which the socket's send buffer bounds (212,992 bytes by default):
# three messages per element of 40 bytes at most leave room for this many.
MOST_ELEMENTS = 1000
_PLACEHOLDER_MS = 1000  # the first add's timeout, as the script's ``timeout 1s``

Elements = Sequence[tuple[bytes, int | None]]  # (key: packed address, timeout ms or None)


class NetlinkRefused(EnforcerError):
    """The kernel refused the batch (nothing of it was applied); ``errno`` says why."""

    def __init__(self, errno: int) -> None:
        super().__init__(f"nfnetlink: the kernel refused the batch: {os.strerror(errno)}")
        self.errno = errno


def _attribute(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + bytes(-length % 4)


def _element(key: bytes, milliseconds: int | None) -> bytes:
    """``NFTA_LIST_ELEM`` of one element: its key and, unless it never times out, its
    timeout (a big-endian 64-bit count of milliseconds)."""
    body = _attribute(_NFTA_SET_ELEM_KEY | _NLA_F_NESTED, _attribute(_NFTA_DATA_VALUE, key))
    if milliseconds is not None:
        body += _attribute(_NFTA_SET_ELEM_TIMEOUT, struct.pack(">Q", milliseconds))
    return _attribute(_NFTA_LIST_ELEM | _NLA_F_NESTED, body)


def _message(kind: int, flags: int, seq: int, family: int, res_id: int, payload: bytes) -> bytes:
    length = _HEADER.size + _GENMSG.size + len(payload)
    return (
        _HEADER.pack(length, kind, flags, seq, 0)
        + _GENMSG.pack(family, _NFNETLINK_V0, res_id)
        + payload
    )


def _batch_mark(kind: int, seq: int) -> bytes:
    """BATCH_BEGIN or BATCH_END of a batch for nf_tables (its subsystem in ``res_id``)."""
    return _message(kind, _NLM_F_REQUEST, seq, _NFPROTO_UNSPEC, _NFNL_SUBSYS_NFTABLES, b"")


def _element_message(kind: int, seq: int, target: bytes, elements: Iterable[bytes]) -> bytes:
    """A NEWSETELEM/DELSETELEM of ``elements`` in the set ``target`` names (its table and
    set attributes), acknowledged."""
    flags = _NLM_F_REQUEST | _NLM_F_ACK | (_NLM_F_CREATE if kind == _NFT_MSG_NEWSETELEM else 0)
    body = target + _attribute(_NFTA_SET_ELEM_LIST_ELEMENTS | _NLA_F_NESTED, b"".join(elements))
    return _message(_NFNL_SUBSYS_NFTABLES << 8 | kind, flags, seq, _NFPROTO_INET, 0, body)


def replace_batch(
    table: str, sets: Mapping[str, Elements], seqs: Iterable[int]
) -> tuple[bytes, list[int]]:
    """The batch that adds each element of ``sets`` (set name → elements) to ``inet
    table``, deletes it and adds it with its timeout; and the sequence numbers whose
    acknowledgements prove it applied (those of its element messages)."""
    numbers = iter(seqs)
    messages = [_batch_mark(_NFNL_MSG_BATCH_BEGIN, next(numbers))]
    acked = []
    table_attribute = _attribute(_NFTA_SET_ELEM_LIST_TABLE, table.encode("ascii") + b"\0")
    for set_name, elements in sets.items():
        target = table_attribute + _attribute(
            _NFTA_SET_ELEM_LIST_SET, set_name.encode("ascii") + b"\0"
        )
        for start in range(0, len(elements), _PER_MESSAGE):
            chunk = elements[start : start + _PER_MESSAGE]
            steps = (
                (_NFT_MSG_NEWSETELEM, [_element(key, _PLACEHOLDER_MS) for key, _ in chunk]),
                (_NFT_MSG_DELSETELEM, [_element(key, None) for key, _ in chunk]),
                (_NFT_MSG_NEWSETELEM, [_element(key, ms) for key, ms in chunk]),
            )
            for kind, encoded in steps:
                seq = next(numbers)
                messages.append(_element_message(kind, seq, target, encoded))
                acked.append(seq)
    messages.append(_batch_mark(_NFNL_MSG_BATCH_END, next(numbers)))
    return b"".join(messages), acked


def _answers(data: bytes) -> Iterable[tuple[int, int]]:
    """(sequence number, error: 0 or a negative errno) of each NLMSG_ERROR in ``data``."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _, seq, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            break
        if kind == _NLMSG_ERROR:
            yield seq, _ERROR.unpack_from(data, offset + _HEADER.size)[0]
        offset += (length + 3) & ~3


def _new_socket(timeout: float) -> socket.socket:
    sock = socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_NETFILTER
    )
    try:
        sock.setsockopt(_SOL_NETLINK, _NETLINK_CAP_ACK, 1)
        sock.settimeout(timeout)
        sock.bind((0, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def _open(netns: str | None, timeout: float) -> socket.socket:
    """A netfilter netlink socket in ``/run/netns/<netns>`` (None: this thread's namespace):
    a socket belongs to the namespace it was made in, whichever thread uses it later."""
    if netns is None:
        return _new_socket(timeout)
    with concurrent.futures.ThreadPoolExecutor(1, "nfnetlink", enter_netns, (netns,)) as thread:
        return thread.submit(_new_socket, timeout).result()


class SetElementChannel:
    """One enforcer's netlink socket for element rounds, opened at the first one; after any
    failure it is closed and the next round opens a fresh one (no stale answers)."""

    def __init__(self, netns: str | None = None, timeout: float = 60.0) -> None:
        self._netns = netns
        self._timeout = timeout
        self._socket: socket.socket | None = None
        self._seqs = itertools.count(1)
        self._lock = threading.Lock()

    def replace(self, table: str, sets: Mapping[str, Elements]) -> None:
        """Add or refresh the elements of ``sets`` in ``inet table`` as one transaction;
        NetlinkRefused if the kernel refused it (then nothing applied), OSError if the
        socket failed."""
        if sum(map(len, sets.values())) > MOST_ELEMENTS:
            raise ValueError(f"more than {MOST_ELEMENTS} elements for one netlink batch")
        with self._lock:
            batch, acked = replace_batch(table, sets, self._seqs)
            try:
                sock = self._socket or _open(self._netns, self._timeout)
                self._socket = sock
                sock.send(batch)
                self._await(sock, set(acked))
            except BaseException:
                self._close()
                raise

    @staticmethod
    def _await(sock: socket.socket, waiting: set[int]) -> None:
        """Read answers until every message in ``waiting`` said "no error"; raise at the
        first error (any message's: a refused batch is aborted whole). A commit the kernel
        fails is answered for BATCH_BEGIN before the element messages' answers."""
        while waiting:
            for seq, error in _answers(sock.recv(65536)):
                if error:
                    raise NetlinkRefused(-error)
                waiting.discard(seq)

    def _close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def close(self) -> None:
        with self._lock:
            self._close()
