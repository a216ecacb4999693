"""OpenSSH (3.x to 9.x, and 9.8+'s ``sshd-session``) messages about failed or aborted logins.

Message texts are OpenSSH's own (auth.c ``auth_log``, ``auth_root_allowed``, auth-pam.c
``sshpam_query``, ``sshd.c``, ``kex.c``, ``packet.c``) and pam_unix's. Each pattern keeps
client-chosen text (user names, the client's own disconnect message, its protocol banner, a
certificate's key ID) away from the address: either the address comes first at a fixed
place, or a greedy field is followed by the fixed tail sshd writes last.
Order matters: the commonest messages come first, and of the ``Failed`` lines the ones that
end with sshd's address are read before those with client text after it.

Variants that real hosts write (each with a sample below, and lines in tests/data/sshd/):

* ``Failed publickey for U from ADDR port N ssh2: RSA-CERT SHA256:FP ID KEYID (serial S) CA
  RSA SHA256:FP`` (auth.c ``format_method_key``, OpenSSH 8.0+; 6.6 to 7.9 wrote no
  fingerprint of the certificate itself, ``RSA-CERT ID KEYID …``, and 6.6/6.7 hex MD5
  fingerprints without ``MD5:``). Real OpenSSH 9.2 wrote them only with ``LogLevel
  VERBOSE``. KEYID is the certificate's, and anyone can sign a certificate: it is client
  text *after* the address, as hostbased's ``client user "…", client host "…"`` and
  protocol 1's ``ruser NAME`` are, so a greedy user name alone would let a key ID such as
  ``x from 203.0.113.9 port 1 ssh2: RSA-CERT …`` supply the address; and sshd cuts a line
  at 1,024 bytes, so a long key ID even chooses how the line ends. A line with such text is
  taken only when `` port N ssh2`` occurs in it once (neither the user name nor the key ID
  holds another): then the address is the one before it, sshd's own. A line whose client
  text holds one is not counted (the connection's close still is). A valid user's refused
  key waits (``Signature.waits``): its agent offers the next key, and one may be accepted.
* ``pam_unix(sshd:auth): authentication failure; … rhost=ADDR`` waits too: pam_sss or
  pam_ldap after pam_unix accept directory users' passwords that pam_unix refused.
* Lines that name no client (``Disconnecting: Too many authentication failures``, OpenSSH
  8.0+'s ``kex_exchange_identification: …``) count for the address of their connection's
  (pid's) ``Connection from`` line, or wait for the pid's next line with an address.
* ``error: PAM: MESSAGE for [illegal user ]U from HOST`` (auth-pam.c ``sshpam_query``,
  unchanged since 2004; keyboard-interactive through PAM). MESSAGE is ``pam_strerror``'s:
  Linux-PAM's ``Authentication failure``, ``User not known to the underlying
  authentication module``, ``Have exhausted maximum number of retries for service``;
  OpenPAM's (FreeBSD, macOS) ``authentication error``, ``unknown user``, ``maximum number
  of tries exceeded`` (capitalised since OpenPAM 2017). HOST is sshd's PAM_RHOST: the
  address, or with ``UseDNS yes`` a name (then the verdict line carries the address).
* ``ROOT LOGIN REFUSED FROM ADDR port N [preauth]`` (auth.c ``auth_root_allowed``: root
  authenticated, PermitRootLogin refused it; before 7.4 without `` port N``). With
  privilege separation sshd writes it twice for one attempt, both under the monitor's pid:
  first the monitor's line (then, with ``LogLevel VERBOSE``, its ``Failed publickey``
  verdict), then the unprivileged child's copy with ``[preauth]``. The first announces the
  attempt; the copy is a close, counted only when nothing else of the connection was.
* RedHat-era pam_unix (Linux-PAM before 0.99, ``_log_err``: program ``sshd(pam_unix)``,
  ``authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=ADDR
  user=root``) and OpenSSH before 3.9's ``Illegal user`` / ``for illegal user`` and
  protocol 1's ``ssh1``: the same messages in their older words (``PAM_UNIX_SIGNATURES``).
"""

from bruteguard.match.signature import Role, Signature

__all__ = [
    "BREAKIN",
    "PAM_UNIX_PROGRAMS",
    "PAM_UNIX_SIGNATURES",
    "PREAUTH_NOISE",
    "PROGRAMS",
    "SIGNATURES",
]

# The programs whose lines these are: sshd, and sshd-session/sshd-auth from OpenSSH 9.8/10.
PROGRAMS = ("sshd", "sshd-session", "sshd-auth")
# Linux-PAM before 0.99 logged pam_unix's lines under "SERVICE(pam_unix)[pid]" (RedHat 7-9,
# RHEL 3/4, Fedora Core), the pid being sshd's own.
PAM_UNIX_PROGRAMS = ("sshd(pam_unix)",)

_PORT = r" port \d{1,5}"
# OpenSSH before 3.9 wrote "illegal user" where later ones write "invalid user".
_INVALID = r"(?:invalid user |illegal user )?"
_INVALID_ONLY = r"(?:invalid|illegal) user "
# Methods after which sshd writes nothing: any but those whose line may go on with client
# text (a key's certificate, hostbased's client names, a GSSAPI principal, protocol 1's).
_PLAIN_METHOD = r"(?!(?:publickey|hostbased|gssapi-with-mic|rhosts-rsa|rsa) )\S+"
_PREAUTH = r" \[preauth\]"
# pam_strerror()'s words for a failed authentication: Linux-PAM's (0.7x misspelt
# "exhasted" and ended in "."), then OpenPAM's (lower case before 2017).
_PAM_FAILURE = (
    r"(?:[Aa]uthentication failure|User not known to the underlying authentication module"
    r"|Have exhau?sted maximum number of retries for service\.?"
    r"|[Aa]uthentication error|[Uu]nknown user|[Mm]aximum number of tries exceeded)"
)
# pam_unix's "authentication failure" line after its prefix. pam writes the user after the
# address; a lookahead takes the first "  user=" (the real one: nothing before the address
# can hold two spaces) so that <USER> still precedes <HOST>, as the engine's shared groups
# need. It starts at the address, and steps over whole runs of non-blanks (possessive), so
# that it costs a few steps per word rather than a try of "  user=" and "$" per character.
# pam_unix writes "rhost=%s %s%s": one space, then " user=NAME" when it knows one.
_PAM_UNIX_FAILURE = (
    r"authentication failure; logname=\S* uid=\d+ euid=\d+ tty=\S* ruser=\S* rhost="
    r"(?=(?:[^ \n]++| (?! user=))*+  user=<USER>)?<HOST> ?(?: user=.*)?"
)

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "failed-auth",
        Role.CONFIRM,
        # The methods after which sshd writes nothing (password, none, keyboard-interactive,
        # a method the client named: scanners' "Failed unknown"): the line ends with sshd's
        # own " from ADDR port N ssh2", and a greedy user name leaves it the last, whatever
        # the name holds. The commonest line of all: tried first, and cheaply.
        rf"Failed {_PLAIN_METHOD} for {_INVALID}<USER> from <HOST>{_PORT}(?: ssh[12])?",
        (
            "Failed password for root from 198.51.100.7 port 52311 ssh2",
            "Failed password for invalid user admin from 2001:db8::66 port 40022 ssh2",
            "Failed none for invalid user test from 198.51.100.7 port 5 ssh2",
            "Failed keyboard-interactive/pam for root from ::ffff:198.51.100.7 port 7 ssh2",
            "Failed password for root from 198.51.100.7 port 45416 ssh1",
            "Failed unknown for invalid user redmond from 192.0.2.1 port 59197 ssh2",
            "Failed password for invalid user x from 203.0.113.9 port 1 ssh2 from"
            " 198.51.100.7 port 40022 ssh2",
            "Failed password for illegal user admin from ::ffff:198.51.100.7 port 4 ssh2",
            "Failed password for invalid user ROOT from 198.51.100.7 port 12345",
        ),
        user_ends_once=True,
    ),
    Signature(
        "failed-auth-info",
        Role.CONFIRM,
        # sshd writes " port N ssh2" right after the address, and after it only what it
        # knows of the method (": " a key, a certificate, hostbased's client user and host,
        # protocol 1's "ruser"): client text on both sides. Taken when " port N sshX"
        # occurs in the line once: the address is the one before it, sshd's own (see the
        # module's docstring). A line whose client text holds another counts nothing (its
        # connection's close still counts).
        rf"Failed (?!publickey for (?!{_INVALID_ONLY}))\S+ for"
        rf" (?!(?:.*?{_PORT} ssh[12]){{2}}){_INVALID}<USER> from <HOST>{_PORT} ssh[12](?:: .*)?",
        (
            "Failed publickey for invalid user bob from 198.51.100.7 port 5 ssh2: ECDSA-CERT"
            " SHA256:brSwHGYf75Ni9pOqBIMfLJ4UBj+GkFo5jxsFnIyDTCQ ID bob@example.org (serial"
            " 18446744073709551615) CA ED25519 SHA256:3z5l6TMthUxu7FPeDVaIKDBPd0FIvIaJpu6BgEHJ8VM",
            "Failed publickey for invalid user x from 198.51.100.7 port 5 ssh2: RSA-CERT ID ci"
            " deploy (serial 0) CA RSA SHA256:8NG18DA1I6XzbyiTuw+T3ng7i0vwDs6gcUS449vn5+8",
            "Failed hostbased for dan from 198.51.100.7 port 45785 ssh2: RSA"
            ' 8c:e3:aa:0f:64:51:02:f7:14:79:89:3f:65:84:7c:30, client user "dan", client host'
            ' "localhost.localdomain"',
            "Failed rhosts-rsa for dan from 198.51.100.7 port 20000 ssh1: ruser dan",
        ),
    ),
    Signature(
        "failed-publickey",
        Role.CONFIRM,
        # A valid user's refused key: its agent offers the next, and one may be accepted.
        # The connection's close, or a verdict that does count, counts the attempt.
        rf"Failed publickey for (?!{_INVALID_ONLY})(?!(?:.*?{_PORT} ssh2){{2}})<USER>"
        rf" from <HOST>{_PORT} ssh2(?:: .*)?",
        (
            "Failed publickey for git from 203.0.113.5 port 4022 ssh2: RSA SHA256:AbCd+/9",
            "Failed publickey for git from 203.0.113.5 port 4022 ssh2:"
            " RSA 3f:a2:71:0c:5e:8b:19:d4:6a:be:11:c0:7e:42:9f:01",
            "Failed publickey for alice from 198.51.100.7 port 34346 ssh2: RSA-CERT"
            " SHA256:nWbwPprqJbJoZViD6gRgIvZ12IhQuK4RJKtt/IllrME ID alice (serial 1) CA RSA"
            " SHA256:8NG18DA1I6XzbyiTuw+T3ng7i0vwDs6gcUS449vn5+8",
            "Failed publickey for alice from 2001:db8::66 port 34374 ssh2: ED25519-CERT"
            " SHA256:3z5l6TMthUxu7FPeDVaIKDBPd0FIvIaJpu6BgEHJ8VM ID alice (serial 1) CA RSA"
            " SHA256:8NG18DA1I6XzbyiTuw+T3ng7i0vwDs6gcUS449vn5+8",
            "Failed publickey for root from 198.51.100.7 port 5 ssh2: RSA-CERT ID ci deploy"
            " (serial 0) CA RSA SHA256:8NG18DA1I6XzbyiTuw+T3ng7i0vwDs6gcUS449vn5+8",
            "Failed publickey for root from 198.51.100.7 port 5 ssh2: RSA-CERT ID x (serial 2)"
            " CA RSA 3f:a2:71:0c:5e:8b:19:d4:6a:be:11:c0:7e:42:9f:01",
            "Failed publickey for deploy from ::ffff:198.51.100.7 port 5 ssh2",
        ),
        waits=True,
    ),
    Signature(
        "failed-auth-no-port",
        Role.CONFIRM,
        # Lines that end at the address (before OpenSSH 2.5, and as fail2ban's samples
        # write them).
        rf"Failed {_PLAIN_METHOD} for {_INVALID}<USER> from <HOST>",
        (
            "Failed password for root from 198.51.100.7",
            "Failed password for invalid user ROOT from 2001:db8::66",
        ),
        user_ends_once=True,
    ),
    Signature(
        "invalid-user",
        Role.ANNOUNCE,
        rf"I(?:nvalid|llegal) user <USER> from <HOST>(?:{_PORT})?",
        (
            "Invalid user oracle from 198.51.100.7 port 52311",
            "Invalid user  from 198.51.100.7 port 52311",
            "Invalid user admin from 198.51.100.7",
            "Illegal user test from ::ffff:198.51.100.7",
        ),
        user_ends_once=True,
    ),
    Signature(
        "pam-auth-failure",
        Role.ANNOUNCE,
        rf"pam_unix\(sshd:auth\): {_PAM_UNIX_FAILURE}",
        waits=True,
        samples=(
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh"
            " ruser= rhost=198.51.100.7  user=root",
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh"
            " ruser= rhost=2001:db8::66",
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh"
            " ruser= rhost=192.0.2.10 ",
        ),
    ),
    Signature(
        "pam-error",
        Role.ANNOUNCE,
        # The user name is sshd's "%.100s" of the client's; PAM_RHOST comes last.
        # macOS's sshd adds " via " and the local address (fail2ban's OS X samples).
        rf"error: PAM: {_PAM_FAILURE} for {_INVALID}<USER> from <HOST>"
        r"(?: via [0-9A-Fa-f:.]{2,45})?",
        (
            "error: PAM: Authentication failure for root from 198.51.100.7",
            "error: PAM: User not known to the underlying authentication module for illegal"
            " user bobnosuch from 198.51.100.7",
            "error: PAM: Have exhausted maximum number of retries for service for root from"
            " 2001:db8::66",
            "error: PAM: authentication error for bob from 198.51.100.7",
            "error: PAM: authentication error for illegal user bob from 198.51.100.7",
            "error: PAM: Authentication error for illegal user admin from ::ffff:198.51.100.7",
            "error: PAM: unknown user for illegal user oracle from 198.51.100.7",
            "error: PAM: Maximum number of tries exceeded for root from 198.51.100.7",
            "error: PAM: authentication error for james from 198.51.100.7 via 192.0.2.201",
        ),
        user_ends_once=True,
    ),
    Signature(
        "not-allowed",
        Role.ANNOUNCE,
        r"User <USER> from <HOST> not allowed because (?:not listed in AllowUsers|listed in"
        r" DenyUsers|none of user's groups are listed in AllowGroups|a group is listed in"
        r" DenyGroups|not in AllowUsers|shell \S+ (?:does not exist|is not executable)"
        r"|account is locked|its password has expired|not in any group)",
        (
            "User bob from 198.51.100.7 not allowed because not listed in AllowUsers",
            "User allena from 198.51.100.7 not allowed because not in any group",
        ),
        user_ends_once=True,
    ),
    Signature(
        "root-refused",
        Role.ANNOUNCE,
        # The monitor's line (or, without privilege separation, the only one).
        rf"ROOT LOGIN REFUSED FROM <HOST>(?:{_PORT})?",
        (
            "ROOT LOGIN REFUSED FROM 198.51.100.7 port 39032",
            "ROOT LOGIN REFUSED FROM 2001:db8::66 port 60044",
            "ROOT LOGIN REFUSED FROM ::ffff:198.51.100.7",
        ),
    ),
    Signature(
        "root-refused-preauth",
        Role.CLOSE,
        # The unprivileged child's copy of the same refusal, after the monitor's line and
        # its "Failed publickey" verdict: counts only if nothing of the connection did.
        rf"ROOT LOGIN REFUSED FROM <HOST>(?:{_PORT})?{_PREAUTH}",
        (
            "ROOT LOGIN REFUSED FROM 198.51.100.7 port 39032 [preauth]",
            "ROOT LOGIN REFUSED FROM 2001:db8::66 port 60044 [preauth]",
        ),
    ),
    Signature(
        "max-auth-tries",
        Role.CLOSE,
        rf"(?:error: )?maximum authentication attempts exceeded for (?:invalid user )?<USER>"
        rf" from <HOST>{_PORT}(?: ssh2)?{_PREAUTH}",
        (
            "error: maximum authentication attempts exceeded for root from 198.51.100.7"
            " port 52311 ssh2 [preauth]",
        ),
        user_ends_once=True,
    ),
    Signature(
        "too-many-failures",
        Role.CLOSE,
        rf"Disconnecting (?:invalid|authenticating) user <USER> <HOST>{_PORT}:"
        rf" Too many authentication failures{_PREAUTH}",
        (
            "Disconnecting authenticating user root 198.51.100.7 port 52311:"
            " Too many authentication failures [preauth]",
        ),
        user_ends_once=True,
    ),
    Signature(
        "closed-preauth-user",
        Role.CLOSE,
        rf"(?:Connection (?:closed|reset) by|Disconnected from) (?:invalid|authenticating)"
        rf" user <USER> <HOST>{_PORT}{_PREAUTH}",
        (
            "Connection closed by authenticating user root 198.51.100.7 port 40022 [preauth]",
            "Disconnected from invalid user admin 198.51.100.7 port 52311 [preauth]",
            "Connection reset by invalid user x 2001:db8::66 port 1 [preauth]",
        ),
        user_ends_once=True,
    ),
    Signature(
        "change-of-user",
        Role.CLOSE,
        # The old and new user and service names in brackets are the client's, after the
        # address: taken when " port N: Change of username" occurs in the line once.
        rf"Disconnecting (?:invalid|authenticating) user"
        rf" (?!(?:.*?{_PORT}: Change of username){{2}})<USER> <HOST>{_PORT}: Change of username"
        rf" or service not allowed: .*{_PREAUTH}",
        (
            "Disconnecting invalid user admin 198.51.100.7 port 44004: Change of username or"
            " service not allowed: (admin,ssh-connection) -> (user,ssh-connection) [preauth]",
        ),
    ),
    Signature(
        "closed-preauth",
        Role.CLOSE,
        rf"(?:Connection (?:closed|reset) by|Disconnected from) <HOST>(?:{_PORT})?{_PREAUTH}",
        (
            "Connection closed by 198.51.100.7 port 40022 [preauth]",
            "Connection closed by 198.51.100.7 [preauth]",
            "Connection reset by 2001:db8::66 port 40022 [preauth]",
        ),
    ),
    Signature(
        "received-disconnect",
        Role.CLOSE,
        # The text after the code is the client's own: the address comes before it.
        # OpenSSH 6 wrote "from ADDR: 11: text", later ones "from ADDR port N:11: text".
        rf"(?:error: )?Received disconnect from <HOST>(?:{_PORT}:|: )\d+: .*{_PREAUTH}",
        (
            "Received disconnect from 198.51.100.7: 11: Bye Bye [preauth]",
            "Received disconnect from 198.51.100.7 port 52311:11: Bye Bye [preauth]",
            "error: Received disconnect from 198.51.100.7 port 5:3:"
            " com.jcraft.jsch.JSchException: Auth fail [preauth]",
        ),
    ),
    Signature(
        "received-auth-fail",
        Role.CLOSE,
        # Before OpenSSH 5.9 nothing said "[preauth]": a client's own word that its
        # authentication failed (JSch's reason 3, "Auth fail") is the only sign.
        rf"Received disconnect from <HOST>(?:{_PORT}:|: )3: .*: Auth fail",
        ("Received disconnect from 198.51.100.7: 3: com.jcraft.jsch.JSchException: Auth fail",),
    ),
    Signature(
        "no-identification",
        Role.CLOSE,
        rf"Did not receive identification string from <HOST>(?:{_PORT})?",
        (
            "Did not receive identification string from 198.51.100.7 port 52311",
            "Did not receive identification string from 198.51.100.7",
        ),
    ),
    Signature(
        "unable-to-negotiate",
        Role.CLOSE,
        # "Their offer: ..." is client text; the address is before it.
        rf"(?:fatal: )?Unable to negotiate with <HOST>{_PORT}: no matching .*",
        (
            "Unable to negotiate with 198.51.100.7 port 52311: no matching key exchange"
            " method found. Their offer: diffie-hellman-group1-sha1 [preauth]",
            "fatal: Unable to negotiate with 198.51.100.7 port 55419: no matching key exchange"
            " method found. Their offer: diffie-hellman-group1-sha1",
        ),
    ),
    Signature(
        "banner-exchange",
        Role.CLOSE,
        rf"(?:error: )?banner exchange: Connection from <HOST>{_PORT}: .*",
        (
            "banner exchange: Connection from 198.51.100.7 port 52311: invalid format",
            "error: banner exchange: Connection from 2001:db8::66 port 7: Broken pipe",
        ),
    ),
    Signature(
        "bad-protocol-version",
        Role.CLOSE,
        # The quoted banner is client text; sshd writes " from ADDR port N" last.
        rf"Bad protocol version identification '.*' from <HOST>(?:{_PORT})?",
        ("Bad protocol version identification 'GET / HTTP/1.1' from 198.51.100.7 port 5",),
    ),
    Signature(
        "preauth-timeout",
        Role.CLOSE,
        rf"fatal: Timeout before authentication for <HOST>(?:{_PORT})?",
        ("fatal: Timeout before authentication for 198.51.100.7 port 52311",),
    ),
    Signature(
        "dispatch-fatal",
        Role.CLOSE,
        # Only the form with the address first: the "user NAME" form would let a name
        # containing " ADDR port N: " choose the address.
        rf"(?:fatal: )?ssh_dispatch_run_fatal: Connection from <HOST>{_PORT}: .*",
        (
            "ssh_dispatch_run_fatal: Connection from 198.51.100.7 port 52311:"
            " message authentication code incorrect [preauth]",
        ),
    ),
    Signature(
        "refused-connect",
        Role.CLOSE,
        # libwrap (hosts.deny, OpenSSH before 6.7): "CLIENT (ADDR)", CLIENT being the
        # client's ident user and PTR name or the address; ADDR, last, is libwrap's.
        r"refused connect from .* \(<ADDR>\)",
        (
            "refused connect from 198.51.100.7 (198.51.100.7)",
            "refused connect from x@host.example.net (::ffff:198.51.100.7)",
        ),
    ),
    Signature(
        "connection-from",
        Role.OPEN,
        # LogLevel VERBOSE: a connection's first line. It counts nothing; it names the
        # address of the connection's later lines that name none (below).
        rf"Connection from <ADDR>{_PORT}(?: on \S+{_PORT}(?: rdomain \"\S*\")?)?",
        (
            "Connection from 198.51.100.7 port 51353",
            "Connection from 198.51.100.7 port 39678 on 192.0.2.9 port 22",
            'Connection from 2001:db8::66 port 51280 on 2001:db8::1 port 22 rdomain ""',
        ),
    ),
    Signature(
        "session-log-remote",
        Role.OPEN,
        # A patched sshd's session log (fail2ban gh-864): the address first, the client's
        # own text (its version, the user name) after it.
        r"SSH: Server;Ltype: (?:Version|Kex|Authname);Remote: <ADDR>-\d{1,5};.*",
        ("SSH: Server;Ltype: Version;Remote: 198.51.100.7-1780;Protocol: 2.0;Client: libssh2",),
    ),
    Signature(
        "too-many-failures-addressless",
        Role.CLOSE,
        # Before OpenSSH 7.9 the disconnect named no client: the connection's address is
        # its "Connection from" line's (or, with none, its next line's).
        rf"Disconnecting: (?:Too many authentication failures(?: for .*)?|Change of username"
        rf" or service not allowed: .*){_PREAUTH}",
        (
            "Disconnecting: Too many authentication failures for root [preauth]",
            "Disconnecting: Too many authentication failures [preauth]",
            "Disconnecting: Change of username or service not allowed: (a,ssh-connection) ->"
            " (b,ssh-connection) [preauth]",
        ),
    ),
    Signature(
        "preauth-noise-addressless",
        Role.CLOSE,
        # Scanners and floods, in words that name no client (the address: as above).
        # OpenSSH 8.0+ kex_exchange_identification (then "Connection closed by ADDR port N"
        # from sshpkt_fatal, which settles it: "banner-closed"), 6.x's socket reset and
        # negotiation failures, and kex.c's before 6.x ("no matching mac found: client …").
        r"(?:(?:error|fatal): )?(?:kex_exchange_identification: (?:client sent invalid protocol"
        r" identifier .*|Connection closed by remote host|(?:read: )?Connection reset by peer)"
        r"|Read from socket failed: Connection reset by peer"
        r"|Unable to negotiate a [a-z ]{1,40}"
        r"|no matching [a-zA-Z ]{1,40} found: client .* server .*)(?: \[preauth\])?",
        (
            'error: kex_exchange_identification: client sent invalid protocol identifier ""',
            "error: kex_exchange_identification: Connection closed by remote host",
            "error: kex_exchange_identification: read: Connection reset by peer",
            "fatal: Read from socket failed: Connection reset by peer [preauth]",
            "fatal: Unable to negotiate a key exchange method [preauth]",
            "fatal: no matching mac found: client hmac-md5 server hmac-sha2-256 [preauth]",
        ),
    ),
    Signature(
        "banner-closed",
        Role.CLOSE,
        # sshpkt_fatal's close after a failed banner exchange (8.0+): counts only for the
        # line that waited for it; the same words end innocent connections of OpenSSH 7.4
        # (serverloop.c, LogLevel VERBOSE).
        rf"Connection (?:closed|reset) by <ADDR>{_PORT}",
        ("Connection closed by 198.51.100.7 port 35352",),
        settles=True,
    ),
)

# "POSSIBLE BREAK-IN ATTEMPT!" (OpenSSH before 7.x, canohost.c) says the client's reverse DNS
# does not confirm, nothing more: by default not a failure (``Filter.breakin``). The name is
# the PTR's (attacker-chosen, no spaces); the address in brackets is the connection's own.
BREAKIN: tuple[Signature, ...] = (
    Signature(
        "breakin-reverse-mapping",
        Role.CONFIRM,
        r"reverse mapping checking getaddrinfo for \S{1,255} \[<HOST>\] failed"
        r"(?: - POSSIBLE BREAK-IN ATTEMPT!)?",
        (
            "reverse mapping checking getaddrinfo for nx.attacker.test [198.51.100.7] failed"
            " - POSSIBLE BREAK-IN ATTEMPT!",
            "reverse mapping checking getaddrinfo for host.test [2001:db8::66] failed"
            " - POSSIBLE BREAK-IN ATTEMPT!",
        ),
    ),
    Signature(
        "breakin-maps-back",
        Role.CONFIRM,
        r"Address <HOST> maps to \S{1,255}, but this does not map back to the address"
        r"(?: - POSSIBLE BREAK-IN ATTEMPT!)?",
        (
            "Address 198.51.100.7 maps to mail.innocent.test, but this does not map back to"
            " the address - POSSIBLE BREAK-IN ATTEMPT!",
        ),
    ),
)

# sshd-ddos: connections that ended before any authentication attempt (no identification
# string, a banner or key exchange that failed, a pre-auth timeout, a close with no user):
# scanners and connection floods. They count for the sshd jail too; the sshd-ddos jail
# bans on fewer of them, and for longer.
_NOISE_NAMES = frozenset(
    {
        "no-identification",
        "banner-exchange",
        "bad-protocol-version",
        "unable-to-negotiate",
        "preauth-timeout",
        "dispatch-fatal",
        "closed-preauth",
        "refused-connect",
        "connection-from",
        "session-log-remote",
        "preauth-noise-addressless",
        "banner-closed",
    }
)
PREAUTH_NOISE: tuple[Signature, ...] = tuple(s for s in SIGNATURES if s.name in _NOISE_NAMES)

# RedHat-era pam_unix (Linux-PAM 0.7x, support.c ``_log_err``): "sshd(pam_unix)[pid]: " and
# the message without today's "pam_unix(sshd:auth): ". pam_unix runs in sshd's own process
# (the pid of sshd's "Failed password" for the same attempt), so the two are one attempt.
# "check pass; user unknown" names no address: the failure line after it counts.
PAM_UNIX_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "pam-auth-failure-legacy",
        Role.ANNOUNCE,
        _PAM_UNIX_FAILURE,
        (
            "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser="
            " rhost=198.51.100.7  user=root",
            "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=198.51.100.7 ",
        ),
        waits=True,
    ),
)
