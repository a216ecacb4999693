"""What a signature is: one message a service writes about a failed (or suspicious) login.

A signature's ``message`` is a regular expression for the text after the log's frame (the
time stamp, and for syslog ``host prog[pid]: ``), with placeholders: ``<HOST>`` (the client
address, or a name for the identity stage to check), ``<USER>`` (the user name the client
sent) and ``<COUNT>`` (a number of attempts the line stands for, as dovecot's "auth failed,
3 attempts"). The expression is anchored at both ends by the engine, and every
attacker-controlled field must sit where it cannot supply the address: a greedy ``<USER>``
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
"""

import re
from dataclasses import dataclass, field
from enum import IntEnum

__all__ = [
    "COUNT",
    "HOST",
    "SYSLOG",
    "USER",
    "Frame",
    "ProgramPattern",
    "Role",
    "Signature",
    "Stamp",
    "program_regex",
]

HOST = "<HOST>"
USER = "<USER>"
COUNT = "<COUNT>"


class Stamp(IntEnum):
    """How a frame writes its time stamp; the compiled pass reads each kind in C."""

    SYSLOG = 0  # "Nov 23 06:50:01[.f]" or RFC 3339 "2026-11-23T06:50:01[.f][Z|+hh:mm]"
    YMD = 1  # "2026-11-23 06:50:01[.f|,f][ +hhmm]", "2026/11/23 06:50:01" (nginx, exim, MariaDB)
    CTIME = 2  # "[Mon ]Nov 23 06:50:01[.f] 2026" (apache's error log, vsftpd's own log)
    CLF = 3  # "23/Nov/2026:06:50:01 +0100" (access logs), "23-Nov-2026 06:50:01 +0100" (PHP)
    YYMMDD = 4  # "261123  6:50:01" (MySQL up to 5.5, MariaDB up to 10.0)


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
    """A syslog program token with a variable part, written as a regular expression.

    A plain ``str`` program name is literal. Some services put more than their name in the
    syslog tag (the WP fail2ban plugin: ``wordpress(example.com)[PID]:``); such a filter
    lists the tag as a pattern. The pattern must not match a ``[``, ``:`` or space where the
    tag ends, and holds no capture group.
    """


def program_regex(name: str) -> str:
    """The expression for one program token: a pattern as written, a name escaped."""
    return str(name) if isinstance(name, ProgramPattern) else re.escape(name)


class Role(IntEnum):
    ANNOUNCE = 1
    CONFIRM = 2
    CLOSE = 3


@dataclass(frozen=True)
class Signature:
    """One recognised message. ``samples`` are real lines (after ``prog[pid]: ``) it matches."""

    name: str
    role: Role
    message: str
    samples: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.message.count(HOST) != 1:
            raise ValueError(f"signature {self.name}: needs exactly one {HOST}")
        for placeholder in (USER, COUNT):
            if self.message.count(placeholder) > 1:
                raise ValueError(f"signature {self.name}: at most one {placeholder}")
        if self.message.startswith("^") or self.message.endswith("$"):
            raise ValueError(f"signature {self.name}: the engine anchors; drop ^ and $")
