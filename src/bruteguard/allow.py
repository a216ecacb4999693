"""Allow lists that win everywhere: who is never banned, by any jail, network ban, fleet ban
or blocklist.

Four kinds of entry make the list, all ending as networks:

* ``ignoreip`` addresses and CIDRs (as fail2ban's), and DNS names, re-resolved every
  ``allow_refresh`` (a dynamic-DNS name follows its admin's changing address);
* ``ignoreip_file`` files, one address or CIDR a line (``#`` comments), re-read as often;
* the admin's own SSH client address when ``allow_admin`` is on: ``SSH_CONNECTION`` of the
  process (``bruteguard run`` started from an SSH session) and the remote addresses of the
  sessions ``who`` lists, read at start and at every refresh.

A name that does not resolve, or a file that cannot be read, keeps what it gave last time
(an outage must not drop an admin from the list) and says so in the log.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from bruteguard.identity import canonical_address
from bruteguard.model import Network

if TYPE_CHECKING:
    import logging

__all__ = [
    "AllowList",
    "as_network",
    "is_allow_name",
    "read_allow_file",
    "split_allow",
    "ssh_client_addresses",
]


def _log() -> logging.Logger:
    """This module's logger. logging (and subprocess, for ``who``) are imported when first
    needed: every command loads the config, which reads allow lists, and a scan logs nothing."""
    import logging

    return logging.getLogger(__name__)


# A DNS name: dot-separated labels of letters, digits and inner hyphens, one letter at least
# somewhere (so "192.0.2" is no name but a mistyped address).
_NAME = re.compile(
    r"\A(?=.*[A-Za-z])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?\Z"
)
_FILE_LIMIT = 1_000_000  # entries read from one file: a list, not a database
_WHO_PAREN = re.compile(r"\(([0-9A-Fa-f:.]+)\)\s*\Z")

Resolver = Callable[[str], Iterable[str]]


def is_allow_name(text: str) -> bool:
    """Whether ``text`` is a DNS name (not an address or CIDR)."""
    return len(text) <= 253 and bool(_NAME.match(text))


def as_network(text: str) -> Network | None:
    """``text`` (an address or CIDR) as a network, IPv4-mapped IPv6 made IPv4 (addresses
    reach the detector canonical, so a mapped entry must cover the IPv4 form); else None."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    mapped = network.network_address.ipv4_mapped if network.version == 6 else None
    if mapped is not None and network.prefixlen >= 96:
        network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def split_allow(texts: Iterable[str], key: str = "ignoreip") -> tuple[list[Network], list[str]]:
    """``texts`` as (networks, DNS names); ValueError names an entry that is neither."""
    networks: list[Network] = []
    names: list[str] = []
    for text in texts:
        network = as_network(text)
        if network is not None:
            networks.append(network)
        elif is_allow_name(text.strip()):
            names.append(text.strip().rstrip(".").lower())
        else:
            raise ValueError(f"{key}: {text!r} is not an IP address, CIDR network or DNS name")
    return networks, names


def read_allow_file(path: str) -> list[Network]:
    """The networks listed in ``path``; OSError if unreadable, ValueError names a bad line."""
    networks: list[Network] = []
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            text = line.partition("#")[0].strip()
            if not text:
                continue
            network = as_network(text)
            if network is None:
                raise ValueError(f"{path}:{number}: not an IP address or CIDR network")
            networks.append(network)
            if len(networks) > _FILE_LIMIT:
                raise ValueError(f"{path}: more than {_FILE_LIMIT} entries")
    return networks


def _resolve(name: str) -> list[str]:
    found = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]) for *_, sockaddr in found]


def ssh_client_addresses(
    environ: Mapping[str, str] = os.environ, who: Sequence[str] | None = ("who", "--ips")
) -> list[str]:
    """The SSH client addresses of this process's session (``SSH_CONNECTION``,
    ``SSH_CLIENT``) and, with ``who``, of every login session with a remote address."""
    found: list[str] = []
    for variable in ("SSH_CONNECTION", "SSH_CLIENT"):
        first = environ.get(variable, "").split(" ", 1)[0]
        address = canonical_address(first) if first else None
        if address is not None:
            found.append(address)
    if who:
        import subprocess

        try:
            result = subprocess.run(
                list(who), capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            result = None
        for line in result.stdout.splitlines() if result is not None else ():
            match = _WHO_PAREN.search(line)
            address = canonical_address(match[1]) if match else None
            if address is not None:
                found.append(address)
    return sorted(set(found))


class AllowList:
    """The allow list of one configuration, as networks; ``refresh`` re-reads what moves
    (names, files, sessions) and says whether anything changed."""

    def __init__(
        self,
        entries: Iterable[str],
        files: Sequence[str] = (),
        admin: bool = False,
        *,
        resolve: Resolver = _resolve,
        sessions: Callable[[], list[str]] = ssh_client_addresses,
    ) -> None:
        self._static, self._names = split_allow(entries)
        self._files = tuple(files)
        self._admin = admin
        self._resolve = resolve
        self._sessions = sessions
        self._resolved: dict[str, list[Network]] = {}
        self._read: dict[str, list[Network]] = {}
        self.admin_addresses: list[str] = []
        self.networks: tuple[Network, ...] = tuple(self._static)

    @property
    def texts(self) -> list[str]:
        """The networks as CIDR text (how jails and the fleet take an ``ignoreip``)."""
        return [str(network) for network in self.networks]

    def refresh(self) -> bool:
        """Resolve the names, read the files and the admin's sessions again (blocking: run
        it in a thread); True if the list changed."""
        for name in self._names:
            try:
                found = [as_network(address) for address in self._resolve(name)]
                self._resolved[name] = [network for network in found if network is not None]
            except OSError as error:
                _log().warning("allow list: %s does not resolve (%s); kept as it was", name, error)
        for path in self._files:
            try:
                self._read[path] = read_allow_file(path)
            except (OSError, ValueError) as error:
                _log().warning("allow list: %s not read (%s); kept as it was", path, error)
        if self._admin:
            self.admin_addresses = self._sessions()
        admin = [as_network(address) for address in self.admin_addresses]
        every = [
            *self._static,
            *(network for found in self._resolved.values() for network in found),
            *(network for found in self._read.values() for network in found),
            *(network for network in admin if network is not None),
        ]
        networks = tuple(
            sorted(set(every), key=lambda network: (network.version, network.network_address))
        )
        changed, self.networks = networks != self.networks, networks
        return changed

    def covering(self, target: str) -> Network | None:
        """The entry that an address or network ``target`` overlaps (so banning it would
        cover an allowed address), or None."""
        wanted = as_network(target)
        if wanted is None:
            return None
        for network in self.networks:
            if network.version == wanted.version and network.overlaps(wanted):
                return network
        return None
