"""``bruteguard test FILTER LOG``: which lines a filter matches, and what it finds on them.

``--json`` is a public contract (README): one object per input line, in order,
``{"line": N, "match": true|false, "host": …, "user": …, "time": …}`` with ``host`` the
address (or the raw name the line carries), ``time`` local time as
``YYYY-MM-DDTHH:MM:SS[.ffffff]``, and ``null`` for what the line does not have.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from bruteguard.errors import ConfigError
from bruteguard.safe_text import printable

if TYPE_CHECKING:
    from bruteguard.match.trial import Verdict

__all__ = ["add_test_command"]


class _LineVerdict(msgspec.Struct):
    line: int
    match: bool
    host: str | None
    user: str | None
    time: str | None


def _local(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment).isoformat()


def _option(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _lines(path: str) -> Iterator[bytes]:
    from bruteguard.scan import open_log  # the logs `scan` reads, read the same way

    try:
        with open_log(path) as log:
            yield from log
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the log: {error.strerror or error}") from None


def _cmd_test(args: argparse.Namespace) -> int:
    import logging  # imported here, as the other commands need neither

    from bruteguard.match.imported import is_imported
    from bruteguard.match.trial import TrialSummary, filter_spec, log_reference, try_filter

    # A pattern that runs out of time on a line is reported (line, pattern) as it happens.
    logging.basicConfig(level=logging.WARNING, format="bruteguard: %(message)s", stream=sys.stderr)
    spec = filter_spec(args.filter, args.opt or [])
    try:
        reference = log_reference(args.log)
    except OSError as error:
        raise ConfigError(f"{args.log}: cannot read the log: {error.strerror}") from None
    summary = TrialSummary()
    verdicts = try_filter(spec, _lines(args.log), reference, summary)
    if args.json:
        _write_json(verdicts)
        return 0
    for verdict in verdicts:
        if verdict.match or args.missed:
            print(_row(verdict))
    print(
        f"{summary.lines} lines, {summary.matched} matched, "
        f"{summary.lines - summary.matched} missed; {summary.attempts} attempts counted"
        + (f"; {summary.timeouts} lines ran out of time" if summary.timeouts else "")
    )
    if summary.matched and not summary.attempts and not is_imported(spec):
        # The admin who tries RedHat's /var/log/messages sees pam's refusals matched and
        # nothing counted: say why, and where the rest of the evidence usually is.
        print(_NOTHING_COUNTED)
    return 0


_NOTHING_COUNTED = (
    "none of the matched lines counts on its own: each opens a connection, names no client,"
    " or is a PAM refusal waiting for the service's own verdict, which this log never brings"
    " (is the service's own log elsewhere, such as /var/log/secure?)"
)


def _write_json(verdicts: Iterator[Verdict]) -> None:
    out = sys.stdout.buffer
    encoder = msgspec.json.Encoder()
    batch: list[_LineVerdict] = []
    for v in verdicts:
        batch.append(_LineVerdict(v.line, v.match, v.host, v.user, _local(v.time)))
        if len(batch) >= 1000:
            out.write(encoder.encode_lines(batch))
            batch = []
    out.write(encoder.encode_lines(batch))
    out.flush()


def _row(verdict: Verdict) -> str:
    if not verdict.match:
        return f"{verdict.line:>7}  missed  {printable(verdict.text)}"
    parts = [f"{verdict.line:>7}", printable(verdict.host or "-")]
    if verdict.user is not None:
        parts.append(f"user={printable(verdict.user)}")
    parts.append(_local(verdict.time) or "-")
    return "  ".join(parts)


def add_test_command(command: Any) -> None:
    """Register ``test`` with the CLI's ``command(name, help, handler)``."""
    test = command(
        "test",
        "try a filter on a log, like fail2ban-regex: matched lines, with address, user, time",
        _cmd_test,
    )
    test.add_argument(
        "filter",
        metavar="FILTER",
        help='a built-in filter (sshd), a fail2ban filter ("fail2ban:sshd[mode=aggressive]")'
        " or a fail2ban filter file's path",
    )
    test.add_argument("log", metavar="LOG", help="the log file (.gz too; - for standard input)")
    test.add_argument(
        "--opt",
        action="append",
        type=_option,
        metavar="KEY=VALUE",
        help="a fail2ban filter option, as in NAME[KEY=VALUE] (repeatable)",
    )
    test.add_argument("--missed", action="store_true", help="also list the lines not matched")
    test.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line (README: the test --json contract)",
    )
