"""vsftpd (3.0.3): failed logins, from its own log or from syslog.

vsftpd writes one ``LOGIN`` entry per ``PASS`` it refuses (``vsf_privop_do_login`` in
privops.c, formatted by ``vsf_log_do_log_vsftpd_format`` in logging.c)::

    [USER] FAIL LOGIN: Client "ADDR"

* In its own log (``vsftpd_log_file``, ``/var/log/vsftpd.log``: Debian's default, written
  when ``xferlog_enable=YES`` and ``syslog_enable=NO``) the line starts with
  ``vsf_sysutil_get_current_date()`` — ``%a %b %e %H:%M:%S %Y``, the day padded with a
  space, as ctime — and ``[pid N] `` (frame ``FRAME``). Unprintable bytes become ``?``.
* With ``syslog_enable=YES`` the same text goes to syslog as ``vsftpd[PID]: …``.

``USER`` is what the client sent with ``USER``, unchecked (spaces, brackets, quotes and all;
``[USER] `` is left out when it is empty), and it comes *before* the address, which
vsftpd writes last: ``remote_ip_str``, the peer as ``inet_ntop`` gives it (IPv4-mapped
``::ffff:198.51.100.7`` with Debian's ``listen_ipv6=YES``). After a failed anonymous
login nothing follows the address (the ``anon password`` part is only set on success).
Red Hat's ``userlist_log`` patch appends ``, "User is in the deny user list."`` (or
``…not in the allow…``) when a listed user is refused before the password: a fixed text,
accepted too.

The address is the last thing on a ``FAIL LOGIN`` line, but other entries carry client
text *after* it: ``[bob] FAIL MKDIR: Client "ADDR", "PATH"`` (and DELETE, RENAME, RMDIR,
CHMOD), ``FTP command`` lines with ``log_ftp_protocol``. A logged-in or anonymous client
making a directory named ``x] FAIL LOGIN: Client "203.0.113.9`` gets a line that ends like
a failed login with a planted address. So a line counts only when it holds ``: Client "``
exactly once. A user name holding that text (real vsftpd 3.0.3 logs the user
``x] FAIL LOGIN: Client "203.0.113.9"`` as ``[x] FAIL LOGIN: Client "203.0.113.9"] FAIL
LOGIN: Client "ADDR"``) is not counted either: no real account has such a name, so a
guesser sending it guesses nothing.

One attempt is counted once: with PAM (Debian's ``pam_service_name=vsftpd``) pam_unix also
writes ``pam_unix(vsftpd:auth): authentication failure; … ruser=NAME rhost=ADDR`` for the
same attempt, from the same process, before vsftpd's ``FAIL LOGIN``: it is an announcement
(``PAM_SIGNATURES``), and the ``FAIL LOGIN`` of the same pid that follows is its verdict. A
host that logs only through PAM (no ``xferlog``, no ``syslog_enable``) still has every
attempt counted, once. vsftpd writes ``FAIL LOGIN`` also for the names it refuses before
asking PAM (a user name with a space or an unprintable byte, a too long one). Since those
never reach PAM, pam's ``ruser=`` (the client's name) holds no blank, so it cannot plant a
second ``rhost=``: the one after it is pam's. Old pam wrote ``(pam_unix) authentication
failure`` (no pid), as fail2ban's vsftpd sample log has it.
``max_login_fails`` (3) closes the connection without a line of its own.
"""

from bruteguard.match.signature import Frame, Role, Signature, Stamp

__all__ = ["FRAME", "PAM_SIGNATURES", "PROGRAMS", "SIGNATURES"]

PROGRAMS = ("vsftpd",)

# vsftpd's own log: "Mon Nov 23 06:50:01 2026 [pid 1234] " (the day space-padded).
FRAME = Frame(
    "vsftpd",
    r"((?:[A-Z][a-z]{2} )?[A-Z][a-z]{2} [ 0-3]\d \d\d:\d\d:\d\d \d{4}) \[pid \d{1,10}\] ",
    Stamp.CTIME,
    example="Mon Nov 23 06:50:01 2026 [pid 1234] ",
)

# What remote_ip_str can hold (inet_ntop), then the closing quote.
_ADDRESS = r'(?=[0-9A-Fa-f:.]{2,45}")<HOST>'

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "fail-login",
        Role.CONFIRM,
        # Exactly one ': Client "' in the line: other entries (MKDIR, DELETE, FTP command…)
        # carry a client-chosen path or command after the address, which could end in a
        # forged 'FAIL LOGIN: Client "ADDR"'; no real account name holds that text.
        rf'(?!.*: Client ".*: Client ")(?:\[<USER>\] )?FAIL LOGIN: Client "{_ADDRESS}"'
        r'(?:, "User is (?:in the deny|not in the allow) user list\.")?',
        (
            '[bob] FAIL LOGIN: Client "198.51.100.7"',
            '[root] FAIL LOGIN: Client "::ffff:198.51.100.7"',
            '[admin] FAIL LOGIN: Client "2001:db8::66"',
            '[a b] FAIL LOGIN: Client "198.51.100.7"',
            'FAIL LOGIN: Client "198.51.100.7"',
            '[root] FAIL LOGIN: Client "198.51.100.7", "User is in the deny user list."',
        ),
    ),
)

PAM_SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "pam-authentication-failure",
        Role.ANNOUNCE,
        r"(?:pam_unix\(vsftpd:auth\):|\(pam_unix\)) authentication failure; logname=\S*"
        r" uid=\d{1,10} euid=\d{1,10} tty=\S* ruser=\S* rhost=<HOST> ?(?: user=\S*)?",
        (
            "pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp"
            " ruser=bob rhost=198.51.100.7 ",
            "pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp"
            " ruser=root rhost=2001:db8::66  user=root",
            "(pam_unix) authentication failure; logname= uid=0 euid=0 tty= ruser="
            " rhost=198.51.100.7",
        ),
    ),
)
