"""Courier (1.0.x; Courier-IMAP 5.0): failed IMAP, POP3 and ESMTP logins.

Courier's servers write their log lines to stderr, where ``courierlogger`` (started by
each service's init script with ``-name=imapd``, ``-name=pop3d-ssl``…, or by
``couriertcpd -stderrlogger``) turns them into syslog messages: it strips the level
(``INFO: ``) and tags the line with the service's name, without a pid. Checked against
Debian 12's courier 1.0.16 binaries (strings and disassembly) and a real ``courierlogger``
run.

* ``imaplogin`` and ``courierpop3login`` (the IMAP and POP3 login processes), for each
  refused login::

      LOGIN FAILED, user=USER, ip=[ADDR], port=[PORT]
      LOGIN FAILED, method=MECH, ip=[ADDR], port=[PORT]     (SASL, user unknown)

  ADDR is ``TCPREMOTEIP`` from ``couriertcpd`` (``::ffff:198.51.100.7`` for IPv4 on an
  IPv6 socket). Older versions ended after ``ip=[ADDR]``. USER is the client's, unescaped,
  and comes *before* the address: a greedy user name followed by the fixed
  ``, ip=[ADDR], port=[PORT]`` tail that ends the line leaves the last ``ip=`` to Courier.
* ``courieresmtpd``, when ``AUTH`` fails, answers ``535 Authentication failed.`` and logs
  the error reply (``iov_logerror``)::

      error,relay=ADDR,port=PORT,msg="535 Authentication failed.",cmd: COMMAND

  with ``,ident="…"`` after the port when an ident lookup answered (Debian runs
  ``couriertcpd -noidentlookup``). The address comes right after ``error,relay=`` and is
  followed by ``,port=``: nothing of the client's precedes it. COMMAND is the client's last
  line, and comes last. An ident reply that spells ``,port=N,msg="535
  Authentication failed.",cmd: `` could only make the host text run on past the address
  (``ADDR,port=…``): handed on as a name and never an address, it frames no one.

One refused login is one line (courier-authlib's ``authdaemond`` writes its own lines, without
the client's address: not matched). Not counted: ``535 Authentication rejected``,
``535 Authentication required.`` (policy answers, not a wrong password), ``LOGIN``,
``LOGOUT``, ``DISCONNECTED``, ``Connection`` lines.
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["PROGRAMS", "SIGNATURES"]

# courierlogger names (Debian's init scripts, and the ones some packagings use).
PROGRAMS = (
    "imapd",
    "imapd-ssl",
    "pop3d",
    "pop3d-ssl",
    "courier-imapd",
    "courier-imapd-ssl",
    "courier-pop3d",
    "courier-pop3d-ssl",
    "courierpop3login",
    "imaplogin",
    "courieresmtpd",
    "esmtpd",
    "esmtpd-ssl",
    "esmtpd-msa",
)

_ADDR = r"[0-9A-Fa-f:.]{2,45}"
_IP = rf", ip=\[(?={_ADDR}\])<HOST>\](?:, port=\[\d{{1,5}}\])?"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "login-failed",
        Role.CONFIRM,
        rf"LOGIN FAILED, user=<USER>{_IP}",
        (
            "LOGIN FAILED, user=bob, ip=[::ffff:198.51.100.7], port=[52311]",
            "LOGIN FAILED, user=admin@example.org, ip=[2001:db8::66], port=[40022]",
            "LOGIN FAILED, user=root, ip=[::ffff:198.51.100.7]",
            "LOGIN FAILED, user=, ip=[198.51.100.7], port=[1]",
        ),
    ),
    Signature(
        "login-failed-method",
        Role.CONFIRM,
        rf"LOGIN FAILED, method=[A-Za-z0-9_-]{{1,40}}{_IP}",
        ("LOGIN FAILED, method=CRAM-MD5, ip=[::ffff:198.51.100.7], port=[52311]",),
    ),
    Signature(
        "esmtp-auth-failed",
        Role.CONFIRM,
        # ",port=" right after the address: (\S+) cannot run on past it (the ident, the
        # only client-chosen text before the message, comes after the port).
        rf"error,relay=(?={_ADDR},port=)<HOST>,port=\d{{1,5}}"
        r'(?:,ident="[^"]*")?,msg="535 Authentication failed\.",cmd: .*',
        (
            'error,relay=::ffff:198.51.100.7,port=52311,msg="535 Authentication failed.",'
            "cmd: AUTH LOGIN",
            'error,relay=2001:db8::66,port=40022,ident="x",msg="535 Authentication'
            ' failed.",cmd: AUTH PLAIN',
        ),
    ),
)
