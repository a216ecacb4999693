"""The signature catalogue: one entry per service filter, the single source of them all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bruteguard.match.signature import SYSLOG, Frame, Signature
from bruteguard.match.signatures import (
    apache,
    cockpit,
    courier,
    cyrus,
    dovecot,
    dropbear,
    exim,
    frames,
    gitea,
    gitlab,
    grafana,
    kernel,
    mysql,
    named,
    nginx,
    nginx_mail,
    opensmtpd,
    openvpn,
    plesk,
    postfix,
    proftpd,
    proxmox,
    pureftpd,
    roundcube,
    samba,
    scanner,
    sendmail,
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
    ``ends_connection``: the service's address-less lines are written as the connection
    they are about ends (a failed TLS handshake): the one real connection that ended with
    such a line is its client. ``addresses_only``: the service never writes a name, but the
    address it writes may be one it was told (cockpit's ``ForwardedForHeader``): a line is
    tied to a real connection *from that address*, and DNS is never asked.
    """

    resolves_within: float = 120.0
    log_delay: float = 30.0
    written: Callable[[str], str] = _as_written
    ends_connection: bool = False
    addresses_only: bool = False


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
    # RedHat-era Linux-PAM wrote pam_unix's lines as "sshd(pam_unix)[pid]: …".
    "sshd": Filter(
        "sshd",
        sshd.PROGRAMS,
        sshd.SIGNATURES,
        sshd.BREAKIN,
        variants=(Filter("sshd", sshd.PAM_UNIX_PROGRAMS, sshd.PAM_UNIX_SIGNATURES),),
    ),
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
        (*vsftpd.SIGNATURES, *vsftpd.PAM_SIGNATURES),
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
    # Clients smtpd and postscreen refused (recipient probing, relay attempts, spamware).
    "postfix-reject": Filter("postfix-reject", postfix.REJECT_PROGRAMS, postfix.REJECT_SIGNATURES),
    "dovecot": Filter(
        "dovecot",
        dovecot.PROGRAMS,
        dovecot.SIGNATURES,
        variants=(
            Filter("dovecot", dovecot.LOG_PROGRAMS, dovecot.LOG_SIGNATURES),
            Filter("dovecot", dovecot.LOG_PROGRAMS, dovecot.LOG_SIGNATURES, frame=frames.MULTILOG),
        ),
    ),
    "exim": Filter(
        "exim",
        exim.PROGRAMS,
        exim.SIGNATURES,
        variants=(Filter("exim", (), exim.SIGNATURES, frame=exim.MAINLOG),),
    ),
    # Clients Exim refused or dropped (recipient probes, relay attempts, spamware).
    "exim-reject": Filter(
        "exim-reject",
        exim.PROGRAMS,
        exim.REJECT_SIGNATURES,
        variants=(Filter("exim-reject", (), exim.REJECT_SIGNATURES, frame=exim.MAINLOG),),
    ),
    "courier": Filter("courier", courier.PROGRAMS, courier.SIGNATURES),
    # Recipients Courier refused as unknown, relaying it refused.
    "courier-reject": Filter("courier-reject", courier.PROGRAMS, courier.REJECT_SIGNATURES),
    # Sendmail: SMTP AUTH failures and rude clients, "relay=NAME [ADDR]" (the bracket).
    "sendmail": Filter("sendmail", sendmail.PROGRAMS, sendmail.SIGNATURES),
    # Clients Sendmail refused (relay attempts, recipient probes, floods, EXPN/VRFY).
    "sendmail-reject": Filter("sendmail-reject", sendmail.PROGRAMS, sendmail.REJECT_SIGNATURES),
    # OpenSMTPD: the address on a session's "connected" line, its failures by session id.
    "opensmtpd": Filter("opensmtpd", opensmtpd.PROGRAMS, opensmtpd.SIGNATURES),
    # Cyrus: "badlogin: NAME [ADDR] …", the bracketed address (the name is PTR text).
    "cyrus-imap": Filter("cyrus-imap", cyrus.PROGRAMS, cyrus.SIGNATURES),
    # Web servers: basic-auth failures in the error log, 401/403 floods in the access log.
    "nginx-http-auth": Filter(
        "nginx-http-auth", (), nginx.AUTH_SIGNATURES, frame=frames.NGINX_ERROR
    ),
    "nginx-http-flood": Filter("nginx-http-flood", (), nginx.FLOOD_SIGNATURES, frame=frames.ACCESS),
    # Failed TLS handshakes no browser makes (plain HTTP, TLS_FALLBACK_SCSV probes…).
    "nginx-tls-probe": Filter(
        "nginx-tls-probe", (), nginx.TLS_SIGNATURES, frame=frames.NGINX_ERROR
    ),
    # nginx's mail proxy: logins its auth_http server refused (error log, level info).
    "nginx-mail": Filter("nginx-mail", (), nginx_mail.SIGNATURES, frame=frames.NGINX_ERROR),
    # Apache's error log, or syslog (ErrorLog syslog: the same messages without a stamp).
    "apache-auth": Filter(
        "apache-auth",
        (),
        apache.AUTH_SIGNATURES,
        frame=apache.APACHE_ERROR,
        variants=(Filter("apache-auth", apache.SYSLOG_PROGRAMS, apache.AUTH_SIGNATURES),),
    ),
    "apache-http-flood": Filter(
        "apache-http-flood", (), apache.FLOOD_SIGNATURES, frame=frames.ACCESS
    ),
    # Plesk: the panel's failed logins; sw-cp-server's (nginx) TLS handshakes no browser makes.
    "plesk-panel": Filter("plesk-panel", (), plesk.PANEL_SIGNATURES, frame=plesk.PANEL),
    "sw-cp-server": Filter(
        "sw-cp-server",
        (),
        nginx.TLS_SIGNATURES,
        frame=frames.NGINX_ERROR,
        # TLS failures end their connection: an old lighttpd's line without a client is
        # tied to the one connection that ended with it.
        host_names=HostNames(ends_connection=True),
        variants=(
            Filter(
                "sw-cp-server",
                (),
                (*plesk.LIGHTTPD_TLS, *plesk.LIGHTTPD_TLS_OLD),
                frame=plesk.LIGHTTPD_ERROR,
            ),
        ),
    ),
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
    # Remote access: dropbear (SSH) through syslog, or its -E stderr through the journal.
    "dropbear": Filter("dropbear", dropbear.PROGRAMS, dropbear.SIGNATURES),
    # Cockpit: pam_unix's line under cockpit-session. Its rhost may be a forwarded-for
    # header's text: live, it counts only as the peer of a real connection (identity).
    "cockpit": Filter(
        "cockpit",
        cockpit.PROGRAMS,
        cockpit.SIGNATURES,
        ptr_hosts=True,
        host_names=HostNames(log_delay=cockpit.LOG_DELAY, addresses_only=True),
    ),
    # Proxmox VE: pvedaemon's "authentication failure; rhost=…" (syslog or the journal).
    "proxmox": Filter("proxmox", proxmox.PROGRAMS, proxmox.SIGNATURES),
    # OpenVPN servers: syslog/journal, or its own log file (log-append).
    "openvpn": Filter(
        "openvpn",
        openvpn.PROGRAMS,
        openvpn.SIGNATURES,
        variants=(Filter("openvpn", (), openvpn.SIGNATURES, frame=openvpn.LOG),),
    ),
    # BIND's named: queries, zone transfers and updates its ACLs refused.
    "named-refused": Filter(
        "named-refused",
        named.PROGRAMS,
        named.SIGNATURES,
        variants=(
            Filter("named-refused", (), named.SIGNATURES, frame=named.LOG_FRAME),
            Filter("named-refused", (), named.SIGNATURES, frame=named.LOG_FRAME_ISO),
        ),
    ),
    # Samba's smbd: failed authentications from its auth audit, through syslog.
    "samba": Filter("samba", samba.PROGRAMS, samba.SIGNATURES),
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
    # Vulnerability scanners: 404s on well-known probe paths (access logs, or nginx's
    # error log).
    "web-scanner": Filter(
        "web-scanner",
        (),
        scanner.SIGNATURES,
        frame=frames.ACCESS,
        variants=(Filter("web-scanner", (), scanner.ERROR_SIGNATURES, frame=frames.NGINX_ERROR),),
    ),
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
