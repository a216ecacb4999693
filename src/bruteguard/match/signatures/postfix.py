"""Postfix (3.7) smtpd: failed SASL authentication; and, for the opt-in postfix-reject jail,
the clients smtpd and postscreen refused.

``smtpd_sasl_authenticate`` (src/smtpd/smtpd_sasl_glue.c) writes one warning per refused
``AUTH`` exchange::

    warning: NAME[ADDR]: SASL MECH authentication failed: REASON, sasl_username=USER

* ``NAME[ADDR]`` is smtpd's ``namaddr``: NAME is the client's host name only when its
  reverse lookup is forward-confirmed, ``unknown`` otherwise; ADDR, in brackets, is always
  the connection's address (IPv6 without an ``IPv6:`` prefix). With
  ``smtpd_client_port_logging = yes`` ``:PORT`` follows. The bracketed address is taken,
  never the name.
* MECH is the mechanism (``LOGIN``, ``PLAIN``, ``CRAM-MD5``…), REASON the SASL
  server's text (``authentication failure``; for ``LOGIN`` sometimes the base64 prompt
  ``UGFzc3dvcmQ6`` when the client dropped mid-exchange).
* ``, sasl_username=USER`` (Postfix 3.5 and later; cut to 100 bytes) is the client's, and
  comes last: the address sits in the fixed prefix before any client text, so no user name
  can move it. Older Postfix ends the line after REASON.

The program is ``postfix/smtpd`` or, for the master.cf services Debian ships commented out,
``postfix/submission/smtpd``, ``postfix/smtps/smtpd`` and ``postfix/submissions/smtpd``
(their ``syslog_name``); a second instance (``postmulti``: its name starts with
``postfix-``) writes ``postfix-NAME/…``. One refused ``AUTH`` is one line: role CONFIRM.

Not counted:

* ``SASL … authentication failed: Connection lost to authentication server`` — Dovecot's
  auth service is down; every user, good or bad, gets it.
* ``lost connection after AUTH from …`` and ``too many errors after AUTH from …`` — written
  when the session ends; a client that failed has its warning counted already, so counting
  these too would count one attempt twice (smtpd processes serve many clients in turn, so
  the pid does not tell one session's lines apart either).
* The SASL server's own lines for the same attempt (Dovecot's ``auth: …``, saslauthd's):
  the smtpd warning counts it.
* ``… authentication failed: Invalid authentication mechanism``: the client asked for a
  mechanism the server does not offer; no password was checked (mail clients probe
  mechanisms this way).
* ``disconnect from NAME[ADDR] … auth=0/N`` (Postfix 3.0's session summary): every refused
  ``AUTH`` that checked a password has its warning; the summary also counts ``AUTH``
  commands refused before any password (without TLS, or where AUTH is off).

**postfix-reject** (opt-in: a real mail server is refused now and then too, and banning it
loses mail): one line per refusal of smtpd (``log_whatsup``: ``QUEUEID: reject: CMD from
NAME[ADDR]: REPLY; from=<…> to=<…> proto=… helo=<…>``, ``milter-reject`` for a milter's),
of postscreen (``NOQUEUE: reject: RCPT from [ADDR]:PORT: …``, ``PREGREET N after T from
[ADDR]:PORT: TEXT``, ``HANGUP after T from [ADDR]:PORT in TEST``, ``COMMAND TIME|COUNT|LENGTH
LIMIT from [ADDR]:PORT after CMD``, ``BARE NEWLINE``, ``NON-SMTP COMMAND``, ``COMMAND
PIPELINING``, ``DATA|BDAT without valid RCPT``, ``NOQUEUE: reject: CONNECT from [ADDR]:PORT:
too many connections``) and smtpd's protocol abuse (``improper command pipelining after CMD
from NAME[ADDR]: TEXT``, ``too many errors after CMD``, ``non-SMTP command from``, ``lost
connection after CMD`` before any mail, and anvil's rate and concurrency limits). The client
fields (reply text quoting the sender or recipient, the client's input) all come after the
bracketed address, which is taken. Not counted: ``Client host rejected: cannot find your
(reverse) hostname`` (broken reverse DNS is no attack: an innocent's ISP can break it),
``4.3.x`` replies (the server's own trouble: lookup failures, local data errors), ``all
server ports busy`` (postscreen's own load), ``lost connection after DATA``/``BDAT``/
``END-OF-MESSAGE`` (a network fault mid-message), ``timeout after`` (slow links).
"""

from bruteguard.match.signature import ProgramPattern, Role, Signature

__all__ = ["PROGRAMS", "REJECT_PROGRAMS", "REJECT_SIGNATURES", "SIGNATURES"]

# postfix[-INSTANCE][/SERVICE]/smtpd: the syslog_name of each instance and master.cf service.
_INSTANCE = r"postfix(?:-[A-Za-z0-9_.-]{1,64})?(?:/[A-Za-z0-9_.-]{1,64})?"
PROGRAMS = (ProgramPattern("postfix/smtpd", rf"{_INSTANCE}/smtpd"),)
REJECT_PROGRAMS = (*PROGRAMS, ProgramPattern("postfix/postscreen", rf"{_INSTANCE}/postscreen"))

# namaddr: a host name (DNS characters) or "unknown", then the address in brackets.
_CLIENT = r"[^\s\[\]]{1,255}\[(?=[0-9A-Fa-f:.]{2,45}\])<HOST>\](?::\d{1,5})?"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "sasl-failed",
        Role.CONFIRM,
        # The reason is the SASL server's; the first ", sasl_username=" after it is
        # Postfix's own (the user name is written after it).
        rf"warning: {_CLIENT}: SASL [A-Za-z0-9_-]{{1,40}} authentication failed:"
        r"(?: (?!Connection lost to authentication server|Invalid authentication mechanism)"
        r"(?:.*?)(?:, sasl_username=<USER>)?)?",
        (
            "warning: unknown[198.51.100.7]: SASL LOGIN authentication failed:"
            " authentication failure",
            "warning: unknown[198.51.100.7]: SASL PLAIN authentication failed:"
            " authentication failure, sasl_username=bob@example.org",
            "warning: mail.example.net[203.0.113.5]: SASL CRAM-MD5 authentication failed:"
            " authentication failure, sasl_username=admin",
            "warning: unknown[2001:db8::66]: SASL LOGIN authentication failed:"
            " UGFzc3dvcmQ6, sasl_username=info",
            "warning: unknown[198.51.100.7]:52311: SASL LOGIN authentication failed:"
            " authentication failure, sasl_username=",
            "warning: unknown[192.0.2.150]: SASL PLAIN authentication failed:",
        ),
    ),
)

# postscreen names the client "[ADDR]:PORT".
_SCREENED = r"\[(?=[0-9A-Fa-f:.]{2,45}\]:)<HOST>\]:\d{1,5}"
# The commands smtpd names in "CMD from": upper-case words (and "END-OF-MESSAGE").
_COMMAND = r"[A-Z][A-Z-]{1,20}"
# Replies of the server's own trouble (4.3.x) and of broken reverse DNS: not the client's.
_NOT_CLIENTS = (
    r"(?!4\d\d 4\.3\.\d)"
    r"(?![45]\d\d [45]\.\d\.\d{1,3} Client host rejected: cannot find your (?:reverse )?hostname)"
)

REJECT_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "smtpd-reject",
        Role.CONFIRM,
        # log_whatsup: "QUEUEID: reject: CMD from NAME[ADDR]: REPLY; from=<…> to=<…> …"
        rf"(?:NOQUEUE|[0-9A-Za-z]{{5,20}}): (?:milter-)?reject: {_COMMAND} from {_CLIENT}:"
        rf" {_NOT_CLIENTS}[45]\d\d .*",
        (
            "NOQUEUE: reject: RCPT from unknown[198.51.100.7]: 554 5.7.1 <x@example.org>:"
            " Relay access denied; from=<a@example.net> to=<x@example.org> proto=ESMTP"
            " helo=<x>",
            "NOQUEUE: reject: RCPT from mail.example.net[2001:db8::66]:40022: 550 5.1.1"
            " <nobody@example.org>: Recipient address rejected: User unknown in local"
            " recipient table; from=<a@example.net> to=<nobody@example.org> proto=ESMTP"
            " helo=<mail.example.net>",
            "NOQUEUE: reject: EHLO from unknown[198.51.100.7]: 504 5.5.2 <User>: Helo command"
            " rejected: need fully-qualified hostname; proto=SMTP helo=<User>",
            "4Ch9Tl2Vb8z9sWq: milter-reject: END-OF-MESSAGE from unknown[198.51.100.7]: 550 5.7.1"
            " Spam message rejected; from=<a@example.net> to=<b@example.org> proto=ESMTP"
            " helo=<x>",
        ),
    ),
    Signature(
        "postscreen-reject",
        Role.CONFIRM,
        rf"NOQUEUE: reject: RCPT from {_SCREENED}: [45]\d\d .*",
        (
            "NOQUEUE: reject: RCPT from [198.51.100.7]:52311: 550 5.7.1 Service unavailable;"
            " client [198.51.100.7] blocked using zen.example.org; from=<a@example.net>,"
            " to=<b@example.org>, proto=ESMTP, helo=<x>",
        ),
    ),
    Signature(
        "postscreen-too-many",
        Role.CONFIRM,
        rf"NOQUEUE: reject: CONNECT from {_SCREENED}: too many connections",
        ("NOQUEUE: reject: CONNECT from [2001:db8::66]:40022: too many connections",),
    ),
    Signature(
        "postscreen-pregreet",
        Role.CONFIRM,
        rf"PREGREET \d{{1,9}} after \S+ from {_SCREENED}: .*",
        (r"PREGREET 14 after 0.08 from [198.51.100.7]:59415: EHLO ylmf-pc\r\n",),
    ),
    Signature(
        "postscreen-hangup",
        Role.CONFIRM,
        rf"HANGUP after \S+ from {_SCREENED} in .*",
        ("HANGUP after 16 from [198.51.100.7]:48119 in tests after SMTP handshake",),
    ),
    Signature(
        "postscreen-protocol",
        Role.CONFIRM,
        r"(?:COMMAND (?:TIME|COUNT|LENGTH) LIMIT|BARE NEWLINE|NON-SMTP COMMAND"
        rf"|COMMAND PIPELINING) from {_SCREENED} after .*",
        (
            "COMMAND TIME LIMIT from [2001:db8::66]:3608 after CONNECT",
            "NON-SMTP COMMAND from [198.51.100.7]:3608 after CONNECT: GET / HTTP/1.1",
        ),
    ),
    Signature(
        "postscreen-no-rcpt",
        Role.CONFIRM,
        rf"(?:DATA|BDAT) without valid RCPT from {_SCREENED}",
        ("DATA without valid RCPT from [198.51.100.7]:3608",),
    ),
    Signature(
        "smtpd-pipelining",
        Role.CONFIRM,
        rf"improper command pipelining after {_COMMAND} from {_CLIENT}(?::(?: .*)?)?",
        ("improper command pipelining after CONNECT from unknown[198.51.100.7]: EHLO x",),
    ),
    Signature(
        "smtpd-errors",
        Role.CONFIRM,
        rf"too many errors after {_COMMAND} from {_CLIENT}",
        ("too many errors after RCPT from mail.example.net[203.0.113.5]",),
    ),
    Signature(
        "smtpd-non-smtp",
        Role.CONFIRM,
        rf"non-SMTP command from {_CLIENT}: .*",
        ("non-SMTP command from unknown[198.51.100.7]: GET / HTTP/1.1",),
    ),
    Signature(
        "smtpd-lost",
        Role.CONFIRM,
        # Not after the message's data: a link that broke mid-message.
        rf"lost connection after (?!DATA\b|BDAT\b|END-OF-MESSAGE\b){_COMMAND} from {_CLIENT}",
        ("lost connection after AUTH from unknown[2001:db8::66]",),
    ),
    Signature(
        "smtpd-limit",
        Role.CONFIRM,
        # anvil's limits, as smtpd warns of them.
        r"warning: (?:Connection|Connection concurrency|AUTH command|Message delivery request"
        r"|Recipient address|New TLS session) (?:rate )?limit exceeded: \d{1,9}"
        rf" from {_CLIENT} for service [A-Za-z0-9_.-]{{1,64}}",
        (
            "warning: Connection rate limit exceeded: 61 from unknown[198.51.100.7] for"
            " service smtp",
        ),
    ),
)
