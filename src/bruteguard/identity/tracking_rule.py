"""The nftables rule that makes the kernel track connections to the jails' ports.

Conntrack only follows a network namespace's connections once some rule needs it; most
firewalls already do (``ct state established accept``), but a host with no such rule would
give the identity stage no events at all. So the daemon owns one table,
``inet bruteguard_conntrack``, and never touches any other (bans live in
``inet bruteguard``): one base chain ``input`` (hook input, priority ``filter - 2``, policy
accept, so it only watches) with one rule that counts new connections::

    tcp dport { 21, 22 } ct state new counter

Its ``ct`` expression is what switches tracking on. ``setup`` rebuilds the chain in one
``nft -f -`` transaction; ``teardown`` deletes the table in another.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from bruteguard.enforce.nftables import run_nft
from bruteguard.errors import EnforcerError

__all__ = ["TABLE", "TrackingRule"]

TABLE = "bruteguard_conntrack"


class TrackingRule:
    """The ``inet bruteguard_conntrack`` table.

    ``argv_prefix`` is put before the nft argv (``["ip", "netns", "exec", "NS"]`` targets
    a namespace), as for ``NftablesEnforcer``; ``nft`` names the binary.
    """

    def __init__(
        self, *, nft: str = "nft", argv_prefix: Sequence[str] = (), timeout: float = 60.0
    ) -> None:
        self.nft = nft
        self.argv_prefix = tuple(argv_prefix)
        self.timeout = timeout

    def script(self, ports: Collection[int]) -> str:
        """The ``nft -f`` script ``setup`` applies (one transaction)."""
        checked = sorted(set(map(_check_port, ports)))
        table = f"inet {TABLE}"
        lines = [
            f"add table {table}",
            f"add chain {table} input"
            " { type filter hook input priority filter - 2; policy accept; }",
            f"flush chain {table} input",
        ]
        if checked:
            lines.append(
                f"add rule {table} input tcp dport {{ {', '.join(map(str, checked))} }}"
                " ct state new counter"
            )
        return "\n".join(lines) + "\n"

    def setup(self, ports: Collection[int]) -> None:
        """Create the table if missing and make its rule watch exactly ``ports``
        (idempotent: a reload with other ports replaces the rule)."""
        self._apply(self.script(ports))

    def teardown(self) -> None:
        """Delete ``inet bruteguard_conntrack`` and nothing else; fine if it is gone."""
        self._apply(f"add table inet {TABLE}\ndelete table inet {TABLE}\n")

    def _apply(self, script: str) -> None:
        run_nft(self.argv_prefix, self.nft, ["-f", "-"], script, self.timeout)


def _check_port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise EnforcerError(f"{port!r} is not a port number")
    return port
