"""WordPress: login floods in web access logs, and the WP fail2ban plugin's syslog lines.

**wordpress** reads nginx's and Apache's access logs (frame ``ACCESS``, shared with the
flood filters). WordPress answers a failed login on ``wp-login.php`` with the login form
again — **200** — and a successful one with a redirect — **302** (``wp-login.php``,
``case 'login'``: ``wp_signon`` then ``wp_safe_redirect``); ``xmlrpc.php`` answers every
call 200, a wrong password inside the XML-RPC fault (and ``system.multicall`` packs
hundreds of guesses into one request). So:

* **wp-login-post** — ``POST /wp-login.php`` (any directory prefix, a query without
  ``action=``: not the lost-password, registration or post-password forms, which are no
  login) answered 200: one failed login;
* **xmlrpc-post** — ``POST /xmlrpc.php`` answered 200: one call, a login attempt for the
  brute-force tools that use it (clients of a real XML-RPC application, such as the
  WordPress apps or Jetpack, call it too: the jail's ``maxretry`` is set for floods, and
  such clients' addresses belong in ``ignoreip``).

The method, path and status are fixed text; the path and user agent are the client's, but
the request is the first quoted field (a client's ``"`` is written ``\\x22`` by nginx and
``\\"`` by Apache) and the status is the field after it — the server's
(``frames.access_request``). A ``GET`` of the login page, a 302 (success), a 403/401
(security plugins, HTTP auth: the flood jails') and a 404 (no WordPress here: the scanner
jail's) are not counted here.

**wp-fail2ban** reads the syslog lines of the "WP fail2ban" plugin (``core.php``
``wp_login_failed``/``authenticate``, ``feature/user-enum.php``, ``feature/xmlrpc.php``,
``feature/block.php``; written by ``lib/syslog.php`` ``Syslog::write``: the message, then
`` from `` and the plugin's ``remote_addr()``): the ident is ``wordpress`` (``wp`` with
``WP_FAIL2BAN_SYSLOG_SHORT_TAG``), with ``WP_FAIL2BAN_SYSLOG_TAG_HOST`` followed by
``(HTTP_HOST)``; facility ``auth`` (``WP_FAIL2BAN_AUTH_LOG``), pid included
(``LOG_PID``). The user name is the client's and comes *before* the address, which the
plugin appends last: the user name is greedy and the address is the last `` from ``
before the end of the line. ``HTTP_HOST`` in the tag is the client's ``Host`` header: only
host-name characters are accepted there, so a ``Host`` header with spaces, ``[`` or ``:``
followed by a space makes the line nobody's. ``remote_addr()`` is ``REMOTE_ADDR``, or a
forwarded address only when ``REMOTE_ADDR`` is one of ``WP_FAIL2BAN_PROXIES``.

Lines counted: authentication failures and attempts for unknown users (plain, ``REST``,
``XML-RPC``), ``Blocked authentication attempt``, ``Blocked username authentication
attempt``, ``Blocked user enumeration attempt``, ``XML-RPC multicall authentication
failure``, ``XML-RPC request blocked``, ``Empty username``, ``Immediately block
connections``. Not counted: ``Accepted password for …``, ``Pingback …``, ``Spam comment
…``, ``Comment …`` (not logins). Under the journal the program is PHP's (``php-fpm``):
read ``/var/log/auth.log`` (rsyslog), where the tag is the plugin's.
"""

from bruteguard.match.signature import ProgramPattern, Role, Signature
from bruteguard.match.signatures.frames import access_request

__all__ = ["ACCESS_SIGNATURES", "PLUGIN_PROGRAMS", "PLUGIN_SIGNATURES"]

# A WordPress in a directory: "/blog/wp-login.php" (up to four path segments before it).
_PREFIX = r'(?:/[^\s"\\/?]{1,64}){0,4}'
_HTTP = r"HTTP/[0-9.]{1,3}"

ACCESS_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "wp-login-post",
        Role.CONFIRM,
        access_request(
            rf'POST {_PREFIX}/wp-login\.php(?:\?(?![^\s"\\]*action=)[^\s"\\]*)? {_HTTP}', "200"
        ),
        (
            '198.51.100.7 - - [23/Nov/2026:06:50:01 +0100] "POST /wp-login.php HTTP/1.1" 200'
            ' 4377 "https://example.org/wp-login.php" "Mozilla/5.0"',
            '2001:db8::7 - - [23/Nov/2026:06:50:01 +0100] "POST /blog/wp-login.php HTTP/2.0"'
            ' 200 4377 "-" "-"',
            '198.51.100.7 - - [23/Nov/2026:06:50:01 +0100] "POST'
            ' /wp-login.php?redirect_to=%2Fwp-admin%2F HTTP/1.1" 200 4377 "-" "curl/8.0"',
        ),
    ),
    Signature(
        "xmlrpc-post",
        Role.CONFIRM,
        access_request(rf'POST {_PREFIX}/xmlrpc\.php(?:\?[^\s"\\]*)? {_HTTP}', "200"),
        (
            '198.51.100.7 - - [23/Nov/2026:06:50:01 +0100] "POST /xmlrpc.php HTTP/1.1" 200'
            ' 403 "-" "Mozilla/5.0"',
            'www.example.org:443 2001:db8::7 - - [23/Nov/2026:06:50:01 +0100] "POST'
            ' /xmlrpc.php HTTP/1.0" 200 674 "-" "-"',
        ),
    ),
)

# "wordpress[PID]:", "wp[PID]:", "wordpress(example.org)[PID]:" (the Host header: only
# host-name characters, a port, a multisite path).
PLUGIN_PROGRAMS = (
    "wordpress",
    "wp",
    ProgramPattern(r"(?:wordpress|wp)\([A-Za-z0-9._:/-]{1,255}\)"),
)

_FROM = r" from (?=[0-9A-Fa-f:.]{2,45}$)<HOST>"

PLUGIN_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "plugin-auth-failure",
        Role.CONFIRM,
        r"(?:(?:REST|XML-RPC) authentication|Authentication)"
        rf" (?:failure for|attempt for unknown user) <USER>{_FROM}",
        (
            "Authentication failure for admin from 198.51.100.7",
            "Authentication attempt for unknown user root from 2001:db8::7",
            "XML-RPC authentication failure for editor from 198.51.100.7",
            "REST authentication attempt for unknown user test from 198.51.100.7",
        ),
    ),
    Signature(
        "plugin-blocked-user",
        Role.CONFIRM,
        rf"Blocked (?:username )?authentication attempt for <USER>{_FROM}",
        (
            "Blocked authentication attempt for admin from 198.51.100.7",
            "Blocked username authentication attempt for administrator from 2001:db8::7",
        ),
    ),
    Signature(
        "plugin-blocked",
        Role.CONFIRM,
        r"(?:Blocked user enumeration attempt|XML-RPC multicall authentication failure"
        rf"|XML-RPC request blocked|Empty username|Immediately block connections){_FROM}",
        (
            "Blocked user enumeration attempt from 198.51.100.7",
            "XML-RPC multicall authentication failure from 2001:db8::7",
            "Empty username from 198.51.100.7",
        ),
    ),
)
