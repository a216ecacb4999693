"""nginx: failed HTTP basic authentication (error log), and 401/403 floods (access log).

**nginx-http-auth** reads the error log (``/var/log/nginx/error.log``, frame
``NGINX_ERROR``). ``ngx_http_auth_basic_module`` (nginx 1.22) writes, at level ``error``,
one line per request whose credentials are wrong:

* ``user "NAME": password mismatch`` — the user exists, the password is wrong;
* ``user "NAME" was not found in "FILE"`` — no such user in the password file (older
  releases wrote ``user "NAME": was not found``, as fail2ban's filter allows).

nginx appends ``, client: ADDR, server: NAME`` and then, for a request, ``, request:
"…"``, ``, upstream: "…"``, ``, host: "…"`` and ``, referrer: "…"``: the request line,
Host and Referer headers are the client's, written raw (a ``"`` is not escaped). The user
name comes *before* the client address and is the client's too, also raw. What makes the
address unambiguous: nginx takes the user name from the decoded ``Authorization`` header
up to the *first* ``:`` (``ngx_http_auth_basic_user``), so a user name never holds a
``:`` — it cannot hold ``, client: ADDR`` nor a forged line after a line break (a stamp
has colons). So the first ``, client: `` after ``user "`` is nginx's own, whatever the
request, Host or Referer say after it. The user is matched lazily up to that first
separator inside an atomic group, so a line whose real client is not an address (nginx on
a unix socket writes ``unix:``) does not match at all instead of sliding on to a decoy in
the request. A user name with a line break splits the line: neither part matches (such a
name is never a real account, nothing is lost). nginx cuts a line at 2048 bytes: a line cut
before the client field (a very long user or file name) does not match.

Not counted: ``no user/password was provided for basic authentication`` — written at level
``info`` (not logged by default) when a request carries no credentials, which is every
browser's first request before it asks the user: not an attempt. One request is one line,
so one attempt is counted once.

**nginx-tls-probe** reads the same error log: failed TLS handshakes no browser causes
(``TLS_SIGNATURES``; the reasons are listed in ``plesk``, whose sw-cp-server is nginx too),
among them the cut records TLS_FALLBACK_SCSV probers send (``length too short``,
``encrypted length too long``, logged at ``crit``), as fail2ban's aggressive mode bans.

**nginx-http-flood** reads the access log (``/var/log/nginx/access.log``, format
``combined``, frame ``ACCESS``): every request answered 401 or 403 counts (see
``frames.ACCESS_DENIED``). nginx escapes ``"`` in every logged variable as ``\\x22``, so a
request line like ``GET /x" 401 1 "-" "-`` cannot fake a status. The same request is also
an attempt for nginx-http-auth when it carried wrong credentials: the two jails count
separately, as two jails should.
"""

from bruteguard.match.signature import Role, Signature
from bruteguard.match.signatures.frames import ACCESS_DENIED

__all__ = ["AUTH_SIGNATURES", "FLOOD_SIGNATURES", "TLS_REASON", "TLS_SIGNATURES"]

# What nginx writes as the client (ngx_sock_ntop: IPv4, IPv6 without brackets), then the
# server name, which is the administrator's; everything after it may be the client's.
_CLIENT = r"(?=[0-9A-Fa-f:.]{2,45}, server: )<HOST>, server: .*"

AUTH_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "password-mismatch",
        Role.CONFIRM,
        rf'user "(?>(?U:<USER>)": password mismatch, client: ){_CLIENT}',
        (
            'user "bob": password mismatch, client: 198.51.100.7, server: example.org,'
            ' request: "GET / HTTP/1.1", host: "example.org"',
            'user "admin": password mismatch, client: 2001:db8::7, server: example.org,'
            ' request: "GET /private/ HTTP/2.0", host: "example.org",'
            ' referrer: "https://example.org/"',
        ),
    ),
    Signature(
        "user-not-found",
        Role.CONFIRM,
        # The file name is the administrator's; the first ", client: " ends it.
        rf'user "(?>(?U:<USER>)":? was not found in "(?U:.*)", client: ){_CLIENT}',
        (
            'user "bob" was not found in "/etc/nginx/.htpasswd", client: 198.51.100.7,'
            ' server: example.org, request: "GET / HTTP/1.1", host: "example.org"',
            'user "root" was not found in "/etc/nginx/.htpasswd", client: 2001:db8::7, server: _',
        ),
    ),
)

FLOOD_SIGNATURES: tuple[Signature, ...] = ACCESS_DENIED

# OpenSSL 3 ("error:0A00009C:SSL routines::http request") and 1.1
# ("error:1408F09C:SSL routines:ssl3_get_record:http request") spell the reason the same.
TLS_REASON = (
    r"(?:http request|wrong version number|unknown protocol|unexpected message"
    r"|packet length too long|record layer failure|unsupported protocol|version too low"
    r"|no shared cipher|no suitable key share|bad key share|no shared signature algorithms"
    r"|length too short|encrypted length too long)"
)

TLS_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "tls-handshake-probe",
        Role.CONFIRM,
        # Before a request there is no client text on the line: nginx writes the
        # listening socket as the server.
        r"SSL_do_handshake\(\) failed \(SSL: error:[0-9A-F]{8}:SSL routines:[a-z0-9_]{0,64}:"
        rf"{TLS_REASON}\) while SSL handshaking, client: (?=[0-9A-Fa-f:.]{{2,45}}, server: )"
        r"<HOST>, server: \S{1,300}",
        (
            "SSL_do_handshake() failed (SSL: error:0A00009C:SSL routines::http request)"
            " while SSL handshaking, client: 198.51.100.7, server: 0.0.0.0:8443",
            "SSL_do_handshake() failed (SSL: error:0A000102:SSL routines::unsupported"
            " protocol) while SSL handshaking, client: 2001:db8::7, server: [::]:8443",
            "SSL_do_handshake() failed (SSL: error:1408F10B:SSL routines:ssl3_get_record:"
            "wrong version number) while SSL handshaking, client: 198.51.100.7,"
            " server: 0.0.0.0:8443",
        ),
    ),
)
