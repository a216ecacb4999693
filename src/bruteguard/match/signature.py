"""What a signature is: one message a service writes about a failed (or suspicious) login.

A signature's ``message`` is a regular expression for the text after ``prog[pid]: ``, with
two placeholders: ``<HOST>`` (the client address, or a name for the identity stage to check)
and ``<USER>`` (the user name the client sent). The expression is anchored at both ends by
the engine, and every attacker-controlled field must sit where it cannot supply the address:
a greedy ``<USER>`` *before* a fixed tail that ends the line means the real address (which
the service writes last) always wins, whatever the client typed.

``role`` says how the line counts toward one authentication attempt of a connection (pid):

* ``ANNOUNCE``  — written *before* the verdict of an attempt (``Invalid user``, pam's
  ``authentication failure``): counts, and the next ``CONFIRM`` of the same pid is the same
  attempt, so it does not count again.
* ``CONFIRM``   — the verdict itself (``Failed password``): counts unless announced.
* ``CLOSE``     — the connection ended during authentication (``[preauth]`` disconnects,
  scanners, negotiation failures): counts once per connection, and only when nothing else
  of that connection counted.
"""

from dataclasses import dataclass, field
from enum import IntEnum

__all__ = ["HOST", "USER", "Role", "Signature"]

HOST = "<HOST>"
USER = "<USER>"


class Role(IntEnum):
    ANNOUNCE = 1
    CONFIRM = 2
    CLOSE = 3


@dataclass(frozen=True)
class Signature:
    """One recognised message. ``samples`` are real lines (after ``prog[pid]: ``) it matches."""

    name: str
    role: Role
    message: str
    samples: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.message.count(HOST) != 1:
            raise ValueError(f"signature {self.name}: needs exactly one {HOST}")
        if self.message.count(USER) > 1:
            raise ValueError(f"signature {self.name}: at most one {USER}")
        if self.message.startswith("^") or self.message.endswith("$"):
            raise ValueError(f"signature {self.name}: the engine anchors; drop ^ and $")
