"""ProFTPD (1.3.8): failed logins, from syslog or from its ``SystemLog`` file.

Every message ProFTPD logs inside a session is prefixed by ``log_write`` (src/log.c) with
the server's name and the client: ``SERVER (REMOTE_NAME[REMOTE_ADDR])``, where SERVER is
the virtual server's ``ServerFQDN``, REMOTE_NAME the client's PTR name (with
``UseReverseDNS on``, DNS-validated: no blanks, no brackets) or its address, and
REMOTE_ADDR always the connection's address. Only the bracketed address is taken; the name
before it is PTR text and never used. The two log forms:

* syslog (``proftpd[PID]: SERVER (NAME[ADDR]) - MESSAGE``), Debian's default; ProFTPD
  1.3.3 and older wrote ``SERVER (NAME[ADDR]): MESSAGE`` there, and ``Incorrect
  password.`` with a full stop (fail2ban's proftpd sample log keeps such lines);
* the ``SystemLog`` file (Debian: ``/var/log/proftpd/proftpd.log``), frame
  ``SYSTEMLOG``: ``2026-11-23 06:50:01,123 HOST proftpd[PID] SERVER (NAME[ADDR]): MESSAGE``.

Both checked against real ProFTPD 1.3.8 (Debian 12) lines. The messages (modules/mod_auth.c,
``setup_env`` and ``auth_pass``), each written once for one refused ``PASS``:

* ``USER NAME: no such user found from NAME [ADDR] to LOCAL:PORT`` — the user is unknown
  to every auth module (``pr_auth_getpwnam`` failed); nothing else is logged for it.
* ``USER NAME (Login failed): Incorrect password`` — known user, wrong password;
  ``No such user found`` is the same verdict when an auth module disowns a user another
  module listed; ``Account disabled`` is a locked account (its password is not even
  checked, so every guess gets it); ``Limit access denies login`` a ``<Limit LOGIN>``
  refusal before the password is checked. Each is the one line of its attempt.
* ``SECURITY VIOLATION: Root login attempted`` — a root login without ``RootLogin on``:
  refused before the password, one line.
* ``USER NAME: user is not a UserAlias from …`` (``AuthAliasOnly``): one line.

NAME is the client's (``USER`` argument, any text but a line break) and is written after
the prefix, so the address is always the prefix's; the user name is taken between the
fixed texts around it, to the fixed tail at the end of the line.

Not counted: ``Maximum login attempts (N) exceeded`` — written when the connection is
closed after its N-th failure, each of which was already counted (it is not an attempt);
``(Login failed): Password expired``, ``Invalid shell``, ``User in /etc/ftpusers`` (the
password was right), and the auth-service errors (``Unavailable authentication service``
…: the server's trouble, not the client's). With ``AuthPAM``, pam_unix's
``pam_unix(proftpd:auth): authentication failure`` line for the same attempt is not
matched either: ProFTPD's own line counts it, and pam gives ``rhost`` the PTR name.
"""

from bruteguard.match.signature import Frame, Role, Signature, Stamp

__all__ = ["PROGRAMS", "SIGNATURES", "SYSTEMLOG", "SYSTEMLOG_SIGNATURES"]

PROGRAMS = ("proftpd",)

# SystemLog: "2026-11-23 06:50:01,123 HOSTNAME proftpd[1234] " (pr_log_vwritefile/log_write).
SYSTEMLOG = Frame(
    "proftpd-systemlog",
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) [^\s\[\]]{1,255} proftpd\[\d{1,10}\] ",
    Stamp.YMD,
    example="2026-11-23 06:50:01,123 myhost proftpd[1234] ",
)

_NAME = r"[^\s()\[\]]{1,255}"
_ADDR = r"[0-9A-Fa-f:.]{2,45}"
# "SERVER (REMOTE_NAME[REMOTE_ADDR])": the address in brackets is the connection's.
_CLIENT = rf"{_NAME} \({_NAME}\[(?={_ADDR}\]\))<HOST>\]\)"
_LOGIN_FAILED = (
    r" \(Login failed\): (?:Incorrect password|No such user found|Account disabled"
    r"|Limit access denies login)\.?"
)
_NO_SUCH_USER = rf": no such user found from {_NAME} \[{_ADDR}\] to {_ADDR}:\d{{1,5}}"
_NOT_ALIAS = rf": user is not a UserAlias from {_NAME} \[{_ADDR}\] to {_ADDR}:\d{{1,5}}"


def _signatures(separator: str, written: str) -> tuple[Signature, ...]:
    """The messages after the client prefix and ``separator`` (a pattern: syslog's
    ``" - "`` or old ``": "``, the SystemLog file's ``": "``); samples use ``written``."""
    client = _CLIENT + separator

    def samples(*messages: str) -> tuple[str, ...]:
        forms = ("example.org (198.51.100.7[198.51.100.7])", "ftp (host.test[2001:db8::66])")
        return tuple(f"{form}{written}{text}" for form in forms for text in messages)

    return (
        Signature(
            "login-failed",
            Role.CONFIRM,
            rf"{client}USER <USER>{_LOGIN_FAILED}",
            samples(
                "USER bob (Login failed): Incorrect password",
                "USER ghost (Login failed): No such user found",
                "USER old (Login failed): Account disabled",
                "USER ftp (Login failed): Limit access denies login",
            ),
        ),
        Signature(
            "no-such-user",
            Role.CONFIRM,
            rf"{client}USER <USER>{_NO_SUCH_USER}",
            samples(
                "USER admin: no such user found from 198.51.100.7 [198.51.100.7] to 192.0.2.1:21",
            ),
        ),
        Signature(
            "not-user-alias",
            Role.CONFIRM,
            rf"{client}USER <USER>{_NOT_ALIAS}",
            samples("USER bob: user is not a UserAlias from x.test [198.51.100.7] to ::1:21"),
        ),
        Signature(
            "root-login",
            Role.CONFIRM,
            rf"{client}SECURITY VIOLATION: [Rr]oot login attempted\.?",
            samples("SECURITY VIOLATION: Root login attempted"),
        ),
    )


SIGNATURES = _signatures("(?: - |: )", " - ")
SYSTEMLOG_SIGNATURES = _signatures(": ", ": ")
