"""MariaDB and MySQL: ``Access denied for user 'NAME'@'HOST' (using password: YES|NO)``.

The server writes one warning per failed login (``ER_ACCESS_DENIED_ERROR``, format
``Access denied for user '%s'@'%s' (using password: %s)``): one line, one attempt.

* MariaDB 10.11 (Debian 12) writes it at ``log_warnings`` ≥ 2, the default, to its error
  log (``print_buffer_to_file``, sql/log.cc: ``"%d-%02d-%02d %2d:%02d:%02d %lu [%s] "``):
  ``2026-11-23  6:50:01 8 [Warning] Access denied …`` — the hour is padded with a *space*
  (frame ``MARIADB``). Debian's package sets no ``log_error``, so the same text goes to
  stderr, i.e. the journal, as ``mariadbd[PID]: 2026-11-23  6:50:01 8 [Warning] …``
  (syslog frame, programs ``mariadbd``/``mysqld``).
* MySQL up to 5.5 and MariaDB up to 10.0 stamp it ``YYMMDD HH:MM:SS`` with no thread id:
  ``130324  0:04:00 [Warning] Access denied …`` (frame ``MYSQL_OLD``; under syslog the
  message starts so: ``mysqld: 130916 21:30:26 [Warning] …``).
* MySQL 8 writes it as a *note* (``MY-010926``), so only at ``log_error_verbosity=3``:
  ``2026-11-23T06:50:01.123456Z 8 [Note] [MY-010926] [Server] Access denied …``; MySQL 5.7
  without the ``[MY-…] [Server]`` tags (frame ``MYSQL``).

NAME is the client's, written raw and cut to 128 characters (MariaDB: a ``'`` and even a
line break go through as sent); HOST comes *after* it and is the server's: the client's
address, ``localhost`` for the socket, or with ``skip-name-resolve`` off a host name that
MariaDB/MySQL only use after checking it resolves back to the address (``ip_to_hostname``:
forward-confirmed, and never a name that reads as an IP address). So the user name is
greedy and the host is the last ``'@'…'`` before the fixed tail that ends the line: a name
like ``x'@'203.0.113.9' (using password: YES)`` is reported as the user name, the real host
still ends the line. A name with a line break and a forged line after it yields a line that
still ends with the server's real ``'@'HOST' (using password: …)`` (tested with a real
MariaDB 10.11): it counts once, for the real host. Names (``localhost``, host names) go to
the identity stage, which never trusts them without a real connection.

Not counted: ``Access denied for user …@… to database …`` (the password was right),
``Aborted connection … (This connection closed normally without authentication)``
(``log_warnings`` ≥ 3: port scans and health checks, not a password), MySQL 8's
``[MY-010055] IP address … could not be resolved``.
"""

from bruteguard.match.signature import Frame, Role, Signature, Stamp

__all__ = ["MARIADB", "MYSQL", "MYSQL_OLD", "PROGRAMS", "SIGNATURES", "SYSLOG_SIGNATURES"]

PROGRAMS = ("mariadbd", "mysqld")

# MariaDB's own error log: "2026-11-23  6:50:01 8 [Warning] " (thread id, then the level).
MARIADB = Frame(
    "mariadb",
    r"(\d{4}-\d\d-\d\d [ \d]\d:\d\d:\d\d) \d{1,20} \[(?:Note|Warning|ERROR)\] ",
    Stamp.YMD,
    example="2026-11-23  6:50:01 8 [Warning] ",
)
# MySQL 5.7/8's error log: RFC 3339 in UTC (log_timestamps=UTC, the default) or local.
MYSQL = Frame(
    "mysql",
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)?)"
    r" \d{1,20} \[(?:Note|Warning|Error|System)\] ",
    Stamp.SYSLOG,
    example="2026-11-23T06:50:01.123456Z 8 [Note] ",
)

# MySQL <= 5.5, MariaDB <= 10.0: "130324  0:04:00 [Warning] " (two-digit year, no thread).
MYSQL_OLD = Frame(
    "mysql-old",
    r"(\d{6} [ \d]\d:\d\d:\d\d) \[(?:Note|Warning|ERROR)\] ",
    Stamp.YYMMDD,
    example="130324  0:04:00 [Warning] ",
)

# The host: an address, "localhost" or a forward-confirmed host name; then the fixed tail.
_DENIED = (
    r"Access denied for user '<USER>'@'(?=[0-9A-Za-z:._-]{1,255}' )<HOST>'"
    r" \(using password: (?:YES|NO)\)"
)

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "access-denied",
        Role.CONFIRM,
        # MySQL 8 tags the message "[MY-010926] [Server] "; MariaDB and MySQL 5.7 do not.
        rf"(?:\[MY-010926\] \[Server\] )?{_DENIED}",
        (
            "Access denied for user 'root'@'198.51.100.7' (using password: YES)",
            "Access denied for user 'admin'@'2001:db8::7' (using password: NO)",
            "[MY-010926] [Server] Access denied for user 'root'@'198.51.100.7'"
            " (using password: YES)",
            "Access denied for user ''@'198.51.100.7' (using password: NO)",
        ),
    ),
)

# Under the journal/syslog, the message still starts with the server's own stamp, thread
# id and level: MariaDB's ("2026-11-23  6:50:01 8 [Warning] ") or MySQL's RFC 3339 one.
SYSLOG_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "access-denied",
        Role.CONFIRM,
        r"(?:(?:\d{4}-\d\d-\d\d [ \d]\d:\d\d:\d\d"
        r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)?)"
        r" \d{1,20}|\d{6} [ \d]\d:\d\d:\d\d) \[(?:Warning|Note)\] "
        rf"(?:\[MY-010926\] \[Server\] )?{_DENIED}",
        (
            "2026-11-23  6:50:01 8 [Warning] Access denied for user 'root'@'198.51.100.7'"
            " (using password: YES)",
            "2026-11-23 16:50:01 12 [Warning] Access denied for user 'bob'@'2001:db8::7'"
            " (using password: NO)",
            "2026-11-23T06:50:01.123456Z 8 [Note] [MY-010926] [Server] Access denied for"
            " user 'root'@'198.51.100.7' (using password: YES)",
            "130916 21:30:26 [Warning] Access denied for user 'hacker'@'198.51.100.7'"
            " (using password: YES)",
        ),
    ),
)
