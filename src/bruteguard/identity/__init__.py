"""Who the client really was: the address written in the line; a hostname only when it can
be tied to a real connection whose PTR is that name, never DNS alone.

* ``address``        — the address text of a line, normalised (``canonical_address``).
* ``conntrack``      — the kernel's connection tracking events and table (netlink).
* ``tracking_rule``  — the nftables rule that switches tracking on for the jails' ports.
* ``connections``    — lifetimes of the real connections to the jails' ports.
* ``resolver``       — asynchronous PTR lookups (dnspython), kept with their TTL.
* ``names``          — what those answers say about a logged name: fits, excluded, unknown.
* ``attribution``    — a hostname failure → the one real connection it belongs to, or none.
* ``stage``          — the daemon's wiring of all of the above.
"""

from bruteguard.identity.address import address_from_log, canonical_address, canonical_target

__all__ = ["address_from_log", "canonical_address", "canonical_target"]
