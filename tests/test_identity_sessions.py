"""Which sshd connections are logged-in sessions, read from a /proc tree built here.

The processes are as OpenSSH 9 names them: the listener, a connection at the password
prompt (``[priv]`` monitor and ``[net]`` child) and a logged-in one (``[priv]`` monitor and
its ``user@notty`` child). Only the logged-in connection's socket counts.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bruteguard.identity import sessions
from bruteguard.identity.sessions import authenticated_sockets, live_admin_addresses


def _process(proc: Path, pid: int, parent: int, comm: str, title: str, sockets: list[int]) -> None:
    here = proc / str(pid)
    (here / "fd").mkdir(parents=True)
    (here / "stat").write_text(f"{pid} ({comm}) S {parent} {pid} {pid} 0 -1\n")
    (here / "cmdline").write_bytes(title.encode() + b"\0")
    for number, inode in enumerate(sockets, 3):
        os.symlink(f"socket:[{inode}]", here / "fd" / str(number))
    os.symlink("/dev/null", here / "fd" / "0")


def test_only_sockets_of_logged_in_sessions_count(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    _process(proc, 100, 1, "sshd", "sshd: /usr/sbin/sshd -D [listener] 1 of 10-100", [5])
    _process(proc, 200, 100, "sshd", "sshd: root [priv]", [7001])  # at the password prompt
    _process(proc, 201, 200, "sshd", "sshd: root [net]", [7001])
    _process(proc, 300, 100, "sshd", "sshd: alice [priv]", [7002])  # logged in
    _process(proc, 301, 300, "sshd", "sshd: alice@notty", [7002])
    _process(proc, 400, 100, "sshd-session", "sshd-session: bob@pts/3", [7003])
    # Not sshd: a title cannot make a process an sshd session.
    _process(proc, 500, 1, "python3", "sshd: mallory@pts/9", [7004])
    (proc / "self").mkdir()
    found = authenticated_sockets({5, 7001, 7002, 7003, 7004}, str(proc))
    assert found == {7002, 7003}
    assert authenticated_sockets(set(), str(proc)) == set()


def test_the_socket_table_is_read_only_when_someone_is_logged_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock-out guard's read: the processes first. With no logged-in sshd (a host under
    attack, its admin away) the socket table (a walk of the kernel's whole connection
    hash, milliseconds whatever it finds) is not read at all; with one, the sessions are
    its sockets that the table lists as established to the ports."""
    asked: list[frozenset[int]] = []

    def peers(ports: frozenset[int]) -> dict[int, str]:
        asked.append(frozenset(ports))
        return {7002: "198.51.100.2", 7001: "203.0.113.1", 9999: "192.0.2.9"}

    monkeypatch.setattr(sessions, "established_peers", peers)
    proc = tmp_path / "proc"
    _process(proc, 100, 1, "sshd", "sshd: /usr/sbin/sshd -D [listener] 1 of 10-100", [5])
    _process(proc, 200, 100, "sshd", "sshd: root [priv]", [7001])  # at the password prompt
    _process(proc, 201, 200, "sshd", "sshd: root [net]", [7001])
    assert live_admin_addresses(frozenset({22}), str(proc)) == frozenset()
    assert asked == []
    _process(proc, 300, 100, "sshd", "sshd: alice [priv]", [7002])  # logged in
    _process(proc, 301, 300, "sshd", "sshd: alice@notty", [7002])
    assert live_admin_addresses(frozenset({22}), str(proc)) == {"198.51.100.2"}
    assert asked == [frozenset({22})]
