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
  ``couriertcpd -noidentlookup``); releases before 0.7x wrote no ``,port=`` (fail2ban's
  courier-smtp sample log has such lines; an ident may be written without quotes). The
  address comes right after ``error,relay=``: nothing of the client's precedes it, and it
  is read in address characters only, so no ident or command after it can extend it.
  COMMAND is the client's last line, and comes last.

One refused login is one line (courier-authlib's ``authdaemond`` writes its own lines, without
the client's address: not matched). Not counted: ``535 Authentication rejected``,
``535 Authentication required.`` (policy answers, not a wrong password), ``LOGIN``,
``LOGOUT``, ``DISCONNECTED``, ``Connection`` lines.

**courier-reject** (opt-in: a real mail server is refused now and then too, and banning
it loses mail): recipients refused as unknown and relaying refused, in both of
courieresmtpd's forms, ``error,relay=ADDR,port=PORT[,ident=IDENT],from=<FROM>,to=<TO>:
REPLY`` (a refused ``RCPT``) and ``error,relay=ADDR,port=PORT,msg="REPLY",cmd: COMMAND``,
where REPLY is ``550 User unknown.``, ``550 User <NAME> unknown`` or ``513 Relaying
denied.``. The address, first, is read in address characters only.
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["PROGRAMS", "REJECT_SIGNATURES", "SIGNATURES"]

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
        # The address first, in address characters only (older releases write no
        # ",port=" after it). The ident, the only client-chosen text before the message,
        # comes after the address.
        r"error,relay=<ADDR>(?:,port=\d{1,5})?"
        r'(?:,ident=(?:"[^"]*"|[^",]*))?,msg="535 Authentication failed\.",cmd: .*',
        (
            'error,relay=::ffff:198.51.100.7,port=52311,msg="535 Authentication failed.",'
            "cmd: AUTH LOGIN",
            'error,relay=2001:db8::66,port=40022,ident="x",msg="535 Authentication'
            ' failed.",cmd: AUTH PLAIN',
            'error,relay=::ffff:198.51.100.7,msg="535 Authentication failed.",cmd: YWRvYmU=',
        ),
    ),
)

_RELAY = r"error,relay=<ADDR>(?:,port=\d{1,5})?"
_REFUSED = r"(?:550 User (?:<[^>]*> )?unknown\.?|513 Relaying denied\.)"

REJECT_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "rcpt-refused",
        Role.CONFIRM,
        rf"{_RELAY}(?:,ident=.*?)?,from=<.*>,to=<.*>: {_REFUSED}",
        (
            "error,relay=::ffff:198.51.100.7,port=52311,from=<a@example.net>,"
            "to=<nobody@example.org>: 550 User unknown.",
            "error,relay=2001:db8::66,port=40022,ident=tmf,from=<>,to=<x@example.net>:"
            " 513 Relaying denied.",
        ),
    ),
    Signature(
        "command-refused",
        Role.CONFIRM,
        rf'{_RELAY}(?:,ident=(?:"[^"]*"|[^",]*))?,msg="{_REFUSED}",cmd: .*',
        (
            'error,relay=::ffff:198.51.100.7,port=52311,msg="550 User unknown.",cmd: RCPT'
            " TO:<nobody@example.org>",
        ),
    ),
)
