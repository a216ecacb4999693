"""Exim (4.96): failed SMTP authentication, from the main log or syslog.

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

One refused ``AUTH`` is one line. The main log (``/var/log/exim4/mainlog``, frame
``MAINLOG``: ``2026-11-23 06:50:01 ``, with ``[.mmm]``, `` +hhmm`` (``log_timezone``) and
``[PID] `` (``+pid``) when configured); with ``log_file_path = syslog`` the same message
follows ``exim[PID]: ``. The same attempt also reaches the reject log: that file is not
watched.
"""

from bruteguard.match.signature import Frame, Role, Signature, Stamp

__all__ = ["MAINLOG", "PROGRAMS", "SIGNATURES"]

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
