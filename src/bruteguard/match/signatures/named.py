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

The refusals counted (category ``security``, level info or error, logged by default):

* ``query (cache) 'NAME/TYPE/CLASS' denied`` — a name outside the server's zones and
  ``allow-query-cache``/``allow-recursion`` refused: open-resolver probes and reflection
  (amplification) traffic. 9.18.41+ add `` (allow-query-cache did not match)``.
* ``query 'NAME/TYPE/CLASS' denied`` — a zone's ``allow-query`` refused.
* ``zone transfer 'ZONE/AXFR/CLASS' denied`` (or ``IXFR``) — ``allow-transfer`` refused.
* ``update 'ZONE/CLASS' denied``, ``update-forwarding 'ZONE/CLASS' denied`` —
  ``allow-update`` (``-forwarding``) refused.

Each is one line per refused request: role CONFIRM. The line does not say whether the
request came over UDP or TCP: a UDP source address can be forged, so denied UDP queries may
name the victim of a reflection attack, not its author (see the jail's documentation). Not
counted: ``approved`` (debug), ``query-on denied`` and lame-server or resolver errors
(server-side trouble), ``signer "KEY" denied`` (the same update's own line).
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["PROGRAMS", "SIGNATURES"]

PROGRAMS = ("named",)

_ADDR = r"[0-9A-Fa-f:.]{2,45}"
# ns_client_logv's prefix: the client object, the peer, the signer, the query name, the view.
_CLIENT = (
    rf"client (?:@0x[0-9a-f]{{1,16}} )?(?={_ADDR}#\d)<HOST>#\d{{1,5}}"
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
        ),
    ),
)
