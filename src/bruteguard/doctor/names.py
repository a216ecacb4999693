"""The findings about services that may log a client's hostname instead of its address,
how bruteguard then attributes such a line (``ATTRIBUTION``), and whether it can here:
connection tracking readable, a resolver whose cache the services share."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from bruteguard.config import Config, JailConfig
from bruteguard.doctor.findings import Finding, not_checked, running_as_root
from bruteguard.errors import BruteguardError
from bruteguard.identity.conntrack import ConntrackEvents
from bruteguard.match.imported import builtin_filter, is_imported
from bruteguard.sshd_config import SshdSettings

__all__ = ["ATTRIBUTION", "NAME_LOGGING", "NameLogging", "check_identity", "check_names"]


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
    "bruteguard ties such a name to a real connection, never to DNS alone: the kernel's "
    "connection tracking gives every connection to the service's ports that completed its "
    "handshake, with its start and end, and the one whose PTR is the logged name is the "
    "client. A failure it cannot tie to exactly one connection bans no one and is shown as "
    "unattributed in bruteguard status"
)
_RESOLV_CONF = Path("/etc/resolv.conf")


def check_names(config: Config, settings: SshdSettings | None) -> list[Finding]:
    """For each enabled jail of a service that may log names: does it, and what then."""
    return [
        _names_finding(jail, NAME_LOGGING[jail.filter], settings)
        for jail in config.enabled_jails()
        if jail.filter in NAME_LOGGING
    ]


def _may_log_names(jail: JailConfig) -> bool:
    service = builtin_filter(jail.filter)
    return (
        jail.filter in NAME_LOGGING
        or is_imported(jail.filter)
        or (service is not None and service.ptr_hosts)
    )


def check_identity(config: Config, resolv_conf: Path = _RESOLV_CONF) -> list[Finding]:
    """Where a service may log names: can connection tracking be read, and is the resolver
    one whose cache the services share (docs/identity.md, "The assumptions")."""
    jails = [j for j in config.enabled_jails() if _may_log_names(j)]
    if not jails:
        return []
    findings = [_conntrack_finding(config, jails)]
    if not all(_addresses_only(j) for j in jails):  # cockpit's claims need no DNS
        findings.append(_resolver_finding(config, resolv_conf))
    return findings


def _addresses_only(jail: JailConfig) -> bool:
    """A service whose hosts are addresses it may have been told, never names."""
    service = builtin_filter(jail.filter)
    return service is not None and service.host_names.addresses_only


def _conntrack_finding(config: Config, jails: list[JailConfig]) -> Finding:
    check = "identity.conntrack"
    lost = "failures logged with a name would never be attributed"
    if not config.identity.conntrack:
        return Finding(
            check=check, status="problem", detail=f"identity.conntrack is off: {lost}",
            advice="set conntrack = true in [identity]",
        )  # fmt: skip
    if not running_as_root():
        return not_checked(check, "reading connection tracking events needs root")
    events = ConntrackEvents(sorted({port for jail in jails for port in jail.ports}))
    try:
        events.open()
    except BruteguardError as error:
        return Finding(
            check=check, status="problem", detail=f"{error}: {lost}",
            advice="load nf_conntrack_netlink, or run bruteguard where it may read it",
        )  # fmt: skip
    finally:
        events.close()
    return Finding(check=check, status="ok", detail="connection tracking events can be read")


def _resolver_finding(config: Config, resolv_conf: Path) -> Finding:
    check = "identity.resolver"
    share = (
        "PTR answers must come from the resolver the services use, so that its cache gives "
        "them the answer bruteguard saw"
    )
    if config.identity.nameservers:
        servers = ", ".join(config.identity.nameservers)
        return Finding(
            check=check, status="advice", detail=f"identity.nameservers is {servers}. {share}",
            advice="leave identity.nameservers empty unless the services use those servers",
        )  # fmt: skip
    try:
        lines = resolv_conf.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        return Finding(check=check, status="unknown", detail=f"{resolv_conf}: {error.strerror}")
    servers = [line.split()[1] for line in lines if line.split()[:1] == ["nameserver"]
               and len(line.split()) > 1]  # fmt: skip
    if servers and all(_on_this_host(server) for server in servers):
        return Finding(
            check=check, status="ok",
            detail=f"a resolver on this host ({', '.join(servers)}), shared with the services",
        )  # fmt: skip
    return Finding(
        check=check, status="advice",
        detail=f"the resolver ({', '.join(servers) or 'none'}) is not on this host. {share}; "
        "a pool of remote resolvers may not share one cache",
        advice="run a local caching resolver (systemd-resolved, unbound or dnsmasq)",
    )  # fmt: skip


def _on_this_host(server: str) -> bool:
    try:
        return ipaddress.ip_address(server.split("%")[0]).is_loopback
    except ValueError:
        return False


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
