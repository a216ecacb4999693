"""Apache httpd 2.2 and 2.4: failed HTTP basic/digest authentication (error log), 401/403 floods.

**apache-auth** reads the error log (``/var/log/apache2/error.log``, frame
``APACHE_ERROR``), or syslog with ``ErrorLog syslog`` (``SYSLOG_PROGRAMS``; Apache then
leaves its own time stamp out). Apache 2.4's default error-log format (``do_errorlog_default`` in
server/log.c, no ``ErrorLogFormat``) is::

    [Mon Nov 23 06:50:01.123456 2026] [auth_basic:error] [pid 1234:tid 5678]
      [client ADDR:PORT] AH01618: user bob not found: /private[, referer: URL]

(one line).

``[pid N]`` without ``:tid`` under a non-threaded MPM (prefork). ``[client ADDR:PORT]``
holds the request's ``useragent_ip`` (the connection's address, or with mod_remoteip the
proxied client's) as Apache prints it: IPv4, or IPv6 without brackets, the port always
last; it comes *before* the message, at a fixed place that nothing the client sends can
reach. Apache writes ``[remote ADDR:PORT]`` instead when the request's connection has no
scoreboard handle (``do_errorlog_default``: meant for proxy backends), and that is every
HTTP/2 request: mod_http2 runs each stream on a secondary connection without one. The
address is the same request's ``useragent_ip`` either way (checked against the real Apache
2.4 of Debian 12: curl over HTTP/1.1 writes ``[client …]``, over h2c ``[remote …]``), and
the authentication messages below are only ever written about a request a client sent:
both forms count. Apache escapes control characters and backslashes in the message and the
Referer (``ap_escape_errorlog_item``), so no client text can start a new line.

The messages (mod_auth_basic, mod_auth_digest, level ``error``), one per request:

* ``AH01617: user NAME: authentication failure for "URI": Password Mismatch``
* ``AH01618: user NAME not found: URI``
* ``AH01790: user `NAME' in realm `REALM' not found: URI`` (digest)
* ``AH01792: user NAME: password mismatch: URI`` (digest, an RFC 2069 client: no ``qop``)
* ``AH01794: user NAME: password mismatch: URI`` (digest)

Apache 2.2 wrote the same messages without module, pid, code or port, the digest ones with
``Digest: `` first (``log_error_core``; its ``ap_escape_errorlog_item`` escapes the message
too)::

    [Thu Jul 11 01:21:41 2013] [error] [client ADDR] user bob not found: /private

NAME and URI are the client's; the user name is captured in a leading lookahead (the engine
needs ``<USER>`` before ``<HOST>``), lazily up to the message's first fixed separator, so a
name that contains the separator text is cut short, and never moves the address. Not
counted, because no password was wrong:

* ``AH01614 client used wrong authentication scheme`` — a non-Basic ``Authorization``
  header (Negotiate, Bearer…): no password was looked at;
* digest ``realm mismatch`` (AH01788), ``unknown algorithm`` (AH01789), ``invalid qop``
  (AH01793) — refused before any password is looked at (a browser that reuses one realm's
  credentials for another path of the same server writes a realm mismatch);
* digest ``invalid nonce … length is not`` / ``hash is not`` / ``user attempted time
  travel`` — ``check_nonce`` runs *after* the password matched (a nonce from before a
  restart, a clock stepped back);
* ``AH01630``/``AH01797 client denied by server configuration`` — an access rule
  (``Require``, ``Deny from``) refused the request before any login; mod_evasive
  writes the same text for clients it blocks as a flood. The access log's 403 counts for
  apache-http-flood;
* ``AH01631 user NAME: authorization failure`` and ``AH01637 Authorization of user NAME …
  failed`` (mod_authz_core, mod_authz_owner) — the password was right, the account may not
  see that page;
* ``AH02031``-``AH02033`` (mod_ssl: SNI and ``Host`` disagree) — no login; old TLS stacks
  without SNI and browsers reusing one HTTP/2 connection for two names write them.

**apache-http-flood** reads the access log (``/var/log/apache2/access.log``, Debian's
``combined`` format, frame ``ACCESS``): every request answered 401 or 403 counts (see
``frames.ACCESS_DENIED``). Apache escapes ``"`` in the request line and user name as
``\\"`` (``ap_escape_logitem``), so a request cannot fake the status. With
``HostnameLookups On`` Apache writes the client's PTR name instead of its address: names
go to the identity stage; keep ``HostnameLookups Off`` (the default) or ``Double``.
"""

from bruteguard.match.signature import Frame, ProgramPattern, Role, Signature, Stamp
from bruteguard.match.signatures.frames import ACCESS_DENIED

__all__ = ["APACHE_ERROR", "AUTH_SIGNATURES", "FLOOD_SIGNATURES", "SYSLOG_PROGRAMS"]

# "[Mon Nov 23 06:50:01.123456 2026] ": ap_recent_ctime_ex with microseconds.
APACHE_ERROR = Frame(
    "apache-error",
    r"\[((?:[A-Z][a-z]{2} )?[A-Z][a-z]{2} [ 0-3]\d \d\d:\d\d:\d\d(?:\.\d{1,6})? \d{4})\] ",
    Stamp.CTIME,
    example="[Mon Nov 23 06:50:01.123456 2026] ",
)

_PID = r"\[pid \d{1,10}(?::tid \d{1,20})?\] "
_PEER = r"\[(?:client|remote) "
_CLIENT = rf"{_PEER}[0-9A-Fa-f:.]{{2,45}}:\d{{1,5}}\] "


# Apache 2.2: "[error] [client ADDR] " (the connection's address, no port).
_CLIENT_22 = r"[0-9A-Fa-f:.]{2,45}\] "


def _message_22(user_first: str, user_rest: str) -> str:
    """Apache 2.2's ``[error] [client HOST] {user_first}NAME{user_rest}…``."""
    return (
        rf"\[error\] (?=\[client {_CLIENT_22}{user_first}(?U:<USER>){user_rest})"
        rf"\[client (?={_CLIENT_22})<HOST>\] .*"
    )


def _message(module: str, code: str, user_first: str, user_rest: str) -> str:
    """``[module:error] [pid …] [client|remote HOST:PORT] CODE: {user_first}NAME{user_rest}…``."""
    return (
        rf"\[{module}:error\] {_PID}"
        rf"(?={_CLIENT}{code}: {user_first}(?U:<USER>){user_rest})"
        rf"{_PEER}(?=[0-9A-Fa-f:.]{{2,45}}:\d{{1,5}}\] )<HOST>:\d{{1,5}}\] {code}: .*"
    )


AUTH_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "basic-password-mismatch",
        Role.CONFIRM,
        _message("auth_basic", "AH01617", "user ", r': authentication failure for "'),
        (
            "[auth_basic:error] [pid 1234:tid 140234] [client 198.51.100.7:52311] AH01617:"
            ' user bob: authentication failure for "/private": Password Mismatch',
            "[auth_basic:error] [pid 1234] [client 2001:db8::7:52311] AH01617: user admin:"
            ' authentication failure for "/": Password Mismatch, referer: https://example.org/',
            "[auth_basic:error] [pid 13967:tid 13998] [remote 198.51.100.7:36518] AH01617:"
            ' user alice: authentication failure for "/private/": Password Mismatch',
        ),
    ),
    Signature(
        "basic-user-not-found",
        Role.CONFIRM,
        _message("auth_basic", "AH01618", "user ", " not found: "),
        (
            "[auth_basic:error] [pid 1234:tid 140234] [client 198.51.100.7:52311] AH01618:"
            " user bob not found: /private",
            "[auth_basic:error] [pid 1234:tid 140234] [client 2001:db8::7:40022] AH01618:"
            " user root not found: /",
            "[auth_basic:error] [pid 13968:tid 14081] [remote 2001:db8::7:52664] AH01618:"
            " user x not found: /private",
        ),
    ),
    Signature(
        "digest-user-not-found",
        Role.CONFIRM,
        _message("auth_digest", "AH01790", "user `", "' in realm `"),
        (
            "[auth_digest:error] [pid 1234:tid 140234] [client 198.51.100.7:52311] AH01790:"
            " user `bob' in realm `private' not found: /private",
        ),
    ),
    Signature(
        "digest-password-mismatch",
        Role.CONFIRM,
        _message("auth_digest", "AH01794", "user ", ": password mismatch: "),
        (
            "[auth_digest:error] [pid 1234:tid 140234] [client 198.51.100.7:52311] AH01794:"
            " user bob: password mismatch: /private",
        ),
    ),
    Signature(
        "digest-password-mismatch-rfc2069",
        Role.CONFIRM,
        _message("auth_digest", "AH01792", "user ", ": password mismatch: "),
        (
            "[auth_digest:error] [pid 1234:tid 140234] [client 198.51.100.7:52311] AH01792:"
            " user bob: password mismatch: /private",
        ),
    ),
    # Apache 2.2 (mod_auth_basic, mod_auth_digest): the same messages in the old frame.
    Signature(
        "basic-password-mismatch-2.2",
        Role.CONFIRM,
        _message_22("user ", r': authentication failure for "'),
        (
            '[error] [client 198.51.100.7] user bob: authentication failure for "/private":'
            " Password Mismatch",
        ),
    ),
    Signature(
        "basic-user-not-found-2.2",
        Role.CONFIRM,
        # Always ": URI" after it; a line cut there still names the client before it.
        _message_22("user ", r" not found(?:: |$)"),
        (
            "[error] [client 198.51.100.7] user bob not found: /private",
            "[error] [client 2001:db8::7] user root not found: /, referer: https://example.org/",
        ),
    ),
    Signature(
        "digest-user-not-found-2.2",
        Role.CONFIRM,
        _message_22("Digest: user `", "' in realm `"),
        (
            "[error] [client 198.51.100.7] Digest: user `bob' in realm `private' not found:"
            " /private",
        ),
    ),
    Signature(
        "digest-password-mismatch-2.2",
        Role.CONFIRM,
        _message_22("Digest: user ", ": password mismatch: "),
        ("[error] [client 198.51.100.7] Digest: user bob: password mismatch: /private",),
    ),
)

# ErrorLog syslog[:facility]: Apache's ident is its binary's name (Debian's apache2,
# httpd elsewhere; "httpd/NAME" where a tag names the instance).
SYSLOG_PROGRAMS = ("apache2", "httpd", ProgramPattern("httpd/NAME", r"httpd/[A-Za-z0-9_.-]{1,64}"))

FLOOD_SIGNATURES: tuple[Signature, ...] = ACCESS_DENIED
