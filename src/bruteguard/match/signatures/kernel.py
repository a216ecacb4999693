"""The kernel's firewall log: packets a netfilter ``LOG`` rule (iptables) or an nftables
``log prefix …`` statement reports as blocked — port scans and knocks on closed services.

The kernel writes (net/netfilter/nf_log_syslog.c) ``PREFIX`` then ``IN=IF OUT=IF``, for a
bridge ``PHYSIN=``/``PHYSOUT=``, for a packet with a link-layer header ``MAC=dst:src:type``
(or ``MACSRC= MACDST= MACPROTO=`` with ``macdecode``), then ``SRC=ADDR DST=ADDR LEN=…``,
the IP fields, ``PROTO=…`` and the protocol's fields (TCP: ``SPT= DPT= [SEQ= ACK=]
WINDOW= RES= FLAGS URGP=``). IPv6 addresses are printed in full (``%pI6``:
``2001:0db8:0000:…:0007``; the engine writes them canonical). rsyslog's kernel input adds
the uptime (``kernel: [12345.678901] …``); journald does not. Lines come through syslog as
program ``kernel`` (``/var/log/kern.log``, ``/var/log/ufw.log``, the journal).

Every field is written by the kernel from the packet's headers, as numbers: nothing a
sender chooses is text. PREFIX is the administrator's. An ICMP error quotes the packet it
answers in brackets after the outer fields (``[SRC=… DST=…]``, its addresses chosen by
whoever sent it): the address taken is the first ``SRC=``, right after the interface
fields, and the protocol the first ``PROTO=`` after ``LEN=`` — no bracket can come between.

Which lines count (one line = one attempt):

* the prefix (the text before ``IN=``) names a verdict: it contains BLOCK, DROP, REJECT or
  DENY, in any case (UFW's ``[UFW BLOCK]`` and ``[UFW LIMIT BLOCK]``, firewalld's
  ``FINAL_REJECT:``/``filter_IN_public_REJECT:``, csf's ``*TCP_IN Blocked*``, the usual
  ``nft … log prefix "DROP "``), and not INVALID (conntrack's invalid packets are
  mostly late packets of real, ended connections: firewalld's ``STATE_INVALID_DROP:``);
* the packet came in to this host: ``IN=`` set, ``OUT=`` empty (a blocked outgoing packet
  carries *our* address as ``SRC``; forwarded traffic is the routed networks' business);
* it was sent to this host alone: not to a broadcast or multicast group (the link
  destination's group bit, or a multicast destination address) — LAN chatter (mDNS, SSDP,
  NetBIOS, DHCP) from printers and phones is not an attack;
* it starts something: a TCP ``SYN`` without ``ACK`` (a new connection attempt), or a UDP
  datagram to a port below 32768 (a service port; late replies to our own DNS or NTP
  queries, after conntrack forgot them, go to ephemeral ports 32768-60999). ICMP is not
  counted (pings come from monitors as much as from scanners; errors are replies).

The kernel's rate limit (``LOG --limit``, UFW logs at most 3 packets a minute, bursts of
10) means a count is at most what the firewall chose to log.
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["PROGRAMS", "SIGNATURES"]

PROGRAMS = ("kernel",)

# The prefix: the text before the first "=" (that of "IN="), naming a blocking verdict.
_PREFIX = r"(?i:(?![^=\n]*INVALID)[^=\n]{0,128}(?:BLOCK|DROP|REJECT|DENY)[^=\n]{0,128})"
# Inbound only; a link-layer destination without the group bit (unicast).
_IFACES = (
    r"IN=\S+ OUT= (?:PHYSIN=\S+ )?(?:PHYSOUT=\S+ )?"
    r"(?:MAC=(?![0-9a-f][13579bdf]:)\S* |MACSRC=\S+ MACDST=(?![0-9a-f][13579bdf]:)\S+"
    r" MACPROTO=\S+ )?(?:TUNNEL=\S+ )?"
)
# A unicast destination: not 224.0.0.0/4, not 255.255.255.255, not ff00::/8.
_DST = r"DST=(?!2(?:2[4-9]|3\d)\.|255\.255\.255\.255 |[fF][fF])[0-9A-Fa-f:.]{2,45} "
# The IP header fields between LEN= and PROTO= (IPv4: TOS PREC TTL ID DF/MF/CE FRAG OPT;
# IPv6: TC HOPLIMIT FLOWLBL): words, never a bracket.
_IP_FIELDS = r"LEN=\d{1,5} (?:[A-Z]{1,10}(?:=\S*|:\d{1,5})? |OPT \([0-9A-F]{0,80}\) ){0,12}"
_SRC = r"SRC=(?=[0-9A-Fa-f:.]{2,45} )<HOST> "
_UDP_SERVICE_PORT = r"(?:\d{1,4}|[12]\d{4}|3[01]\d{3}|32[0-6]\d\d|327[0-5]\d|3276[0-7])"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "blocked-tcp-syn",
        Role.CONFIRM,
        rf"{_PREFIX}{_IFACES}{_SRC}{_DST}{_IP_FIELDS}PROTO=TCP SPT=\d{{1,5}} DPT=\d{{1,5}}"
        r" (?:SEQ=\d{1,10} ACK=\d{1,10} )?WINDOW=\d{1,5} RES=0x[0-9a-f]{2}"
        r" (?:CWR )?(?:ECE )?SYN URGP=\d{1,5}(?: .*)?",
        (
            "[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00"
            " SRC=198.51.100.7 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=54321 DF"
            " PROTO=TCP SPT=52311 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
            "[12345.678901] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21"
            ":86:dd SRC=2001:0db8:0000:0000:0000:0000:0000:0007"
            " DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=80 TC=0 HOPLIMIT=52"
            " FLOWLBL=123456 PROTO=TCP SPT=52311 DPT=3389 WINDOW=64800 RES=0x00 SYN URGP=0",
            "DROP IN=ens3 OUT= MAC=fa:16:3e:00:00:01:fa:16:3e:00:00:02:08:00"
            " SRC=198.51.100.7 DST=192.0.2.1 LEN=44 TOS=0x00 PREC=0x00 TTL=245 ID=54321"
            " PROTO=TCP SPT=41234 DPT=8080 WINDOW=1024 RES=0x00 SYN URGP=0 OPT (020405B4)",
        ),
    ),
    Signature(
        "blocked-udp",
        Role.CONFIRM,
        rf"{_PREFIX}{_IFACES}{_SRC}{_DST}{_IP_FIELDS}PROTO=UDP SPT=\d{{1,5}}"
        rf" DPT={_UDP_SERVICE_PORT} LEN=\d{{1,5}}(?: .*)?",
        (
            "[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00"
            " SRC=198.51.100.7 DST=192.0.2.1 LEN=78 TOS=0x00 PREC=0x00 TTL=115 ID=31337"
            " PROTO=UDP SPT=40000 DPT=161 LEN=58",
            "FINAL_REJECT: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:86:dd"
            " SRC=2001:0db8:0000:0000:0000:0000:0000:0007"
            " DST=2001:0db8:0000:0000:0000:0000:0000:0001 LEN=68 TC=0 HOPLIMIT=57"
            " FLOWLBL=0 PROTO=UDP SPT=5353 DPT=5060 LEN=28",
        ),
    ),
)
