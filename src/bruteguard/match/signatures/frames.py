"""Log formats of their own (not syslog) that several filters share, and the access-log message.

A frame is identified by its name, so filters reading the same kind of log must share the
same ``Frame`` object: they live here.

* ``NGINX_ERROR`` — nginx's error log (``ngx_log_error_core``, nginx 1.22):
  ``2026/11/23 06:50:01 [error] 1234#1234: *5 MESSAGE, client: ADDR, server: NAME…``: the
  time (``ngx_cached_err_log_time``), the level, ``pid#tid: `` and, inside a connection,
  ``*N `` (the connection number). Plesk's ``sw-cp-server`` is nginx and writes the same.
* ``MULTILOG`` — daemontools' multilog (s6-log too) with the ``t`` action: ``@`` and a
  TAI64N label in hexadecimal, a blank, then what the service wrote to stderr.
* ``ACCESS`` — the Common/Combined Log Format of nginx (``combined``) and Apache (``%h %l
  %u %t \\"%r\\" %>s %b``): ``ADDR IDENT USER [23/Nov/2026:06:50:01 +0100] "REQUEST"
  STATUS SIZE "REFERER" "AGENT"``, and Apache's ``vhost_combined`` with ``SERVERNAME:PORT``
  first. The stamp sits after the client's user name, so the
  head captures it in a lookahead: the stamp is the one right before the first raw
  ``"`` (which opens the request). Both servers escape every ``"`` a client sends (Apache
  as ``\\"``, nginx as ``\\x22``) and every backslash, so client text before the request
  (the user name) cannot hold a raw ``"`` and cannot plant a stamp there.

``ACCESS_DENIED`` is the access-log message both web servers' flood filters use: a request
answered 401 or 403, one line per request.
"""

from bruteguard.match.signature import Frame, Role, Signature, Stamp

__all__ = ["ACCESS", "ACCESS_DENIED", "MULTILOG", "NGINX_ERROR", "access_request"]

# daemontools' multilog (and s6-log) with the "t" action: a TAI64N label, then the line the
# service wrote to stderr — for Dovecot its own form, "imap-login: Info: …" (a program, then
# the message).
MULTILOG = Frame(
    "multilog",
    r"(@[0-9a-f]{24}) ",
    Stamp.TAI64N,
    programs=True,
    example="@400000006b03e22300000000 ",
)

NGINX_ERROR = Frame(
    "nginx-error",
    r"(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?:emerg|alert|crit|error|warn|notice|info|debug)\]"
    r" \d{1,10}#\d{1,20}: (?:\*\d{1,20} )?",
    Stamp.YMD,
    example="2026/11/23 06:50:01 [error] 1234#1234: *5 ",
)

# Text of a log field up to the first raw '"': anything but '"', a backslash and a line
# break, or an escape (a backslash and the character after it: Apache's \" and \\, nginx's
# \xHH). The user field (Apache's %u, nginx's $remote_user) is escaped the same way.
_ESCAPED = r'(?:[^"\\\n]++|\\.)*+'
_CLF_STAMP = r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}"

# The client address is the first field, written by the server ($remote_addr, %h): an
# address, or with Apache's HostnameLookups On the PTR name (a dotted name, handed to the
# identity stage). A syslog line ("Nov 23 …", "2026-11-23T…") is neither. (The labels are
# repeated possessively, not {1,126} times: PCRE2 copies a bounded group repeat that many
# times into the compiled pattern, and every access-log signature would pay for it.)
_ADDRESS_IS = (
    r"(?=(?:[0-9A-Fa-f:.]{2,45}|(?=[0-9A-Za-z_.-]{3,254} )"
    r"[0-9A-Za-z_-]{1,63}(?:\.[0-9A-Za-z_-]{1,63})++\.?) )"
)

# Apache's vhost_combined puts "%v:%p " first: the server's own ServerName (configuration,
# never the client's Host header) and port. It is stepped over; the client follows.
_VHOST = r"(?:(?:[0-9A-Za-z_][0-9A-Za-z_.-]{0,253}|\[[0-9A-Fa-f:.]{2,45}\]):\d{1,5} )?"

ACCESS = Frame(
    "access-log",
    # Possessive all the way: a long line must not cost a backtracking frame per character
    # (PCRE2's heap limit would make it skip the line for every filter). A "[" that does not
    # open the stamp right before the request is stepped over; the one that does ends it.
    # The first field is checked first: any other kind of line is refused in a few bytes.
    rf"{_VHOST}{_ADDRESS_IS}"
    rf"(?=(?:[^\"\\\n\[]++|\\.|\[(?!{_CLF_STAMP}\] \"))*+(?<= )\[({_CLF_STAMP})\] \")",
    Stamp.CLF,
)


def access_request(request: str, status: str) -> str:
    """An access-log message: the client address, then the request (the first quoted field)
    as ``request`` says, answered with ``status``. ``request`` is matched between the
    request's quotes and must not cross a raw ``"`` (nginx writes a client's ``"`` as
    ``\\x22``, Apache as ``\\"``); the status is the field right after the closing quote:
    the server's, never the client's. The first field's shape is not checked again: the
    frame's head did that at the same place (and PCRE2 would copy its bounded repeats into
    every signature)."""
    return rf'<HOST> {_ESCAPED}(?<= )"{request}" {status} (?:\d{{1,20}}|-)(?: .*)?'


ACCESS_DENIED: tuple[Signature, ...] = (
    Signature(
        "denied",
        Role.CONFIRM,
        # The status is the field right after the request's closing quote: the request is
        # the first quoted field, and nothing inside it can close it early (see _ESCAPED).
        rf'{_ADDRESS_IS}<HOST> {_ESCAPED}(?<= )"{_ESCAPED}" (?:401|403) (?:\d{{1,20}}|-)(?: .*)?',
        (
            '198.51.100.7 - - [23/Nov/2026:06:50:01 +0100] "GET /admin HTTP/1.1" 401 381'
            ' "-" "curl/8.0"',
            '198.51.100.7 - bob [23/Nov/2026:06:50:01 +0100] "GET /private/ HTTP/1.1" 401'
            ' 459 "-" "Mozilla/5.0"',
            '2001:db8::7 - - [23/Nov/2026:06:50:01 +0100] "POST /wp-login.php HTTP/1.1" 403'
            ' 199 "-" "-"',
            '198.51.100.7 - - [23/Nov/2026:06:50:01 +0100] "GET / HTTP/1.0" 403 -',
        ),
    ),
)
