"""The signature catalogue: one entry per service filter, the single source of them all."""

from dataclasses import dataclass

from bruteguard.match.signature import Signature
from bruteguard.match.signatures import pureftpd, sshd

__all__ = ["FILTERS", "Filter", "get_filter"]


@dataclass(frozen=True)
class Filter:
    """A service's messages, and the program names whose lines may carry them.

    ``breakin`` messages say something is odd about the client (sshd: its reverse DNS is
    broken) without being a failed login: they count only for jails that give them a weight.
    ``ptr_hosts``: the service writes the client's PTR text where the address goes (when its
    name resolution is on), so even an address there is a claim: the daemon checks it
    against real connections (``identity``), as it does names.
    """

    name: str
    programs: tuple[str, ...]
    signatures: tuple[Signature, ...]
    breakin: tuple[Signature, ...] = ()
    ptr_hosts: bool = False


FILTERS: dict[str, Filter] = {
    "sshd": Filter("sshd", sshd.PROGRAMS, sshd.SIGNATURES, sshd.BREAKIN),
    # pure-ftpd without -H logs getnameinfo's PTR text in the address's place.
    "pure-ftpd": Filter("pure-ftpd", pureftpd.PROGRAMS, pureftpd.SIGNATURES, ptr_hosts=True),
}


def get_filter(name: str) -> Filter:
    """The built-in filter ``name``; KeyError lists the ones there are."""
    try:
        return FILTERS[name]
    except KeyError:
        known = ", ".join(sorted(FILTERS))
        raise KeyError(f"unknown filter {name!r} (built-in filters: {known})") from None
