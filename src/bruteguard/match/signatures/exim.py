"""Exim (4.96): failed SMTP authentication, from the main log or syslog; and, for the
opt-in exim-reject jail, the clients Exim refused or dropped.

``smtp_in.c`` logs every ``AUTH`` an authenticator does not accept::

    AUTHENTICATOR authenticator failed for HOST: 535 Incorrect authentication data (set_id=ID)

AUTHENTICATOR is the driver's name from the configuration (Debian's: ``plain_server``,
``login_server``, ``cram_md5``, ``dovecot_plain``, ``dovecot_login``…). HOST is
``host_and_ident(FALSE)`` (host.c): ``sender_fullhost`` — ``[ADDR]``, ``NAME [ADDR]``,
``(HELO) [ADDR]`` or ``NAME (HELO) [ADDR]``, ``:PORT`` after the address with
``log_selector = +incoming_port`` — then `` I=[LOCAL]:PORT`` (``+incoming_interface``) and
`` U=IDENT`` (when an RFC 1413 lookup answered). NAME is a forward-verified host name, the
bracketed address the connection's own; ``(set_id=ID)`` is the authenticator's
``server_set_id``, i.e. the user name the client sent.

Two client fields surround the address: the HELO name before it, the user name after it.
The HELO is checked by default (letters, digits, ``.-`` and ``_`` if allowed, or an address
literal): it holds no blank, so the fields before the address are taken token by token
and the address is the first ``[ADDR]`` after them. Hosts in ``helo_accept_junk_hosts``
may send any HELO, blanks included, and a junk HELO such as
``x) [203.0.113.9]: 535 Incorrect authentication data (set_id=a) (`` would make that
reading pick the planted address: so the user name (and the ident) may not hold
``: 535 Incorrect authentication data`` nor the ident a blank or bracket — such a line is
not counted at all rather than counted against someone else (a junk HELO with a blank
keeps the line from matching anyway).

Only ``535 Incorrect authentication data`` (the authenticator said no: a wrong user or
password) is counted. Not counted: ``435 Unable to authenticate at present`` (the server's
own trouble), ``501 Authentication cancelled`` (the client sent ``*``), ``501 Invalid
base64 data`` and ``553 Initial data not expected`` (broken clients); nor
``SMTP protocol synchronization error`` (pipelining before the greeting: spamware, not a
login attempt, and also well-meaning broken clients) and ``rejected RCPT`` (relay and
recipient policy, not authentication): they are other jails' business.

cPanel's Exim appends ``: N Time(s)`` to the reply; it is accepted there.

One refused ``AUTH`` is one line. The main log (``/var/log/exim4/mainlog``, frame
``MAINLOG``: ``2026-11-23 06:50:01 ``, with ``[.mmm]``, `` +hhmm`` (``log_timezone``) and
``[PID] `` (``+pid``) when configured); with ``log_file_path = syslog`` the same message
follows ``exim[PID]: ``. The same attempt also reaches the reject log: that file is not
watched.

**exim-reject** (opt-in: a real mail server is refused now and then too, and banning it
loses mail): an ACL's refusal (``H=HOST F=<SENDER> rejected RCPT <RCPT>: REASON``, ``rejected
MAIL``, ``rejected EHLO or HELO``, ``rejected after DATA``…), ``H=HOST sender verify fail for
<SENDER>: REASON``, pipelining before the greeting (``SMTP protocol synchronization error
(input sent without waiting for greeting): rejected connection from H=HOST input="…"``), a
session dropped for too many bad commands (``SMTP call from HOST dropped: too many …``),
``AUTH`` where it was not offered (``SMTP protocol error in "CMD" H=HOST AUTH command used
when not advertised``), a session that sent no mail (``no MAIL in SMTP connection from HOST
D=…``, with ``log_selector = +smtp_no_mail``) and ``SMTP connection from HOST closed by DROP
in ACL``. HOST is ``host_and_ident``'s, read as for the authentication failures; client text
follows it, except in ``SMTP protocol error in "CMD"``, where the command comes first: the
message's fixed end follows the real host, so the last `` H=`` of the line is taken. Not
counted: ``temporarily rejected`` (greylisting and the server's trouble), ``sender verify
defer``; ``SMTP protocol synchronization error (next input sent too soon …): rejected "CMD"
HOST next input="…"`` (client text on both sides of the host: no reading of it is safe);
``no host name found for IP address`` and ``no IP address found for host`` (broken DNS is no
attack).
"""

from bruteguard.match.signature import Frame, Role, Signature, Stamp

__all__ = ["MAINLOG", "PROGRAMS", "REJECT_SIGNATURES", "SIGNATURES"]

PROGRAMS = ("exim", "exim4")

MAINLOG = Frame(
    "exim-mainlog",
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})?(?: [+-]\d{4})?) (?:\[\d{1,10}\] )?",
    Stamp.YMD,
    example="2026-11-23 06:50:01 ",
)

_ADDR = r"[0-9A-Fa-f:.]{2,45}"
_FAILED = r": 535 Incorrect authentication data"
# NAME and (HELO), each one blank-free token, then the address in brackets.
_HOST = (
    r"(?:[^\s\[\]()]{1,255} )?(?:\(\S{0,1024}\) )?"
    rf"\[(?={_ADDR}\])<HOST>\](?::\d{{1,5}})?(?: I=\[{_ADDR}\]:\d{{1,5}})?"
    r"(?: U=[^\s\[\]]{1,255})?"
)

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "auth-failed",
        Role.CONFIRM,
        rf"[A-Za-z0-9_.-]{{1,64}} authenticator failed for {_HOST}{_FAILED}"
        r"(?:: \d{1,6} Time\(s\))?"
        rf"(?: \(set_id=(?!.*{_FAILED})<USER>\))?",
        (
            "dovecot_login authenticator failed for (User) [198.51.100.7]:52311:"
            " 535 Incorrect authentication data (set_id=bob@example.org)",
            "plain_server authenticator failed for ([198.51.100.7]) [198.51.100.7]:"
            " 535 Incorrect authentication data (set_id=admin)",
            "login_server authenticator failed for mail.example.net (helo.example.net)"
            " [203.0.113.5]: 535 Incorrect authentication data (set_id=info)",
            "cram_md5 authenticator failed for [2001:db8::66]:40022 I=[2001:db8::1]:587:"
            " 535 Incorrect authentication data (set_id=root)",
            "dovecot_plain authenticator failed for (ylmf-pc) [198.51.100.7]:"
            " 535 Incorrect authentication data",
            "login authenticator failed for host.test [198.51.100.7] U=someone:"
            " 535 Incorrect authentication data (set_id=x y)",
        ),
    ),
)

# A message's id, before the host in the lines of a message's SMTP transaction.
_MESSAGE = r"(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4} )?"

REJECT_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "acl-rejected",
        Role.CONFIRM,
        rf"{_MESSAGE}H={_HOST}(?: F=(?:<.*?>|\S+))? rejected"
        r" (?:RCPT|MAIL|EHLO or HELO|VRFY|EXPN|ETRN|after DATA|DATA|connection)(?=[ :]).*",
        (
            "H=(x) [198.51.100.7] F=<a@b.test> rejected RCPT <c@example.org>: relay not permitted",
            "H=mail.example.net [2001:db8::66]:40022 I=[2001:db8::1]:25 F=<a@example.net>"
            " rejected RCPT <nobody@example.org>: Unknown user",
        ),
    ),
    Signature(
        "sender-verify-failed",
        Role.CONFIRM,
        rf"H={_HOST} sender verify fail for <.*>(?:: .*)?",
        ("H=(x) [198.51.100.7] sender verify fail for <a@example.net>: Unrouteable address",),
    ),
    Signature(
        "pregreeting",
        Role.CONFIRM,
        r"SMTP protocol synchronization error \(input sent without waiting for greeting\):"
        rf' rejected connection from H={_HOST} input=".*"',
        (
            "SMTP protocol synchronization error (input sent without waiting for greeting):"
            ' rejected connection from H=[198.51.100.7]:25936 I=[192.0.2.1]:25 input="GET /'
            r' HTTP/1.1\r\n\r\n"',
        ),
    ),
    Signature(
        "dropped",
        Role.CONFIRM,
        rf"SMTP call from {_HOST} dropped: too many"
        r" (?:nonmail commands|syntax or protocol errors|unrecognized commands) \(last.*\)",
        (
            "SMTP call from (x) [198.51.100.7]:3767 I=[192.0.2.1]:25 dropped: too many"
            ' nonmail commands (last was "RSET")',
            "SMTP call from [2001:db8::66] dropped: too many syntax or protocol errors (last"
            ' command was "AUTH LOGIN", C=EHLO,AUTH)',
        ),
    ),
    Signature(
        "auth-not-advertised",
        Role.CONFIRM,
        # The client's command comes first; Exim's fixed end follows the real host.
        rf'SMTP (?:protocol|syntax) error in ".*" H={_HOST} AUTH command used when not'
        r" advertised",
        (
            'SMTP protocol error in "AUTH LOGIN" H=(ylmf-pc) [198.51.100.7]:60723'
            " I=[192.0.2.1]:587 AUTH command used when not advertised",
        ),
    ),
    Signature(
        "no-mail",
        Role.CONFIRM,
        rf"no MAIL in (?:[A-Z]{{1,8}} )?SMTP connection from {_HOST} D=\S+(?: C=\S+)?",
        (
            "no MAIL in SMTP connection from (x) [198.51.100.7]:1418 I=[192.0.2.1]:25 D=34s"
            " C=EHLO,AUTH",
        ),
    ),
    Signature(
        "dropped-by-acl",
        Role.CONFIRM,
        rf"{_MESSAGE}SMTP connection from {_HOST} closed by DROP in ACL",
        ("SMTP connection from (x) [198.51.100.7]:39865 I=[192.0.2.1]:25 closed by DROP in ACL",),
    ),
)
