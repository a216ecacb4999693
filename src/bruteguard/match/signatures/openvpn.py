"""OpenVPN (2.4 to 2.6) servers: failed TLS handshakes and refused user names/passwords.

A multi-client server (``mode server``, ``server …``) writes every line about one client
after that client's prefix (``multi_instance_string``, multi.c → ``set_prefix``)::

    [CN/]REAL MESSAGE

``REAL`` is the client's real address as ``mroute_addr_print`` writes it: IPv4 (and an
IPv4-mapped IPv6 peer) as ``198.51.100.7:50000``, IPv6 *without* a port (``2001:db8::a``:
"v6addr:port is too ambiguous"). ``CN/`` is the certificate's common name, or with
``username-as-common-name`` the user name the client sent — client text, any printable
byte (``string_mod_remap_name``: ``CC_PRINT``, line breaks become ``_``) — and it is only
there once the client has passed authentication (``multi_connection_established`` calls
``generate_prefix`` again): a client that fails writes its lines under the bare address.
So every signature here needs the address **at the start of the message**, right where
OpenVPN puts it: a line with a common name in front (a renegotiation of an established
client failing) is not counted, and a common name can never supply an address.

What is counted (each one line per attempt, seen in real OpenVPN 2.6.14 runs):

* ``REAL TLS Error: TLS handshake failed`` (ssl.c ``tls_multi_process``): the TLS handshake
  of a client did not complete — a certificate the CA did not sign (written after ``VERIFY
  ERROR: depth=0, error=…: SUBJECT, serial=…`` and OpenSSL's lines), no certificate, a
  client that never finished (``TLS key negotiation failed to occur within 60 seconds``).
  ``VERIFY ERROR`` itself is not counted: the handshake-failed line follows it for the same
  attempt, and its subject is the client's.
* ``REAL TLS Auth Error: Auth Username/Password verification failed for peer``
  (ssl_verify.c ``verify_user_pass``): ``auth-user-pass-verify`` or a plugin said no. The
  handshake itself succeeded; the client then gets ``AUTH_FAILED`` (``SENT CONTROL [CN]:
  'AUTH_FAILED' (status=1)``, written once or twice at verb 3: not counted).
* ``REAL TLS Error: cannot locate HMAC in incoming packet from [AF_INET]ADDR:PORT`` (and
  ``incoming packet authentication failed``, ``tls-crypt unwrapping failed``, ``can not
  extract tls-crypt-v2 client key``, ``could not determine wrapping``; ssl_pkt.c
  ``read_control_auth``): a client without the ``tls-auth``/``tls-crypt`` key. Counted only
  with the client's prefix, i.e. on a TCP connection (a completed handshake): the same
  line from a UDP server has no prefix and its address is whatever source a single packet
  claimed — anyone can forge it, so it is not counted.

A UDP client's prefix exists once OpenVPN created its instance: 2.6 does so only after the
client echoed the server's HMAC cookie (it proved it receives at its address); 2.5 and
older on the first packet, so without ``tls-auth``/``tls-crypt`` a forged packet can make
a handshake fail under someone else's address. TCP needs a completed handshake first.

Logs: syslog (``--daemon NAME``/``--syslog NAME``: program ``ovpn-NAME``, Debian's
``openvpn@server.service`` → ``ovpn-server``) or the journal (``openvpn-server@.service``:
stdout, program ``openvpn``), or OpenVPN's own ``log``/``log-append`` file, whose lines start
with ``YYYY-MM-DD hh:mm:ss `` (frame ``LOG``, 2.4 and later).
"""

from bruteguard.match.signature import Frame, Role, Signature, Stamp

__all__ = ["LOG", "PROGRAMS", "SIGNATURES"]

PROGRAMS = ("openvpn", "ovpn-server")

# OpenVPN's own log file (log / log-append): "2026-12-04 22:19:10 " (2.4 and later).
LOG = Frame(
    "openvpn-log",
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ",
    Stamp.YMD,
    example="2026-12-04 22:19:10 ",
)

# The prefix at the start of the message: "198.51.100.7:50000 " or "2001:db8::a " (IPv6 has
# no port). <HOST> is one greedy field, so an IPv4 one must not end in ":PORT": each
# ".OCTET:PORT" ending is refused by a lookbehind of fixed length, and the port follows.
_IPV4_PORT_END = "|".join(
    rf"\.\d{{{octet}}}:\d{{{port}}}" for octet in range(1, 4) for port in range(1, 6)
)
_REAL = (
    r"(?=(?:\d{1,3}\.){3}\d{1,3}:\d{1,5} |[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:]{1,38} )"
    rf"<HOST>(?<!{_IPV4_PORT_END})(?::\d{{1,5}})? "
)
# The same prefix where another address (print_link_socket_actual's) carries <HOST>.
_REAL_SHAPE = r"(?:(?:\d{1,3}\.){3}\d{1,3}:\d{1,5}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:]{1,38}) "
# print_link_socket_actual: "[AF_INET]198.51.100.7:50000", "[AF_INET6]2001:db8::a:50000"
# (the port after the last colon), "[AF_INET6]::ffff:198.51.100.7:50000"; ends the line.
_LINK = r"\[AF_INET6?\](?=[0-9A-Fa-f:.]{2,45}:\d{1,5}$)<HOST>:\d{1,5}"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "tls-handshake-failed",
        Role.CONFIRM,
        rf"{_REAL}TLS Error: TLS handshake failed",
        (
            "198.51.100.7:36462 TLS Error: TLS handshake failed",
            "2001:db8::a TLS Error: TLS handshake failed",
        ),
    ),
    Signature(
        "auth-failed",
        Role.CONFIRM,
        rf"{_REAL}TLS Auth Error: Auth Username/Password verification failed for peer",
        (
            "198.51.100.7:36460 TLS Auth Error: Auth Username/Password verification failed"
            " for peer",
            "2001:db8::a TLS Auth Error: Auth Username/Password verification failed for peer",
        ),
    ),
    Signature(
        "tls-wrap-failed",
        Role.CONFIRM,
        rf"{_REAL_SHAPE}TLS Error: (?:cannot locate HMAC in incoming packet|incoming packet"
        r" authentication failed|tls-crypt unwrapping failed|can not extract tls-crypt-v2"
        rf" client key|could not determine wrapping) from {_LINK}",
        (
            "198.51.100.7:38008 TLS Error: cannot locate HMAC in incoming packet from"
            " [AF_INET6]::ffff:198.51.100.7:38008",
            "198.51.100.7:38022 TLS Error: incoming packet authentication failed from"
            " [AF_INET]198.51.100.7:38022",
            "2001:db8::a TLS Error: tls-crypt unwrapping failed from [AF_INET6]2001:db8::a:38022",
        ),
    ),
)
