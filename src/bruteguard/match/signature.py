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
  (``<SESSION>``) to the address. Without ``<SESSION>``, the connection's (the syslog
  pid's) first line: sshd's ``Connection from ADDR port N`` (``LogLevel VERBOSE``).

A service whose later lines carry only a session id (never the address) writes them with
``<SESSION>`` and no ``<HOST>``: the address is the one the session's ``OPEN`` line named,
and a line of a session whose opening was not seen (or went quiet for ten minutes) counts
nothing. With ``<SESSION>`` the session id, not the syslog pid, tells connections apart.

A ``CLOSE`` line with neither ``<HOST>`` nor ``<SESSION>`` (sshd's ``Disconnecting: Too
many authentication failures [preauth]``) is a later line of its pid's connection: it
counts for the address the pid's ``OPEN`` line named; without such a line, for nobody, but
it waits: the pid's next line with an address settles it. A ``settles`` signature (sshd's
``Connection closed by ADDR port N`` after a failed banner exchange) is such a line that
counts only then: for the waiting line, once per connection, and otherwise never (the same
words end innocent connections too). An older address of the pid is never taken: a pid is
reused, and its earlier connection may be anyone's.
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


@dataclass(frozen=True)
class Signature:
    """One recognised message. ``samples`` are real lines (after ``prog[pid]: ``) it matches.

    ``addressless``: the service names no client at all (an old lighttpd's failed TLS
    handshake): no ``<HOST>``; the daemon ties such a line to the one real connection that
    ended with it, or to nobody (``identity``), and a replay cannot count it.
    ``waits``: the line names the attempt's client but not its outcome, which another module
    or key may still turn (pam_unix refuses a password that pam_sss or pam_ldap, next in
    the stack, accepts; a valid user's agent offers its keys in turn, the last accepted):
    it counts nothing, and ties its connection (pid) to the address, so that the attempt's
    verdict line, or the connection's close, counts it once. ``settles``: see the module's
    docstring. ``user_ends_once``: what follows the ``<USER>`` (to the line's end) can't
    match from two places of one line, so one place at most can end the user name
    (tests/test_engine_user.py proves it of every signature that says so): the engine
    then tries the ends first to last, and finds that one without walking to the line's
    end and back, which a greedy name does to find the last.
    """

    name: str
    role: Role
    message: str
    samples: tuple[str, ...] = field(default=())
    addressless: bool = False
    waits: bool = False
    settles: bool = False
    user_ends_once: bool = False

    def __post_init__(self) -> None:
        hosts = self.message.count(HOST) + self.message.count(ADDR)
        sessions = self.message.count(SESSION)
        if self.addressless:
            if hosts or sessions:
                raise ValueError(f"signature {self.name}: no {HOST} (addressless)")
        # Without a host, the address is the one the session's (or the pid's) OPEN line named.
        elif hosts != 1 and not (
            hosts == 0
            and self.role is not Role.OPEN
            and (sessions == 1 or (self.role is Role.CLOSE and not self.settles))
        ):
            raise ValueError(f"signature {self.name}: needs exactly one {HOST} (or {ADDR})")
        if self.settles and (self.role is not Role.CLOSE or sessions):
            raise ValueError(f"signature {self.name}: only a pid's CLOSE line settles")
        if self.waits and (hosts != 1 or sessions or self.settles or self.role is Role.OPEN):
            raise ValueError(f"signature {self.name}: a waiting line names its {HOST}")
        if SAME_USER in self.message and USER not in self.message.split(SAME_USER, 1)[0]:
            raise ValueError(f"signature {self.name}: {SAME_USER} repeats an earlier {USER}")
        for placeholder in (USER, COUNT, SESSION, SAME_USER):
            if self.message.count(placeholder) > 1:
                raise ValueError(f"signature {self.name}: at most one {placeholder}")
        if self.message.startswith("^") or self.message.endswith("$"):
            raise ValueError(f"signature {self.name}: the engine anchors; drop ^ and $")

    @property
    def keyed(self) -> int:
        """How the compiled pass keys this line's connection (``_core``'s ``KEY_*``): by
        the pid (0), a session id (1), the pid whose OPEN line names a host-less line's
        address (2), or a pid's line that settles a waiting one (3)."""
        if SESSION in self.message:
            return 1
        if self.settles:
            return 3
        if self.role is Role.OPEN or (
            not self.addressless and HOST not in self.message and ADDR not in self.message
        ):
            return 2
        return 0
