"""The signature catalogue: one entry per service filter, the single source of them all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bruteguard.match.signature import SYSLOG, Frame, Signature
from bruteguard.match.signatures import (
    apache,
    courier,
    dovecot,
    exim,
    frames,
    gitea,
    gitlab,
    grafana,
    kernel,
    mysql,
    nginx,
    plesk,
    postfix,
    proftpd,
    pureftpd,
    roundcube,
    scanner,
    sshd,
    vsftpd,
    wordpress,
)

__all__ = ["FILTERS", "Filter", "HostNames", "get_filter"]


def _as_written(name: str) -> str:
    return name


@dataclass(frozen=True)
class HostNames:
    """How a service treats a client's name, for tying a named failure to its connection.

    ``resolves_within``: seconds after the handshake the service may ask DNS for the
    client's PTR (pure-ftpd asks at once; sshd when authentication starts, within
    LoginGraceTime). ``log_delay``: seconds after the client's connection ends that the
    service may still write a failure about it (pure-ftpd sleeps up to 21 s first).
    ``written``: what the service makes of a PTR name before writing it.
    """

    resolves_within: float = 120.0
    log_delay: float = 30.0
    written: Callable[[str], str] = _as_written


@dataclass(frozen=True)
class Filter:
    """A service's messages, and the program names whose lines may carry them.

    ``breakin`` messages say something is odd about the client (sshd: its reverse DNS is
    broken) without being a failed login: they count only for jails that give them a weight.
    ``ptr_hosts``: the service writes the client's PTR text where the address goes (when its
    name resolution is on), so even an address there is a claim: the daemon checks it
    against real connections (``identity``), as it does names. ``host_names``: what the
    identity stage needs to know of how the service names its clients.
    """

    name: str
    programs: tuple[str, ...]
    signatures: tuple[Signature, ...]
    breakin: tuple[Signature, ...] = ()
    ptr_hosts: bool = False
    host_names: HostNames = HostNames()
    frame: Frame = SYSLOG
    variants: tuple[Filter, ...] = ()

    def __post_init__(self) -> None:
        if bool(self.programs) != self.frame.programs:
            raise ValueError(f"filter {self.name}: program names go with a syslog-style frame")

    def forms(self) -> list[Filter]:
        """This filter and its variants (the same service's messages in other formats)."""
        found = [self]
        for variant in self.variants:
            found += variant.forms()
        return found


FILTERS: dict[str, Filter] = {
    "sshd": Filter("sshd", sshd.PROGRAMS, sshd.SIGNATURES, sshd.BREAKIN),
    # Connections that never tried a password: scanners and floods, for a stricter jail.
    "sshd-ddos": Filter("sshd-ddos", sshd.PROGRAMS, sshd.PREAUTH_NOISE),
    # pure-ftpd without -H logs getnameinfo's PTR text in the address's place.
    "pure-ftpd": Filter(
        "pure-ftpd",
        pureftpd.PROGRAMS,
        pureftpd.SIGNATURES,
        ptr_hosts=True,
        host_names=HostNames(pureftpd.RESOLVES_WITHIN, pureftpd.LOG_DELAY, pureftpd.as_written),
    ),
    # FTP: vsftpd's own log or syslog; proftpd's SystemLog or syslog (the address in
    # brackets, never the PTR name before it).
    "vsftpd": Filter(
        "vsftpd",
        vsftpd.PROGRAMS,
        vsftpd.SIGNATURES,
        variants=(Filter("vsftpd", (), vsftpd.SIGNATURES, frame=vsftpd.FRAME),),
    ),
    "proftpd": Filter(
        "proftpd",
        proftpd.PROGRAMS,
        proftpd.SIGNATURES,
        variants=(Filter("proftpd", (), proftpd.SYSTEMLOG_SIGNATURES, frame=proftpd.SYSTEMLOG),),
    ),
    # Mail: SASL failures (postfix, exim), IMAP/POP3 logins (dovecot, courier).
    "postfix": Filter("postfix", postfix.PROGRAMS, postfix.SIGNATURES),
    "dovecot": Filter(
        "dovecot",
        dovecot.PROGRAMS,
        dovecot.SIGNATURES,
        variants=(Filter("dovecot", dovecot.LOG_PROGRAMS, dovecot.LOG_SIGNATURES),),
    ),
    "exim": Filter(
        "exim",
        exim.PROGRAMS,
        exim.SIGNATURES,
        variants=(Filter("exim", (), exim.SIGNATURES, frame=exim.MAINLOG),),
    ),
    "courier": Filter("courier", courier.PROGRAMS, courier.SIGNATURES),
    # Web servers: basic-auth failures in the error log, 401/403 floods in the access log.
    "nginx-http-auth": Filter(
        "nginx-http-auth", (), nginx.AUTH_SIGNATURES, frame=frames.NGINX_ERROR
    ),
    "nginx-http-flood": Filter("nginx-http-flood", (), nginx.FLOOD_SIGNATURES, frame=frames.ACCESS),
    "apache-auth": Filter("apache-auth", (), apache.AUTH_SIGNATURES, frame=apache.APACHE_ERROR),
    "apache-http-flood": Filter(
        "apache-http-flood", (), apache.FLOOD_SIGNATURES, frame=frames.ACCESS
    ),
    # Plesk: the panel's failed logins; sw-cp-server's (nginx) TLS handshakes no browser makes.
    "plesk-panel": Filter("plesk-panel", (), plesk.PANEL_SIGNATURES, frame=plesk.PANEL),
    "sw-cp-server": Filter("sw-cp-server", (), plesk.TLS_SIGNATURES, frame=frames.NGINX_ERROR),
    # MySQL/MariaDB "Access denied": through syslog/journal, or the server's own error log.
    "mysqld": Filter(
        "mysqld",
        mysql.PROGRAMS,
        mysql.SYSLOG_SIGNATURES,
        variants=(
            Filter("mysqld", (), mysql.SIGNATURES, frame=mysql.MARIADB),
            Filter("mysqld", (), mysql.SIGNATURES, frame=mysql.MYSQL),
            Filter("mysqld", (), mysql.SIGNATURES, frame=mysql.MYSQL_OLD),
        ),
    ),
    # Web applications: Gitea/Forgejo (own log or journal), GitLab's JSON logs, Grafana
    # (logfmt file or journal), Roundcube (its log files or syslog).
    "gitea": Filter(
        "gitea",
        gitea.PROGRAMS,
        gitea.SYSLOG_SIGNATURES,
        variants=(Filter("gitea", (), gitea.SIGNATURES, frame=gitea.FRAME),),
    ),
    "gitlab": Filter("gitlab", (), gitlab.SIGNATURES, frame=gitlab.JSON),
    "grafana": Filter(
        "grafana",
        grafana.PROGRAMS,
        grafana.SYSLOG_SIGNATURES,
        variants=(Filter("grafana", (), grafana.SIGNATURES, frame=grafana.FRAME),),
    ),
    "roundcube": Filter(
        "roundcube",
        roundcube.PROGRAMS,
        roundcube.SYSLOG_SIGNATURES,
        variants=(Filter("roundcube", (), roundcube.SIGNATURES, frame=roundcube.FRAME),),
    ),
    # WordPress: failed logins as the access log shows them, and the WP fail2ban plugin.
    "wordpress": Filter("wordpress", (), wordpress.ACCESS_SIGNATURES, frame=frames.ACCESS),
    "wp-fail2ban": Filter("wp-fail2ban", wordpress.PLUGIN_PROGRAMS, wordpress.PLUGIN_SIGNATURES),
    # Vulnerability scanners: 404s on well-known probe paths (access logs).
    "web-scanner": Filter("web-scanner", (), scanner.SIGNATURES, frame=frames.ACCESS),
    # Packets a firewall rule logged and dropped: port scans, and evidence for identity.
    "kernel-firewall": Filter("kernel-firewall", kernel.PROGRAMS, kernel.SIGNATURES),
}


def get_filter(name: str) -> Filter:
    """The built-in filter ``name``; KeyError lists the ones there are."""
    try:
        return FILTERS[name]
    except KeyError:
        known = ", ".join(sorted(FILTERS))
        raise KeyError(f"unknown filter {name!r} (built-in filters: {known})") from None
