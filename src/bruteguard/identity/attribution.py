"""A failure that names a host → the one real connection it belongs to, or nobody.

Services with name resolution on (pure-ftpd, proftpd, pam's ``rhost=`` under sshd's
``UseDNS yes``) write the client's PTR name instead of its address. That name is chosen by
whoever controls the client's reverse zone: it can have no A record (tools that resolve it
skip the line, and the attacker guesses for ever), or be an innocent host's own name (tools
that resolve it ban the victim). So the answer comes from the connections the kernel saw,
and DNS only ever removes candidates:

1. **Candidates** are the *real* connections (handshake completed) to the jail's ports that
   were alive at some moment between the service's worst-case logging delay before the line
   and the line itself (``connections.ConnectionBook``). A forged SYN is never one; a
   client that reset its connection before the line is still one.
2. Each candidate **fits** the name, is **excluded**, or is **unknown**
   (``names.PtrHistory.fit``): only a PTR that is the logged name makes a fit; forward (A)
   records are never asked, so a name pointing at an innocent host proves nothing.
3. **Exactly one fitting address and no unknown one**: it is the client. Anything else is
   *unattributed*, with the candidates and the reason, for ``status``: two addresses with
   the same PTR, an address whose PTR could not be checked, evidence with a gap.

No line is attributed from other lines. Taking the one address present in every line of a
name ("convergence") assumes those lines came from one host; an attacker with two hosts
that copy an innocent's PTR while the innocent stays connected makes that address the
innocent's. Only a line's own evidence is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bruteguard.identity.address import canonical_address
from bruteguard.identity.connections import Connection
from bruteguard.identity.names import Fit, PtrHistory

__all__ = [
    "ENDED_WITH_LINE",
    "MAX_CANDIDATES",
    "Attribution",
    "attribute",
    "attribute_address",
    "attribute_ending",
]

# More real connections than this in one line's window: too many PTR lookups; ambiguous.
MAX_CANDIDATES = 32
# A line stamped to the second is written in [T, T+1); the connection it ends closes within
# milliseconds of it. (When bruteguard learnt of a close is no bound on when it happened:
# the connection book keeps the span between two reads.)
ENDED_WITH_LINE = (-0.2, 1.3)


@dataclass(frozen=True, slots=True)
class Attribution:
    """The verdict on one named failure: ``address`` None means unattributed."""

    name: str
    address: str | None
    method: str  # how it was decided, or why not
    candidates: tuple[str, ...]


def attribute(
    name: str,
    connections: Sequence[Connection],
    history: PtrHistory,
    now: float,
    *,
    complete: bool,
    min_ttl: float,
    sanitize: Callable[[str], str] = str,
) -> Attribution:
    """The verdict for a failure logged under ``name`` (see the module's rules).

    ``connections`` are the real ones alive in the line's window; ``complete`` says whether
    every connection of that window is known; ``history`` must already hold the PTR
    observations of their addresses.
    """
    addresses = tuple(sorted({c.address for c in connections}))
    if not complete:
        return Attribution(name, None, "connection evidence incomplete at that time", addresses)
    if not addresses:
        return Attribution(name, None, "no real connection to the service's ports", addresses)
    if len(addresses) > MAX_CANDIDATES:
        return Attribution(name, None, "ambiguous: too many connections", addresses)
    verdicts: dict[str, set[Fit]] = {}
    for connection in connections:
        fit = history.fit(
            connection.address,
            name,
            connection.opened,
            now,
            min_ttl=min_ttl,
            sanitize=sanitize,
        )
        verdicts.setdefault(connection.address, set()).add(fit)
    fitting = [a for a in addresses if Fit.FITS in verdicts[a]]
    unknown = [a for a in addresses if a not in fitting and Fit.UNKNOWN in verdicts[a]]
    if len(fitting) == 1 and not unknown:
        return Attribution(name, fitting[0], "the only real connection with that PTR", addresses)
    if len(fitting) > 1:
        why = "ambiguous: several real connections have that PTR"
    elif fitting:
        why = "ambiguous: another real connection's PTR could not be trusted"
    elif unknown:
        why = "no real connection is known to have that PTR (some could not be checked)"
    else:
        why = "no real connection has that PTR"
    return Attribution(name, None, why, addresses)


def attribute_ending(
    connections: Sequence[Connection], moment: float, *, complete: bool
) -> Attribution:
    """The verdict for a line that names no client and is written as its connection ends
    (a failed TLS handshake): the one address whose real connection ended with the line.

    ``connections`` are the real ones alive around ``moment``; any other that may have ended
    then (a browser closing a keep-alive connection in the same second, or one whose close
    bruteguard only read later) makes it ambiguous.
    """
    addresses = tuple(sorted({c.address for c in connections}))
    if not complete:
        return Attribution("", None, "connection evidence incomplete at that time", addresses)
    before, after = ENDED_WITH_LINE
    ended = sorted(
        {c.address for c in connections if c.may_have_ended_during(moment + before, moment + after)}
    )
    if len(ended) == 1:
        return Attribution("", ended[0], "the only real connection that ended with it", addresses)
    if ended:
        return Attribution("", None, "ambiguous: several connections ended then", addresses)
    return Attribution("", None, "no real connection ended with it", addresses)


def attribute_address(
    claimed: str, connections: Sequence[Connection], *, complete: bool
) -> Attribution:
    """The verdict for a failure logged under an address the service may have been *told*
    (cockpit behind ``ForwardedForHeader`` writes the header's last item, which a client
    that connects directly sets itself): the address counts only when it is a real
    connection's to the service's ports at that time. A claimed address with no connection
    of its own is the client's text (or a proxied client's, whom this host's firewall could
    not stop anyway): nobody is banned for it, and no other candidate is ever taken."""
    addresses = tuple(sorted({c.address for c in connections}))
    if not complete:
        return Attribution(claimed, None, "connection evidence incomplete at that time", addresses)
    wanted = canonical_address(claimed)
    if wanted is None:
        return Attribution(claimed, None, "not an address", addresses)
    if wanted in addresses:
        return Attribution(claimed, wanted, "a real connection from that address", addresses)
    why = "no real connection from that address (told by the client or a proxy?)"
    return Attribution(claimed, None, why, addresses)
