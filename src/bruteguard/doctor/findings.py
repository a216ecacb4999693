"""The value every check returns, and the one shape several checks share.

A check that this user cannot see far enough to judge says so as an ``unknown`` finding,
with advice to run as root, rather than guessing: ``not_checked`` words it the same way for
every check.
"""

from __future__ import annotations

import os
from typing import Literal

import msgspec

__all__ = ["AS_ROOT", "Finding", "Status", "not_checked", "running_as_root"]

Status = Literal["ok", "advice", "problem", "unknown"]

AS_ROOT = "run bruteguard doctor as root (the daemon runs as root)"


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One thing checked: what (``check``), how it stands, what was seen, what to do."""

    check: str
    status: Status
    detail: str
    advice: str = ""


def running_as_root() -> bool:
    """Whether a lack of privilege can explain what a check could not see."""
    return os.geteuid() == 0


def not_checked(check: str, detail: str, advice: str = AS_ROOT) -> Finding:
    """An ``unknown`` finding: this user cannot see enough to judge; root could."""
    return Finding(check=check, status="unknown", detail=detail, advice=advice)
