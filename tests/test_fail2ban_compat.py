"""Every filter Debian's fail2ban ships, run against fail2ban's own sample logs.

fail2ban's test logs (``tests/files/logs/NAME``) state before a line what the filter must
make of it, as ``# failJSON: {"match": true, "host": "…", "time": "…", "user": "…"}``;
``# filterOptions:`` lines switch the filter's options (``mode``, ``logtype``) for the lines
that follow, ``# addFILE:`` reads another log with the same filters. This test reads those
files from the installed package (they are GPL-2: never copied here), runs them through
:func:`bruteguard.fail2ban.load_filter` at fail2ban's test clock (2005-08-14 12:00 CEST,
zone Europe/Zurich) and counts the expectations met: at least 95 % over all filters, all of
them for the filters people use most. ``bench/fail2ban_agreement.py`` prints the table.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bruteguard.fail2ban import Fail2banFilter, LineMatcher, LineResult, load_filter

__all__ = [
    "FILTER_DIR",
    "LOG_DIR",
    "MUST_AGREE",
    "NOW",
    "Agreement",
    "agreement",
    "fail2ban_clock",
    "shipped_filters",
]

FILTER_DIR = Path("/etc/fail2ban/filter.d")
LOG_DIR = Path("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs")
PACKAGE = "fail2ban"  # Debian 12: fail2ban 1.0.2
NOW = 1124013600.0  # fail2ban's setUpMyTime: Sun Aug 14 12:00:00 CEST 2005
ZONE = "Europe/Zurich"
OVERALL_FLOOR = 0.95
MUST_AGREE = (
    "sshd",
    "vsftpd",
    "proftpd",
    "pure-ftpd",
    "postfix",
    "dovecot",
    "exim",
    "nginx-http-auth",
    "apache-auth",
)
# Keys of failJSON that are not compared with what the filter captured.
_NOT_CAPTURED = {"time", "match", "desc", "constraint"}
_DIRECTIVE = re.compile(r"^#+ ?(failJSON|fileOptions|filterOptions|addFILE):(.+)$")
# The two forms of condition fail2ban's logs use, read here (never evaluated as code).
_CONDITION = re.compile(
    r"""^\s*(?:(name)|opts\.get\(['"]([\w.-]+)['"]\))\s*(==|!=)\s*['"]([^'"]*)['"]\s*$"""
)


@dataclass
class Agreement:
    """The expectations of one filter's sample logs, and the ones that were not met."""

    name: str
    expectations: int = 0
    met: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.met / self.expectations if self.expectations else 0.0


def shipped_filters() -> list[str]:
    """The filters fail2ban's own sample test runs: every .conf but the ``*common`` ones."""
    return sorted(p.stem for p in FILTER_DIR.glob("*.conf") if not p.name.endswith("common.conf"))


def require_package() -> None:
    """Fail (never skip) with what to install when fail2ban's files are missing."""
    if not (FILTER_DIR / "sshd.conf").is_file() or not (LOG_DIR / "sshd").is_file():
        pytest.fail(
            f"fail2ban's filters ({FILTER_DIR}) or sample logs ({LOG_DIR}) are missing: "
            f"install the Debian package {PACKAGE!r} (apt-get install {PACKAGE})"
        )


@contextlib.contextmanager
def fail2ban_clock() -> Iterator[None]:
    """fail2ban's test zone for the duration (its sample times are local times there)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = ZONE
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def _condition(text: str, name: str, opts: dict[str, Any]) -> bool:
    m = _CONDITION.match(text)
    if not m:
        raise ValueError(f"unsupported condition in a sample log: {text!r}")
    value = name if m.group(1) else opts.get(m.group(2))
    return (value == m.group(4)) == (m.group(3) == "==")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(number, text) of each line, decoded as fail2ban does (UTF-8, bad bytes replaced)."""
    data = path.read_bytes()
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    for number, raw in enumerate(parts, 1):
        yield number, raw.decode("utf-8", "replace").rstrip("\r\n")


def _expected_time(text: str) -> float:
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S"
    stamp = datetime.strptime(text, fmt)
    return time.mktime(stamp.timetuple()) + stamp.microsecond / 1e6


def _same_host(result: LineResult, expected: Any) -> bool:
    """fail2ban compares the failure id: an address by value, anything else as text."""
    fid = result.fid
    if fid is None or not isinstance(expected, str):
        return fid == expected
    address = fid == result.host and (
        result.fields.get("ip4") is not None or result.fields.get("ip6") is not None
    )
    if not address:
        return fid == expected
    try:
        cidr = result.fields.get("cidr")
        mine = ipaddress.ip_network(f"{fid}/{cidr}" if cidr else fid, strict=False)
        theirs = ipaddress.ip_network(expected.strip("[]"), strict=False)
    except ValueError:
        return fid == expected
    return _unmapped(mine) == _unmapped(theirs)


def _unmapped(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Any:
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen == 128:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.ip_network(mapped)
    return net


def _captured(result: LineResult, key: str) -> Any:
    if key == "user":
        return result.user
    if key == "users":
        return sorted(result.users) if result.users else None
    if key == "attempts":
        return result.attempts
    return result.fields.get(key)


def _check(expected: dict[str, Any], results: list[LineResult]) -> list[str]:
    """What differs between a failJSON expectation and the filter's result (empty: met)."""
    found = [r for r in results if r.match]
    if not found:
        return ["line not matched"] if expected.get("match", False) else []
    if not expected.get("match", False):
        return [f"line matched ({found[0].pattern!r}) but should not"]
    if len(found) > 1:
        return [f"{len(found)} failures from one line"]
    result, problems = found[0], []
    for key, want in expected.items():
        if key in _NOT_CAPTURED:
            continue
        if key == "host" and "host" not in result.fields:
            if not _same_host(result, want):
                problems.append(f"host {result.fid!r} != {want!r}")
            continue
        got = _captured(result, key)
        ok = sorted(got or []) == sorted(want) if isinstance(want, list | dict) else got == want
        if not ok:
            problems.append(f"{key} {got!r} != {want!r}")
    if expected.get("time") is not None:
        want_time = _expected_time(expected["time"])
        if result.time is None or abs(result.time - want_time) > 1e-6:
            got_text = (
                "none"
                if result.time is None
                else time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(result.time))
            )
            problems.append(f"time {got_text} != {expected['time']}")
    return problems


class _Run:
    """The state fail2ban's sample test keeps while it reads one filter's logs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.result = Agreement(name)
        self.variants: list[tuple[str, LineMatcher, dict[str, Any]]] | None = None
        self.matchers: dict[str, tuple[Fail2banFilter, LineMatcher]] = {}
        self.common: dict[str, Any] = {}

    def matcher(self, opts: dict[str, Any]) -> tuple[str, LineMatcher]:
        options = {k: v for k, v in opts.items() if not k.startswith("test.")}
        key = opts.get("test.filter-name") or (repr(list(options.items())) if options else "")
        label = self.name + (f"[{key}]" if key else "")
        if label not in self.matchers:
            spec = self.name
            if options:
                spec += "[" + ", ".join(f'{k}="{v}"' for k, v in options.items()) + "]"
            flt = load_filter(spec, dirs=[FILTER_DIR])
            self.matchers[label] = (flt, flt.matcher(now=lambda: NOW, timeout=1.0))
        return label, self.matchers[label][1]

    def set_options(self, data: Any) -> bool:
        """A ``filterOptions`` line: the filters the next lines go through; False: skip them."""
        self.variants = []
        skip = False
        for entry in data if isinstance(data, list) else [data]:
            opts = {**self.common, **entry}
            condition = opts.get("test.condition")
            skip = bool(condition) and not _condition(condition, self.name, opts)
            if not skip:
                label, matcher = self.matcher(opts)
                self.variants.append((label, matcher, opts))
        return skip

    def read(self, path: Path) -> list[str]:
        """One sample log; returns the further logs it adds."""
        more: list[str] = []
        skip = False
        lines = _lines(path)
        for number, text in lines:
            expected: dict[str, Any] = {}
            directive = _DIRECTIVE.match(text)
            if directive:
                kind, payload = directive.groups()
                data = json.loads(payload)
                if kind == "fileOptions":
                    self.common = data
                    continue
                if kind == "filterOptions":
                    skip = self.set_options(data)
                    continue
                if kind == "addFILE":
                    more.append(data)
                    continue
                expected = data
                nxt = next(lines, None)
                if nxt is None:
                    break
                number, text = nxt
            elif skip or text.startswith("#") or not text.strip():
                continue
            if skip:
                continue
            if self.variants is None:
                self.variants = [(self.matcher({})[0], self.matcher({})[1], {})]
            self.line(path, number, text, expected, directive is not None)
        return more

    def line(
        self, path: Path, number: int, text: str, expected: dict[str, Any], stated: bool
    ) -> None:
        assert self.variants is not None
        for label, matcher, opts in self.variants:
            constraint = expected.get("constraint")
            if constraint and not _condition(constraint, self.name, opts):
                continue
            if opts.get("logtype") == "journal":
                text = opts.get("test.prefix-line", "") + text
                results = matcher.process(text, when=NOW)
            else:
                results = matcher.process(text)
            problems = _check(expected, results)
            if matcher.timeouts:
                problems.append(f"pattern timed out: {matcher.timeouts[-1][1]!r}")
                matcher.timeouts.clear()
            if not stated and not problems:
                continue  # a line without failJSON only has to stay unmatched
            self.result.expectations += 1
            if problems:
                self.result.failures.append(
                    f"{label} {path.name}:{number}: {'; '.join(problems)}\n    {text}"
                )
            else:
                self.result.met += 1


def agreement(name: str) -> Agreement:
    """Run filter ``name`` over its sample log(s) as fail2ban's own test does."""
    run = _Run(name)
    logs = [name]
    with fail2ban_clock():
        i = 0
        while i < len(logs):
            path = LOG_DIR / logs[i]
            i += 1
            if not path.is_file():
                run.result.expectations += 1
                run.result.failures.append(f"{name}: no sample log {path}")
                continue
            try:
                logs += run.read(path)
            except Exception as exc:  # a filter that fails to load counts as all unmet
                run.result.expectations += 1
                run.result.failures.append(f"{name}: {type(exc).__name__}: {exc}")
                break
    return run.result


def _report(results: list[Agreement], limit: int = 60) -> str:
    lines = [f for r in results for f in r.failures]
    shown = "\n".join(lines[:limit])
    more = f"\n… and {len(lines) - limit} more" if len(lines) > limit else ""
    return shown + more


@pytest.mark.parametrize("name", MUST_AGREE)
def test_filter_agrees_fully(name: str) -> None:
    require_package()
    result = agreement(name)
    assert result.expectations > 0, f"{name}: no expectations read"
    assert result.met == result.expectations, (
        f"{name}: {result.met}/{result.expectations} expectations met:\n" + _report([result])
    )


def test_all_shipped_filters_agree() -> None:
    require_package()
    names = shipped_filters()
    assert len(names) >= 80, f"only {len(names)} filters in {FILTER_DIR}"
    results = [agreement(name) for name in names]
    total = sum(r.expectations for r in results)
    met = sum(r.met for r in results)
    assert total >= 1000, f"only {total} expectations read"
    assert met >= OVERALL_FLOOR * total, (
        f"{met}/{total} = {100 * met / total:.1f} % of fail2ban's expectations met "
        f"(floor {100 * OVERALL_FLOOR:.0f} %):\n" + _report(results)
    )
