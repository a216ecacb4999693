"""The plain values that flow between stages: a failure seen in a log, a ban decided on it.

Every stage takes and returns these; none reaches into another stage's state.
Times are POSIX seconds (UTC); addresses are normalised text (IPv4-mapped IPv6 is IPv4).
"""

import ipaddress
from typing import NamedTuple

import msgspec

__all__ = [
    "Ban",
    "BanRow",
    "Failure",
    "Network",
    "SourcePosition",
    "Unattributed",
    "ban_view",
]

#: An IPv4 or IPv6 network (a ban target, an allow entry): one name for the whole project.
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Failure(msgspec.Struct, frozen=True, gc=False):
    """One failed authentication attempt, counted once, attributed to an address."""

    time: float
    ip: str
    jail: str
    user: str | None = None
    line: str = ""


class Unattributed(msgspec.Struct, frozen=True):
    """A failure whose line named a host that could not be tied to one real connection.

    Nobody is banned for it; it is kept, with the peers that were connected at the time
    (``candidates``) and why none was chosen (``reason``), for ``bruteguard status``.
    """

    time: float
    jail: str
    name: str
    candidates: tuple[str, ...] = ()
    reason: str = ""
    user: str | None = None
    line: str = ""


class Ban(msgspec.Struct, frozen=True):
    """A decision to block ``ip`` (an address or a CIDR network) until ``until``.

    This is the design's *Decision*: the detector emits it, and the same value is what the
    store records and the enforcers apply, so there is no second type to convert to.

    The detector makes them, the store keeps them (before any firewall sees them), and the
    enforcers apply them; ``failures`` and ``reason`` say why, for ``bruteguard bans``.
    """

    ip: str
    jail: str
    start: float
    until: float
    failures: int = 0
    reason: str = ""
    step: int = 1  # the n-th ban of this target in this jail: bantime grew n-1 times
    origin: str = ""  # the fleet host that decided it ('' for this host: docs/fleet.md)


class BanRow(NamedTuple):
    """A ban as the ledger holds it, with when it was lifted (None: it never was). The
    store's ``ban_rows`` gives plain tuples of these fields (``BanRow(*row)`` names them): a
    restart reads a million and makes a ``Ban`` only of the active ones."""

    ip: str
    jail: str
    start: float
    until: float
    failures: int
    reason: str
    step: int
    origin: str
    lifted: float | None

    def ban(self) -> Ban:
        return Ban(*self[:8])


class SourcePosition(msgspec.Struct, frozen=True):
    """Where a source stopped reading, saved so a restart neither recounts nor misses lines.

    For a file: ``device``/``inode`` identify it and ``fingerprint`` (a hash of its first
    bytes) tells a copytruncate'd or replaced file from the same one; ``offset`` is the next
    byte to read. For the journal: ``cursor``.
    """

    key: str
    offset: int = 0
    device: int = 0
    inode: int = 0
    fingerprint: str = ""
    cursor: str = ""


def ban_view(ban: Ban, now: float) -> dict[str, object]:
    """A ban as ``bruteguard bans --json`` shows it (the daemon and the ledger alike)."""
    return {
        "ip": ban.ip,
        "jail": ban.jail,
        "start": ban.start,
        "until": ban.until,
        "remaining": max(0.0, ban.until - now),
        "failures": ban.failures,
        "step": ban.step,
        "reason": ban.reason,
        "origin": ban.origin,
    }
