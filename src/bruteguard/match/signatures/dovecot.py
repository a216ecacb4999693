"""Dovecot (2.3): failed logins to IMAP, POP3, submission and ManageSieve.

A login process (``imap-login``, ``pop3-login``, ``submission-login``,
``managesieve-login``) writes one line when a client it has not logged in goes away
(``client_destroy`` → ``client_get_extra_disconnect_reason``, src/login-common)::

    Disconnected: REASON (auth failed, N attempts in S secs): user=<USER>, method=MECH,
        rip=ADDR, lip=LOCAL, [TLS|secured], session=<ID>

(one line; ``login_log_format_elements``' default). Checked against real Dovecot 2.3.19.1
(Debian 12) lines, written by a private instance on loopback. REASON is Dovecot's
(``Aborted login by logging out``, ``Connection closed``, ``Inactivity``…); older 2.x
write ``Aborted login (auth failed, …)`` or ``Disconnected (auth failed, …)``, 2.3.21
and later ``Login aborted: REASON (auth failed, …) (auth_failed): …``: all are accepted.

**N is the number of failed authentications of that connection**, and it is the only line
that names the client for all of them: the line counts N attempts (``<COUNT>``). The auth
process writes its own line per attempt only with ``auth_verbose = yes`` (off by default):
``auth: passwd-file(bob,ADDR,<ID>): unknown user``, ``… Password mismatch``,
``pam(bob,ADDR,<ID>): pam_authenticate() failed: …``; those are not matched, so an attempt
is never counted twice. A connection that fails and then logs in writes ``Login: …`` and
no failure line: its failures are not counted (the client knew the password). ``authorization
failed`` (the password was right, the login refused) and ``no auth attempts`` are not
failures.

USER is the last user name the client tried, written unescaped (``>``, ``,``, spaces and
all), *before* the address; ``rip`` is the connection's address. A greedy user name
followed by ``, rip=ADDR`` and the rest of the line leaves the *last* ``, rip=`` to
Dovecot: nothing Dovecot writes after ``rip`` (``lip``, ``mpid``, the TLS state,
``session=<base64>``) can hold another one. The count is taken from the *first*
``(auth failed, N attempts`` (an atomic group), which Dovecot writes before the user name.

Two log forms, both with the syslog frame:

* syslog or the journal: program ``dovecot``, message ``imap-login: Disconnected: …``;
* Dovecot's own file (``log_path``, e.g. ``/var/log/dovecot.log``, stamp
  ``log_timestamp = "%b %d %H:%M:%S "``): no host, the login process as the program and
  the level first — ``Nov 23 06:50:01 imap-login: Info: Disconnected: …`` (``LOG_PROGRAMS``,
  ``LOG_SIGNATURES``).
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["LOG_PROGRAMS", "LOG_SIGNATURES", "PROGRAMS", "SIGNATURES"]

PROGRAMS = ("dovecot",)
LOG_PROGRAMS = ("imap-login", "pop3-login", "submission-login", "managesieve-login")

_LOGIN = r"(?:imap|pop3|submission|managesieve)-login: "
# Dovecot's reason, then its own "(auth failed, N attempts in S secs)": the first one (the
# user name comes after it), committed to by the atomic group.
_VERDICT = (
    r"(?>(?:Disconnected|Aborted login|Login aborted)(?:: .*?)?"
    r" \(auth failed, <COUNT> attempts in \d{1,10} secs\)(?: \([a-z_]{1,40}\))?: user=<)"
)
# The last "rip=" is Dovecot's; what may follow it is Dovecot's too (lip, mpid, TLS, session).
_CLIENT = (
    r"<USER>>(?:, method=[A-Za-z0-9_-]{1,40})?, rip=(?=[0-9A-Fa-f:.]{2,45}(?:, |\]?$))<HOST>"
    r"(?:, .*)?"
)
_MESSAGE = f"{_VERDICT}{_CLIENT}"

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
)

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "auth-failed",
        Role.CONFIRM,
        f"{_LOGIN}{_MESSAGE}",
        tuple(
            f"{login}-login: {text}"
            for login, text in zip(
                ("imap", "pop3", "submission", "managesieve", "imap", "imap"), _SAMPLES, strict=True
            )
        ),
    ),
)

LOG_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "auth-failed-log",
        Role.CONFIRM,
        f"Info: {_MESSAGE}",
        tuple(f"Info: {text}" for text in _SAMPLES),
    ),
)
