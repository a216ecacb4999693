"""The findings about services that may log a client's hostname instead of its address,
and how bruteguard then attributes such a line (``ATTRIBUTION``)."""

from __future__ import annotations

from dataclasses import dataclass

from bruteguard.config import Config, JailConfig
from bruteguard.doctor.findings import Finding
from bruteguard.sshd_config import SshdSettings

__all__ = ["ATTRIBUTION", "NAME_LOGGING", "NameLogging", "check_names"]


@dataclass(frozen=True)
class NameLogging:
    """A service whose log lines may carry the client's name instead of its address."""

    service: str
    when: str
    fix: str


NAME_LOGGING: dict[str, NameLogging] = {
    "sshd": NameLogging(
        "sshd",
        "in pam's rhost= when UseDNS is yes (sshd's own lines keep the address)",
        "UseDNS no in /etc/ssh/sshd_config",
    ),
    "pure-ftpd": NameLogging(
        "pure-ftpd",
        "unless it is started with -H (DontResolve yes)",
        "DontResolve yes (pure-ftpd -H)",
    ),
    "proftpd": NameLogging(
        "proftpd",
        "with UseReverseDNS on, its default",
        "UseReverseDNS off in proftpd.conf",
    ),
}

ATTRIBUTION = (
    "bruteguard ties such a name to the connection it came from, never to DNS alone: the "
    "peers connected to the service's ports in the socket table at the moment the line "
    "arrives, and the kernel firewall log of new connections; a PTR lookup of those "
    "connected candidates only tells them apart. A failure it cannot tie to one connection "
    "bans no one and is shown as unattributed in bruteguard status"
)


def check_names(config: Config, settings: SshdSettings | None) -> list[Finding]:
    """For each enabled jail of a service that may log names: does it, and what then."""
    return [
        _names_finding(jail, NAME_LOGGING[jail.filter], settings)
        for jail in config.enabled_jails()
        if jail.filter in NAME_LOGGING
    ]


def _names_finding(jail: JailConfig, names: NameLogging, settings: SshdSettings | None) -> Finding:
    check = f"names.{jail.name}"
    if jail.filter == "sshd" and settings is not None:
        if settings.get("usedns") != "yes":
            return Finding(
                check=check, status="ok", detail="sshd logs addresses, not names (UseDNS no)"
            )
        detail = "sshd has UseDNS yes: pam's rhost= carries client names"
    else:
        detail = f"{names.service} may log client names instead of addresses {names.when}"
    return Finding(
        check=check,
        status="advice",
        detail=f"{detail}. {ATTRIBUTION}",
        advice=f"turn name resolution off: {names.fix}",
    )
