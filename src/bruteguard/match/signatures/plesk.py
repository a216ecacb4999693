"""Plesk: failed logins to the panel (panel.log), and TLS noise on sw-cp-server's ports.

**plesk-panel** reads ``/var/log/plesk/panel.log``. Plesk writes one line per failed panel
login (its Action Log event *CP User Login Attempt Failed*)::

    [2026-11-23 06:50:01.123] 1234:5f3c9a1b2c3d4 ERR [panel]
      Failed login attempt with login 'root' from IP 198.51.100.7

(one line).

Recent releases put ``[Action Log] `` before the text; older ones wrote the stamp without
milliseconds and without the ``PID:REQUEST`` field; both are accepted (frame ``PANEL``).
The login is the client's and comes *before* the address, which Plesk takes from the
connection (sw-cp-server, Plesk's nginx, is the panel's front end) and writes last: the
login is greedy and the address is the last ``' from IP …`` before the end of the line.
Plesk does not document whether it escapes line breaks in the login: if it does not, a
login with a line break could put a whole forged line in panel.log (no pattern can tell
such a line from a real one) — the signatures only make sure text *within* a line cannot
move the address.

**sw-cp-server** reads sw-cp-server's error log (``/var/log/sw-cp-server/error_log``,
nginx's format: frame ``NGINX_ERROR``), where the panel's TLS ports (8443, and 8880 when
it is TLS) log failed TLS handshakes (``nginx.TLS_SIGNATURES``, nginx's own message).
During brute force and scans these come in floods. Only the errors no browser can cause
count, one line per connection:

* ``http request`` — plain HTTP sent to the TLS port;
* ``wrong version number``, ``unknown protocol``, ``unexpected message``, ``packet length
  too long``, ``record layer failure`` — bytes that are not TLS; ``length too short``,
  ``encrypted length too long`` — records cut to probe for TLS_FALLBACK_SCSV;
* ``unsupported protocol``, ``version too low``, ``no shared cipher``, ``no suitable key
  share``, ``bad key share``, ``no shared signature algorithms`` — SSLv3/TLS 1.0 probes
  and scanners' cipher sweeps (no current browser offers only those).

Plesk's older sw-cp-server was lighttpd, whose error log (frame ``LIGHTTPD_ERROR``) writes
``2009-06-03 22:37:08: (connections.c.299) SSL: 1 error:140780E5:SSL
routines:SSL23_READ:ssl handshake failure``: **no client at all** (``LIGHTTPD_TLS_OLD``,
address-less). The daemon ties such a line to the one real connection to the jail's ports
that ended with it, since lighttpd closes the connection as it writes the error
(``HostNames.ends_connection``), or to nobody; ``bruteguard scan`` cannot. lighttpd 1.4.69
(Debian 12; checked with a real run: plain HTTP and a broken ClientHello sent to its TLS
port) writes the client last, in parentheses: ``2026-12-04 22:22:50: (mod_openssl.c.3275)
SSL: 1 error:0A00009C:SSL routines::http request (192.0.2.10)`` (``LIGHTTPD_TLS``). OpenSSL
0.9.8/1.0 reasons seen there (``SSL23_GET_CLIENT_HELLO:http request``, ``unknown protocol``,
``ssl handshake failure``) count too.

Not counted: a browser refusing the panel's (often self-signed) certificate
(``sslv3 alert certificate unknown``, ``bad certificate``, ``unknown ca``: the
administrator's own browser), ``peer closed connection in SSL handshake`` and ``client
closed connection while SSL handshaking`` (browsers' pre-connections do that too), and the
``Failed password for root`` lines brute force leaves in the journal: those are sshd's,
counted by the sshd filter.
"""

from bruteguard.match.signature import Frame, Role, Signature, Stamp
from bruteguard.match.signatures.nginx import TLS_REASON as _REASON

__all__ = [
    "LIGHTTPD_ERROR",
    "LIGHTTPD_TLS",
    "LIGHTTPD_TLS_OLD",
    "PANEL",
    "PANEL_SIGNATURES",
]

# "[2026-11-23 06:50:01.123] 1234:5f3c9a1b2c3d4 " (brackets, milliseconds and the
# PID:REQUEST-ID field are absent in older releases).
PANEL = Frame(
    "plesk-panel",
    r"\[?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?)\]? (?:\d{1,10}:[0-9a-f]{1,32} )?",
    Stamp.YMD,
    example="[2026-11-23 06:50:01.123] 1234:5f3c9a1b2c3d4 ",
)

PANEL_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "failed-login",
        Role.CONFIRM,
        r"ERR \[panel\] (?:\[Action Log\] )?Failed login attempt with login '<USER>'"
        r" from IP (?=[0-9A-Fa-f:.]{2,45}$)<HOST>",
        (
            "ERR [panel] Failed login attempt with login 'root' from IP 198.51.100.7",
            "ERR [panel] [Action Log] Failed login attempt with login 'admin' from IP 2001:db8::7",
            "ERR [panel] Failed login attempt with login '' from IP 198.51.100.7",
        ),
    ),
)

# lighttpd's error log: "2026-12-04 22:22:50: (mod_openssl.c.3275) " (the source file and
# line that wrote it).
LIGHTTPD_ERROR = Frame(
    "lighttpd-error",
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d): \([A-Za-z0-9_.-]{1,64}\.c\.\d{1,6}\) ",
    Stamp.YMD,
    example="2026-12-04 22:22:50: (mod_openssl.c.3275) ",
)

# OpenSSL 0.9.8/1.0 as the lighttpd Plesk shipped used it: "ssl handshake failure" from
# SSL23_READ is what a non-TLS client left there.
_OLD_REASON = rf"(?:{_REASON}|ssl handshake failure)"

LIGHTTPD_TLS: tuple[Signature, ...] = (
    Signature(
        "tls-handshake-probe",
        Role.CONFIRM,
        # lighttpd writes the client last, in parentheses: OpenSSL's text before it is the
        # library's, not the client's.
        rf"SSL: \d{{1,10}} error:[0-9A-F]{{8}}:SSL routines:[A-Za-z0-9_]{{0,64}}:{_OLD_REASON}"
        r" \((?=[0-9A-Fa-f:.]{2,45}\)$)<HOST>\)",
        (
            "SSL: 1 error:0A00009C:SSL routines::http request (192.0.2.10)",
            "SSL: 1 error:0A0000F4:SSL routines::unexpected message (2001:db8::a)",
            "SSL: 1 error:1408F10B:SSL routines:ssl3_get_record:wrong version number"
            " (198.51.100.7)",
        ),
    ),
)

LIGHTTPD_TLS_OLD: tuple[Signature, ...] = (
    Signature(
        "tls-handshake-probe-no-client",
        Role.CONFIRM,
        rf"SSL: \d{{1,10}} error:[0-9A-F]{{8}}:SSL routines:[A-Za-z0-9_]{{0,64}}:{_OLD_REASON}",
        (
            "SSL: 1 error:140780E5:SSL routines:SSL23_READ:ssl handshake failure",
            "SSL: 1 error:1407609C:SSL routines:SSL23_GET_CLIENT_HELLO:http request",
        ),
        addressless=True,
    ),
)
