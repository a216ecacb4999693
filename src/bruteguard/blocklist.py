"""Blocklist files: addresses and CIDR networks, one per line, blocked on every port.

The format is what published lists use: one entry per line, ``#`` or ``;`` starts a comment
(also after an entry: ``192.0.2.0/24 ; SBL123``), blank lines are skipped. A list may hold
millions of entries, so it is read as a stream and each entry checked cheaply
(``inet_pton`` for addresses, ``ipaddress`` only for networks); nothing is kept but counts.
A bad line is skipped and counted, never fatal: one typo must not unblock the whole list.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from bruteguard.errors import BruteguardError
from bruteguard.identity.address import canonical_target

__all__ = ["BlocklistError", "BlocklistReader"]

_MAX_LINE = 4096
_SHOWN_ERRORS = 5


class BlocklistError(BruteguardError):
    """A blocklist file that cannot be read at all."""


@dataclass
class BlocklistReader:
    """Iterate over the canonical entries of ``path``; ``bad`` counts skipped lines and
    ``examples`` holds the first few (line number, text) for the log."""

    path: str
    entries: int = 0
    bad: int = 0
    examples: list[tuple[int, str]] = field(default_factory=list)

    def __iter__(self) -> Iterator[str]:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as error:
            raise BlocklistError(f"blocklist {self.path}: {error.strerror}") from None
        with handle:
            for number, raw in enumerate(handle, 1):
                entry = _entry(raw)
                if entry is None:
                    continue
                if entry:
                    self.entries += 1
                    yield entry
                    continue
                self.bad += 1
                if len(self.examples) < _SHOWN_ERRORS:
                    text = raw[:80].decode("utf-8", "backslashreplace").strip()
                    self.examples.append((number, text))


def _entry(raw: bytes) -> str | None:
    """The canonical entry of one line; None for a blank or comment line, "" if bad."""
    if len(raw) > _MAX_LINE:
        return ""
    text = raw.split(b"#", 1)[0].split(b";", 1)[0].strip()
    if not text:
        return None
    try:
        value = text.decode("ascii")
    except UnicodeDecodeError:
        return ""
    if "/" not in value:
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                socket.inet_pton(family, value)
            except OSError:
                continue
            return canonical_target(value) or ""
        return ""
    return canonical_target(value) or ""
