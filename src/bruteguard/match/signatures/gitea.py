"""Gitea and Forgejo: failed web sign-ins and refused SSH keys (Gitea 1.12 to 1.2x, Forgejo).

Both write the same messages (Forgejo is a fork) through Gitea's logger (``modules/log``):

* ``Failed authentication attempt for %s from %s: %v`` — ``routers/web/auth/auth.go``
  ``SignInPost`` (``routers/user/auth.go`` up to 1.16), also the WebAuthn and OAuth2
  sign-ins: the user name, ``ctx.RemoteAddr()`` and the error;
* ``Failed authentication attempt for %s from %s`` — a signed-in session whose account is
  inactive or prohibited (``ctx.Doer.Name``, the account's own name);
* ``Failed authentication attempt from %s`` — ``modules/ssh/ssh.go`` ``publicKeyHandler``
  (an SSH user other than ``git``, an unknown key, a refused certificate; one line per key
  the client offers) and ``sshConnectionFailed`` (a handshake that failed), and
  ``services/auth/httpsign.go`` (a bad HTTP signature).

Where each field comes from and who controls it:

* The address is Go's ``Request.RemoteAddr`` / ``net.Addr.String()``: ``IP:PORT``, IPv6 as
  ``[IP]:PORT``. Behind a trusted reverse proxy (``REVERSE_PROXY_TRUSTED_PROXIES``) the
  ``chi-middleware/proxy`` middleware writes the forwarded address as ``IP:0`` /
  ``[IP]:0``. It is always server text with a port; only the address part is taken.
* The user name is the sign-in form's ``user_name`` (client text, up to 254 characters,
  anything but a line break in the same line) and comes *before* the address.
* The error comes *after* the address, and for a name that does not exist it repeats the
  client's text: ``user does not exist [uid: 0, name: NAME, keyid: 0]`` (``[uid: 0, name:
  NAME]`` since 1.17), ``Email address does not exist [email: NAME]``. Errors about a real
  account name the account as stored (``[\\w.-]``, no spaces).

So the client's text stands on both sides of the address, and neither the first nor the
last `` from ADDR`` is safe on its own. Two signatures decide it, and both want the whole
error as Gitea writes it, to the end of the line:

* **failed-auth**: a user name *without* white space (every real account name, every
  e-mail address): the first `` from `` after it is Gitea's own — *if* the rest of the line
  is one whole error Gitea writes (the name repeated, or an error naming an account as
  stored, or none). A client name that starts ``x from 203.0.113.9:1: …`` and goes on with
  spaces leaves Gitea's real `` from ADDR: user does not exist …`` in what would have to be
  the error, and no alternative matches that.
* **failed-auth-echo**: a user name *with* white space can only be a name that does not
  exist, and then the error repeats it: the line counts only when the text after ``name: ``
  / ``email: `` is exactly the text after ``for `` (a back-reference). Two different splits
  of one line into NAME, `` from ADDR: …``, NAME cannot both hold: the fixed text between
  the copies has exactly one `` from `` and the address no space.

The log line (file or console): ``2023/01/01 15:33:04 ...ers/web/auth/auth.go:200:SignInPost()
[I] [63b199a0] Failed authentication attempt for …`` — the stamp (``Ldate|Ltime``,
microseconds with ``Lmicroseconds``), the caller (``Lmedfile``/``Lshortfile`` and the
function), the level initial, and the goroutine id (``Lgopid``, ``[no-gopid]`` since 1.22).
On a console (the journal, ``docker logs``) Gitea 1.12 to 1.19 colour every part *and every
argument* (``\\x1b[1mNAME\\x1b[0m``) by default: the escape sequences are stepped over
(rsyslog writes ESC as ``#033``). The head is matched atomically, so a user name holding
``[I] Failed authentication attempt …`` is never read as a second message.

Line breaks: Gitea 1.12 to 1.19 escape control characters in arguments (``\\012``); from
1.20 on, the logger writes the arguments raw, so a user name with a line break starts a new
line of the log with whatever text the client chose. No pattern can tell such a forged line
from a real one: the signatures only make sure that text *within* a line cannot move the
address (the same holds for every log that writes client text unescaped).

One failed sign-in is one line; one refused SSH key is one line (a client offering five
unknown keys makes five attempts, as sshd counts ``Failed publickey``). Not counted: the
basic-auth, token and git-over-HTTP failures (``services/auth/basic.go`` writes none with
an address; the router's ``completed … 401`` lines are also every git client's first,
credential-less request), ``Invalid SSH username`` and ``Unknown public key`` (the
``Failed authentication attempt from`` line that follows them counts).
"""

from bruteguard.match.signature import Frame, Role, Signature, Stamp

__all__ = ["FRAME", "PROGRAMS", "SIGNATURES", "SYSLOG_SIGNATURES"]

PROGRAMS = ("gitea", "forgejo")

# ANSI colour sequences Gitea's console writer puts around each part and argument (raw in
# the journal, "#033[…m" once rsyslog has escaped them).
_C = r"(?:(?:\x1b|#033)\[[0-9;]{0,12}m)*+"

# What follows the stamp: the caller ("...ers/web/auth/auth.go:200:SignInPost() "), the
# level ("[I] ") and the goroutine id ("[63b199a0] "), each optional (the FLAGS setting).
# Atomic: once read, never re-read further into the message.
_AFTER_STAMP = (
    rf"(?>{_C}(?:[^\s:\x1b]{{1,255}}:\d{{1,9}}:?{_C}(?:[^\s\x1b]{{1,255}}{_C})? )?"
    rf"(?:{_C}\[[A-Z]{{1,8}}\]{_C} )?(?:\[{_C}[0-9A-Za-z-]{{1,40}}{_C}\] )?)"
)
_STAMP = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?"

# Gitea's own log file (/var/lib/gitea/log/gitea.log): the stamp first.
FRAME = Frame(
    "gitea",
    rf"{_C}({_STAMP}) {_AFTER_STAMP}",
    Stamp.YMD,
    example="2023/01/01 15:33:04 ...ers/web/auth/auth.go:200:SignInPost() [I] ",
)

# ctx.RemoteAddr(): IPv4:PORT or [IPv6]:PORT (":0" behind a trusted proxy). The host is the
# part before the port: greedy up to the next space, then the port, which ends the token.
_ADDR = (
    r"(?=(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]{2,45}\]):\d{1,5}(?!\d))"
    r"<HOST>:\d{1,5}"
)

# The errors that repeat the client's own text: the name exactly as sent (a back-reference
# to the user group), so the address is the one between the two copies.
_ECHO = (
    r"(?:user does not exist \[uid: \d{1,20}, name: \g{-2}(?:, keyid: \d{1,20})?\]"
    r"|Email address does not exist \[email: \g{-2}\])"
)
# Errors about a real account, named as stored ([\w.-], no spaces): fixed text to the end.
_ACCOUNT = r"[\w.-]{1,40}"
_STORED = (
    rf"(?:user(?:'s password is invalid|'s password isn't set| is not allowed login"
    rf"| is inactive| does not exist) \[uid: \d{{1,20}}, name: {_ACCOUNT}(?:, keyid: \d{{1,20}})?\]"
    r"|e-mail already in use \[email: [^\s\]]{1,254}\])"
)

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "failed-auth",
        Role.CONFIRM,
        # A user without white space: the first " from " after it is Gitea's own. The
        # error must still be one Gitea writes, whole: a name that starts "x from ADDR: "
        # and goes on with spaces leaves an error with Gitea's real tail in it, which no
        # alternative here matches.
        rf"Failed authentication attempt for {_C}(?=\S*? from )(?>(?U:<USER>){_C} from )"
        rf"{_C}{_ADDR}{_C}(?:: {_C}(?:{_ECHO}|{_STORED}){_C})?",
        (
            "Failed authentication attempt for test from 192.0.2.2:13798: user does not"
            " exist [uid: 0, name: test, keyid: 0]",
            "Failed authentication attempt for admin from 198.51.100.7:52344: user's"
            " password is invalid [uid: 1, name: admin]",
            "Failed authentication attempt for bob@example.org from [2001:db8::7]:41000:"
            " user does not exist [uid: 0, name: bob@example.org]",
            "Failed authentication attempt for alice from 203.0.113.5:0",
            "Failed authentication attempt for \x1b[1mroot\x1b[0m from"
            " \x1b[1m198.51.100.7:4711\x1b[0m: \x1b[1muser does not exist [uid: 0, name: root,"
            " keyid: 0]\x1b[0m",
        ),
    ),
    Signature(
        "failed-auth-echo",
        Role.CONFIRM,
        # A name with spaces: the error repeats it exactly, and the address is between.
        rf"Failed authentication attempt for {_C}<USER>{_C} from {_C}{_ADDR}{_C}: {_C}{_ECHO}{_C}",
        (
            "Failed authentication attempt for john smith from 198.51.100.7:4711: user does"
            " not exist [uid: 0, name: john smith]",
            "Failed authentication attempt for a b from [2001:db8::7]:4711: user does not"
            " exist [uid: 0, name: a b, keyid: 0]",
        ),
    ),
    Signature(
        "failed-key",
        Role.CONFIRM,
        rf"Failed authentication attempt from {_C}{_ADDR}{_C}",
        (
            "Failed authentication attempt from 198.51.100.7:52311",
            "Failed authentication attempt from [2001:db8::7]:40022",
        ),
    ),
)

# Under the journal or syslog ("gitea[PID]: "), the message starts with Gitea's own head.
_INNER = rf"(?>{_C}(?:{_STAMP} )?){_AFTER_STAMP}"

SYSLOG_SIGNATURES: tuple[Signature, ...] = tuple(
    Signature(
        signature.name,
        signature.role,
        _INNER + signature.message,
        tuple(
            f"2023/01/01 15:33:04 ...ers/web/auth/auth.go:200:SignInPost() [I] {sample}"
            for sample in signature.samples[:2]
        ),
    )
    for signature in SIGNATURES
)
