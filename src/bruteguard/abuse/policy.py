"""What the desk does when a network cannot be reached: pure decisions, no I/O.

The defaults are what careful admins do by hand. A network with no abuse contact, or one
whose abuse mailbox two separate complaints found unreachable (dead or full; the desk
counts the signals, see ``AbuseDesk._second_unreachable_signal``), is blocked for a month,
unless it is in a country where a phone call comes first. Its registry's inaccurate-contact
form is prepared, and, when a bounce said the mailbox is dead, ``postmaster@`` its domain
hears once that the abuse mailbox is broken (RFC 2142). A full mailbox alone is no
evidence of a broken one: the desk only pauses complaints to it (``mailbox_full_pause``)
and blocks nothing until a later complaint finds it unreachable again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from bruteguard.abuse.contact import NetworkContact, email_domain

__all__ = ["INACCURACY_FORMS", "Escalation", "Policy", "block_targets", "escalate"]

# Registries that take reports of wrong contact data, and where (checked 2026-11).
INACCURACY_FORMS = {
    "APNIC": "https://www.apnic.net/manage-ip/using-whois/abuse-and-spamming/reporting-abuse-and-spam/",
    "ARIN": "https://www.arin.net/resources/registry/whois/inaccuracy_reporting/",
}


@dataclass(frozen=True)
class Policy:
    """The ``[abuse]`` settings escalation depends on (0 seconds: never)."""

    dead_contact_block: float = 30 * 86400.0
    mailbox_full_pause: float = 30 * 86400.0  # a first full bounce: no complaint this long
    call_first: frozenset[str] = frozenset({"US", "CA"})
    postmaster_notice: bool = True
    largest_block_ipv4: int = 16
    largest_block_ipv6: int = 32


@dataclass(frozen=True)
class Escalation:
    """The actions for one dead or full contact; empty fields mean "do not"."""

    reason: str
    block: tuple[str, ...] = ()  # networks to block on every port
    block_for: float = 0.0
    pause_contact_for: float = 0.0  # no complaint to this contact for so long
    call: str | None = None  # "call this number first" (or "" when no number is known)
    report_form: str | None = None  # the registry's inaccurate-contact form
    postmaster: str | None = None  # the domain whose postmaster@ gets one notice


def block_targets(
    contact: NetworkContact, addresses: Sequence[str], policy: Policy
) -> tuple[str, ...]:
    """The registry's networks that hold ``addresses``, none wider than the policy allows:
    a wider range is cut to the largest allowed prefix around each address. With no
    network from the lookup, the addresses themselves."""
    networks = []
    for text in (contact.network or "").split(","):
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            continue
    targets: list[str] = []
    for text in addresses:
        address = ipaddress.ip_address(text)
        largest = policy.largest_block_ipv4 if address.version == 4 else policy.largest_block_ipv6
        holding = next((n for n in networks if n.version == address.version and address in n), None)
        if holding is None:
            target = str(address)
        elif holding.prefixlen < largest:
            target = str(ipaddress.ip_network(f"{address}/{largest}", strict=False))
        else:
            target = str(holding)
        if target not in targets:
            targets.append(target)
    return tuple(targets)


def escalate(
    contact: NetworkContact,
    addresses: Sequence[str],
    policy: Policy,
    *,
    cause: str,
    full: bool = False,
    bounced: str | None = None,
) -> Escalation:
    """What to do about an unreachable ``contact``: no contact, or two bounces of separate
    complaints. ``full``: both said the mailbox is full, which escalates like a dead contact
    except that no postmaster is told its mailbox is broken. ``bounced`` is the mailbox that
    bounced, if any."""
    call_first = contact.country is not None and contact.country in policy.call_first
    block = ()
    if not call_first and policy.dead_contact_block:
        block = block_targets(contact, addresses, policy)
    postmaster = None
    if bounced and policy.postmaster_notice and not full:
        postmaster = email_domain(bounced)
    return Escalation(
        reason=f"abuse mailbox full again ({cause})" if full else f"abuse contact dead ({cause})",
        block=block,
        block_for=policy.dead_contact_block if block else 0.0,
        pause_contact_for=policy.dead_contact_block or policy.mailbox_full_pause,
        call=(contact.abuse_phone or "") if call_first else None,
        report_form=INACCURACY_FORMS.get(contact.registry or ""),
        postmaster=postmaster,
    )
