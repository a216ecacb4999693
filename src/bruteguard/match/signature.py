"""What a signature is: one message a service writes about a failed (or suspicious) login.

A signature's ``message`` is a regular expression for the text after the log's frame (the
time stamp, and for syslog ``host prog[pid]: ``), with placeholders: ``<HOST>`` (the client
address, or a name for the identity stage to check), ``<ADDR>`` (a ``<HOST>`` that may only
be an address: address characters, so no client text can run on past it), ``<USER>`` (the
user name the client sent) and ``<COUNT>`` (a number of attempts the line stands for, as
dovecot's "auth failed, 3 attempts"). The expression is anchored at both ends by the engine, and
every attacker-controlled field must sit where it cannot supply the address: a greedy ``<USER>``
*before* a fixed tail that ends the line means the real address (which the service writes
last) always wins, whatever the client typed.

``role`` says how the line counts toward one authentication attempt of a connection (pid):

* ``ANNOUNCE``  — written *before* the verdict of an attempt (``Invalid user``, pam's
  ``authentication failure``): counts, and the next ``CONFIRM`` of the same pid is the same
  attempt, so it does not count again.
* ``CONFIRM``   — the verdict itself (``Failed password``): counts unless announced.
* ``CLOSE``     — the connection ended during authentication (``[preauth]`` disconnects,
  scanners, negotiation failures): counts once per connection, and only when nothing else
  of that connection counted.
* ``OPEN``      — a session's first line, which names its client (OpenSMTPD's
  ``SESSION smtp connected address=ADDR``): counts nothing; it ties the session id
  (``<SESSION>``) to the address.

A service whose later lines carry only a session id (never the address) writes them with
``<SESSION>`` and no ``<HOST>``: the address is the one the session's ``OPEN`` line named,
and a line of a session whose opening was not seen (or went quiet for ten minutes) counts
nothing. With ``<SESSION>`` the session id, not the syslog pid, tells connections apart.
"""

import re
from dataclasses import dataclass, field
from enum import IntEnum

__all__ = [
    "ADDR",
    "COUNT",
    "HOST",
    "SAME_USER",
    "SESSION",
    "SYSLOG",
    "USER",
    "Frame",
    "PamSide",
    "ProgramPattern",
    "Role",
    "Signature",
    "Stamp",
    "program_regex",
]

HOST = "<HOST>"
ADDR = "<ADDR>"  # a <HOST> that is an address and nothing more (address characters only)
USER = "<USER>"
COUNT = "<COUNT>"
SESSION = "<SESSION>"  # a session id the service writes in hexadecimal (at most 64 bits)
# The same text as <USER> again (a service that writes the client's name twice, around the
# address: the two copies pin the address between them; Samba's audit line).
SAME_USER = "<USER=>"


class Stamp(IntEnum):
    """How a frame writes its time stamp; the compiled pass reads each kind in C."""

    SYSLOG = 0  # "Nov 23 06:50:01[.f]" or RFC 3339 "2026-11-23T06:50:01[.f][Z|+hh:mm]"
    YMD = 1  # "2026-11-23 06:50:01[.f|,f][ +hhmm]", "2026/11/23 06:50:01" (nginx, exim, MariaDB)
    CTIME = 2  # "[Mon ]Nov 23 06:50:01[.f] 2026" (apache's error log, vsftpd's own log)
    CLF = 3  # "23/Nov/2026:06:50:01 +0100" (access logs), "23-Nov-2026 06:50:01 +0100" (PHP),
    # "23-Nov-2026 06:50:01.123" (BIND's own log: local time)
    YYMMDD = 4  # "261123  6:50:01" (MySQL up to 5.5, MariaDB up to 10.0)
    TAI64N = 5  # "@400000006b03e22300000000" (daemontools' multilog, s6-log: TAI64N labels)


@dataclass(frozen=True)
class Frame:
    """How the lines of one kind of log begin, up to the message the signatures match.

    ``head`` is matched right at the start of a line and has exactly one capture group: the
    time stamp, read as ``stamp`` says (a stamp written after the message's start, as in an
    access log, is captured in a lookahead). With ``programs`` the head is followed by
    syslog's ``PROGRAM[PID]: `` (the filter's program names; the pid tells connections
    apart) and rsyslog's ``message repeated N times: [ … ]``; without, the message follows
    the head directly and all lines of the log share one connection state.
    ``example`` is a head as the log writes it, put before a signature's samples to make
    whole lines (for the catalogue and the tests; "" when the samples are whole lines).
    """

    name: str
    head: str
    stamp: Stamp
    programs: bool = False
    example: str = ""


# syslog, as every syslog daemon writes it, up to the program name (the engine adds the
# program part: "prog[pid]: ", "prog: ", rsyslog 8's "prog[pid] " or RFC 5424's
# "prog PID MSGID SD "):
#   "Nov 23 06:50:01 host " (BSD; "Nov 2" unpadded by busybox and some relays),
#   "2026-11-23T06:50:01.123456+01:00 host " (rsyslog's RFC 3339, journalctl -o short-iso),
#   "2018-12-20 10:09:05.180218+0000 host " (macOS), "2026-11-23 06:50:01 " (Dovecot's file),
#   "<38>1 2026-11-23T06:50:01Z host " (RFC 5424; sysklogd writes it without "<PRI>1 "),
#   "Jan  1 00:00:00 <10.5> host " (FreeBSD syslogd -v), "Jun 20 02:18:39 vps auth.info "
#   (busybox: facility.level after the host, which it may also leave out).
# The host field never ends in ":", so "myapp: sshd[1]: …" (myapp quoting sshd, where
# rsyslog wrote no host) is not sshd's line; without a host (dovecot's own log file,
# "Nov 23 06:50:01 imap-login: …") the program follows the stamp.
_FACILITY = (
    r"(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|ntp|security"
    r"|console|solaris-cron|local[0-7])"
    r"\.(?:emerg|panic|alert|crit|err|error|warn|warning|notice|info|debug)"
)
SYSLOG = Frame(
    "syslog",
    r"(?:<\d{1,3}>\d{1,2} )?"
    r"([A-Z][a-z]{2} (?:[ 0-3]\d|\d) \d\d:\d\d:\d\d(?:\.\d{1,9})?"
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)"
    r" (?:<\d{1,3}\.\d{1,3}> )?"
    # Host and facility.level, atomic: most lines are other programs', refused by the
    # program gate right after; retrying other splits of these two tokens cannot help (a
    # host never holds brackets, so a line without one is never read as having one).
    rf"(?>(?:[^\s\[\]]{{0,254}}[^\s\[\]:] )?(?:(?=[a-z]{{2,12}}[0-7]?\.){_FACILITY} )?)",
    Stamp.SYSLOG,
    programs=True,
    example="Nov 23 06:50:01 host ",
)


class ProgramPattern(str):
    """A family of syslog program names, or a tag with a variable part, as a regular
    expression: Postfix writes ``postfix-NAME/SERVICE/smtpd`` for each instance and
    master.cf service an admin names; the WP fail2ban plugin tags ``wordpress(HOST)``. The
    string itself is the name shown to the admin (the expression, when none is given). The
    expression must not match a ``[``, ``:`` or blank where the tag ends, and has no
    capture group."""

    regex: str

    def __new__(cls, shown: str, regex: str | None = None) -> "ProgramPattern":
        name = super().__new__(cls, shown)
        name.regex = shown if regex is None else regex
        return name


def program_regex(name: str) -> str:
    """The expression a program name stands for in a compiled pattern."""
    return name.regex if isinstance(name, ProgramPattern) else re.escape(name)


class Role(IntEnum):
    ANNOUNCE = 1
    CONFIRM = 2
    CLOSE = 3
    OPEN = 4


class PamSide(IntEnum):
    """Which process of a PAM conversation writes the line, where the service runs PAM in a
    child of its own (sshd's keyboard-interactive): the child's and the parent's lines of
    one attempt have different pids, and are paired by address instead (``_core.c``)."""

    NONE = 0
    CHILD = 1  # pam_unix's "authentication failure; … rhost=ADDR" (the child's pid)
    PARENT = 2  # the service's own verdict of that conversation (sshd's "error: PAM: …")


@dataclass(frozen=True)
class Signature:
    """One recognised message. ``samples`` are real lines (after ``prog[pid]: ``) it matches.

    ``addressless``: the service names no client at all (an old lighttpd's failed TLS
    handshake): no ``<HOST>``; the daemon ties such a line to the one real connection that
    ended with it, or to nobody (``identity``), and a replay cannot count it.
    ``pam_side``: see ``PamSide``.
    """

    name: str
    role: Role
    message: str
    samples: tuple[str, ...] = field(default=())
    addressless: bool = False
    pam_side: PamSide = PamSide.NONE

    def __post_init__(self) -> None:
        hosts = self.message.count(HOST) + self.message.count(ADDR)
        sessions = self.message.count(SESSION)
        if self.addressless:
            if hosts or sessions:
                raise ValueError(f"signature {self.name}: no {HOST} (addressless)")
        # Without a host, the address is the one the session's OPEN line named.
        elif hosts != 1 and not (hosts == 0 and sessions == 1 and self.role is not Role.OPEN):
            raise ValueError(f"signature {self.name}: needs exactly one {HOST} (or {ADDR})")
        if self.role is Role.OPEN and sessions != 1:
            raise ValueError(f"signature {self.name}: an OPEN line names its {SESSION}")
        if SAME_USER in self.message and USER not in self.message.split(SAME_USER, 1)[0]:
            raise ValueError(f"signature {self.name}: {SAME_USER} repeats an earlier {USER}")
        for placeholder in (USER, COUNT, SESSION, SAME_USER):
            if self.message.count(placeholder) > 1:
                raise ValueError(f"signature {self.name}: at most one {placeholder}")
        if self.message.startswith("^") or self.message.endswith("$"):
            raise ValueError(f"signature {self.name}: the engine anchors; drop ^ and $")
