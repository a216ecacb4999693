"""OpenSSH (6.x to 9.x, and 9.8+'s ``sshd-session``) messages about failed or aborted logins.

Message texts are OpenSSH's own (auth.c ``auth_log``, ``sshd.c``, ``kex.c``, ``packet.c``)
and pam_unix's. Each pattern keeps client-chosen text (user names, the client's own
disconnect message, its protocol banner) away from the address: either the address comes
first at a fixed place, or a greedy field is followed by the fixed tail sshd writes last.
Order matters only for speed: the commonest messages come first.
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["BREAKIN", "PREAUTH_NOISE", "PROGRAMS", "SIGNATURES"]

# The programs whose lines these are: sshd, and sshd-session/sshd-auth from OpenSSH 9.8/10.
PROGRAMS = ("sshd", "sshd-session", "sshd-auth")

_PORT = r" port \d{1,5}"
_AUTH_METHOD = (
    r"(?:password|publickey|none|keyboard-interactive(?:/pam)?|hostbased|gssapi-with-mic)"
)
_KEY_INFO = r"(?:: [A-Z][A-Z0-9-]* (?:SHA256|MD5):[A-Za-z0-9+/=:]+)?"
_PREAUTH = r" \[preauth\]"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "failed-auth",
        Role.CONFIRM,
        rf"Failed {_AUTH_METHOD} for (?:invalid user )?<USER> from <HOST>(?:{_PORT})?"
        rf"(?: ssh2)?{_KEY_INFO}",
        (
            "Failed password for root from 198.51.100.7 port 52311 ssh2",
            "Failed password for invalid user admin from 2001:db8::66 port 40022 ssh2",
            "Failed publickey for git from 203.0.113.5 port 4022 ssh2: RSA SHA256:AbCd+/9",
            "Failed none for invalid user test from 198.51.100.7 port 5 ssh2",
            "Failed keyboard-interactive/pam for root from ::ffff:198.51.100.7 port 7 ssh2",
            "Failed password for root from 198.51.100.7",
        ),
    ),
    Signature(
        "invalid-user",
        Role.ANNOUNCE,
        rf"Invalid user <USER> from <HOST>(?:{_PORT})?",
        (
            "Invalid user oracle from 198.51.100.7 port 52311",
            "Invalid user  from 198.51.100.7 port 52311",
            "Invalid user admin from 198.51.100.7",
        ),
    ),
    Signature(
        "pam-auth-failure",
        Role.ANNOUNCE,
        # pam writes the user after the address; a lookahead takes the first "  user="
        # (the real one: nothing before it can hold two spaces) so that <USER> still
        # precedes <HOST>, as the engine's shared groups need. It comes after the literal
        # so that other lines never pay for its scan to the end of the line.
        r"pam_unix\(sshd:auth\): authentication failure;(?=.*?(?:  user=<USER>)?$)"
        # pam_unix writes "rhost=%s %s%s": one space, then " user=NAME" when it knows one.
        r" logname=\S* uid=\d+ euid=\d+ tty=\S* ruser=\S* rhost=<HOST> ?(?: user=.*)?",
        (
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
        r"error: PAM: Authentication failure for (?:illegal user |invalid user )?<USER>"
        r" from <HOST>",
        ("error: PAM: Authentication failure for root from 198.51.100.7",),
    ),
    Signature(
        "not-allowed",
        Role.ANNOUNCE,
        r"User <USER> from <HOST> not allowed because (?:not listed in AllowUsers|listed in"
        r" DenyUsers|none of user's groups are listed in AllowGroups|a group is listed in"
        r" DenyGroups|not in AllowUsers|shell \S+ (?:does not exist|is not executable)"
        r"|account is locked|its password has expired)",
        ("User bob from 198.51.100.7 not allowed because not listed in AllowUsers",),
    ),
    Signature(
        "root-refused",
        Role.ANNOUNCE,
        rf"ROOT LOGIN REFUSED FROM <HOST>(?:{_PORT})?",
        ("ROOT LOGIN REFUSED FROM 198.51.100.7 port 22",),
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
        rf"Unable to negotiate with <HOST>{_PORT}: no matching .*",
        (
            "Unable to negotiate with 198.51.100.7 port 52311: no matching key exchange"
            " method found. Their offer: diffie-hellman-group1-sha1 [preauth]",
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
    }
)
PREAUTH_NOISE: tuple[Signature, ...] = tuple(s for s in SIGNATURES if s.name in _NOISE_NAMES)
