"""Who the client really was: the address written in the line, normalised; never DNS alone.

``AddressBook.address`` turns the ``<HOST>`` text of a line into the canonical address a
firewall needs: IPv4-mapped IPv6 (``::ffff:198.51.100.7``) is the IPv4 address, IPv6 is
compressed, brackets and zone ids are dropped. Text that is not an address (a hostname that
sshd with ``UseDNS yes`` or pam's ``rhost=`` wrote) yields ``None``; such lines are counted
as *unattributed* and must be tied to a real connection before anyone is banned for them.
"""

import ipaddress

__all__ = ["AddressBook", "canonical_address", "is_never_banned"]

_CACHE_LIMIT = 200_000


def canonical_address(text: str) -> str | None:
    """The canonical form of an address, or None if ``text`` is not an address."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.partition("%")[0]  # fe80::1%eth0: the zone is local detail
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def is_never_banned(address: str) -> bool:
    """Loopback, unspecified and multicast addresses are never a client to ban."""
    parsed = ipaddress.ip_address(address)
    return parsed.is_loopback or parsed.is_unspecified or parsed.is_multicast


class AddressBook:
    """A bounded cache in front of ``canonical_address`` for the raw bytes of log lines."""

    def __init__(self) -> None:
        self._known: dict[bytes, str | None] = {}

    def address(self, raw: bytes) -> str | None:
        known = self._known
        if raw in known:
            return known[raw]
        if len(known) >= _CACHE_LIMIT:
            known.clear()
        address = canonical_address(raw.decode("ascii", "replace")) if len(raw) <= 64 else None
        known[raw] = address
        return address
