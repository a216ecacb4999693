"""Proxmox VE (pve-access-control 2.x to 9.x): failed logins to the web UI and API.

Proxmox VE is not in Debian: these lines are derived from its public source, not from a run.
The ticket call (``POST /api2/json/access/ticket``, pve-access-control's
``src/PVE/API2/AccessControl.pm`` ``create_ticket``; ``protected``, so pveproxy hands it to
pvedaemon) writes, when the user is unknown or disabled, the password or the second factor
wrong::

    syslog('err', "authentication failure; rhost=$clientip user=$username msg=$err");

— the same for a refused VNC ticket (``verify_vnc_ticket``), ``authentication verification
failure; rhost=… user=… msg=…`` for the second-factor check of 2019 to 2023 (``verify_tfa``),
and ``openid authentication failure; rhost=$clientip msg=$err`` for an OpenID login
(``src/PVE/API2/OpenId.pm``, PVE 7 and later). Programs: ``pvedaemon`` (and ``pveproxy``
for calls it answers itself), through PVE::SafeSyslog: syslog, or the journal.

``$clientip`` is ``RPCEnvironment::get_client_ip``: the peer of the HTTP connection, as
pve-http-server's ``PVE::APIServer::AnyEvent`` takes it from ``getpeername`` (``inet_ntop``:
``::ffff:198.51.100.7`` for IPv4 clients on pveproxy's dual-stack socket). pveproxy passes
it to pvedaemon in its ``PVEClientIP`` header and overwrites any such header a client sent;
only pvedaemon, listening on 127.0.0.1:85, trusts it (a local process could forge it, as it
could write to syslog). The ``PROXY_REAL_IP_HEADER`` of /etc/default/pveproxy (8.3 and
later) changes only the access log, never this address. So the address is server text, and
it comes *first*, right after the fixed ``rhost=``; the user name (the client's, up to 64
characters plus a realm, any text) and the error message (which quotes it: ``no such user
('NAME')``) follow and can never supply it. An empty ``rhost=`` (no client) matches nothing.

One failed login, one line: pam's own line under pvedaemon (``pam_unix(proxmox-ve-auth:
auth): authentication failure; … rhost=``) carries no address and is not matched.
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["PROGRAMS", "SIGNATURES"]

PROGRAMS = ("pvedaemon", "pveproxy")

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "auth-failure",
        Role.CONFIRM,
        r"(?:openid )?authentication (?:verification )?failure;"
        r" rhost=(?=[0-9A-Fa-f:.]{2,45} (?:user|msg)=)<HOST> (?:user=<USER> )?msg=.*",
        (
            "authentication failure; rhost=::ffff:198.51.100.7 user=root@pam"
            " msg=Authentication failure",
            "authentication failure; rhost=198.51.100.7 user=admin@pve msg=no such user"
            " ('admin@pve')",
            "authentication failure; rhost=2001:db8::66 user=root@pam msg=user 'root@pam'"
            " is disabled",
            "authentication verification failure; rhost=::ffff:198.51.100.7 user=root@pam"
            " msg=bad otp response",
            "openid authentication failure; rhost=::ffff:198.51.100.7 msg=invalid state",
        ),
    ),
)
