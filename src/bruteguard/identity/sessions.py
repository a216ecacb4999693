"""Live admin sessions: established connections to sshd that authenticated.

The lock-out guard asks this before a ban lands: a ban (or a network ban) that would cover
the address of someone logged in over SSH right now is refused. "Logged in" is decided by
the kernel and sshd, not by any log line: the socket table (inet_diag, through pyroute2)
lists the established TCP connections to sshd's ports, and the processes holding each
socket say whether it authenticated. OpenSSH renames its session processes once a user is
in (``sshd: alice@pts/0``, ``sshd: alice@notty``; ``sshd-session:`` since 9.8), while a
connection still at the password prompt is ``sshd: alice [priv]`` / ``[net]`` /
``[preauth]``: an attacker's connection never looks authenticated.

Reading other processes' file descriptors needs root (the daemon's normal state); without
it no session is found and the guard protects nothing, which ``doctor`` says.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Collection, Iterator

from bruteguard.identity.address import canonical_address

__all__ = ["authenticated_sockets", "established_peers", "live_admin_addresses"]

_TCP_ESTABLISHED = 1
_SSHD_COMMANDS = frozenset({"sshd", "sshd-session", "sshd-auth"})
_LOGGED_IN = re.compile(rb"\Asshd(?:-session)?: [^\s@\[\]]+@\S+")
_MONITOR = re.compile(rb"\Asshd(?:-session)?: [^\s@\[\]]+ \[priv\]")
_SOCKET_LINK = re.compile(r"\Asocket:\[([0-9]+)\]\Z")


def established_peers(ports: Collection[int]) -> dict[int, str]:
    """Socket inode → client address of every established TCP connection to ``ports``."""
    from pyroute2 import DiagSocket  # a netlink socket: only when the guard asks

    wanted = frozenset(ports)
    found: dict[int, str] = {}
    with DiagSocket() as diag:
        diag.bind()
        for family in (socket.AF_INET, socket.AF_INET6):
            for entry in diag.get_sock_stats(family=family, states=1 << _TCP_ESTABLISHED):
                if entry.get("idiag_sport") in wanted:
                    address = canonical_address(str(entry.get("idiag_dst", "")))
                    if address is not None:
                        found[int(entry["idiag_inode"])] = address
    return found


def _sshd_processes(proc: str) -> Iterator[tuple[int, int, bytes]]:
    """(pid, parent pid, command line) of every sshd process."""
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            with open(f"{proc}/{name}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")
            command = fields[0].partition(b"(")[2].decode(errors="replace")
            if command not in _SSHD_COMMANDS:
                continue
            parent = int(fields[2].split()[1])
            with open(f"{proc}/{name}/cmdline", "rb") as cmdline:
                title = cmdline.read(512)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
        yield int(name), parent, title


def _socket_inodes(proc: str, pid: int) -> set[int]:
    inodes = set()
    try:
        descriptors = os.listdir(f"{proc}/{pid}/fd")
    except OSError:
        return inodes
    for descriptor in descriptors:
        try:
            found = _SOCKET_LINK.match(os.readlink(f"{proc}/{pid}/fd/{descriptor}"))
        except OSError:
            continue
        if found:
            inodes.add(int(found[1]))
    return inodes


def authenticated_sockets(inodes: Collection[int], proc: str = "/proc") -> set[int]:
    """Those of ``inodes`` held by an sshd that a user has logged in through: a holder
    whose title names a session (``user@tty``), or a ``[priv]`` monitor whose child's
    title does."""
    if not inodes:
        return set()
    return _logged_in_sockets(proc) & frozenset(inodes)


def _logged_in_sockets(proc: str) -> set[int]:
    """The socket inodes held by the sshd processes that a user has logged in through."""
    processes = list(_sshd_processes(proc))
    logged_in = {pid for pid, _, title in processes if _LOGGED_IN.match(title)}
    # The privileged monitor of a logged-in session (the listener, parent of every
    # connection, never counts: it holds no connection of its own).
    monitors = {pid for pid, _, title in processes if _MONITOR.match(title)}
    logged_in |= {parent for _, parent, title in processes if _LOGGED_IN.match(title)} & monitors
    found: set[int] = set()
    for pid in logged_in:
        found |= _socket_inodes(proc, pid)
    return found


def live_admin_addresses(ports: Collection[int], proc: str = "/proc") -> frozenset[str]:
    """Client addresses with an authenticated SSH session to ``ports`` now.

    The processes first: with no one logged in (a host under attack, its admin away) the
    socket table is not read at all. Its dump walks the kernel's whole connection hash,
    a few milliseconds of CPU whatever it finds, and the guard asks once a second while
    bans are being made."""
    held = _logged_in_sockets(proc)
    if not held:
        return frozenset()
    peers = established_peers(ports)
    return frozenset(peers[inode] for inode in held if inode in peers)
