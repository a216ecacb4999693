"""Who the client really was: the address written in the line; a hostname only when it can
be tied to a real connection (socket table, kernel firewall log), never DNS alone.

* ``address``       — the address text of a line, normalised (``canonical_address``).
* ``socket_table``  — peers connected to a service's ports right now.
* ``firewall_log``  — new connections to a service's ports, from the kernel (nflog).
* ``resolver``      — asynchronous DNS with a cache (dnspython).
* ``attribution``   — a hostname failure → the one connected peer it belongs to, or none.
"""

from bruteguard.identity.address import address_from_log, canonical_address, canonical_target

__all__ = ["address_from_log", "canonical_address", "canonical_target"]
