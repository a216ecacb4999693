"""Cyrus IMAP (2.x to 3.6; 3.13's logfmt): failed IMAP and POP3 logins.

``imapd`` and ``pop3d`` write one ``badlogin:`` line per refused login, at ``LOG_NOTICE``,
to syslog (facility mail) with the service's name from ``cyrus.conf`` as ident, prefixed by
``syslog_prefix`` (Debian: ``cyrus``): ``cyrus/imap[PID]``, ``cyrus/pop3[PID]`` (and
``cyrus/imaps``, ``cyrus/pop3s`` when those services are on). Checked against a real Cyrus
3.6.1 (Debian 12, unpacked) on a lab network, through rsyslog.

Every message starts with ``imapd_clienthost`` / ``popd_clienthost``, built once per
connection by ``get_clienthost`` (imap/global.c)::

    NAME [ADDR]        NAME: the client's PTR name (getnameinfo NI_NAMEREQD, not
                       forward-confirmed: a claim), left out when there is none
    [ADDR]             ADDR: getnameinfo NI_NUMERICHOST of the connection's peer

so the address is the one in brackets right after ``badlogin: `` and an optional name
(no blank, no bracket: glibc's resolver refuses such PTR names). Everything the client
chose (its user name) comes *after* that bracket: no user name can move the address.
Cyrus 2.x wrote ``NAME[ADDR]`` without the blank; it is accepted.

The messages (imap/imapd.c ``cmd_login``/``cmd_authenticate``, imap/pop3d.c
``cmd_pass``/``cmd_apop``/``cmd_auth``; 3.6)::

    badlogin: CLIENT plaintext (USER) [SASL(-13): authentication failure: checkpass failed]
    badlogin: CLIENT plaintext (USER) [SASL(-13): user not found: checkpass failed]
    badlogin: CLIENT MECH (USER|-notset-) [SASL(-13): …]          imapd AUTHENTICATE
    badlogin: CLIENT MECH (USER|-notset-) [authentication failure]  pop3d AUTH (errstring)
    badlogin: CLIENT APOP (<CHALLENGE>) SASL(-13): user not found: …
    badlogin: CLIENT plaintext (USER) invalid user      the name failed canonicalisation
    badlogin: CLIENT anonymous login refused            LOGIN anonymous, not allowed

Cyrus 2.2/2.3 wrote ``plaintext USER SASL(-13): …`` and ``MECH [SASL(-13): …]``. Only the
SASL codes of a refused secret count: -13 (``SASL_BADAUTH``; "user not found" under -13
too, as imapd reports ``SASL_NOUSER`` after ``sasl_checkpass``) and -20
(``SASL_NOUSER``); a -1 (``generic failure``: saslauthd down) or -4 (no mechanism) is the
server's trouble. USER is the client's (canonicalised, or ``beautify_string``: control
bytes as ``^A``); ``-notset-`` means SASL never learnt one.

Cyrus 3.13 (``logging: log good and bad logins with logfmt``) writes
``event=login.bad [r.sessionid=ID] [r.tid=ID] r.clienthost=CLIENT [u.username=USER]
[login.mech=MECH] error=TEXT``: logfmt quotes a value with a blank (``"NAME [ADDR]"``)
and escapes ``"`` and ``\\`` inside it, and ``r.clienthost`` always follows the event (and
the session fields) directly: the address is taken there. The user name is stepped over
as logfmt wrote it (not reported: one placeholder cannot be both its quoted and bare
form).

One refused login is one line (a LOGIN that fails writes ``badlogin`` and, with
``failedloginpause``, sleeps; it writes nothing else): role CONFIRM. Not failures:
``login: …`` (a success), ``SASL bad userid authenticated`` and ``SASL Password
verification failed`` (the SASL library's own lines for the same attempt, without the
client: not matched), ``USAGE``, ``counts:``.
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["PROGRAMS", "SIGNATURES"]

# syslog_prefix "cyrus" (Debian) + the cyrus.conf service name; without a prefix the name
# alone (older packagings: "imapd", "pop3d").
PROGRAMS = tuple(
    f"{prefix}{name}"
    for prefix in ("cyrus/", "")
    for name in ("imap", "imaps", "pop3", "pop3s", "imapd", "pop3d")
)

_ADDR = r"[0-9A-Fa-f:.]{2,45}"
# get_clienthost: "NAME [ADDR]" or "[ADDR]" (2.x: "NAME[ADDR]"); NAME is PTR text.
_CLIENT = rf"badlogin: (?:[^\s\[\]]{{1,255}} ?)?\[(?={_ADDR}\] )<HOST>\] "
_MECH = r"[A-Za-z0-9_-]{1,40}"
_NAME = r"[^\s\[\]\"\\]{1,255}"
# logfmt values: bare (graphic ASCII but \ " =) or quoted with \-escapes.
_BARE = r"[!#-<>-\[\]-~]{1,255}"
_QUOTED = r'"(?:[^"\\\n]++|\\.)*+"'
# sasl_errdetail() of a refused secret, or pop3d's sasl_errstring() in brackets.
_REFUSED = (
    r"(?:\[?SASL\((?:-13|-20)\): .*"
    r"|\[(?:authentication failure|user not found)\])"
)

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "sasl-failed",
        Role.CONFIRM,
        # The user (the client's) sits between the mechanism and the SASL text, which is
        # the server's and never holds ") [SASL(": it is taken up to the last one.
        # "-notset-" is no user at all.
        rf"{_CLIENT}(?:APOP \(<[^>]{{0,200}}>\) |{_MECH} (?:\(-notset-\)|\(<USER>\)) ){_REFUSED}",
        (
            "badlogin: attacker.example.net [198.51.100.7] plaintext (bob)"
            " [SASL(-13): authentication failure: checkpass failed]",
            "badlogin: [198.51.100.7] plaintext (nosuchuser)"
            " [SASL(-13): user not found: checkpass failed]",
            "badlogin: [2001:db8::66] PLAIN (-notset-)"
            " [SASL(-13): user not found: Password verification failed]",
            "badlogin: host.example.net [198.51.100.7] LOGIN (admin)"
            " [SASL(-13): authentication failure: checkpass failed]",
            "badlogin: [198.51.100.7] PLAIN (-notset-) [user not found]",
            "badlogin: [198.51.100.7] APOP (<12801119458967198672.1796422231@mail>)"
            " SASL(-13): user not found: user: bob@mail property: userPassword not found"
            " in sasldb",
        ),
    ),
    Signature(
        "sasl-failed-2",
        Role.CONFIRM,
        # Cyrus 2.x: "plaintext USER SASL(-13): …", "MECH [SASL(-13): …]" (no user).
        rf"{_CLIENT}{_MECH} (?:(?![(\[])<USER> )?\[?SASL\((?:-13|-20)\): .*",
        (
            "badlogin: localhost [198.51.100.7] plaintext cyrus@localdomain"
            " SASL(-13): authentication failure: checkpass failed",
            "badlogin: example.com [198.51.100.7] DIGEST-MD5 [SASL(-13): authentication"
            " failure: client response doesn't match what we generated]",
            "badlogin: local-host[198.51.100.7] PLAIN [SASL(-13): authentication failure:"
            " Password verification failed]",
        ),
    ),
    Signature(
        "invalid-user",
        Role.CONFIRM,
        rf"{_CLIENT}plaintext \(<USER>\) invalid user",
        (
            "badlogin: attacker.example.net [198.51.100.7] plaintext (a^Ab) invalid user",
            "badlogin: [2001:db8::66] plaintext (root@) invalid user",
        ),
    ),
    Signature(
        "anonymous-refused",
        Role.CONFIRM,
        rf"{_CLIENT}anonymous login refused",
        ("badlogin: attacker.example.net [198.51.100.7] anonymous login refused",),
    ),
    Signature(
        "login-bad",
        Role.CONFIRM,
        # logfmt: the session fields (server text; r.tid quoted or not), then the client.
        rf"event=login\.bad (?:r\.sessionid={_BARE} )?(?:r\.tid=(?:{_BARE}|{_QUOTED}) )?"
        # "NAME [ADDR]" quoted (it has a blank) or [ADDR] bare, checked ahead as a whole.
        rf'r\.clienthost=(?="{_NAME} \[{_ADDR}\]" |\[{_ADDR}\] )"?(?:{_NAME} )?\[<HOST>\]"? '
        # the user (quoted and escaped by logfmt, or bare) and the mechanism, either order
        rf"(?:u\.username=(?:{_QUOTED}|{_BARE}) |login\.mech={_MECH} ){{0,2}}"
        r'error=(?:"?SASL\((?:-13|-20)\): .*|"?(?:authentication failure|user not found)"?'
        r'|"invalid user"|"anonymous login refused")',
        (
            'event=login.bad r.clienthost="attacker.example.net [198.51.100.7]"'
            " u.username=bob login.mech=plaintext"
            ' error="SASL(-13): authentication failure: checkpass failed"',
            "event=login.bad r.sessionid=cyrus-1796422207-45-1-18169525047201062386"
            " r.clienthost=[2001:db8::66] login.mech=PLAIN u.username=~null~"
            ' error="SASL(-13): user not found: Password verification failed"',
            'event=login.bad r.clienthost=[198.51.100.7] u.username="a b"'
            ' login.mech=plaintext error="invalid user"',
            'event=login.bad r.clienthost=[198.51.100.7] error="anonymous login refused"',
        ),
    ),
)
