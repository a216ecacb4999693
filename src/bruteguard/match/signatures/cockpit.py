"""Cockpit (cockpit-ws 287 and later): failed logins to the web console.

A login is ``GET /cockpit/login`` with ``Authorization: Basic …``; cockpit-ws starts one
``cockpit-session`` per attempt (cockpitauth.c ``cockpit_session_launch``), which runs PAM
service ``cockpit`` (session.c ``perform_basic``) with ``PAM_RHOST`` set to the environment
variable ``COCKPIT_REMOTE_PEER``. pam_unix writes, under the program ``cockpit-session``
(no pid: cockpit-session does not ask syslog for one)::

    pam_unix(cockpit:auth): authentication failure; logname= uid=0 euid=0 tty= ruser=
        rhost=ADDR  user=NAME

(one line; ``  user=NAME`` only for an existing account, after ``check pass; user
unknown`` otherwise). That is the only line of a failed login that names the client:
cockpit-ws's own messages carry no address at its default log level (``New connection to
session … from …`` is ``g_info``), and cockpit-session's ``pam: …`` warnings are PAM's
conversation texts. The user name is the client's and comes last: the lookahead takes the
first ``  user=`` after the address, as sshd's pam signature does.

**Where rhost comes from** (``cockpit_web_request_get_remote_address``, cockpitwebserver.c):
the configured ``[WebService] ForwardedForHeader`` first — its last space-separated item,
*text the client sends* when it reaches cockpit-ws directly —, else cockpit-tls's
``origin-ip`` (the peer of its TLS connection), else the socket's peer. Checked with a real
cockpit-ws 287: with ``ForwardedForHeader = X-Forwarded-For`` a client that sends
``X-Forwarded-For: 203.0.113.9`` gets ``rhost=203.0.113.9``. The log cannot tell the
cases apart, so the filter's hosts are *claims* (``ptr_hosts`` with
``HostNames(addresses_only=True)``): live, a line's address counts only when it is the peer
of a real connection to the jail's ports at that moment (the identity stage's connection
evidence); an address a client or a proxy wrote, with no connection of its own, bans
nobody and is reported as unattributed. A replayed log (``scan``) counts the addresses as
written.
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["LOG_DELAY", "PROGRAMS", "SIGNATURES"]

PROGRAMS = ("cockpit-session",)
# cockpit-session runs while the client's request waits for its answer: the line is
# written within the request's connection (cockpit-ws keeps it open), or a moment after a
# client that hung up at once.
LOG_DELAY = 10.0

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "pam-auth-failure",
        Role.CONFIRM,
        # pam_unix writes "rhost=%s %s%s": one space, then " user=NAME" when it knows one.
        r"pam_unix\(cockpit:auth\): authentication failure;(?=.*?(?:  user=<USER>)?$)"
        r" logname=\S* uid=\d+ euid=\d+ tty=\S* ruser=\S* rhost=(?=[0-9A-Fa-f:.]{2,45}(?: |$))"
        r"<HOST> ?(?: user=.*)?",
        (
            "pam_unix(cockpit:auth): authentication failure; logname= uid=0 euid=0 tty= ruser="
            " rhost=192.0.2.10  user=bob",
            "pam_unix(cockpit:auth): authentication failure; logname= uid=0 euid=0 tty= ruser="
            " rhost=2001:db8::a  user=bob",
            "pam_unix(cockpit:auth): authentication failure; logname= uid=0 euid=0 tty= ruser="
            " rhost=192.0.2.10 ",
        ),
    ),
)
