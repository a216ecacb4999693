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
* ``OPEN``      — a session's first line, which names its client (OpenSMTPD's
  ``SESSION smtp connected address=ADDR``): counts nothing; it ties the session id
  (``<SESSION>``) to the address.

A service whose later lines carry only a session id (never the address) writes them with
``<SESSION>`` and no ``<HOST>``: the address is the one the session's ``OPEN`` line named,
and a line of a session whose opening was not seen (or went quiet for ten minutes) counts
nothing. With ``<SESSION>`` the session id, not the syslog pid, tells connections apart.
"""

from dataclasses import dataclass, field
from enum import IntEnum

__all__ = [
    "COUNT",
    "HOST",
    "SAME_USER",
    "SESSION",
    "SYSLOG",
    "USER",
    "Frame",
    "Role",
    "Signature",
    "Stamp",
]

HOST = "<HOST>"
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
    CLF = 3  # "23/Nov/2026:06:50:01 +0100" (access logs)


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


# syslog: "Nov 23 06:50:01 host prog[pid]: " or RFC 3339 stamps (rsyslog, journalctl -o
# short-iso). The host field never ends in ":", so "myapp: sshd[1]: …" (myapp quoting sshd,
# where rsyslog wrote no host) is not sshd's line; without a host (dovecot's own log file,
# "Nov 23 06:50:01 imap-login: …") the program follows the stamp.
SYSLOG = Frame(
    "syslog",
    r"([A-Z][a-z]{2} [ 0-3]\d \d\d:\d\d:\d\d(?:\.\d{1,9})?"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)"
    r" (?:[^\s\[\]]{0,254}[^\s\[\]:] )?",
    Stamp.SYSLOG,
    programs=True,
    example="Nov 23 06:50:01 host ",
)


class Role(IntEnum):
    ANNOUNCE = 1
    CONFIRM = 2
    CLOSE = 3
    OPEN = 4


@dataclass(frozen=True)
class Signature:
    """One recognised message. ``samples`` are real lines (after ``prog[pid]: ``) it matches."""

    name: str
    role: Role
    message: str
    samples: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        hosts, sessions = self.message.count(HOST), self.message.count(SESSION)
        # Without a host, the address is the one the session's OPEN line named.
        if hosts != 1 and not (hosts == 0 and sessions == 1 and self.role is not Role.OPEN):
            raise ValueError(f"signature {self.name}: needs exactly one {HOST}")
        if self.role is Role.OPEN and sessions != 1:
            raise ValueError(f"signature {self.name}: an OPEN line names its {SESSION}")
        if SAME_USER in self.message and USER not in self.message.split(SAME_USER, 1)[0]:
            raise ValueError(f"signature {self.name}: {SAME_USER} repeats an earlier {USER}")
        for placeholder in (USER, COUNT, SESSION, SAME_USER):
            if self.message.count(placeholder) > 1:
                raise ValueError(f"signature {self.name}: at most one {placeholder}")
        if self.message.startswith("^") or self.message.endswith("$"):
            raise ValueError(f"signature {self.name}: the engine anchors; drop ^ and $")
