"""The small sections of the file: ``[store]``, ``[identity]``, ``[notify]``,
``[metrics]``, ``[report]`` and each ``[blocklists.NAME]``."""

from __future__ import annotations

import ipaddress

import msgspec

from bruteguard.bounds import (
    MAX_BAN,
    MAX_PORT,
    check_absolute,
    check_duration,
    check_range,
    split_listen,
)
from bruteguard.duration import Seconds

__all__ = [
    "DEFAULT_STORE",
    "BlocklistConfig",
    "IdentityConfig",
    "MetricsConfig",
    "NotifyConfig",
    "ReportConfig",
    "StoreConfig",
]

DEFAULT_STORE = "/var/lib/bruteguard/bruteguard.db"


class BlocklistConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A file of addresses and CIDR networks (one per line, ``#`` comments) blocked on every
    port for ``bantime`` from when it is loaded (start, reload, ``bruteguard block``)."""

    path: str
    bantime: Seconds = Seconds(30 * 86400)

    def __post_init__(self) -> None:
        check_absolute("path", self.path)
        check_duration("bantime", self.bantime, MAX_BAN)


class IdentityConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How a failure that names a host (not an address) is tied to a real connection.

    ``nameservers`` empty: the system's resolver, the one the services ask (docs/identity.md
    says why that matters). ``conntrack``: read the kernel's connection tracking events for
    the jails' ports (and install the ``inet bruteguard_conntrack`` rule that switches
    tracking on); off, named failures are never attributed.
    """

    nameservers: list[str] = []
    dns_port: int = 53
    dns_timeout: Seconds = Seconds(2)
    conntrack: bool = True

    def __post_init__(self) -> None:
        for server in self.nameservers:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise ValueError(f"nameservers: {server!r} is not an IP address") from None
        check_range("dns_port", self.dns_port, 1, MAX_PORT)
        if not 0 < self.dns_timeout <= 30:
            raise ValueError("dns_timeout: must be a positive duration of at most 30s")


class NotifyConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Tell the admin (apprise URLs: ``mailto://``, ``json://``, …; extra ``notify``)."""

    urls: list[str] = []
    bans: bool = True  # a message per ban (with the abuse lookup when the desk runs)
    abuse: bool = True  # a message per abuse-desk escalation (blocks, calls to make)


class StoreConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[store]``: where the ledger lives and how long its evidence is kept (docs/store.md).

    Failure lines are evidence (for reports and complaints) and the memory the detector is
    rebuilt from after a restart; bans are kept apart and never removed by these settings.
    """

    path: str = DEFAULT_STORE
    # Failures older than this are deleted (the longest log jail's findtime is always kept).
    keep_failures: Seconds = Seconds(30 * 86400)
    # The newest lines kept per address (never fewer than the largest maxretry).
    evidence_per_address: int = 1000

    def __post_init__(self) -> None:
        if not 3600 <= self.keep_failures <= 3650 * 86400:
            raise ValueError("keep_failures: must be 1h to 10 years")
        if not 10 <= self.evidence_per_address <= 1_000_000:
            raise ValueError("evidence_per_address: must be 10 to 1000000")


class MetricsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[metrics]``: Prometheus metrics (docs/metrics.md). Off unless ``listen`` is set;
    a non-loopback address must be asked for with ``public = true``: the numbers tell an
    attacker which of their addresses are banned and how far the logs lag."""

    listen: str = ""  # "127.0.0.1:9797", "[::1]:9797"; empty: no metrics
    public: bool = False

    def __post_init__(self) -> None:
        if not self.listen:
            return
        host, port = split_listen(self.listen)
        if not self.public and not ipaddress.ip_address(host).is_loopback:
            raise ValueError(
                f"listen: {host} is not a loopback address (set public = true to serve it)"
            )
        check_range("listen port", port, 1, 65535)


class ReportConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[report]``: the admin's MaxMind databases for countries and ASes in ``report
    --html`` (docs/report.md); empty: the data geoip2fast ships."""

    geoip_country: str = ""  # GeoLite2-Country.mmdb (or City)
    geoip_asn: str = ""  # GeoLite2-ASN.mmdb

    def __post_init__(self) -> None:
        for name in ("geoip_country", "geoip_asn"):
            if getattr(self, name):
                check_absolute(name, getattr(self, name))
