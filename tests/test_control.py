"""The control socket's client against a real unix socket whose replies the test writes:
streamed pages, a daemon failing half way, a reply broken off, a refusal in one line."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bruteguard import control
from bruteguard.control import request, request_pages
from bruteguard.errors import ControlError, NotRunningError


@pytest.fixture
def replying(tmp_path: Path) -> Iterator[tuple[str, list[bytes]]]:
    """A socket path whose one connection is answered with the lines the test put in the
    list (once the request line has arrived)."""
    path = str(tmp_path / "control.sock")
    lines: list[bytes] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def answer() -> None:
        connection, _ = server.accept()
        with connection:
            connection.makefile("rb").readline()
            connection.sendall(b"".join(lines))

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield path, lines
    thread.join(timeout=10)
    server.close()


def test_pages_arrive_as_the_daemon_wrote_them(replying: tuple[str, list[bytes]]) -> None:
    path, lines = replying
    big = b"[" + b",".join(b'{"ip":"192.0.2.%d"}' % (i % 250) for i in range(200_000)) + b"]"
    lines += [b'{"ok":true,"stream":true}\n', b'[{"ip":"192.0.2.1"}]\n', big + b"\n"]
    lines.append(b'{"end":true,"count":200001}\n')
    assert list(request_pages(path, "bans")) == [b'[{"ip":"192.0.2.1"}]', big]


def test_a_daemon_failing_half_way_is_an_error_after_the_pages(
    replying: tuple[str, list[bytes]],
) -> None:
    path, lines = replying
    lines += [b'{"ok":true,"stream":true}\n', b"[1,2]\n", b'{"end":false,"error":"disk gone"}\n']
    pages = request_pages(path, "bans")
    assert next(pages) == b"[1,2]"
    with pytest.raises(ControlError, match="disk gone"):
        next(pages)


def test_a_reply_broken_off_is_an_error(replying: tuple[str, list[bytes]]) -> None:
    path, lines = replying
    lines += [b'{"ok":true,"stream":true}\n', b"[1,2]\n"]  # then the connection closes
    with pytest.raises(ControlError, match="no valid reply"):
        list(request_pages(path, "bans"))


def test_a_refusal_in_one_line_is_its_error(replying: tuple[str, list[bytes]]) -> None:
    path, lines = replying
    lines.append(b'{"ok":false,"error":"the control socket is root only"}\n')
    with pytest.raises(ControlError, match="root only"):
        list(request_pages(path, "bans"))


def test_a_one_line_reply_of_any_size_is_read_whole(replying: tuple[str, list[bytes]]) -> None:
    path, lines = replying
    addresses = b",".join(b'"198.51.100.%d"' % (i % 250) for i in range(500_000))
    lines.append(b'{"ok":true,"result":{"banned":[' + addresses + b"]}}\n")
    assert len(request(path, "status")["banned"]) == 500_000


def test_nothing_listening_says_not_running(tmp_path: Path) -> None:
    with pytest.raises(NotRunningError, match="not running"):
        request(str(tmp_path / "none.sock"), "status")


@pytest.mark.parametrize(("command", "waits"), [("stop", True), ("status", False)])
def test_stop_waits_longer_than_any_other_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, waits: bool
) -> None:
    """``stop`` answers once the daemon has stopped (a million bans lifted, say): the
    client waits for it longer than for an ordinary reply (timeouts shrunk for the test)."""
    monkeypatch.setattr(control, "_TIMEOUT", 0.3)
    monkeypatch.setattr(control, "_TIMEOUTS", {"stop": 5.0})
    path = str(tmp_path / "control.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        done = threading.Event()

        def answer_late() -> None:
            connection, _ = server.accept()
            with connection:
                connection.makefile("rb").readline()
                done.wait(1.0)  # the daemon's stop takes a second
                with contextlib.suppress(BrokenPipeError):  # a client that gave up
                    connection.sendall(b'{"ok":true,"result":{"stopped":true}}\n')

        thread = threading.Thread(target=answer_late, daemon=True)
        thread.start()
        try:
            if waits:
                assert request(path, command) == {"stopped": True}
            else:
                with pytest.raises(ControlError, match="timed out"):
                    request(path, command)
        finally:
            done.set()
            thread.join(timeout=10)
