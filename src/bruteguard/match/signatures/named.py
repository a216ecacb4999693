"""BIND 9 named: queries, zone transfers and updates its ACLs refused.

Every message about a client goes through ``ns_client_logv`` (lib/ns/client.c, 9.18)::

    client @0xPOINTER ADDR#PORT[/key SIGNER][ (QNAME)][: view VIEW]: MESSAGE

ADDR#PORT is ``isc_sockaddr_format`` of the peer (IPv6 without brackets), written right
after the client object's pointer: the address comes before anything the client chose.
QNAME is the query's name (the client's), in DNS text form — blanks as ``\\032``, parens
escaped, but ``'`` and ``:`` as they are; SIGNER a TSIG key the server verified; VIEW the
administrator's view name. BIND before 9.10 wrote ``client ADDR#PORT: MESSAGE`` (no
pointer, no name). Checked against real named 9.18.49 (Debian 12) lines on a lab network,
queried with dig over UDP and TCP.

Two log forms: syslog (program ``named``), and a ``logging { channel … { file …; }; }`` of
named's own (``LOG_FRAME``): ``print-time`` writes ``dd-Mmm-YYYY hh:mm:ss.mmm`` (local time,
isc_log; 9.16+'s ``print-time iso8601`` ``2026-12-05T00:33:30.623``, ``iso8601-utc`` with a
``Z``: ``LOG_FRAME_ISO``), then ``print-category`` the category and ``print-severity``
the level, each followed by ``: `` — ``11-Aug-2013 03:36:11.372 security: error: client …``.
Syslog channels may print the category and level too (``named[36]: security: info: client
…``).

The refusals counted (category ``security``, level info or error, logged by default):

* ``query (cache) 'NAME/TYPE/CLASS' denied`` — a name outside the server's zones and
  ``allow-query-cache``/``allow-recursion`` refused: open-resolver probes and reflection
  (amplification) traffic. 9.18.41+ add `` (allow-query-cache did not match)``.
* ``query 'NAME/TYPE/CLASS' denied`` — a zone's ``allow-query`` refused.
* ``zone transfer 'ZONE/AXFR/CLASS' denied`` (or ``IXFR``) — ``allow-transfer`` refused.
* ``update 'ZONE/CLASS' denied``, ``update-forwarding 'ZONE/CLASS' denied`` —
  ``allow-update`` (``-forwarding``) refused.

* ``bad zone transfer request: 'ZONE/CLASS': non-authoritative zone (NOTAUTH)`` — an
  AXFR/IXFR for a zone this server does not serve (xfrout.c ``FAILQ``, category
  ``xfer-out``, info): zone-transfer probing. Other ``bad zone transfer request`` reasons
  (``zone not loaded``, ``zone has no SOA``…) are the server's own trouble and not counted.

Each is one line per refused request: role CONFIRM. The line does not say whether the
request came over UDP or TCP: a UDP source address can be forged, so denied UDP queries may
name the victim of a reflection attack, not its author (see the jail's documentation). Not
counted: ``approved`` (debug), ``query-on denied`` and lame-server or resolver errors
(server-side trouble), ``signer "KEY" denied`` (the same update's own line).
"""

from bruteguard.match.signature import Frame, Role, Signature, Stamp

__all__ = ["LOG_FRAME", "LOG_FRAME_ISO", "PROGRAMS", "SIGNATURES"]

PROGRAMS = ("named",)

_ADDR = r"[0-9A-Fa-f:.]{2,45}"
# print-category and print-severity (isc_log): "security: ", "info: ", "debug 3: ".
_CATEGORY_LEVEL = (
    r"(?:[a-z][a-z-]{1,30}: )?(?:(?:critical|error|warning|notice|info|debug \d{1,2}): )?"
)
# named's own log file: print-time's "dd-Mmm-YYYY hh:mm:ss.mmm" (local time) first, or
# (9.16+) "print-time iso8601": "2026-12-05T00:33:30.623" (local), "iso8601-utc": with "Z".
LOG_FRAME = Frame(
    "named-log",
    r"(\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d(?:\.\d{3})?) ",
    Stamp.CLF,
    example="11-Aug-2013 03:36:11.372 ",
)
LOG_FRAME_ISO = Frame(
    "named-log-iso8601",
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z?) ",
    Stamp.SYSLOG,
    example="2026-12-05T00:33:30.623Z ",
)
# ns_client_logv's prefix: the client object, the peer, the signer, the query name, the view.
_CLIENT = (
    rf"{_CATEGORY_LEVEL}client (?:@0x[0-9a-f]{{1,16}} )?(?={_ADDR}#\d)<HOST>#\d{{1,5}}"
    r"(?:/key \S{1,255})?(?: \(\S{0,1100}\))?(?:: view \S{1,255})?: "
)
# 'NAME/TYPE/CLASS' (a name may hold a quote; no blank), then 9.18.41+'s reason.
_WHAT = r"'\S{1,1100}' denied(?: \([a-z-]{1,40} did not match\))?"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "denied",
        Role.CONFIRM,
        rf"{_CLIENT}(?:query(?: \(cache\))?|zone transfer|update(?:-forwarding)?) {_WHAT}",
        (
            "client @0x7f3339d54098 198.51.100.7#55936 (x.test): query (cache)"
            " 'x.test/A/IN' denied (allow-query-cache did not match)",
            "client @0x7f3339d57898 2001:db8::66#38061 (x.test): query (cache) 'x.test/ANY/IN'"
            " denied",
            "client @0x7f3339d54098 198.51.100.7#49976 (www.internal.example.org): query"
            " 'www.internal.example.org/A/IN' denied",
            "client @0x7f3339d57898 198.51.100.7#38505 (example.org): zone transfer"
            " 'example.org/AXFR/IN' denied",
            "client @0x7f3339d54098 198.51.100.7#52277: update 'example.org/IN' denied",
            "client 198.51.100.7#1024: query (cache) 'example.net/A/IN' denied",
            "security: info: client @0x7f3339d54098 198.51.100.7#53 (example.net): query"
            " (cache) 'example.net/A/IN' denied",
        ),
    ),
    Signature(
        "notauth-transfer",
        Role.CONFIRM,
        rf"{_CLIENT}bad zone transfer request: '\S{{1,1100}}': non-authoritative zone"
        r" \(NOTAUTH\)",
        (
            "client @0x7f3339d57898 198.51.100.7#42592 (example.com): bad zone transfer"
            " request: 'example.com/IN': non-authoritative zone (NOTAUTH)",
            "xfer-out: info: client 2001:db8::66#42592: bad zone transfer request:"
            " 'example.com/IN': non-authoritative zone (NOTAUTH)",
        ),
    ),
)
