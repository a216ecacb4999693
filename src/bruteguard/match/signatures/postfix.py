"""Postfix (3.7) smtpd: failed SASL authentication.

``smtpd_sasl_authenticate`` (src/smtpd/smtpd_sasl_glue.c) writes one warning per refused
``AUTH`` exchange::

    warning: NAME[ADDR]: SASL MECH authentication failed: REASON, sasl_username=USER

* ``NAME[ADDR]`` is smtpd's ``namaddr``: NAME is the client's host name only when its
  reverse lookup is forward-confirmed, ``unknown`` otherwise; ADDR, in brackets, is always
  the connection's address (IPv6 without an ``IPv6:`` prefix). With
  ``smtpd_client_port_logging = yes`` ``:PORT`` follows. The bracketed address is taken,
  never the name.
* MECH is the mechanism (``LOGIN``, ``PLAIN``, ``CRAM-MD5``…), REASON the SASL
  server's text (``authentication failure``; for ``LOGIN`` sometimes the base64 prompt
  ``UGFzc3dvcmQ6`` when the client dropped mid-exchange).
* ``, sasl_username=USER`` (Postfix 3.5 and later; cut to 100 bytes) is the client's, and
  comes last: the address sits in the fixed prefix before any client text, so no user name
  can move it. Older Postfix ends the line after REASON.

The program is ``postfix/smtpd`` or, for the master.cf services Debian ships commented out,
``postfix/submission/smtpd``, ``postfix/smtps/smtpd`` and ``postfix/submissions/smtpd``
(their ``syslog_name``). One refused ``AUTH`` is one line: role CONFIRM.

Not counted:

* ``SASL … authentication failed: Connection lost to authentication server`` — Dovecot's
  auth service is down; every user, good or bad, gets it.
* ``lost connection after AUTH from …`` and ``too many errors after AUTH from …`` — written
  when the session ends; a client that failed has its warning counted already, so counting
  these too would count one attempt twice (smtpd processes serve many clients in turn, so
  the pid does not tell one session's lines apart either).
* The SASL server's own lines for the same attempt (Dovecot's ``auth: …``, saslauthd's):
  the smtpd warning counts it.
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["PROGRAMS", "SIGNATURES"]

PROGRAMS = (
    "postfix/smtpd",
    "postfix/submission/smtpd",
    "postfix/smtps/smtpd",
    "postfix/submissions/smtpd",
)

# namaddr: a host name (DNS characters) or "unknown", then the address in brackets.
_CLIENT = r"[^\s\[\]]{1,255}\[(?=[0-9A-Fa-f:.]{2,45}\])<HOST>\](?::\d{1,5})?"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "sasl-failed",
        Role.CONFIRM,
        # The reason is the SASL server's; the first ", sasl_username=" after it is
        # Postfix's own (the user name is written after it).
        rf"warning: {_CLIENT}: SASL [A-Za-z0-9_-]{{1,40}} authentication failed:"
        r" (?!Connection lost to authentication server)(?:.*?)"
        r"(?:, sasl_username=<USER>)?",
        (
            "warning: unknown[198.51.100.7]: SASL LOGIN authentication failed:"
            " authentication failure",
            "warning: unknown[198.51.100.7]: SASL PLAIN authentication failed:"
            " authentication failure, sasl_username=bob@example.org",
            "warning: mail.example.net[203.0.113.5]: SASL CRAM-MD5 authentication failed:"
            " authentication failure, sasl_username=admin",
            "warning: unknown[2001:db8::66]: SASL LOGIN authentication failed:"
            " UGFzc3dvcmQ6, sasl_username=info",
            "warning: unknown[198.51.100.7]:52311: SASL LOGIN authentication failed:"
            " authentication failure, sasl_username=",
        ),
    ),
)
