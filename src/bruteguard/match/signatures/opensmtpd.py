"""OpenSMTPD (6.0 to 7.x): failed SMTP AUTH.

OpenSMTPD's smtp process serves every session, so the syslog pid (``smtpd[PID]``) does not
tell connections apart: every line of a session starts with its 64-bit session id in
hexadecimal (``%016"PRIx64" smtp …``, usr.sbin/smtpd/smtp_session.c), and that id is what
the engine keys the connection on (``<SESSION>``).

**6.4 and later** (checked against Debian 12's 6.8.0p2 in a lab: refused AUTH PLAIN and
AUTH LOGIN after STARTTLS) write the client's address once, when the session starts, and
never again::

    SESSION smtp connected address=ADDR host=NAME
    SESSION smtp authentication user=USER result=permfail
    SESSION smtp failed-command command="AUTH PLAIN (...)" result="535 Authentication failed"

* ``connected`` (``smtp_connected``): ADDR is ``ss_to_text`` of the peer — IPv4, or IPv6
  in brackets (``[2001:db8::a]``); NAME is the PTR name or ``<unknown>`` and comes after
  it. It counts nothing: it ties the session id to ADDR (role ``OPEN``).
* ``authentication … result=permfail`` (``IMSG_SMTP_AUTHENTICATE``): the credentials were
  refused. USER is the client's, ``strnvis``-encoded (``VIS_WHITE|VIS_SAFE``: no blank),
  before a fixed tail. The line carries no address: it is the session's (role
  ``ANNOUNCE``).
* ``failed-command command="AUTH PLAIN (...)" result="535 Authentication failed"`` (or
  ``AUTH LOGIN (username)``/``(password)``): the reply to the same refused attempt, sent
  after ``smtp_auth_failure_pause``; smtpd answers 535 only after a permfail. Role
  ``CONFIRM``: announced by the permfail, it is the same attempt; alone (a log that
  dropped the permfail) it counts.

So the address of a failure is the one the *server* wrote on the session's ``connected``
line: nothing the client sends is ever read as an address, and a line of a session whose
``connected`` line was not seen (a log read from its middle, or a session quiet for ten
minutes) counts nothing. ``result=tempfail`` (the credentials table failed) and
``result=ok`` are not failures; other ``failed-command`` lines (syntax errors, relaying
refused) are not logins.

**6.0** wrote the address on every line (``SESSION smtp event=authentication user=USER
address=ADDR host=NAME result=permfail``, ``event=failed-command address=ADDR host=NAME
command="AUTH PLAIN (...)" result="535 Authentication failed"``): matched as they are,
with the same announce/confirm pairing; USER comes before the address but has no blank,
and the address is the last ``address=`` of the line.
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["PROGRAMS", "SIGNATURES"]

PROGRAMS = ("smtpd",)

_ADDR = r"[0-9A-Fa-f:.]{2,45}"
# ss_to_text: IPv4 bare, IPv6 in brackets (checked ahead; the host never takes the "]").
_ADDRESS = rf"(?=\[{_ADDR}\] |{_ADDR} )\[?<HOST>(?<!\])\]?"
_AUTH_COMMAND = r'"AUTH (?:PLAIN \(\.\.\.\)|LOGIN \((?:username|password)\))"'
_REFUSED = rf'command={_AUTH_COMMAND} result="535 Authentication failed"'

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "connected",
        Role.OPEN,
        rf"<SESSION> smtp connected address={_ADDRESS} host=\S{{1,255}}",
        (
            "2bb3a961c3a34fad smtp connected address=198.51.100.7 host=attacker.example.net",
            "2bb3a962d9e8ff4e smtp connected address=[2001:db8::66] host=<unknown>",
        ),
    ),
    Signature(
        "auth-permfail",
        Role.ANNOUNCE,
        r"<SESSION> smtp authentication user=<USER> result=permfail",
        (),
    ),
    Signature(
        "auth-535",
        Role.CONFIRM,
        rf"<SESSION> smtp failed-command {_REFUSED}",
        (),
    ),
    Signature(
        "auth-permfail-6.0",
        Role.ANNOUNCE,
        rf"<SESSION> smtp event=authentication user=<USER> address={_ADDRESS} host=\S{{1,255}}"
        r" result=permfail",
        (
            "0d62fb5a5d2c1d06 smtp event=authentication user=bob address=198.51.100.7"
            " host=client.example.net result=permfail",
        ),
    ),
    Signature(
        "auth-535-6.0",
        Role.CONFIRM,
        rf"<SESSION> smtp event=failed-command address={_ADDRESS} host=\S{{1,255}} {_REFUSED}",
        (
            "0d62fb5a5d2c1d06 smtp event=failed-command address=[2001:db8::66]"
            ' host=client.example.net command="AUTH LOGIN (password)"'
            ' result="535 Authentication failed"',
        ),
    ),
)
