"""The signature catalogue: one entry per service filter, the single source of them all."""

from dataclasses import dataclass

from bruteguard.match.signature import Signature
from bruteguard.match.signatures import sshd

__all__ = ["FILTERS", "Filter", "get_filter"]


@dataclass(frozen=True)
class Filter:
    """A service's messages, and the program names whose lines may carry them."""

    name: str
    programs: tuple[str, ...]
    signatures: tuple[Signature, ...]


FILTERS: dict[str, Filter] = {
    "sshd": Filter("sshd", sshd.PROGRAMS, sshd.SIGNATURES),
}


def get_filter(name: str) -> Filter:
    """The built-in filter ``name``; KeyError lists the ones there are."""
    try:
        return FILTERS[name]
    except KeyError:
        known = ", ".join(sorted(FILTERS))
        raise KeyError(f"unknown filter {name!r} (built-in filters: {known})") from None
