"""Roundcube webmail: failed IMAP logins (errors.log, userlogins.log, syslog), 1.0 to 1.6+.

Roundcube writes one of two lines per failed login (never both):

* **imap-login-failed** — ``program/lib/Roundcube/rcube_imap.php`` ``connect()``, when
  ``log_logins`` is off (the default): ``Login failed for %s against %s from %s. %s`` (the
  user, the IMAP host, ``rcube_utils::remote_ip()``, the IMAP server's answer; Roundcube
  before 1.3 wrote it without ``against HOST``), passed to ``rcube::raise_error`` and so
  written by ``rcube::log_bug`` as ``IMAP Error: MESSAGE in FILE on line N (METHOD URI)``.
* **failed-login** — ``program/include/rcmail.php`` ``log_login()``, with ``log_logins``
  on: ``Failed login for %s from %s in session %s (error: %d)`` to the ``userlogins`` log.

``rcube::write_log`` puts ``<SESSID> `` (``log_session_id``, 8 characters by default) before
the line and, with ``log_driver = 'file'`` (the default), ``[23-Nov-2026 06:50:01 +0100]:
`` (``log_date_format`` ``d-M-Y H:i:s O``) in front, into ``logs/errors.log`` /
``logs/userlogins.log`` (Debian: ``/var/log/roundcube/``); with ``log_driver = 'syslog'``
it calls ``syslog()`` with the ident ``roundcube`` (``syslog_id``).

Who controls what: the user name (``_user``, cut to 256 bytes in userlogins) is the
client's and comes *before* the address. ``remote_ip()`` is ``$_SERVER['REMOTE_ADDR']``
— the web server's peer, server text — followed, when the request carried them, by
`` (X-Real-IP: …,X-Forwarded-For: …)`` (before 1.5 without the blank): header values
copied as the client sent them.
The IMAP host is the configuration's; the server's answer and the request URI come last
(the URI is the client's). So:

* everything *after* the address must be Roundcube's own text to the end of the line:
  forwarded headers only as addresses, the IMAP server's answer (``AUTHENTICATE PLAIN: …``
  / ``LOGIN: …`` or the bare text, which never says `` from ``), `` in FILE on line N
  (METHOD URI)`` with
  the file and the URI one token each; or `` in session ID (error: N)``. Then Roundcube's
  own `` from `` is the only one such a tail can follow, whatever the user name holds (a
  name such as ``x against localhost from 203.0.113.9. LOGIN: y in /a on line 1 (POST /b)``
  leaves Roundcube's real `` from ADDR`` inside what would have to be that tail). A
  request whose forwarded headers are not addresses, or whose URI holds a raw space
  (nginx passes one), is not counted: it never gives another address;
* the address is ``REMOTE_ADDR`` only, never the forwarded headers. Behind a reverse proxy
  that is the proxy's address (loopback or the host's own: never banned); make PHP see the
  client (nginx ``real_ip_header`` + ``set_real_ip_from`` in front of PHP-FPM, Apache
  ``mod_remoteip``) and the lines carry it. Roundcube's ``proxy_whitelist`` only affects
  ``rcube_utils::remote_addr()``, which these messages do not use.

Not counted: ``Successful login for …``; ``Could not connect to …`` (the IMAP server is
down, not a password); the lines described above whose tail is not Roundcube's alone; and
``Login failed for NAME from ADDR`` ending at the address: since the message was added
(0.5, ticket #1487626) ``raise_error`` has always appended the answer and `` in FILE on
line N (METHOD URI)``, so such a line was cut — and a cut after a user name holding
`` from ADDR`` would name whoever the name says.
"""

from bruteguard.match.signature import Frame, Role, Signature, Stamp

__all__ = ["FRAME", "PROGRAMS", "SIGNATURES", "SYSLOG_SIGNATURES"]

PROGRAMS = ("roundcube",)

# "[23-Nov-2026 06:50:01 +0100]: " (log_date_format's default), then "<sessid> ".
FRAME = Frame(
    "roundcube",
    r"\[(\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d [+-]\d{4})\]: (?:<[0-9A-Za-z,-]{1,128}> )?",
    Stamp.CLF,
    example="[23-Nov-2026 06:50:01 +0100]: <8cdd6gst> ",
)

# REMOTE_ADDR (never the headers after it).
_ADDR = r"(?=[0-9A-Fa-f:.]{2,45}[ .(])<HOST>(?<=[0-9A-Fa-f:])"
# remote_ip()'s forwarded headers, accepted only as addresses (other text: not counted);
# Roundcube before 1.5 wrote them right after the address, without a blank.
_FORWARDED = (
    r"(?: ?\((?:X-Real-IP: [0-9A-Fa-f:.]{2,45})?(?:,?X-Forwarded-For: [0-9A-Fa-f:., ]{2,512})?\))?"
)
# The IMAP server's answer (its text, never " from ", nor "from " first: a name such as
# "x from 203.0.113.9." must not end where Roundcube's own " from " starts the answer),
# usually after the command that got it, then log_bug's tail: the file, the line and the
# request (method and URI, which the client chose: one token, no spaces).
_ANSWER = r"(?:(?:AUTHENTICATE [A-Z0-9_-]{1,20}|LOGIN): )?(?!from )(?:[^\s()]++| (?!from ))*?"
_BUG_TAIL = r" in \S{1,512} on line \d{1,6} \([A-Z]{3,10} \S{0,4096}\)"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "imap-login-failed",
        Role.CONFIRM,
        # Everything after the address is fixed text or tokens without spaces, so the
        # " from " Roundcube wrote is the only one a tail can follow, whatever the name
        # (lazy only to leave " against HOST" out of it).
        rf"IMAP Error: Login failed for (?U:<USER>)(?: against \S{{1,255}})? from {_ADDR}"
        rf"{_FORWARDED}\. {_ANSWER}{_BUG_TAIL}",
        (
            "IMAP Error: Login failed for admin against localhost from 198.51.100.7."
            " AUTHENTICATE PLAIN: Authentication failed. in"
            " /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 211"
            " (POST /?_task=login&_action=login)",
            "IMAP Error: Login failed for bob@example.org against imap.example.org from"
            " 2001:db8::7. LOGIN: Authentication failed. in"
            " /var/www/roundcube/program/lib/Roundcube/rcube_imap.php on line 200"
            " (POST /roundcube/?_task=login&_action=login)",
            "IMAP Error: Login failed for info from 198.51.100.7. AUTHENTICATE PLAIN:"
            " Authentication failed. in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php"
            " on line 184 (POST /?_task=login&_action=login)",
            "IMAP Error: Login failed for bob@example.org against example.org from"
            " 198.51.100.7(X-Forwarded-For: 198.51.100.7). Authentication failed. in"
            " /var/www/mail/program/lib/Roundcube/rcube_imap.php on line 200"
            " (POST /?_task=login&_action=login)",
        ),
    ),
    Signature(
        "failed-login",
        Role.CONFIRM,
        rf"Failed login for (?U:<USER>) from {_ADDR}{_FORWARDED} in session [0-9A-Za-z,-]{{1,64}}"
        r" \(error: -?\d{1,6}\)",
        (
            "Failed login for admin from 198.51.100.7 in session 8cdd6gst8ks3m2 (error: 0)",
            "Failed login for bob@example.org from 2001:db8::7 in session no-session (error: 0)",
        ),
    ),
)

# syslog: "roundcube: <sessid> IMAP Error: …" (the session id first, as in the file).
SYSLOG_SIGNATURES: tuple[Signature, ...] = tuple(
    Signature(
        signature.name,
        signature.role,
        r"(?:<[0-9A-Za-z,-]{1,128}> )?" + signature.message,
        signature.samples,
    )
    for signature in SIGNATURES
)
