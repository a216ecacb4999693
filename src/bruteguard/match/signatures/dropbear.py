"""dropbear (0.52 to 2026.94): failed logins, from syslog or from ``-E`` through the journal.

dropbear forks a child per connection; the child writes through ``dropbear_log`` →
``svr_dropbear_log`` (svr-session.c): with syslog (the default; ``openlog(…, LOG_PID,
LOG_AUTHPRIV)``, so Debian's rsyslog writes it to auth.log) the text alone, with ``-E``
(Debian's ``dropbear.service`` runs ``dropbear -EF``: stderr → the journal, facility daemon)
``[CHILDPID] Mmm DD hh:mm:ss TEXT`` (strftime ``%b %d %H:%M:%S``). Both are accepted: the
``-E`` prefix is optional before every message.

The client's address is ``svr_ses.addrstring``: ``HOST:PORT`` from ``get_socket_address``
with numeric host (``getnameinfo`` ``NI_NUMERICHOST``: never a name), IPv4 as such (the
listeners are ``IPV6_V6ONLY``), IPv6 unbracketed (``2001:db8::a:40964``: the port is the
part after the last colon) until 2026.94, bracketed (``[2001:db8::a]:40964``) since. It is
written by dropbear, in fixed places:

* ``Bad password attempt for 'NAME' from ADDR`` (svr-authpasswd.c, one per refused
  password; ``Bad PAM password attempt`` from svr-authpam.c in builds with PAM, where NAME
  is ``<invalid username>`` for unknown users; ``Too-long password attempt``; 0.52 and
  older write ``bad``): the address is *last*. NAME is the account's name from ``getpwnam``
  (``pw_name``), not the client's text; the pattern does not rely on that: a greedy user
  name followed by ``' from ADDR`` at the end of the line leaves the last address to
  dropbear.
* ``Pubkey auth bad signature for 'NAME' with key FINGERPRINT from ADDR`` (svr-authpubkey.c):
  a key that was accepted for the account but whose signature is wrong. Keys that are
  merely not authorised write nothing (and are not counted by dropbear either).
* ``Exit before auth from <ADDR>: MESSAGE`` (``svr_dropbear_exit``, 2020.79 and later): the
  child ends before anyone logged in. MESSAGE is dropbear's (``Exited normally``, ``Max auth
  tries reached - user 'is invalid'``, ``Error reading: …``) but can quote the client
  (``Incompatible remote version '…'``): the address comes *first*, right after the fixed
  ``from <``, and nothing after ``>: `` is read. When the connection named an existing
  account, ``(user 'NAME', N fails): `` follows the address.
* ``Login attempt for nonexistent user from ADDR`` (svr-auth.c ``checkusername``, once per
  connection): 0.52 to 2019.78 and again since 2024.86. 2020.79 to 2024.85 — Debian 12's
  2022.83 among them — write ``Login attempt for nonexistent user`` with no address at all.
* ``Exit before auth (user 'NAME', N fails): Max auth tries reached - user 'NAME' from
  ADDR`` (up to 2019.78, when the exit line had no address of its own; ``user 'is
  invalid'`` for unknown users).

How one attempt counts once (dropbear's own choices decide what can be counted):

* A refused password of an existing account writes ``Bad password attempt`` (**confirm**):
  each counts. The exit line that ends such a connection (``(user 'NAME', N fails)``) is a
  **close**: it counts only when nothing else of that connection did — attempts dropbear
  refuses without a line of their own (root with ``-w``, a shell not in /etc/shells, a
  ``-G`` group, methods other than password) are counted once per connection this way.
* An unknown user's passwords write nothing per attempt (``checkusername`` caches its
  verdict). Debian 12's dropbear names the client for them only in the exit line, with no
  user part, so that line is a **confirm** (one per connection). Since 2024.86 (and up to
  2019.78) ``Login attempt for nonexistent user from ADDR`` comes first: it is an
  **announce**, and the exit line that follows is the same attempt.
* The exit line without a user part is also what a connection writes that never tried to
  log in (a port scan, a banner grab, a health check): such connections count once each,
  like sshd's pre-auth closes. A monitoring system that connects to dropbear's port belongs
  in ``ignoreip``.

Under ``-E`` every connection's lines reach syslog under the *listener's* pid (the journal
records the stream's owner), so connections from one address are not told apart: a close
after a counted connection of the same address is not counted again, and an announce
followed by another connection's line before its own exit line can count twice.

Not failures: ``Child connection from ADDR`` (every connection), ``Password auth
succeeded``, ``Pubkey auth succeeded``, ``Exit (NAME) from <ADDR>: …`` (after a login),
``Early exit`` (the child failed before talking to the client). Lines with no address
(``root login rejected``, ``User 'NAME' has invalid shell, rejected``, ``Login attempt for
nonexistent user``) are not matched.
"""

from bruteguard.match.signature import Role, Signature

__all__ = ["PROGRAMS", "SIGNATURES"]

PROGRAMS = ("dropbear",)

# "-E": "[CHILDPID] Dec 04 22:15:16 " before the text (or epoch seconds if localtime fails).
_STDERR = r"(?:\[\d{1,10}\] (?:[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d|\d{1,20}) )?"
# addrstring: "198.51.100.7:5000", "2001:db8::a:5000" (the port after the last colon), or
# since 2026.94 "[2001:db8::a]:5000"; ends the line (or rsyslog's "message repeated" wrapper)
# or the exit line's "<…>".
_ADDRESS = (
    r"(?:\[(?=[0-9A-Fa-f:.]{2,45}\]:\d)|(?=[0-9A-Fa-f:.]{2,45}:\d{1,5}(?:>|\]|$)))"
    r"<HOST>(?<!\])\]?:\d{1,5}"
)
_FAILS = r"\(user '.*', \d{1,10} fails\)"

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "bad-password",
        Role.CONFIRM,
        rf"{_STDERR}(?:[Bb]ad(?: PAM)?|Too-long) password attempt for '<USER>' from {_ADDRESS}",
        (
            "Bad password attempt for 'bob' from 198.51.100.7:54030",
            "Bad password attempt for 'root' from 2001:db8::a:46392",
            "Bad password attempt for 'bob' from [2001:db8::a]:46392",
            "Bad PAM password attempt for '<invalid username>' from 198.51.100.7:54030",
            "Too-long password attempt for 'root' from 198.51.100.7:54030",
            "[35] Dec 04 22:15:16 Bad password attempt for 'bob' from 198.51.100.7:36798",
        ),
    ),
    Signature(
        "bad-signature",
        Role.CONFIRM,
        rf"{_STDERR}Pubkey auth bad signature for '<USER>' with key [^ ]{{1,200}}"
        rf"(?: [^ ]{{1,200}})? from {_ADDRESS}",
        (
            "Pubkey auth bad signature for 'bob' with key SHA256:P9szN0L2ls6KxkVv7Bppv3asnZCn03"
            "rY7Msm/c8+ZgA from 198.51.100.7:54030",
        ),
    ),
    Signature(
        "nonexistent-user",
        Role.ANNOUNCE,
        rf"{_STDERR}(?:[Ll]ogin attempt for nonexistent user|Login attempt with wrong user"
        rf" <USER>) from {_ADDRESS}",
        (
            "Login attempt for nonexistent user from 198.51.100.7:54040",
            "Login attempt for nonexistent user from [2001:db8::a]:40972",
            "login attempt for nonexistent user from 198.51.100.7:54040",
            "Login attempt with wrong user bob from 198.51.100.7:54040",
        ),
    ),
    Signature(
        "exit-before-auth",
        Role.CONFIRM,
        # The address first; the message after it may quote the client.
        rf"{_STDERR}Exit before auth from <{_ADDRESS}>: (?!\(user ').*",
        (
            "Exit before auth from <198.51.100.7:54040>: Exited normally",
            "Exit before auth from <2001:db8::a:40972>: Max auth tries reached - user 'is invalid'",
            "Exit before auth from <[2001:db8::a]:40972>: Exited normally",
            "Exit before auth from <198.51.100.7:54054>: Error reading: Connection reset by peer",
            "[37] Dec 04 22:15:17 Exit before auth from <198.51.100.7:36802>: Exited normally",
        ),
    ),
    Signature(
        "exit-before-auth-user",
        Role.CLOSE,
        rf"{_STDERR}Exit before auth from <{_ADDRESS}>: {_FAILS}: .*",
        (
            "Exit before auth from <198.51.100.7:54030>: (user 'bob', 1 fails): Exited normally",
            "Exit before auth from <198.51.100.7:34536>: (user 'root', 1 fails): Max auth"
            " tries reached - user 'root'",
        ),
    ),
    Signature(
        "max-auth-tries",
        Role.CLOSE,
        # Up to 2019.78 the exit line had no address, but this message ended in one.
        rf"{_STDERR}[Ee]xit before auth(?: {_FAILS})?: [Mm]ax auth tries reached - user '.*'"
        rf" from {_ADDRESS}",
        (
            "Exit before auth (user 'root', 10 fails): Max auth tries reached - user 'root'"
            " from 198.51.100.7:54030",
            "Exit before auth: Max auth tries reached - user 'is invalid' from 198.51.100.7:54030",
        ),
    ),
)
