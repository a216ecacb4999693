"""The address written in a line, normalised: what a firewall needs.

``address_from_log`` turns the ``<HOST>`` text of a line into the canonical address a
firewall needs: IPv4-mapped IPv6 (``::ffff:198.51.100.7``) is the IPv4 address, IPv6 is
compressed, brackets and zone ids are dropped. Text that is not an address (a hostname that
sshd with ``UseDNS yes`` or pam's ``rhost=`` wrote) yields ``None``; such lines are counted
as *unattributed* and must be tied to a real connection before anyone is banned for them.
"""

import ipaddress
import socket

__all__ = ["address_from_log", "canonical_address", "canonical_target"]

_IPV4_MAPPED = bytes(10) + b"\xff\xff"
_IPV4_COMPATIBLE = bytes(12)  # the deprecated ::a.b.c.d form
_MAX_LENGTH = 64  # bracketed IPv6 with an embedded IPv4 and a zone id fits; junk doesn't


def canonical_address(text: str) -> str | None:
    """The canonical form of an address, or None if ``text`` is not an address."""
    text = text.strip()
    if len(text) > _MAX_LENGTH:
        return None
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.partition("%")[0]  # fe80::1%eth0: the zone is local detail
    # inet_pton is strict (four decimal parts without leading zeros, or IPv6) and fast: a
    # replay meets tens of thousands of distinct addresses.
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        packed = socket.inet_pton(family, text)
    except (OSError, ValueError):
        return None
    if family == socket.AF_INET:
        return text
    if packed[:12] == _IPV4_MAPPED:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    if packed[:12] == _IPV4_COMPATIBLE:  # inet_ntop would write "::192.0.2.1"
        return str(ipaddress.IPv6Address(packed))
    # RFC 5952, as nft and the store write it (glibc's inet_ntop writes it too, at a tenth
    # of ipaddress's cost: IPv6 attackers rotate through many addresses).
    return socket.inet_ntop(socket.AF_INET6, packed)


def address_from_log(raw: bytes) -> str | None:
    """The canonical address of a line's raw ``<HOST>`` bytes, or None. Uncached: the
    compiled matcher keeps the answers for the texts it meets."""
    if len(raw) > _MAX_LENGTH:  # don't decode megabytes of junk to find out
        return None
    return canonical_address(raw.decode("ascii", "replace"))


def canonical_target(text: str) -> str | None:
    """An address or a CIDR network as bans store it, or None if ``text`` is neither.

    A network is written from its first address (``198.51.100.7/24`` → ``198.51.100.0/24``),
    IPv4-mapped IPv6 as IPv4, and a full-length prefix (/32, /128) as the plain address.
    """
    text = text.strip()
    if "/" not in text:
        return canonical_address(text)
    if len(text) > _MAX_LENGTH:
        return None
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if network.version == 6 and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)
