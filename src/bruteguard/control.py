"""The control socket: one JSON request line in, one JSON reply line out, root only.

The daemon serves it; ``bruteguard status|ban|unban|bans|stop`` are its clients. The socket
file is mode 0600 and every connection's peer credentials (SO_PEERCRED) are checked, so a
local user can neither read the ban list nor lift a ban.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Any

import msgspec

from bruteguard.errors import ControlError, NotRunningError

__all__ = ["MAX_REQUEST", "peer_uid", "request", "socket_directory"]

MAX_REQUEST = 64 * 1024
_TIMEOUT = 30.0


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a unix socket."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def request(path: str, command: str, **arguments: Any) -> Any:
    """Send one command to the daemon at ``path``; its result, or ControlError with its text."""
    payload = msgspec.json.encode({"command": command, **arguments}) + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(_TIMEOUT)
            client.connect(path)
            client.sendall(payload)
            reply = b""
            while not reply.endswith(b"\n"):
                data = client.recv(1 << 16)
                if not data:
                    break
                reply += data
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
    try:
        answer = msgspec.json.decode(reply)
    except msgspec.DecodeError:
        raise ControlError(f"no valid reply from the daemon on {path}") from None
    if not isinstance(answer, dict):
        raise ControlError(f"no valid reply from the daemon on {path}")
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "the daemon refused the request")))
    return answer.get("result")


def socket_directory(path: str) -> None:
    """Create the socket's directory (0755, root's) if it is missing."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
