"""A case: one report to one network contact, its addresses, and everything that followed.

The case file is what an admin reads with ``bruteguard abuse show``: who was reported, to
whom, the message itself (a draft or what was sent), and each reply, bounce and escalation.
"""

from __future__ import annotations

import re
import secrets
import time
from enum import StrEnum
from typing import Literal

import msgspec

from bruteguard.abuse.contact import NetworkContact

__all__ = [
    "CASE_ID",
    "OPEN_STATES",
    "Case",
    "CaseAddress",
    "CaseEvent",
    "CaseState",
    "new_case_id",
]


# What a case id may look like: a plain token, safe in a Message-ID and a subject. Mail that
# comes back is matched only by ids of exactly this shape.
CASE_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


class CaseState(StrEnum):
    """Where a case stands. The comments say what moves it on."""

    COLLECTING = "collecting"  # gathering addresses of one contact until ``due``
    DRAFT = "draft"  # rendered; waits for ``bruteguard abuse send``
    QUEUED = "queued"  # to be handed to the relay at ``due`` (retries when it is down)
    SENDING = "sending"  # handed to the relay; a crash here leaves it UNSURE, never resent
    UNSURE = "unsure"  # the relay may or may not have taken it: the admin decides
    SENT = "sent"  # the relay took it; waiting for a reply
    ANSWERED = "answered"  # a person at the network answered: the case ends
    BOUNCED = "bounced"  # the contact is dead or full: escalated
    REJECTED = "rejected"  # the relay refused it for good (5xx): escalated like a bounce
    NO_CONTACT = "no_contact"  # the registries name nobody to write to: escalated
    CLOSED = "closed"  # folded into another case, or closed by the admin


# Cases that still need something from the desk or the admin.
OPEN_STATES = frozenset(
    {
        CaseState.COLLECTING,
        CaseState.DRAFT,
        CaseState.QUEUED,
        CaseState.SENDING,
        CaseState.UNSURE,
        CaseState.SENT,
    }
)


class CaseAddress(msgspec.Struct, frozen=True):
    """One reported address: what the detector counted (times are POSIX seconds, UTC)."""

    address: str
    jail: str
    first: float
    last: float
    attempts: int
    port: int | None = None


class CaseEvent(msgspec.Struct, frozen=True):
    """Something that happened to a case: sent, a bounce, a reply, an escalation."""

    time: float
    kind: str
    detail: str = ""


class Case(msgspec.Struct, kw_only=True):
    """One report to one contact. ``kind`` "notice" is the RFC 2142 mail to ``postmaster@``
    saying a domain's abuse mailbox is broken. ``flags`` hold what the admin must do by
    hand: "call" (a phone call to the network), "report" (the registry's inaccurate-contact
    form), "unsure" (check whether a mail went out)."""

    id: str
    kind: Literal["complaint", "notice"] = "complaint"
    state: CaseState = CaseState.COLLECTING
    mode: Literal["draft", "send"] = "draft"
    contact: str | None = None
    lookup: NetworkContact | None = None
    opened: float = 0.0
    updated: float = 0.0
    due: float = 0.0
    sent: float | None = None
    attempts: int = 0
    error: str = ""
    flags: tuple[str, ...] = ()
    message: bytes | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


def new_case_id(now: float | None = None) -> str:
    """``YYYYMMDD-xxxxxxxx``: sortable by day, unguessable (a reply must quote it), and a
    plain token that is safe in a Message-ID and a subject."""
    day = time.strftime("%Y%m%d", time.gmtime(time.time() if now is None else now))
    return f"{day}-{secrets.token_hex(4)}"
