"""Samba (4.5 to 4.21) smbd: failed NTLM/SMB authentication, from the auth audit.

Since 4.5 every authentication is audited by ``log_authentication_event``
(auth/auth_log.c), in the debug class ``auth_audit`` at level 2 for a failure (and, as
JSON, in ``auth_json_audit``). With ``logging = syslog@2`` (or ``syslog`` in ``logging``
and ``log level = 1 auth_audit:2``) smbd sends them to syslog (program ``smbd[PID]``, one
process per client connection): Samba's debug header (``[2026/12/04 22:27:06.839395,  2]
../../auth/auth_log.c:647(…)``) as one message, the text as the next, indented by two
blanks. Checked against real Samba 4.17.12 (Debian 12) lines on a lab network, smbclient
logging in with wrong passwords, unknown users and hostile names.

The human-readable line (``log_authentication_event_human_readable``)::

    Auth: [SERVICE,AUTH] user [DOMAIN]\\[ACCOUNT] at [TIME] with [PWTYPE] status [NT_STATUS]
      workstation [WORKSTATION] remote host [ipv4:ADDR:PORT] mapped to [DOMAIN]\\[ACCOUNT].
      local host [ipv4:ADDR:PORT] [NETLOGON …]

DOMAIN, ACCOUNT and WORKSTATION are the client's, passed through ``log_escape``, which
escapes only backslashes (``\\\\``) and control bytes: brackets, blanks, ``remote host [``
and whole forged tails pass as they are, on *both* sides of the real address (the client's
domain and account are written again, as the mapped names, after it). What pins the
address: the only single backslashes in the line are Samba's own ``]\\[``, and the
client's ``DOMAIN]\\[ACCOUNT`` is written twice, identically (``<USER>`` and ``<USER=>``, a
back-reference). So the address is the one whose tail is exactly ``] mapped to [`` + the
same ``DOMAIN]\\[ACCOUNT`` + ``]. local host [ADDR:PORT]`` to the end of the line: a forged
``remote host [ipv4:203.0.113.9:1]`` inside the workstation would need the real address's
text after it to be absent, one inside the domain would need the domain to contain itself.
The user reported is ``DOMAIN]\\[ACCOUNT`` as Samba wrote it. With a ``username map``
that renames the account the mapped name differs and the line is not matched.

The JSON line (``log_authentication_event_json``, ``auth_json_audit:2``): ``{"timestamp":
…, "type": "Authentication", "Authentication": {"version": …, "eventId": 4625, "logonId":
…, "logonType": …, "status": …, "localAddress": …, "remoteAddress": "ipv4:ADDR:PORT", …}}``
— the address comes before any client text and every client string is JSON-escaped.

Counted statuses: ``NT_STATUS_WRONG_PASSWORD``, ``NT_STATUS_NO_SUCH_USER``,
``NT_STATUS_LOGON_FAILURE`` and ``NT_STATUS_ACCOUNT_LOCKED_OUT`` (guesses still arriving
at a locked account). Not counted: ``NT_STATUS_OK`` (success), the right password refused
for other reasons (``PASSWORD_EXPIRED``, ``PASSWORD_MUST_CHANGE``, ``ACCOUNT_DISABLED``,
``INVALID_LOGON_HOURS``…), and ``check_ntlm_password: Authentication for user [U] -> [U]
FAILED with error …`` (source3/auth/auth.c, level 2): it names no address; the audit line
written right after it for the same attempt counts it.

One attempt writes the human-readable line and, with the JSON audit on too, the JSON
line, in that order: the first counts (role CONFIRM), the JSON one only when nothing else
of that connection counted (role CLOSE) — so with the JSON audit alone, a client's first
failure on a connection counts and further ones on the same connection do not.

Samba's own log files (``log.smbd``) put the time on a header line of its own and the
message on the next: that needs a two-line frame the compiled pass does not have; only
the syslog form is matched.
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["PROGRAMS", "SIGNATURES"]

PROGRAMS = ("smbd",)

_ADDR = r"[0-9A-Fa-f:.]{2,45}"
_FAILED = r"NT_STATUS_(?:WRONG_PASSWORD|NO_SUCH_USER|LOGON_FAILURE|ACCOUNT_LOCKED_OUT)"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "auth-audit",
        Role.CONFIRM,
        r" {0,2}Auth: \[[^\]\n]{0,80}\] user \[<USER>\] at \[[^\]\n]{1,80}\]"
        rf" with \[[^\]\n]{{1,40}}\] status \[{_FAILED}\] workstation \[.*\]"
        rf" remote host \[ipv[46]:(?={_ADDR}:\d{{1,5}}\] )<HOST>:\d{{1,5}}\]"
        rf" mapped to \[<USER=>\]\. local host \[ipv[46]:{_ADDR}:\d{{1,5}}\] ?"
        r"(?: NETLOGON computer \[.*\] trust account \[.*\])?",
        (
            "  Auth: [SMB2,(null)] user [LAB]\\[nobody] at [Fri, 04 Dec 2026 22:27:06.839378"
            " UTC] with [NTLMv2] status [NT_STATUS_WRONG_PASSWORD] workstation [VM] remote"
            " host [ipv4:198.51.100.7:49286] mapped to [LAB]\\[nobody]. local host"
            " [ipv4:192.0.2.1:445] ",
            "  Auth: [SMB2,(null)] user [LAB]\\[nosuch] at [Fri, 04 Dec 2026 22:27:06.885708"
            " UTC] with [NTLMv2] status [NT_STATUS_NO_SUCH_USER] workstation [VM] remote host"
            " [ipv6:2001:db8::66:37980] mapped to [LAB]\\[nosuch]. local host"
            " [ipv6:2001:db8::1:445] ",
        ),
    ),
    Signature(
        "auth-audit-json",
        Role.CLOSE,
        r' {0,2}(?:JSON Authentication: )?\{"timestamp": "[^"\n]{1,40}", "type": "Authentication",'
        r' "Authentication": \{"version": \{"major": \d{1,3}, "minor": \d{1,3}\},'
        r' "eventId": \d{1,6}, "logonId": "[^"\n]{0,40}", "logonType": \d{1,3},'
        rf' "status": "{_FAILED}", "localAddress": "[^"\n]{{0,80}}",'
        rf' "remoteAddress": "ipv[46]:(?={_ADDR}:\d{{1,5}}")<HOST>:\d{{1,5}}",'
        r'(?: "serviceDescription": "[^"\n]{0,80}", "authDescription": (?:null|"[^"\n]{0,80}"),'
        r' "clientDomain": (?:null|"(?:[^"\\\n]|\\.)*"), "clientAccount": "<USER>",'
        r' "workstation": .*| .*)',
        (
            '  {"timestamp": "2026-12-04T22:28:23.286938+0000", "type": "Authentication",'
            ' "Authentication": {"version": {"major": 1, "minor": 2}, "eventId": 4625,'
            ' "logonId": "0", "logonType": 3, "status": "NT_STATUS_WRONG_PASSWORD",'
            ' "localAddress": "ipv4:192.0.2.1:445", "remoteAddress": "ipv4:198.51.100.7:48576",'
            ' "serviceDescription": "SMB2", "authDescription": null, "clientDomain": "LAB",'
            ' "clientAccount": "nobody", "workstation": "VM", "becameAccount": null}}',
        ),
    ),
)
