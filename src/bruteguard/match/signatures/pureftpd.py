"""pure-ftpd messages about failed logins.

pure-ftpd's ``logfile()`` (ftpd.c) writes every message through syslog, as ``pure-ftpd``
(with ``[pid]`` only when started with ``-1``/``--logpid``), framed as
``(ACCOUNT@HOST) [LEVEL] TEXT``:

* ACCOUNT is ``?`` until a login succeeds, so it is ``?`` on every failure line; a name is
  accepted too (it never comes from a client that has not logged in).
* HOST is the peer as ``getnameinfo`` gives it: an IPv4 address (an IPv4-mapped peer is
  turned into IPv4 first), an IPv6 address, or with name resolution on (no ``-H``) the PTR
  name; then ``dns_sanitize`` turns every byte outside ``[A-Za-z0-9.:-]`` into ``_``.
  Builds without IP logging write ``?``: such lines can't be attributed and do not match.
* The user name in ``[...]`` is the client's, *after* the host: cut to the account buffer
  (128 bytes in 1.0.50), control bytes turned into ``_``, anything else (``]``, ``(``,
  ``@``, spaces, non-UTF-8) kept.

So the address is taken from the fixed prefix right after ``pure-ftpd[pid]: (``; the user
name is captured in a leading lookahead (the engine needs ``<USER>`` before ``<HOST>``) that
runs to the end of the line, and it can never move the host.

Each failed password is one line from the connection's process (pid): role CONFIRM. After
five failures the sixth is logged as ``Too many authentication failures`` *instead of*
``Authentication failed`` and the connection is closed: it is one more attempt, not a
summary. Messages are pure-ftpd's English ones (``messages_en.h``, the default catalogue).
"""

import re

from bruteguard.match.signature import Role, Signature

__all__ = ["LOG_DELAY", "PROGRAMS", "RESOLVES_WITHIN", "SIGNATURES", "as_written"]

PROGRAMS = ("pure-ftpd",)

# Identity (``signatures.HostNames``). pure-ftpd calls getnameinfo right after accept(),
# before it logs "New connection from HOST": a few seconds is ample. A failed password
# then sleeps rand() % 3 s plus 3 s per failure on that connection (randomsleep, ftpd.c),
# and the sixth failure ends the session, so a failure is written at most 3 + 6 x 3 = 21 s
# after the command arrived, whenever the client hung up; 9 s more for a loaded host (a
# client that could push its failure past this would drop out of the candidates).
RESOLVES_WITHIN = 5.0
LOG_DELAY = 30.0
_NOT_KEPT = re.compile(r"[^A-Za-z0-9.:-]")


def as_written(name: str) -> str:
    """A PTR name as pure-ftpd writes it: dns_sanitize turns every byte outside
    ``[A-Za-z0-9.:-]`` into ``_``."""
    return _NOT_KEPT.sub("_", name)


# "(ACCOUNT@": the account can't hold blanks or parentheses; the host holds no "@", so a
# name with "@" in it (virtual users) still ends at the last "@".
_ACCOUNT = r"\([^\s()]{1,255}@"
# What pure-ftpd can write as the host (dns_sanitize's alphabet, "_" for the rest), up to
# NI_MAXHOST, then ") ": checked before the engine's <HOST> group takes it.
_HOST_IS = r"(?=[0-9A-Za-z.:_-]{1,1025}\) )"
_FAILED = r"\) \[WARNING\] Authentication failed for user \["
# rsyslog's "message repeated N times: [ … ]" puts its "]" after pure-ftpd's; a plain line
# ends with pure-ftpd's own. The repeated form is told by what precedes the message.
_PLAIN = r"(?<!times: \[ )"
_REPEATED = r"(?<=times: \[ )"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "auth-failed",
        Role.CONFIRM,
        rf"{_PLAIN}{_ACCOUNT}(?=[^)]*{_FAILED}<USER>\]$){_HOST_IS}<HOST>{_FAILED}.*\]",
        (
            "(?@198.51.100.7) [WARNING] Authentication failed for user [admin]",
            "(?@2001:db8::66) [WARNING] Authentication failed for user [root]",
            "(?@::ffff:198.51.100.7) [WARNING] Authentication failed for user [test]",
            "(?@203.0.113.5) [WARNING] Authentication failed for user []",
            "(?@192.0.2.10) [WARNING] Authentication failed for user [a@b (c) [d]]",
        ),
    ),
    Signature(
        "auth-failed-repeated",
        Role.CONFIRM,
        # Only inside rsyslog's repeat wrapper: the user ends before the last two "]".
        rf"{_REPEATED}{_ACCOUNT}(?=[^)]*{_FAILED}<USER>\]\]$){_HOST_IS}<HOST>{_FAILED}.*\]",
        (
            "message repeated 2 times: [ (?@198.51.100.7) [WARNING] Authentication failed"
            " for user [admin]]",
            "message repeated 3 times: [ (?@2001:db8::66) [WARNING] Authentication failed"
            " for user [x]]]",
        ),
    ),
    Signature(
        "too-many-failures",
        Role.CONFIRM,
        rf"{_ACCOUNT}{_HOST_IS}<HOST>\) \[ERROR\] Too many authentication failures",
        (
            "(?@198.51.100.7) [ERROR] Too many authentication failures",
            "(?@2001:db8::66) [ERROR] Too many authentication failures",
        ),
    ),
)
