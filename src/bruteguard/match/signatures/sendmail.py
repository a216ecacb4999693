"""Sendmail (8.14 to 8.18): failed SMTP AUTH, AUTH floods, pre-greeting talkers, and
connections that never sent mail.

Sendmail forks one child per SMTP connection, and the child's pid tags every line of that
connection (``sm-mta[PID]`` on Debian, ``sendmail[PID]`` on Red Hat): the engine's
per-pid state is the connection. Lines carry the envelope's queue id (``6B4MGN1k000038:``)
when there is one. Checked against a real Sendmail 8.17.1.9 (Debian 12's sendmail-bin,
unpacked: it conflicts with other MTAs) on a lab network, LogLevel 9 (Debian's default).

The client is ``CurSmtpClient`` (sendmail/srvrsmtp.c), built when the connection is
accepted: ``NAME [ADDR]`` — NAME is the client's PTR name (a claim; ``(may be forged)``
follows the bracket when its forward lookup does not give ADDR back), left out when there
is none; ADDR is the connection's address, IPv6 as ``IPv6:`` and the full form
(``[IPv6:2001:db8:0:0:0:0:0:a]``). Only the bracketed address is taken.

* ``AUTH failure (MECH): ERRSTRING (CODE) ERRDETAIL[, user=USER], relay=CLIENT`` —
  srvrsmtp.c ``LOGAUTHFAIL`` (8.16+: at LogLevel >= 9; before, > 9, which Debian's 9 did
  not log), one per refused ``AUTH``. ``user=`` (``AUTH_FAIL_LOG_USER``, on in Debian) is
  the client's authentication id and comes *before* the relay: the address is taken from
  the ``, relay=`` that ends the line (a user ``x, relay=[203.0.113.9]`` only adds an
  earlier one). Counted: codes -13 (authentication failure) and -20 (user not found).
  CurSmtpClient is cut to 100 bytes (``%.100s``): a PTR name longer than about 80 bytes
  cuts the bracket, and such a line is not matched (it names no whole address).
* ``CLIENT: possible SMTP attack: command=AUTH, count=N`` — too many AUTH commands on one
  connection (more than ``MAXBADCOMMANDS``); the connection is closed. A close: each
  failed AUTH before it was counted already (before 8.16 at LogLevel 9 it is the only
  trace of them, and counts once).
* ``rejecting commands from CLIENT due to pre-greeting traffic after N seconds`` —
  ``greet_pause``: the client spoke before the greeting, as spam bots do; every command is
  refused from then on. One per connection.
* ``CLIENT did not issue MAIL/EXPN/VRFY/ETRN during connection to DAEMON`` — the
  connection ended without any of those: scanners, AUTH guessers that gave up. A close: it
  counts only for a connection that nothing else counted for. A monitor that connects
  and quits, or a client that logs in and leaves without sending, writes it too: put
  monitors in ``ignoreip``.

Not counted: ``AUTH=server, relay=…`` (success), ``AUTH failure`` with other codes
(``no mechanism available (-4)``, ``generic failure (-1)``: the server's trouble),
``ruleset=check_rcpt … reject=…`` (relay and recipient policy, not a login: the
sendmail-reject jail's), ``lost input channel``, ``starting daemon``.

**sendmail-reject** (``REJECT_SIGNATURES``, an opt-in jail: a real mail server is refused
now and then too, and banning it loses mail) counts the clients Sendmail refused:

* ``ruleset=check_rcpt, arg1=<RCPT>, relay=CLIENT, reject=CODE X.Y.Z <RCPT>... REASON`` —
  ``rscheck`` (parseaddr.c: ``ruleset=%s, arg1=%s[, arg2=%s][, relay=%s], reject=%s``, the
  reject text being the reply the client got), one per refused ``RCPT``: relaying denied
  (``Relaying denied. Proper authentication required.``, ``… IP name possibly forged
  [ADDR]``, ``… IP name lookup failed [ADDR]``, proto.m4's plain ``Relaying denied``),
  ``User unknown`` (recipient probing),
  ``Domain of sender address S does not exist``, a DNS blocklist's ``Rejected: …`` (the
  admin's text of FEATURE(dnsbl)/(enhdnsbl)) and FEATURE(require_rdns)'s ``Fix reverse DNS
  for ADDR``. RCPT is the client's, written twice, *around* the relay: the expression takes
  the longest RCPT that is written again, after ``reject=CODE <``, so the relay between
  the two copies is Sendmail's (a longer one would have to be repeated in the reason, which
  is the server's text or, in ``Domain of sender address S``, a blank-free address). Every
  reason ends the line with fixed text or, for a blocklist's, text without ``<`` and
  ``>``: where Sendmail's own reading fails (a 4xx reply, another reason), a shorter RCPT
  copied from the client's text cannot stand in, as its tail would hold Sendmail's
  ``>, relay=``.
* ``ruleset=check_relay, arg1=NAME, arg2=ADDR, relay=CLIENT, reject=421 4.3.2 Connection
  rate limit exceeded.`` (FEATURE(ratecontrol)) and ``… Too many open connections.``
  (FEATURE(conncontrol)): connection floods, one per refused connection, no client text.
* ``CLIENT: EXPN ARG [rejected]`` and ``VRFY`` (srvrsmtp.c, ``PrivacyOptions`` noexpn /
  novrfy, LogLevel > 5): address harvesting, one per command. The command follows the
  address; the first bracket of the line is Sendmail's.

The pre-greeting refusal counts in the sendmail jail already. Not counted: ``from=…,
nrcpts=0, …`` (every session whose recipients were all refused writes it: a sender with
one mistyped recipient too), ``check_mail`` refusals of a sender domain (``451 4.1.8``:
temporary DNS trouble), ``check_relay`` refusals of other kinds (access-map policy).
"""

from bruteguard.match.signature import SAME_USER, USER, Role, Signature

__all__ = ["PROGRAMS", "REJECT_SIGNATURES", "SIGNATURES"]

PROGRAMS = ("sm-mta", "sendmail", "sm-acceptingconnections")

_ADDR = r"[0-9A-Fa-f:.]{2,45}"
_QUEUE_ID = r"(?:(?:[0-9A-Za-z]{14,20}|NOQUEUE): )?"
# CurSmtpClient: "NAME [ADDR]", "[ADDR]", "[IPv6:ADDR]", each maybe "(may be forged)".
_BRACKET = rf"\[(?:IPv6:)?(?={_ADDR}\])<HOST>\](?: \(may be forged\))?"
_CLIENT = rf"(?:[^\s\[\]]{{1,255}} )?{_BRACKET}"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "auth-failure",
        Role.CONFIRM,
        # The relay ends the line; the SASL text (the server's) and the user (the
        # client's) come before: the first ", user=" is sendmail's, the last ", relay=".
        rf"{_QUEUE_ID}AUTH failure \([A-Za-z0-9_-]{{1,40}}\):"
        r" (?:authentication failure \(-13\)|user not found \(-20\)) (?:(?>.*?, user=)<USER>|.*)"
        rf", relay={_CLIENT}",
        (
            "6B4MGN1k000038: AUTH failure (PLAIN): authentication failure (-13) SASL(-13):"
            " authentication failure: Password verification failed, user=bob,"
            " relay=attacker.example.net [198.51.100.7]",
            "6B4MFm43000039: AUTH failure (LOGIN): authentication failure (-13) SASL(-13):"
            " authentication failure: checkpass failed, user=bob,"
            " relay=attacker.example.net [IPv6:2001:db8:0:0:0:0:0:66]",
            "6B4MFntW000041: AUTH failure (PLAIN): user not found (-20) SASL(-13): user not"
            " found: Password verification failed, user=nosuch, relay=[198.51.100.7]",
            "26H8MRrS025411: AUTH failure (LOGIN): authentication failure (-13) SASL(-13):"
            " authentication failure: checkpass failed, relay=[198.51.100.7]",
            "06I02CNi016764: AUTH failure (LOGIN): authentication failure (-13) SASL(-13):"
            " authentication failure: checkpass failed, user=user@example.com,"
            " relay=example.com [198.51.100.7] (may be forged)",
        ),
    ),
    Signature(
        "pre-greeting",
        Role.CONFIRM,
        # No name: "from  [ADDR]" (an empty name and its blank).
        rf"{_QUEUE_ID}rejecting commands from (?:[^\s\[\]]{{1,255}} | )?{_BRACKET}"
        r" due to pre-greeting traffic after \d{1,10} seconds",
        (
            "6B4MGOcj000039: rejecting commands from attacker.example.net [198.51.100.7]"
            " due to pre-greeting traffic after 0 seconds",
            "s1R9r60D044307: rejecting commands from  [198.51.100.7] due to pre-greeting"
            " traffic after 0 seconds",
        ),
    ),
    Signature(
        "auth-attack",
        Role.CLOSE,
        rf"{_QUEUE_ID}{_CLIENT}: possible SMTP attack: command=AUTH, count=\d{{1,10}}",
        (
            "6B4MGOhw000040: attacker.example.net [198.51.100.7]: possible SMTP attack:"
            " command=AUTH, count=12",
            "s1GNXHYB005133: [198.51.100.7]: possible SMTP attack: command=AUTH, count=5",
        ),
    ),
    Signature(
        "no-mail",
        Role.CLOSE,
        rf"{_QUEUE_ID}{_CLIENT} did not issue (?:MAIL|EXPN|VRFY|ETRN)(?:/(?:MAIL|EXPN|VRFY|ETRN))"
        r"{0,3} during connection to [A-Za-z0-9_-]{1,40}",
        (
            "6B4MGN1k000038: attacker.example.net [198.51.100.7] did not issue"
            " MAIL/EXPN/VRFY/ETRN during connection to MTA-v4",
            "v27K4Vj8018624: host.example.net [198.51.100.7] (may be forged) did not issue"
            " MAIL/EXPN/VRFY/ETRN during connection to MSP-v4",
        ),
    ),
)

# The reasons a refused RCPT's reply gives after "<RCPT>... " (Sendmail's own texts and the
# cf features'; a blocklist's is the admin's, after "Rejected: ", and holds no "<" or ">":
# a shorter RCPT read from the client's copy would leave Sendmail's ">, relay=" in it).
_RCPT_REASON = (
    r"(?:Relaying denied(?:\. Proper authentication required\.|\. IP name possibly forged"
    rf" \[{_ADDR}\]|\. IP name lookup failed \[{_ADDR}\])?|User unknown"
    r"|Domain of sender address \S{1,320} does not exist|Rejected: [^<>\n]{1,400}"
    rf"|Fix reverse DNS for {_ADDR})"
)

REJECT_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "rcpt-reject",
        Role.CONFIRM,
        # <USER> (the recipient, greedy) and its copy in the reply pin the relay between.
        rf"{_QUEUE_ID}ruleset=check_rcpt, arg1=<{USER}>, relay={_CLIENT},"
        rf" reject=5\d\d 5\.\d{{1,3}}\.\d{{1,3}} <{SAME_USER}>\.\.\. {_RCPT_REASON}",
        (
            "s1P819mk027713: ruleset=check_rcpt, arg1=<x@example.org>,"
            " relay=client.example.net [198.51.100.7], reject=550 5.7.1 <x@example.org>..."
            " Relaying denied. Proper authentication required.",
            "s1NLaDQT022248: ruleset=check_rcpt, arg1=<x@example.org>,"
            " relay=client.example.net [198.51.100.7] (may be forged), reject=550 5.7.1"
            " <x@example.org>... Relaying denied. IP name possibly forged [198.51.100.7]",
            "s1REn1un088377: ruleset=check_rcpt, arg1=<nosuch@example.com>,"
            " relay=[IPv6:2001:db8:0:0:0:0:0:66], reject=550 5.1.1 <nosuch@example.com>..."
            " User unknown",
            "s1N7vR47006519: ruleset=check_rcpt, arg1=<bob@example.com>, relay=[198.51.100.7],"
            " reject=553 5.1.8 <bob@example.com>... Domain of sender address a@b.example does"
            " not exist",
            "s1N706jo003992: ruleset=check_rcpt, arg1=<bob@example.com>, relay=[198.51.100.7],"
            " reject=550 5.7.1 <bob@example.com>... Rejected: 198.51.100.7 listed at"
            " zen.spamhaus.org",
            "13O9Ixhq275631: ruleset=check_rcpt, arg1=<bob@example.com>, relay=[198.51.100.7],"
            " reject=550 5.7.1 <bob@example.com>... Fix reverse DNS for 198.51.100.7",
        ),
    ),
    Signature(
        "rate-limit",
        Role.CONFIRM,
        rf"ruleset=check_relay, arg1=\S{{1,255}}, arg2={_ADDR}, relay={_CLIENT},"
        r" reject=421 4\.3\.2 (?:Connection rate limit exceeded|Too many open connections)\.",
        (
            "ruleset=check_relay, arg1=client.example.net, arg2=198.51.100.7,"
            " relay=client.example.net [198.51.100.7], reject=421 4.3.2 Connection rate limit"
            " exceeded.",
            "ruleset=check_relay, arg1=[198.51.100.7], arg2=198.51.100.7, relay=[198.51.100.7],"
            " reject=421 4.3.2 Too many open connections.",
        ),
    ),
    Signature(
        "expn-vrfy",
        Role.CONFIRM,
        # The client's command (cut to 203 bytes) follows the address.
        rf"{_QUEUE_ID}{_CLIENT}: (?:[Ee][Xx][Pp][Nn]|[Vv][Rr][Ff][Yy])(?: [^\n]{{0,210}})?"
        r" \[rejected\]",
        (
            "s1NKIkZa093301: [198.51.100.7]: EXPN root [rejected]",
            "s1MD2hsd004030: client.example.net [198.51.100.7]: vrfy info [rejected]",
            "s1MD2hsd004030: [IPv6:2001:db8:0:0:0:0:0:66]: VRFY root [rejected]",
        ),
    ),
)
