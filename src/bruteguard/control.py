"""The control socket: one JSON request line in, one JSON reply line out, root only.

The daemon serves it; ``bruteguard status|ban|unban|bans|stop`` are its clients. The socket
file is mode 0600 and every connection's peer credentials (SO_PEERCRED) are checked, so a
local user can neither read the ban list nor lift a ban.

A long answer (``bans``) is streamed as JSON lines: ``{"ok": true, "stream": true}``, then
one JSON array per page of items, then ``{"end": true, "count": N}`` (or ``{"end": false,
"error": …}`` if the daemon failed half way). Neither side ever holds the whole list as one
message, and the daemon serves other work between pages.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from bruteguard.errors import ControlError, NotRunningError

__all__ = [
    "MAX_REQUEST",
    "peer_uid",
    "request",
    "request_pages",
    "socket_directory",
]

MAX_REQUEST = 64 * 1024
_TIMEOUT = 30.0
# Commands whose reply may wait on slow work: `stop` answers once the daemon has stopped,
# after its firewall work (one nft call may take its own 60 s timeout) and `--unban`.
_TIMEOUTS = {"stop": 300.0}


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a unix socket."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def request(path: str, command: str, **arguments: Any) -> Any:
    """Send one command to the daemon at ``path``; its result, or ControlError with its text.
    A streamed answer (``bans``) comes back whole, as one list."""
    with _reply(path, command, arguments) as next_line:
        head = _decoded(next_line(), path)
        if not _streamed(head):
            return _result(head, path)
        return [item for page in _pages(next_line, path) for item in msgspec.json.decode(page)]


def request_pages(path: str, command: str, **arguments: Any) -> Iterator[bytes]:
    """Send a command whose answer is streamed; yield its pages as they arrive, each the
    JSON array of items the daemon wrote, undecoded: ``bans --json`` passes them straight
    through (decoding a million bans only to encode them again took longer than the daemon
    took to send them).

    A daemon that answers in one line (an error, or an older daemon) is taken as it is: its
    result is the one page.
    """
    with _reply(path, command, arguments) as next_line:
        head = _decoded(next_line(), path)
        if not _streamed(head):
            result = _result(head, path)
            yield msgspec.json.encode(result if isinstance(result, list) else [result])
            return
        yield from _pages(next_line, path)


def _streamed(head: Any) -> bool:
    """Whether a reply's first line announces pages to follow."""
    return isinstance(head, dict) and bool(head.get("ok")) and bool(head.get("stream"))


def _pages(next_line: Callable[[], bytes], path: str) -> Iterator[bytes]:
    """The pages after a stream's first line, up to its end line (ControlError if the
    daemon broke off or said why it could not go on)."""
    while (line := next_line().rstrip(b"\n")).startswith(b"[") and line.endswith(b"]"):
        yield line
    end = _decoded(line, path)
    if not (isinstance(end, dict) and end.get("end") is True):
        error = end.get("error") if isinstance(end, dict) else None
        raise ControlError(str(error or f"the daemon on {path} broke off its reply"))


@contextlib.contextmanager
def _reply(path: str, command: str, arguments: dict[str, Any]) -> Iterator[Callable[[], bytes]]:
    """Connect, send the request, and give a reader of reply lines.

    Lines come through a buffered reader: linear in their length, however long (appending
    ``recv`` chunks to bytes was quadratic: 1 M bans took two minutes).
    """
    payload = msgspec.json.encode({"command": command, **arguments}) + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(_TIMEOUTS.get(command, _TIMEOUT))
            client.connect(path)
            client.sendall(payload)
            with client.makefile("rb") as reader:
                yield reader.readline
    except (FileNotFoundError, ConnectionRefusedError):
        raise NotRunningError(
            f"bruteguard is not running (nothing listens on {path}); start it with `bruteguard run`"
        ) from None
    except PermissionError:
        raise ControlError(
            f"permission denied on {path}: the control socket is root only"
        ) from None
    except OSError as error:
        raise ControlError(f"control socket {path}: {error}") from None


def _decoded(line: bytes, path: str) -> Any:
    try:
        return msgspec.json.decode(line)
    except msgspec.DecodeError:
        raise ControlError(f"no valid reply from the daemon on {path}") from None


def _result(answer: Any, path: str) -> Any:
    if not isinstance(answer, dict):
        raise ControlError(f"no valid reply from the daemon on {path}")
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "the daemon refused the request")))
    return answer.get("result")


def socket_directory(path: str) -> None:
    """Create the socket's directory (0755, root's) if it is missing."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
