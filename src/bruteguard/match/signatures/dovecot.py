"""Dovecot (2.0 to 2.4): failed logins to IMAP, POP3, submission and ManageSieve.

A login process (``imap-login``, ``pop3-login``, ``submission-login``,
``managesieve-login``) writes one line when a client it has not logged in goes away
(``client_destroy``/``client_disconnect`` → ``client_get_extra_disconnect_reason``,
src/login-common)::

    REASON (auth failed, N attempts in S secs): user=<USER>, method=MECH, rip=ADDR,
        lip=LOCAL, [TLS|secured], session=<ID>

(one line; ``login_log_format_elements``' default). REASON is Dovecot's own text, never
the client's: 2.3.15+ write ``Disconnected: Aborted login by logging out``,
``Disconnected: Connection closed``, ``Disconnected: Inactivity``…; 2.0 to 2.3.14 wrote
no ``Disconnected:`` prefix for some (``Aborted login``, ``Disconnected``), and their
submission-login (lib-smtp, 2.3.0 to 2.3.14) ``Client has quit the connection`` (QUIT)
and ``Remote closed connection`` (the client hung up); 2.4 writes ``Login aborted: REASON
(auth failed, …) (auth_failed): …``. Every text before the first `` (auth failed, `` is
accepted. Dovecot 2.0 wrote ``(auth failed, N attempts)`` without `` in S secs``.
Checked against real Dovecot 2.3.19.1 (Debian 12) lines of imap-login, pop3-login and
submission-login, written by a private instance in a namespace lab; the older and newer
wordings are from the source (src/login-common, src/submission-login, src/lib-smtp).

**N is the number of failed authentications of that connection**, and it is the only line
that names the client for all of them: the line counts N attempts (``<COUNT>``). The auth
process writes its own line per attempt only with ``auth_verbose = yes`` (off by default):
``auth: passwd-file(bob,ADDR,<ID>): unknown user``, ``… Password mismatch``,
``pam(bob,ADDR,<ID>): pam_authenticate() failed: …``; those are not matched, so an attempt
is never counted twice. A connection that fails and then logs in writes ``Login: …`` and
no failure line: its failures are not counted (the client knew the password). ``authorization
failed`` (the password was right, the login refused) and ``no auth attempts`` are not
failures.

Two more of the login process's verdicts count, once each: ``(tried to use disabled
plaintext auth)`` (2.0/2.1; ``disallowed`` since 2.2) — the client sent a password over an
unencrypted connection where ``disable_plaintext_auth`` forbids it, as guessers on ports
110 and 143 do (a real client reads ``LOGINDISABLED``) — and ``(proxy dest auth failed)``,
a proxy whose backend refused the client's password. 2.0 to 2.2 leave ``user=<…>`` out
when the client sent no user name (``(auth failed, 1 attempts): method=PLAIN, rip=…``).

USER is the last user name the client tried, written unescaped (``>``, ``,``, spaces and
all), *before* the address; ``rip`` is the connection's address. A greedy user name
followed by ``, rip=ADDR`` and the rest of the line leaves the *last* ``, rip=`` to
Dovecot: nothing Dovecot writes after ``rip`` (``lip``, ``mpid``, the TLS state,
``session=<base64>``) can hold another one. The count is taken from the *first*
``(auth failed, N attempts`` (an atomic group), which Dovecot writes before the user name.

Two log forms, both with the syslog frame:

* syslog or the journal: program ``dovecot``, message ``imap-login: Disconnected: …``.
  With ``log_path = /dev/stderr`` (the journal takes Dovecot's stderr) the message is
  what Dovecot writes to a log file: the level after the process, and its own stamp first
  unless ``log_timestamp`` is empty — ``dovecot[812]: Dec 04 22:20:22 pop3-login: Info:
  Disconnected: …`` (checked with the real 2.3.19.1: ``%b %d`` pads the day with 0);
* Dovecot's own file (``log_path``, e.g. ``/var/log/dovecot.log``, stamp
  ``log_timestamp = "%b %d %H:%M:%S "``): no host, the login process as the program and
  the level first — ``Nov 23 06:50:01 imap-login: Info: Disconnected: …`` (``LOG_PROGRAMS``,
  ``LOG_SIGNATURES``); under daemontools' multilog (or s6-log) Dovecot's stderr gets a
  TAI64N label first instead: ``@400000006b03e22300000000 imap-login: Info: …``
  (``frames.MULTILOG``).
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["LOG_PROGRAMS", "LOG_SIGNATURES", "PROGRAMS", "SIGNATURES"]

PROGRAMS = ("dovecot",)
LOG_PROGRAMS = ("imap-login", "pop3-login", "submission-login", "managesieve-login")

_LOGIN = r"(?:imap|pop3|submission|managesieve)-login: "
# Dovecot's own stamp and level, when its file-style lines reach syslog or the journal
# through stderr: "Dec 04 22:20:22 " (log_timestamp's default) or "2026-12-04 22:20:22 ".
_STDERR_STAMP = r"(?:(?:[A-Z][a-z]{2} [ 0-3]\d|\d{4}-\d\d-\d\d) \d\d:\d\d:\d\d(?:\.\d{1,6})? )?"
_LEVEL = r"(?:Info: )?"


def _verdict(reason: str) -> str:
    """Dovecot's text, then its own ``(REASON)`` (``reason`` an expression): the first one,
    committed to by the atomic group. Dovecot's text holds no ``<``: the search stops at
    ``user=<``, so a user name that spells a reason is never read as Dovecot's (also on a
    line whose own reason is another, as ``no auth attempts``)."""
    return rf"(?>[A-Z][^<\n]{{0,400}}? \({reason}\)(?: \([a-z_]{{1,40}}\))?: )"


# Then the login_log_format_elements that are set: "user=<USER>, " (2.0 to 2.2 leave it
# out when no user name was sent), "method=MECH, ", "rip=ADDR". The last "rip=" is Dovecot's;
# what may follow it is Dovecot's too (lip, mpid, TLS, session).
_MECH = r"method=[A-Za-z0-9_-]{1,40}"
_CLIENT = (
    rf"(?:user=<<USER>>(?:, {_MECH})?, |{_MECH}, )?"
    r"rip=(?=[0-9A-Fa-f:.]{2,45}(?:, |\]?$))<HOST>(?:, .*)?"
)
_MESSAGE = _verdict(r"auth failed, <COUNT> attempts(?: in \d{1,10} secs)?") + _CLIENT
# A client that sent its password where Dovecot forbids plaintext (disable_plaintext_auth,
# 2.0-2.3; 2.4 auth_allow_cleartext): "disabled" (2.0, 2.1), "disallowed" (2.2+).
_PLAINTEXT = _verdict(r"tried to use (?:disabled|disallowed) plaintext auth") + _CLIENT
# A proxy (proxy=y in the passdb) whose backend refused the client's password.
_PROXY = _verdict(r"proxy dest auth failed") + _CLIENT

_SAMPLES = (
    "Disconnected: Aborted login by logging out (auth failed, 1 attempts in 2 secs):"
    " user=<bob>, method=PLAIN, rip=198.51.100.7, lip=192.0.2.1, secured,"
    " session=<AMOQe/NgdNt/AAAB>",
    "Disconnected: Connection closed (auth failed, 2 attempts in 16 secs): user=<nosuch>,"
    " method=LOGIN, rip=2001:db8::66, lip=2001:db8::1, TLS, session=<sRODgPNg+p5/AAAB>",
    "Aborted login (auth failed, 3 attempts in 15 secs): user=<admin>, method=PLAIN,"
    " rip=::ffff:198.51.100.7, lip=::ffff:192.0.2.1, session=<Qyj1gvNg0KV/AAAB>",
    "Disconnected (auth failed, 1 attempts in 4 secs): user=<>, method=PLAIN,"
    " rip=198.51.100.7, lip=192.0.2.1, TLS",
    "Disconnected: Inactivity (auth failed, 1 attempts in 180 secs): user=<x y>,"
    " method=CRAM-MD5, rip=198.51.100.7, lip=192.0.2.1",
    "Login aborted: Connection closed (auth failed, 2 attempts in 8 secs) (auth_failed):"
    " user=<bob>, method=PLAIN, rip=198.51.100.7, lip=192.0.2.1, TLS,"
    " session=<Qyj1gvNg0KV/AAAB>",
    "Client has quit the connection (auth failed, 1 attempts in 2 secs): user=<bob>,"
    " method=PLAIN, rip=198.51.100.7, lip=192.0.2.1, TLS, session=<XtqcfPNgqJ1/AAAB>",
    "Remote closed connection (auth failed, 3 attempts in 9 secs): user=<bob>,"
    " method=LOGIN, rip=2001:db8::66, lip=2001:db8::1, session=<XtqcfPNgqJ1/AAAB>",
    "Disconnected (auth failed, 2 attempts): user=<bob>, method=PLAIN, rip=198.51.100.7,"
    " lip=192.0.2.1",
    "Disconnected (auth failed, 1 attempts): method=PLAIN, rip=198.51.100.7, lip=192.0.2.1,"
    " TLS: Disconnected",
)
_LOGINS = ("imap", "pop3", "submission", "managesieve", "imap", "imap", "submission",
           "submission", "pop3", "imap")  # fmt: skip

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "auth-failed",
        Role.CONFIRM,
        f"{_STDERR_STAMP}{_LOGIN}{_LEVEL}{_MESSAGE}",
        (
            *(f"{login}-login: {text}" for login, text in zip(_LOGINS, _SAMPLES, strict=True)),
            "pop3-login: Info: Disconnected: Aborted login by logging out (auth failed, 1"
            " attempts in 2 secs): user=<nosuchuser>, method=PLAIN, rip=198.51.100.7,"
            " lip=192.0.2.1, session=<MHUYSNZhFovAAAIK>",
            "Dec 04 22:20:34 submission-login: Info: Disconnected: Aborted login by logging out"
            " (auth failed, 2 attempts in 12 secs): user=<nosuchuser>, method=LOGIN,"
            " rip=2001:db8::66, lip=2001:db8::1, session=<BCphSdZhTosgAQ24AAAAAAAAAAAAAAAK>",
        ),
    ),
)

_PLAINTEXT_SAMPLES = (
    "Aborted login (tried to use disabled plaintext auth): rip=198.51.100.7, lip=192.0.2.1",
    "Disconnected: Too many invalid commands (tried to use disallowed plaintext auth):"
    " user=<bob>, rip=2001:db8::66, lip=2001:db8::1, session=<S5dIdTFCDKUWWMbU>",
)
_PROXY_SAMPLES = (
    "Disconnected (proxy dest auth failed): user=<bob>, method=PLAIN, rip=198.51.100.7,"
    " lip=192.0.2.1, session=<NTI4FiZxcQCSud4G>",
)
SIGNATURES += (
    Signature(
        "plaintext-refused",
        Role.CONFIRM,
        f"{_STDERR_STAMP}{_LOGIN}{_LEVEL}{_PLAINTEXT}",
        tuple(f"pop3-login: {text}" for text in _PLAINTEXT_SAMPLES),
    ),
    Signature(
        "proxy-auth-failed",
        Role.CONFIRM,
        f"{_STDERR_STAMP}{_LOGIN}{_LEVEL}{_PROXY}",
        tuple(f"imap-login: {text}" for text in _PROXY_SAMPLES),
    ),
)

LOG_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "auth-failed-log",
        Role.CONFIRM,
        f"Info: {_MESSAGE}",
        tuple(f"Info: {text}" for text in _SAMPLES),
    ),
    Signature(
        "plaintext-refused-log",
        Role.CONFIRM,
        f"Info: {_PLAINTEXT}",
        tuple(f"Info: {text}" for text in _PLAINTEXT_SAMPLES),
    ),
    Signature(
        "proxy-auth-failed-log",
        Role.CONFIRM,
        f"Info: {_PROXY}",
        tuple(f"Info: {text}" for text in _PROXY_SAMPLES),
    ),
)
