"""How the abuse desk's bounce classes agree with sisimai's reasons on real bounces.

The corpus is sisimai's public set-of-emails (real bounces, addresses anonymised) and the
reasons sisimai's own tests expect for each mail (rb-sisimai's ``test/public/*.rb``); both
are fetched, never kept in this repository:

    git clone https://github.com/sisimai/set-of-emails
    git clone https://github.com/sisimai/rb-sisimai
    python bench/bounce_eval.py set-of-emails/maildir/bsd rb-sisimai/test/public

``maildir/dos`` and ``maildir/mac`` (a subset of the same mails with CRLF and CR-only line
ends) can be given instead of ``maildir/bsd``; mails missing from a folder are counted and
left out. ``--show EXPECTED:GOT`` (e.g. ``dead_contact:unknown``) lists one cell's mails.

It prints, per expected class, how the desk classified the mails, and the issue 17 floor:
no mail that is not a dead contact read as one (only DEAD_CONTACT can lead to a block),
at least 95 % of dead-contact bounces recognised, and every our-mail-refused bounce ending
with the admin told (OUR_MAIL_REFUSED or UNKNOWN).
"""

from __future__ import annotations

import argparse
import email
import re
import sys
from collections import Counter, defaultdict
from email.policy import compat32
from pathlib import Path

from bruteguard.abuse.bounce import MailKind, failure_kind

# sisimai's reason names (docs: libsisimai.org/en/reason) → the desk's classes.
REASONS: dict[str, MailKind] = {
    "userunknown": MailKind.DEAD_CONTACT,
    "hostunknown": MailKind.DEAD_CONTACT,
    "hasmoved": MailKind.DEAD_CONTACT,
    "suspend": MailKind.DEAD_CONTACT,
    "notaccept": MailKind.DEAD_CONTACT,
    "mailboxfull": MailKind.MAILBOX_FULL,
    "blocked": MailKind.OUR_MAIL_REFUSED,
    "policyviolation": MailKind.OUR_MAIL_REFUSED,
    "spamdetected": MailKind.OUR_MAIL_REFUSED,
    "virusdetected": MailKind.OUR_MAIL_REFUSED,
    "securityerror": MailKind.OUR_MAIL_REFUSED,
    "authfailure": MailKind.OUR_MAIL_REFUSED,
    "rejected": MailKind.OUR_MAIL_REFUSED,
    "mesgtoobig": MailKind.OUR_MAIL_REFUSED,
    "exceedlimit": MailKind.OUR_MAIL_REFUSED,
    "badreputation": MailKind.OUR_MAIL_REFUSED,
    "requireptr": MailKind.OUR_MAIL_REFUSED,
    "notcompliantrfc": MailKind.OUR_MAIL_REFUSED,
    "contenterror": MailKind.OUR_MAIL_REFUSED,
    "expired": MailKind.TRANSIENT,
    "networkerror": MailKind.TRANSIENT,
    "toomanyconn": MailKind.TRANSIENT,
    "speeding": MailKind.TRANSIENT,
    "ratelimited": MailKind.TRANSIENT,
    "systemfull": MailKind.TRANSIENT,
    "delivered": MailKind.AUTO_REPLY,
    "vacation": MailKind.AUTO_REPLY,
    "feedback": MailKind.AUTO_REPLY,
}
# Everything else (undefined, onhold, mailererror, systemerror, syntaxerror, ...): UNKNOWN.
# "filtered" is its own row: sisimai's name for a refusal by the recipient's filter after
# DATA, which in the corpus is mostly "550 Unknown user" at the end of DATA (Japanese
# carriers' sender filters answer so): neither clearly dead nor clearly our fault, so it is
# shown but kept out of the floor.
FILTERED = "filtered"

_FILE = re.compile(r"\A((?:lhost|rhost|arf|rfc\d+)-[a-z0-9]+)(?:-test)?\.rb\Z")
_ENTRY = re.compile(r"\A\s*'(\d{2,4})'\s*=>\s*\[(.*)\Z")
_REASON = re.compile(r"\[\s*'[^']*'\s*,\s*'[^']*'\s*,\s*'([a-z]+)'")


def expectations(tests: Path) -> dict[str, list[str]]:
    """``lhost-postfix-01`` → its recipients' sisimai reasons, from rb-sisimai's tests."""
    out: dict[str, list[str]] = {}
    for path in sorted(tests.glob("*.rb")):
        match = _FILE.match(path.name)
        if not match:
            continue
        prefix, current = match.group(1), None
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            entry = _ENTRY.match(line)
            if entry:
                current = f"{prefix}-{entry.group(1)}"
                out[current] = []
                line = entry.group(2)
            elif current is None or not line.strip().startswith("["):
                current = None if not line.strip().startswith("[") else current
                continue
            out[current].extend(_REASON.findall(line))
    return {name: reasons for name, reasons in out.items() if reasons}


def expected_class(reasons: list[str]) -> str | None:
    """One class for the mail, or None when its recipients fall into different classes."""
    classes = {r if r == FILTERED else str(REASONS.get(r, MailKind.UNKNOWN)) for r in reasons}
    return classes.pop() if len(classes) == 1 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("maildir", type=Path, help="set-of-emails/maildir/bsd (or dos, mac)")
    parser.add_argument("tests", type=Path, help="rb-sisimai/test/public")
    parser.add_argument("--show", metavar="EXPECTED:GOT", help="list the mails of one cell")
    args = parser.parse_args(argv)
    expected = expectations(args.tests)
    table: dict[str, Counter[str]] = defaultdict(Counter)
    mixed = missing = 0
    for name, reasons in sorted(expected.items()):
        cls = expected_class(reasons)
        if cls is None:
            mixed += 1
            continue
        path = args.maildir / f"{name}.eml"
        if not path.is_file():
            missing += 1
            continue
        message = email.message_from_bytes(path.read_bytes(), policy=compat32)
        got = failure_kind(message)
        table[cls][str(got) if got else "not a bounce"] += 1
        if args.show == f"{cls}:{got}":
            print(f"{name}: {' '.join(reasons)}")
    print(f"{sum(sum(c.values()) for c in table.values())} mails; {mixed} with recipients of"
          f" different classes and {missing} not in the corpus left out")  # fmt: skip
    for cls in [*map(str, MailKind), FILTERED]:
        if cls in table:
            row = ", ".join(f"{k} {v}" for k, v in table[cls].most_common())
            print(f"  expected {cls}: {sum(table[cls].values())} -> {row}")
    dead = table.get("dead_contact", Counter())
    wrong = sum(c["dead_contact"] for k, c in table.items() if k not in ("dead_contact", FILTERED))
    refused = table.get("our_mail_refused", Counter())
    told = refused["our_mail_refused"] + refused["unknown"]
    share = dead["dead_contact"] / max(1, sum(dead.values()))
    print(
        f"floor: not-dead read as dead {wrong} (want 0); dead recognised {share:.1%}"
        f" (want >= 95 %); refused with the admin told {told}/{sum(refused.values())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
