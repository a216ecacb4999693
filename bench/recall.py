"""How many failure lines the built-in signatures find, service by service, and how many
innocent lines they count, on material written by others.

Two corpora, neither copied into the repository:

* **fail2ban's sample logs** (Debian's fail2ban package installs them): a line stated
  ``# failJSON: {"match": true, …}`` is a failure line (in some mode of fail2ban's filter),
  with the host fail2ban expects; every other line is innocent. Each fail2ban filter is
  read by the built-in filter(s) of the same service (``SERVICES``), as one jail each.
* **lines captured from real runs** of the daemons (``tests/data/signatures/*.txt``): their
  expectations are this project's, so they check the captures, not the signatures' design;
  each case is counted as the suite counts it (with the earlier lines of its session).

A line is *found* when a built-in filter of its service counts it for the expected host
(an address in canonical form, a name as written; ``none`` for a line that names no
client), alone or in its file's context (the file run through one stream, as the daemon
reads it: a line naming no client takes its connection's address from another line), or
matches it as a line of a connection already counted (one attempt counts once), or matches
it for the host name it names (the identity stage, or the verdict line that follows with
the address, attributes it). An
innocent line is *counted* when a filter counts it, alone or in context. Deliberate
differences from fail2ban are listed in ``DIFFERENCES`` with the reason, and reported
apart from the score.

fail2ban tests a sample log in each of its filter's modes (``filterOptions``); a few
lines are failures in one mode and not in another (``constraint``). A service's built-in
filters together (sshd and sshd-ddos) stand for the widest of a block's modes
(``aggressive``, else ``ddos``/``extra``, else the normal mode), and a line is judged by
the expectation that mode gives it.

    .venv/bin/python bench/recall.py [--misses] [SERVICE ...]
"""

from __future__ import annotations

import argparse
import ast
import calendar
import datetime
import ipaddress
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bruteguard.match.engine import Matcher
from bruteguard.match.signatures import FILTERS

ROOT = Path(__file__).resolve().parents[1]
FAIL2BAN_LOGS = Path("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs")
# fail2ban's sample test runs at 2005-08-14 12:00 CEST: yearless stamps belong to 2005.
FAIL2BAN_NOW = 1124013600.0
OURS_NOW = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))
FLOOR = 0.99
# A journal entry as bruteguard's journal source writes it (sources.journal.format_entry:
# "STAMP HOST PROGRAM[PID]: MESSAGE", the stamp RFC 3339 in UTC): fail2ban's journal samples
# are "HOST PROGRAM[PID]: MESSAGE", without the time.
JOURNAL_STAMP = (
    datetime.datetime.fromtimestamp(FAIL2BAN_NOW, datetime.UTC).isoformat(timespec="microseconds")
    + " "
)

# fail2ban filter (sample log) → the built-in filters that read that service's log.
SERVICES: dict[str, tuple[str, ...]] = {
    "sshd": ("sshd", "sshd-ddos"),
    "sshd-journal": ("sshd", "sshd-ddos"),
    "pure-ftpd": ("pure-ftpd",),
    "vsftpd": ("vsftpd",),
    "proftpd": ("proftpd",),
    "postfix": ("postfix", "postfix-reject"),
    "dovecot": ("dovecot",),
    "exim": ("exim", "exim-reject"),
    "courier-auth": ("courier",),
    "courier-smtp": ("courier", "courier-reject"),
    "cyrus-imap": ("cyrus-imap",),
    "sendmail-auth": ("sendmail",),
    "sendmail-reject": ("sendmail", "sendmail-reject"),
    "named-refused": ("named-refused",),
    "nginx-http-auth": ("nginx-http-auth", "nginx-tls-probe"),
    "nginx-botsearch": ("web-scanner",),
    "apache-auth": ("apache-auth",),
    "mysqld-auth": ("mysqld",),
    "dropbear": ("dropbear",),
    "roundcube-auth": ("roundcube",),
    "gitlab": ("gitlab",),
    "grafana": ("grafana",),
}

# Reasons shared by several lines of one service.
_DOVECOT_AUTH_PROCESS = (
    "Dovecot's auth process, with auth_verbose = yes (off by default): the same attempt is"
    " counted exactly by its connection's login-process line '(auth failed, N attempts)' (or,"
    " for SMTP AUTH through Dovecot's auth socket, by the MTA's own SASL failure line in the"
    " postfix/exim jails); this line cannot stand for one attempt: each passdb asked writes"
    " its own (passwd-file's 'unknown user' and then pam's 'Password mismatch' for one"
    " password), and a userdb lookup for mail delivery writes 'unknown user' too"
)
_NO_PASSWORD_CHECKED = (
    "fail2ban's aggressive mode only (its normal mode leaves it uncounted too): the connection"
    " ended before any password was checked — TLS scanners, clients that hung up, a proxy or"
    " monitor"
)

# (fail2ban filter, a fragment of the line) → why the built-in filter differs on purpose. A
# fragment ending in a line break matches only at the line's end.
DIFFERENCES: dict[tuple[str, str], str] = {
    ("sshd", "POSSIBLE BREAK-IN ATTEMPT"): (
        "broken reverse DNS, not a failed login: counts only with breakin_weight"
    ),
    ("sshd", "but this does not map back to the address"): (
        "broken reverse DNS, not a failed login: counts only with breakin_weight"
    ),
    **{
        (log, part): why
        for log in ("sshd", "sshd-journal")
        for part, why in {
            "ssh2: from 10.10.1.2 port 55555 ssh2": (
                "sshd writes nothing after 'ssh2' on a password line (auth.c auth_log: only a"
                " key, a certificate, hostbased's or GSSAPI's details follow ': '), so this is"
                " the user name 'test from 127.0.0.1 port 58946 ssh2:' and the address sshd"
                " wrote, 10.10.1.2, which bruteguard counts; fail2ban expects the one inside"
                " the user name"
            ),
            "ruser=sudoer rhost=192.0.2.114": (
                "pam_unix refused a password that a later PAM module (pam_sss, pam_ldap) may"
                " still accept: bruteguard counts it through the 'Failed password' verdict or"
                " the close that follows, and this connection ends accepted. A second user in"
                " one connection can't happen (auth2.c: 'Change of username or service not"
                " allowed')"
            ),
            "Accepted password for known from": (
                "a successful login: never counted (fail2ban counts the pam_unix refusals"
                " before it here, which a later PAM module overturned)"
            ),
            "Disconnected from authenticating user admin 192.0.2.6": (
                "the words fail2ban's extra and aggressive modes count (the same line for"
                " root, below, gh-2115); innocent here only in its normal mode, which ignores"
                " pre-authentication disconnects. bruteguard counts one once per connection"
            ),
            " kernel:[": (
                "sshd writes no kernel time stamp into its messages: fail2ban tries the prefix"
                " of kernel log lines (common.conf __kernel_prefix) inside an sshd entry;"
                " bruteguard's journal source writes kernel entries as program 'kernel'"
            ),
            " kernel: [": (
                "sshd writes no kernel time stamp into its messages: fail2ban tries the prefix"
                " of kernel log lines (common.conf __kernel_prefix) inside an sshd entry;"
                " bruteguard's journal source writes kernel entries as program 'kernel'"
            ),
        }.items()
    },
    ("nginx-http-auth", 'host: "localhost:8443"": was not found'): (
        "nginx cuts the user name at its first ':', so the first client field is nginx's"
        " (127.0.0.1); what follows is the client's Host header, where fail2ban looks"
    ),
    ("proftpd", "Maximum login attempts"): (
        "written as the connection closes after N failures, each of which already counted"
    ),
    ("postfix", "Client host rejected: cannot find your"): (
        "broken reverse DNS, not an attack: an innocent's ISP can break it"
    ),
    ("postfix", "Invalid authentication mechanism"): (
        "the client asked for a mechanism the server does not offer: no password was checked"
    ),
    ("postfix", " auth=0/"): (
        "Postfix's session summary: each refused AUTH that checked a password has its"
        " warning line, counted there"
    ),
    ("postfix", "pipelining after AUTH from unknown[192.0.2.11]: QUIT"): (
        "innocent only in fail2ban's 'errors' mode (a jail for 'too many errors' alone); its"
        " normal mode counts the line, as postfix-reject does"
    ),
    ("exim", "no host name found for IP address"): "broken reverse DNS, not an attack",
    ("exim", "no IP address found for host"): "broken DNS, not an attack",
    ("exim", "next input sent too soon"): (
        "client text on both sides of the host (the rejected command and the next input):"
        " no reading of the line is safe"
    ),
    ("named-refused", " security: info: client @0x7f4e446fd6e8"): (
        "a syslog stamp and then named's category, no host and no program: no syslog daemon"
        " writes that by default and BIND's own file channels stamp 'dd-Mmm-YYYY' (read):"
        " nothing says the line is named's"
    ),
    ("named-refused", " update-security: error: client @0x7f4e45c07a48"): (
        "a syslog stamp and then named's category, no host and no program: no syslog daemon"
        " writes that by default and BIND's own file channels stamp 'dd-Mmm-YYYY' (read):"
        " nothing says the line is named's"
    ),
    ("sendmail-reject", "from=<davaojk25@domain.com>, size=0, class=0, nrcpts=0"): (
        "the envelope summary of a session whose recipients were all refused: alone it is"
        " what a sender with one mistyped recipient writes too; fail2ban counts it only after"
        " an address-less '<RCPT>... No such user here' line of the same queue id (and not the"
        " same summary under another queue id), a pairing by queue id bruteguard does not make"
    ),
    ("dovecot", "): pam_authenticate() failed: "): _DOVECOT_AUTH_PROCESS,
    ("dovecot", "): unknown user"): _DOVECOT_AUTH_PROCESS,
    ("dovecot", "): Password mismatch"): _DOVECOT_AUTH_PROCESS,
    ("dovecot", "): invalid credentials"): _DOVECOT_AUTH_PROCESS,
    ("dovecot", "pam_unix(dovecot:auth): authentication failure"): (
        "Linux-PAM's pam_unix line for an attempt Dovecot's auth process checked through PAM:"
        " the same attempt is counted from its connection's login-process line '(auth failed,"
        " N attempts)' (or the MTA's SASL failure line); counting it too would count it twice"
    ),
    ("dovecot", "(no auth attempts"): _NO_PASSWORD_CHECKED,
    ("dovecot", "(disconnected before auth was ready"): _NO_PASSWORD_CHECKED,
    ("dovecot", "(client didn't finish SASL auth"): _NO_PASSWORD_CHECKED,
    ("proftpd", "User in /etc/ftpusers"): (
        "refused after the password was checked: the password was right"
    ),
    ("roundcube-auth", "NO Login failed. user=admin from 127.0.0.1"): (
        "made up by fail2ban ('assume the user can manipulate the IMAP error response'): an"
        " IMAP answer repeating the user name puts client text on both sides of the address,"
        " so no reading of the line is safe; Dovecot's answer ('[AUTHENTICATIONFAILED]"
        " Authentication failed.') never repeats it"
    ),
    ("roundcube-auth", " from 10.1.1.47\n"): (
        "ends at the address: since the message was added (0.5, #1487626) Roundcube has"
        " always written the IMAP answer and ' in FILE on line N (METHOD URI)' after it; a"
        " line cut there, after a user name holding ' from ADDR', would name whoever the name"
        " says"
    ),
    ("roundcube-auth", " from 127.0.0.1 from 1.2.3.4\n"): (
        "ends at the address (made up by fail2ban as an 'old version'): Roundcube has always"
        " written the IMAP answer and ' in FILE on line N (METHOD URI)' after it; a line cut"
        " there, after a user name holding ' from ADDR', would name whoever the name says"
    ),
    ("roundcube-auth", "]: FAILED login for "): (
        "no Roundcube source from 2008 on writes 'FAILED login' (1.0 on: 'Failed login for"
        " NAME from ADDR in session ID (error: N)', counted); it also ends at the address"
    ),
    ("gitlab", "Z: Failed Login: username="): (
        "GitLab's text application.log (AppTextLogger) writes the message raw: a login name"
        " holding a line break writes a whole forged line with any address; the JSON log,"
        " where the name is escaped, is counted"
    ),
    ("apache-auth", "[evasive20:error]"): (
        "mod_evasive refusing a client it blocks as a flood: no login; fail2ban counts it only"
        " in its aggressive mode (the same line is innocent in its normal mode), and the 403s"
        " are apache-http-flood's"
    ),
    ("apache-auth", "client denied by server configuration"): (
        "an access rule (Require, Deny from) refused the request before any login: no"
        " password was checked, and one page with images in a denied directory writes one"
        " line per image; the access log's 403 counts for apache-http-flood"
    ),
    ("apache-auth", "client used wrong authentication scheme"): (
        "a non-Basic Authorization header (Negotiate, Bearer, Digest) sent to a Basic realm:"
        " no password was looked at, and none can be guessed that way"
    ),
    ("apache-auth", "Authorization of user "): (
        "mod_authz_owner, after authentication: the password was right, the account may not"
        " see that file"
    ),
    ("apache-auth", ": authorization failure for "): (
        "mod_authz_core AH01631, after authentication: the password was right, the account"
        " may not see that page (Require user/group)"
    ),
    ("apache-auth", "realm mismatch - got `"): (
        "the Digest header names another realm: refused before any password is looked at"
        " (a browser reusing one realm's credentials on another path of the server)"
    ),
    ("apache-auth", "unknown algorithm `"): (
        "the Digest header names an algorithm Apache does not offer: refused before any"
        " password is looked at"
    ),
    ("apache-auth", "invalid qop `"): (
        "the Digest header names a qop this location does not offer: refused before any"
        " password is looked at"
    ),
    ("apache-auth", "received - length is not"): (
        "mod_auth_digest checks the nonce only after the password matched"
        " (authenticate_digest_user calls check_nonce last): the password was right"
    ),
    ("apache-auth", "received - user attempted time travel"): (
        "mod_auth_digest checks the nonce only after the password matched, and a nonce from"
        " the future has passed its hash check: the server issued it before its clock"
        " stepped back; the password was right"
    ),
    ("apache-auth", "provided via SNI"): (
        "mod_ssl: TLS SNI and the Host header disagree, no login; clients without SNI and"
        " browsers reusing one HTTP/2 connection for two names of one certificate write it"
    ),
}

_DIRECTIVE = re.compile(r"^#+ ?(failJSON|fileOptions|filterOptions|addFILE):(.+)$")


@dataclass
class Score:
    """One service's lines on one corpus."""

    service: str
    corpus: str
    failures: int = 0
    found: int = 0
    innocent: int = 0
    counted_innocent: int = 0
    deliberate: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.failures if self.failures else 1.0


def _canonical(host: str | None) -> str | None:
    if host is None:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


@dataclass
class _Verdict:
    """What a service's built-in filters made of one line."""

    counted: set[str | None] = field(default_factory=set)  # hosts it counted for
    # hosts it matched for, as a line of a connection (pid) that counted for that host
    attributed: set[str | None] = field(default_factory=set)
    matched: bool = False


_PID = re.compile(r" [^ \[]+\[(\d+)\]:? | \S+ (\d+) \S+ ")


def _address(host: str | None) -> bool:
    try:
        ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return True


def _host(text: str) -> str | None:
    return _canonical(text) if text else None


def _verdicts(filters: tuple[str, ...], lines: list[str], now: float) -> list[_Verdict]:
    """Per line, what any of ``filters`` counted or matched it for, alone and in context."""
    verdicts = [_Verdict() for _ in lines]
    pids = [(found.group(1) or found.group(2)) if (found := _PID.search(t)) else "" for t in lines]
    matched_for: list[set[str | None]] = [set() for _ in lines]
    connections: set[tuple[str, str | None]] = set()  # (pid, host) counted in context
    for name in filters:
        if name not in FILTERS:
            continue
        matcher = Matcher({name: name})
        whole = matcher.stream(reference=now)
        for text, verdict, pid, hosts in zip(lines, verdicts, pids, matched_for, strict=True):
            raw = text.encode("utf-8", "surrogateescape") + b"\n"
            alone = matcher.stream(reference=now)
            for stream in (whole, alone):
                found = {_host(hit[1]) for hit in stream.feed(raw) + stream.take_named()}
                verdict.counted |= found
                if stream is whole:
                    connections |= {(pid, host) for host in found}
                last = stream.last_match()
                if last is not None:
                    verdict.matched = True
                    if last[1]:
                        hosts.add(_host(last[1]))
    for verdict, pid, hosts in zip(verdicts, pids, matched_for, strict=True):
        verdict.attributed = {h for h in hosts if (pid, h) in connections or not _address(h)}
    return verdicts


# fail2ban's modes of a block, widest first: bruteguard's filters of a service together.
_WIDEST = ("aggressive", "ddos", "extra", "")


def _widest(options: list[dict]) -> dict:
    def rank(o: dict) -> int:
        mode = o.get("mode", "")
        return _WIDEST.index(mode) if mode in _WIDEST else len(_WIDEST)

    return min(options, key=rank, default={})


def _holds(condition: str, name: str, options: dict) -> bool:
    """A fail2ban test condition (``name == 'sshd'``, ``opts.get('mode') != 'x'``, joined
    by and/or), read without eval: anything else is a ValueError."""

    def value(node: ast.expr) -> object:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name) and node.id == "name":
            return name
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "opts"
            and node.func.attr == "get"
            and len(node.args) == 1
            and isinstance(node.args[0], ast.Constant)
        ):
            return options.get(node.args[0].value)
        raise ValueError(f"unknown test condition: {condition!r}")

    def truth(node: ast.expr) -> bool:
        if isinstance(node, ast.BoolOp):
            parts = (truth(v) for v in node.values)
            return all(parts) if isinstance(node.op, ast.And) else any(parts)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = value(node.left), value(node.comparators[0])
            if isinstance(node.ops[0], ast.Eq):
                return left == right
            if isinstance(node.ops[0], ast.NotEq):
                return left != right
        raise ValueError(f"unknown test condition: {condition!r}")

    return truth(ast.parse(condition, mode="eval").body)


def _journal_only(payload: str) -> bool:
    """Whether fail2ban's options say the lines that follow are journal entries only."""
    options = json.loads(payload)
    options = options if isinstance(options, list) else [options]
    return bool(options) and all(option.get("logtype") == "journal" for option in options)


def _fail2ban_lines(name: str) -> Iterator[tuple[str, dict | None]]:
    """(line, its failJSON or None) of a fail2ban sample log and the logs it adds, as the
    widest mode of its block tests it; a line that mode does not test is left out."""
    logs, seen = [name], set()
    tested = name.removesuffix("-journal")  # the fail2ban filter the log is tested with
    while logs:
        log = logs.pop(0)
        if log in seen or not (FAIL2BAN_LOGS / log).is_file():
            continue
        seen.add(log)
        expected: dict | None = None
        stamp = ""
        options: dict = {}
        for text in (FAIL2BAN_LOGS / log).read_text(errors="surrogateescape").splitlines():
            directive = _DIRECTIVE.match(text)
            if directive:
                kind, payload = directive.groups()
                if kind == "failJSON":
                    expected = json.loads(payload)
                    condition = expected.get("constraint")
                    if condition and not _holds(condition, tested, options):
                        expected = {"untested": True}
                elif kind == "filterOptions":
                    found = json.loads(payload)
                    choices = found if isinstance(found, list) else [found]
                    choices = [
                        o
                        for o in choices
                        if _holds(o.get("test.condition", "True == True"), tested, o)
                    ]
                    options = _widest(choices)
                elif kind == "addFILE":
                    logs.append(json.loads(payload))
                if kind in ("fileOptions", "filterOptions") and _journal_only(payload):
                    # Journal entries, written without a time: bruteguard's journal source
                    # formats each entry with its own stamp first.
                    stamp = JOURNAL_STAMP
                continue
            if text.startswith("#") or not text.strip():
                continue
            if not (expected or {}).get("untested"):
                yield stamp + text, expected
            expected = None


def score_fail2ban(service: str) -> Score:
    score = Score(service, "fail2ban")
    filters = SERVICES[service]
    lines, expectations = (
        zip(*_fail2ban_lines(service), strict=True)
        if (FAIL2BAN_LOGS / service).is_file()
        else ((), ())
    )
    verdicts = _verdicts(filters, list(lines), FAIL2BAN_NOW)
    for text, expected, verdict in zip(lines, expectations, verdicts, strict=True):
        why = next(
            (r for (f, part), r in DIFFERENCES.items() if f == service and part in f"{text}\n"),
            "",
        )
        failure = expected is not None and expected.get("match")
        # A difference on a line fail2ban calls innocent is one only where bruteguard counts
        # it; otherwise the line is checked as the innocent line it is.
        if why and (failure or verdict.counted):
            score.deliberate += 1
            continue
        if failure:
            score.failures += 1
            wanted = _canonical(expected.get("host"))
            hosts = verdict.counted | verdict.attributed
            if (wanted is None and verdict.matched) or (wanted is not None and wanted in hosts):
                score.found += 1
            else:
                score.misses.append(f"{service}: missed ({wanted}): {text}")
        else:
            score.innocent += 1
            if verdict.counted:
                score.counted_innocent += 1
                score.misses.append(f"{service}: innocent counted ({verdict.counted}): {text}")
    return score


def score_captures() -> list[Score]:
    """The data files of real runs: ``EXPECTED<TAB>LINE`` per line (``+<TAB>LINE``: an
    earlier line of a session, fed before the next case), each case counted as the suite
    does: the filter alone, the case's lines in a fresh stream, what they count."""
    scores: dict[str, Score] = {}
    for path in sorted((ROOT / "tests/data/signatures").glob("*.txt")):
        name, cases, before = "", [], b""
        for raw in path.read_bytes().splitlines():
            if raw.startswith(b"# filter:"):
                name = raw.split(b":", 1)[1].strip().decode()
            elif raw and not raw.startswith(b"#") and b"\t" in raw:
                expected, line = raw.split(b"\t", 1)
                if expected == b"+":
                    before += line + b"\n"
                    continue
                cases.append((expected.decode(), before + line + b"\n", line))
                before = b""
        if name not in FILTERS or not cases:
            continue
        score = scores.setdefault(name, Score(name, "captured"))
        matcher = Matcher({name: name})
        for expected, lines, line in cases:
            stream = matcher.stream(reference=OURS_NOW)
            hits = stream.feed(lines)
            # A line that names no client is handed on with the name "" (the identity stage
            # ties it to the connection that ended with it): "named:" in the data files.
            hosts = {_canonical(hit[1]) or None for hit in hits + stream.take_named()}
            text = line.decode("utf-8", "backslashreplace")
            if expected == "none":
                score.innocent += 1
                if hosts:
                    score.counted_innocent += 1
                    score.misses.append(f"{name}: innocent counted ({hosts}): {text}")
                continue
            score.failures += 1
            wanted = expected.split(" ", 1)[0].split("*", 1)[0]
            wanted = wanted.removeprefix("named:") or None
            if _canonical(wanted) in hosts:
                score.found += 1
            else:
                score.misses.append(f"{name}: missed ({wanted}): {text}")
    return list(scores.values())


def table(scores: list[Score]) -> str:
    rows = [
        "| service | corpus | failure lines | found | recall | innocent lines | counted |"
        " deliberate differences |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        rows.append(
            f"| {s.service} | {s.corpus} | {s.failures} | {s.found} | {100 * s.recall:.1f} % |"
            f" {s.innocent} | {s.counted_innocent} | {s.deliberate} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "services",
        nargs="*",
        help="fail2ban sample logs and built-in filters (their captures); default: all",
    )
    parser.add_argument("--misses", action="store_true", help="list every miss")
    args = parser.parse_args()
    if not FAIL2BAN_LOGS.is_dir():
        print(
            f"fail2ban's sample logs are not installed ({FAIL2BAN_LOGS}): apt-get install fail2ban"
        )
        return 2
    mapped = [s for s in SERVICES if any(f in FILTERS for f in SERVICES[s])]
    wanted = [s for s in args.services if s in SERVICES] if args.services else mapped
    scores = [score_fail2ban(service) for service in wanted]
    scores += [c for c in score_captures() if not args.services or c.service in args.services]
    print(table(scores))
    missing = sorted({f for s in SERVICES.values() for f in s} - set(FILTERS))
    if missing and not args.services:
        print(f"\nnot built in (yet): {', '.join(missing)}")
    failed = [f"{s.service}/{s.corpus}" for s in scores if s.recall < FLOOR or s.counted_innocent]
    verdict = f"FAIL ({', '.join(failed)})" if failed else "PASS"
    print(f"\nfloor: >= {100 * FLOOR:.0f} % recall and no innocent line counted: {verdict}")
    if args.misses:
        for s in scores:
            for miss in s.misses:
                print(miss)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
