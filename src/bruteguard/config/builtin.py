"""The built-in jails: what each jail gets before the file says anything about it."""

from __future__ import annotations

from typing import Any

from bruteguard.config.jail import RECIDIVE

__all__ = ["AUTO", "BUILTIN_JAILS", "INSTALLED"]

_SSHD_JOURNAL = [
    "_SYSTEMD_UNIT=ssh.service",
    "_SYSTEMD_UNIT=sshd.service",
    "_COMM=sshd",
    "_COMM=sshd-session",
]

# ``enabled = "auto"``: the jail runs when one of its logpath files exists.
AUTO = "auto"
# A key of BUILTIN_JAILS tables only (never of a file's jail, nor written into the sample
# config): files that say the service is here (its binary, its own config). Never a
# directory: one under /var/log outlives the package that made it.
INSTALLED = "installed"

# Built-in jails: what a jail gets before the file says anything about it. A service's jail
# is "auto": on where its log is, off elsewhere.
BUILTIN_JAILS: dict[str, dict[str, Any]] = {
    "sshd": {
        "filter": "sshd",
        "port": ["ssh"],
        "journalmatch": _SSHD_JOURNAL,
    },
    # sshd connections that never tried a password (no identification string, failed key
    # exchange, pre-auth timeouts): scanners and floods. Stricter than sshd: fewer, longer.
    "sshd-ddos": {
        "filter": "sshd-ddos",
        "port": ["ssh"],
        "journalmatch": _SSHD_JOURNAL,
        "maxretry": 4,
        "findtime": "10m",
        "bantime": "1d",
    },
    # pure-ftpd logs through syslog's ftp facility: Debian's rsyslog writes it to syslog.
    "pure-ftpd": {
        "filter": "pure-ftpd",
        "enabled": AUTO,
        "port": ["ftp"],
        "logpath": ["/var/log/syslog"],
        "journalmatch": ["_COMM=pure-ftpd"],
        INSTALLED: ["/usr/sbin/pure-ftpd"],
    },
    "vsftpd": {
        "filter": "vsftpd",
        "enabled": AUTO,
        "port": ["ftp", "ftp-data", "ftps", "ftps-data"],
        "logpath": ["/var/log/vsftpd.log"],
        "journalmatch": ["_COMM=vsftpd"],
    },
    "proftpd": {
        "filter": "proftpd",
        "enabled": AUTO,
        "port": ["ftp", "ftp-data", "ftps", "ftps-data"],
        "logpath": ["/var/log/proftpd/proftpd.log"],
        "journalmatch": ["_COMM=proftpd"],
    },
    "postfix": {
        "filter": "postfix",
        "enabled": AUTO,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/mail.log"],
        "journalmatch": ["_SYSTEMD_UNIT=postfix@-.service"],
    },
    # Refused clients (recipient probes, relay attempts, spamware), off until the admin
    # turns it on: a real mail server is refused now and then, and banning it loses mail.
    "postfix-reject": {
        "filter": "postfix-reject",
        "enabled": False,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/mail.log"],
        "journalmatch": ["_SYSTEMD_UNIT=postfix@-.service"],
        "maxretry": 10,
    },
    # One line per connection says how many attempts it made ("auth failed, 3 attempts").
    "dovecot": {
        "filter": "dovecot",
        "enabled": AUTO,
        "port": ["imap2", "imaps", "pop3", "pop3s", "submission", 465, 4190],
        "logpath": ["/var/log/mail.log"],
        "journalmatch": ["_SYSTEMD_UNIT=dovecot.service"],
    },
    "exim": {
        "filter": "exim",
        "enabled": AUTO,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/exim4/mainlog"],
    },
    "exim-reject": {
        "filter": "exim-reject",
        "enabled": False,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/exim4/mainlog"],
        "maxretry": 10,
    },
    "courier": {
        "filter": "courier",
        "enabled": AUTO,
        "port": ["imap2", "imaps", "pop3", "pop3s", "smtp", 465, "submission"],
        "logpath": ["/var/log/mail.log"],
    },
    "courier-reject": {
        "filter": "courier-reject",
        "enabled": False,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/mail.log"],
        "maxretry": 10,
    },
    # Sendmail (Debian: syslog facility mail); on where Sendmail is installed.
    "sendmail": {
        "filter": "sendmail",
        "enabled": AUTO,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/mail.log"],
        "journalmatch": ["_SYSTEMD_UNIT=sendmail.service"],
        INSTALLED: ["/etc/mail/sendmail.cf"],
    },
    # Refused clients (relay attempts, recipient probes, floods, EXPN/VRFY), off until the
    # admin turns it on: a real mail server is refused now and then, and banning it loses mail.
    "sendmail-reject": {
        "filter": "sendmail-reject",
        "enabled": False,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/mail.log"],
        "journalmatch": ["_SYSTEMD_UNIT=sendmail.service"],
        "maxretry": 10,
    },
    # OpenSMTPD (Debian: syslog facility mail); on where OpenSMTPD is installed.
    "opensmtpd": {
        "filter": "opensmtpd",
        "enabled": AUTO,
        "port": ["smtp", 465, "submission"],
        "logpath": ["/var/log/mail.log"],
        "journalmatch": ["_SYSTEMD_UNIT=opensmtpd.service"],
        INSTALLED: ["/etc/smtpd.conf"],
    },
    # Cyrus IMAP/POP3 (Debian: syslog facility mail); on where Cyrus is installed.
    "cyrus-imap": {
        "filter": "cyrus-imap",
        "enabled": AUTO,
        "port": ["imap2", "imaps", "pop3", "pop3s"],
        "logpath": ["/var/log/mail.log"],
        "journalmatch": ["_SYSTEMD_UNIT=cyrus-imapd.service"],
        INSTALLED: ["/etc/cyrus.conf", "/etc/imapd.conf"],
    },
    "nginx-http-auth": {
        "filter": "nginx-http-auth",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/nginx/error.log"],
    },
    # A flood of 401/403 answers: a password or path sweep. Many fast, then banned.
    "nginx-http-flood": {
        "filter": "nginx-http-flood",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/nginx/access.log"],
        "maxretry": 20,
        "findtime": "1m",
    },
    # nginx's mail proxy writes its refused logins at level info: on where its module is.
    "nginx-mail": {
        "filter": "nginx-mail",
        "enabled": AUTO,
        "port": ["imap2", "imaps", "pop3", "pop3s", "smtp", 465, "submission"],
        "logpath": ["/var/log/nginx/error.log"],
        INSTALLED: ["/usr/lib/nginx/modules/ngx_mail_module.so"],
    },
    "apache-auth": {
        "filter": "apache-auth",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/apache2/error.log"],
    },
    "apache-http-flood": {
        "filter": "apache-http-flood",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/apache2/access.log"],
        "maxretry": 20,
        "findtime": "1m",
    },
    "plesk-panel": {
        "filter": "plesk-panel",
        "enabled": AUTO,
        "port": [8443, 8880],
        "logpath": ["/var/log/plesk/panel.log"],
    },
    # Failed TLS handshakes no browser makes, in nginx's error log: scanners and probes.
    "nginx-tls-probe": {
        "filter": "nginx-tls-probe",
        "enabled": AUTO,
        "port": ["https"],
        "logpath": ["/var/log/nginx/error.log"],
        "maxretry": 10,
    },
    "sw-cp-server": {
        "filter": "sw-cp-server",
        "enabled": AUTO,
        "port": [8443, 8880],
        "logpath": ["/var/log/sw-cp-server/error_log"],
        "maxretry": 10,
    },
    "mysqld": {
        "filter": "mysqld",
        "enabled": AUTO,
        "port": [3306],
        "logpath": ["/var/log/mysql/error.log"],
        "journalmatch": ["_COMM=mariadbd", "_COMM=mysqld"],
    },
    # dropbear: syslog's authpriv (auth.log) as its init script runs it, or -EF under
    # Debian's dropbear.service: the journal, facility daemon (syslog). On where it is.
    "dropbear": {
        "filter": "dropbear",
        "enabled": AUTO,
        "port": ["ssh"],
        "logpath": ["/var/log/auth.log", "/var/log/syslog"],
        "journalmatch": ["_COMM=dropbear"],
        INSTALLED: ["/usr/sbin/dropbear"],
    },
    # Cockpit's web console: pam_unix's lines under cockpit-session (authpriv: auth.log).
    "cockpit": {
        "filter": "cockpit",
        "enabled": AUTO,
        "port": [9090],
        "logpath": ["/var/log/auth.log"],
        "journalmatch": ["_COMM=cockpit-session"],
        INSTALLED: ["/usr/lib/cockpit/cockpit-ws"],
    },
    # Proxmox VE's web UI and API (pveproxy, 8006): pvedaemon's syslog lines as rsyslog
    # writes them. Not the journal: its daemons are perl processes that rename themselves,
    # which the journal source never vouches for (PVE 8 needs rsyslog installed).
    "proxmox": {
        "filter": "proxmox",
        "enabled": AUTO,
        "port": [8006],
        "logpath": ["/var/log/syslog"],
        INSTALLED: ["/usr/bin/pvedaemon"],
    },
    # OpenVPN servers (UDP by default, as OpenVPN's; a TCP server needs protocol = "tcp"):
    # syslog or the journal (/var/log/syslog), or log-append's file. On where a server's
    # configuration is.
    "openvpn": {
        "filter": "openvpn",
        "enabled": AUTO,
        "port": [1194],
        "protocol": "udp",
        "logpath": ["/var/log/syslog", "/var/log/openvpn/openvpn.log"],
        "journalmatch": ["_COMM=openvpn"],
        INSTALLED: ["/etc/openvpn/server.conf", "/etc/openvpn/server/*.conf"],
    },
    # BIND's refused queries (mostly UDP, whose source may be forged: a reflection attack's
    # victim), transfers and updates: bans DNS over UDP; a second jail with protocol "tcp"
    # bans TCP too (docs/signatures/named.md).
    "named-refused": {
        "filter": "named-refused",
        "enabled": AUTO,
        "port": ["domain"],
        "protocol": "udp",
        "logpath": ["/var/log/syslog"],
        "journalmatch": ["_SYSTEMD_UNIT=named.service", "_SYSTEMD_UNIT=bind9.service"],
        "maxretry": 10,
        INSTALLED: ["/etc/bind/named.conf"],
    },
    # Samba's auth audit in syslog (it takes `logging = syslog@2`, docs/signatures/samba.md).
    "samba": {
        "filter": "samba",
        "enabled": AUTO,
        "port": ["microsoft-ds", "netbios-ssn"],
        "logpath": ["/var/log/syslog"],
        "journalmatch": ["_SYSTEMD_UNIT=smbd.service", "_COMM=smbd"],
        INSTALLED: ["/etc/samba/smb.conf"],
    },
    # Gitea/Forgejo: web sign-ins (3000, or behind a proxy on 80/443) and the built-in SSH
    # server's refused keys (2222 by default in the docs' examples, or 22). Gitea 1.20+
    # logs to the console (journal) unless a file log is configured.
    "gitea": {
        "filter": "gitea",
        "enabled": AUTO,
        "port": ["http", "https", 3000, "ssh", 2222],
        "logpath": [
            "/var/lib/gitea/log/gitea.log",
            "/var/log/gitea/gitea.log",
            "/var/lib/forgejo/log/forgejo.log",
            "/var/log/forgejo/forgejo.log",
        ],
        "journalmatch": [
            "_SYSTEMD_UNIT=gitea.service",
            "_SYSTEMD_UNIT=forgejo.service",
            "_COMM=gitea",
            "_COMM=forgejo",
        ],
    },
    # GitLab (Omnibus): failed sign-ins and Rack::Attack throttles/bans.
    "gitlab": {
        "filter": "gitlab",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": [
            "/var/log/gitlab/gitlab-rails/application_json.log",
            "/var/log/gitlab/gitlab-rails/auth_json.log",
        ],
    },
    # Grafana's remote_addr is the X-Real-IP / X-Forwarded-For header of any client: off
    # unless a reverse proxy sets X-Real-IP (docs/signatures/grafana.md).
    "grafana": {
        "filter": "grafana",
        "enabled": False,
        "port": ["http", "https", 3000],
        "logpath": ["/var/log/grafana/grafana.log"],
        "journalmatch": ["_SYSTEMD_UNIT=grafana-server.service", "_COMM=grafana"],
    },
    "roundcube": {
        "filter": "roundcube",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/roundcube/errors.log", "/var/log/roundcube/userlogins.log"],
    },
    # WordPress login floods as the web server's access log shows them: on where WordPress
    # is installed (Debian's package, or the usual document roots).
    "wordpress": {
        "filter": "wordpress",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/nginx/access.log", "/var/log/apache2/access.log"],
        "maxretry": 10,
        "findtime": "10m",
        INSTALLED: [
            "/usr/share/wordpress/wp-login.php",
            "/var/www/html/wp-login.php",
            "/var/www/wordpress/wp-login.php",
            "/srv/www/wordpress/wp-login.php",
        ],
    },
    # The WP fail2ban plugin's lines (facility auth).
    "wp-fail2ban": {
        "filter": "wp-fail2ban",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/auth.log"],
        INSTALLED: [
            "/usr/share/wordpress/wp-content/plugins/wp-fail2ban/wp-fail2ban.php",
            "/var/www/html/wp-content/plugins/wp-fail2ban/wp-fail2ban.php",
            "/var/www/wordpress/wp-content/plugins/wp-fail2ban/wp-fail2ban.php",
            "/srv/www/wordpress/wp-content/plugins/wp-fail2ban/wp-fail2ban.php",
        ],
    },
    # 404s on well-known probe paths: 6 in 10 minutes is a scanner, never a typo.
    "web-scanner": {
        "filter": "web-scanner",
        "enabled": AUTO,
        "port": ["http", "https"],
        "logpath": ["/var/log/nginx/access.log", "/var/log/apache2/access.log"],
        "maxretry": 6,
        "findtime": "10m",
    },
    # Every port: a scanner that knocks on closed ones is banned from the open ones too.
    "kernel-firewall": {
        "filter": "kernel-firewall",
        "enabled": AUTO,
        "port": [],
        "logpath": ["/var/log/kern.log", "/var/log/ufw.log"],
        "journalmatch": ["_TRANSPORT=kernel"],
        "maxretry": 10,
    },
    # Repeat offenders: banned maxretry times (in any jail) within findtime → banned on
    # every port for bantime.
    "recidive": {
        "filter": RECIDIVE,
        "maxretry": 5,
        "findtime": "1d",
        "bantime": "7d",
        "maxtime": "28d",
        "port": [],
    },
}
