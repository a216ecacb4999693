"""Time ``bruteguard scan`` with every built-in jail on each service's log, beside fail2ban-regex.

Why all jails at once: a host runs the jails of every service it has, and the compiled pass
gets longer with each filter, so each service's log is scanned by the whole catalogue, as
``bruteguard run`` would match it. The peer is what the same host would run under fail2ban:
``fail2ban-regex LOG FILTER`` with fail2ban's own filter for that service (its mode where
the filter has modes). Services fail2ban has no filter for are timed alone.

Method as in ``scan_vs_peers.py``: every log is read once first (page cache), each tool
runs ``--runs`` times, the best wall clock counts (whole process, start-up included);
fail2ban-regex reads only the first ``--peer-lines`` lines and its lines/s is measured on
them. Each tool's count is its own: bruteguard's failures (all jails, and its service's
own jail) and bans, fail2ban-regex's matched lines. A peer that matches (almost) nothing
would make the ratio meaningless: it is flagged.

    .venv/bin/python bench/gen_authlog.py --lines 1000000 --out bench/data/auth.log
    .venv/bin/python bench/gen_servicelogs.py --lines 1000000 --out-dir bench/data/services
    .venv/bin/python bench/scan_services.py --runs 5 --peer-lines 100000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scan_vs_peers import (
    BRUTEGUARD,
    FAIL2BAN_REGEX,
    GNU_TIME,
    Result,
    _best_of,
    _count_lines,
    _machine,
    _prefix,
    add_run_arguments,
    bruteguard_available,
)

__all__ = ["PEERS", "Service", "main"]

FILTER_DIR = Path("/etc/fail2ban/filter.d")
FLOOR_LINES_PER_SECOND = 1_000_000  # the sshd benchmark log, every built-in jail on
FLOOR_VS_FAIL2BAN = 20.0  # each service's log, against its fail2ban filter
# fail2ban-regex matching less than this share of the lines it read: the comparison is flagged.
PEER_MATCHED_MIN = 0.05
TIMES = "\N{MULTIPLICATION SIGN}"

# bruteguard's filter → fail2ban's filter for the same service, as fail2ban-regex takes it
# (a file in filter.d, with its options in brackets).
PEERS: dict[str, str] = {
    "sshd": "sshd",
    "sshd-ddos": "sshd[mode=ddos]",
    "vsftpd": "vsftpd",
    "proftpd": "proftpd",
    "pure-ftpd": "pure-ftpd",
    "postfix": "postfix[mode=auth]",
    "dovecot": "dovecot",
    "exim": "exim",
    "courier": "courier-auth",
    "courier-auth": "courier-auth",
    "nginx-http-auth": "nginx-http-auth",
    "apache-auth": "apache-auth",
    "mysql": "mysqld-auth",
    "mysqld": "mysqld-auth",
    "mysqld-auth": "mysqld-auth",
}


@dataclass
class Service:
    """One log: bruteguard's best run and, when fail2ban has the service, the peer's."""

    name: str
    log: str
    lines: int
    ours: Result
    own_failures: int | None = None
    peer_filter: str = ""
    peer: Result | None = None
    ratio: float | None = None
    floor: str = ""
    passed: bool | None = None
    notes: list[str] = field(default_factory=list)


def _peer_argument(spec: str) -> str:
    """``postfix[mode=auth]`` → ``/etc/fail2ban/filter.d/postfix.conf[mode=auth]``."""
    name, bracket, options = spec.partition("[")
    return f"{FILTER_DIR / (name + '.conf')}{bracket}{options}"


def write_config(directory: Path) -> Path:
    """A config with every built-in jail on but recidive (it reads bans, not logs)."""
    from bruteguard.config import BUILTIN_JAILS, RECIDIVE_JAIL

    lines = ["# every built-in jail but recidive, as on a host running every service", ""]
    for name in BUILTIN_JAILS:
        lines += [f'[jails."{name}"]', f"enabled = {'false' if name == RECIDIVE_JAIL else 'true'}"]
        lines.append("")
    path = directory / "all-jails.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def builtin_filters() -> tuple[list[str], dict[str, str]]:
    """(built-in filter names, jail → filter of the built-in jails)."""
    from bruteguard.config import BUILTIN_JAILS
    from bruteguard.match.signatures import FILTERS

    return sorted(FILTERS), {name: jail["filter"] for name, jail in BUILTIN_JAILS.items()}


def run_bruteguard(log: Path, lines: int, config: Path, runs: int) -> tuple[Result, Counter[str]]:
    """Best of ``runs``; then one untimed ``--json`` run: failures per jail, bans."""
    command = [str(BRUTEGUARD), "scan", str(log), "--config", str(config)]
    result = Result("bruteguard scan", command, lines)
    _best_of(result, runs)
    per_jail: Counter[str] = Counter()
    process = subprocess.run([*command, "--json"], capture_output=True, check=False)
    if process.returncode != 0:
        raise RuntimeError(f"bruteguard scan --json: {process.stderr.decode()[-2000:]}")
    for line in process.stdout.splitlines():
        if line.startswith(b'{"type":"failure"'):
            per_jail[json.loads(line)["jail"]] += 1
        elif line.startswith(b'{"type":"summary"'):
            summary = json.loads(line)
            result.failures, result.bans = summary.get("failures"), summary.get("bans")
            if summary.get("lines") not in (None, lines):
                result.note = f"says it read {summary['lines']} lines, not {lines}"
    return result, per_jail


def run_fail2ban(log: Path, lines: int, spec: str, runs: int) -> Result:
    result = Result("fail2ban-regex", [FAIL2BAN_REGEX, str(log), _peer_argument(spec)], lines)
    output = _best_of(result, runs, capture=True)
    counted = re.search(r"^Lines: (\d+) lines, (\d+) ignored, (\d+) matched", output, re.M)
    if counted:
        result.failures = int(counted.group(3))
    processed = re.search(r"^\[processed in ([\d.]+) sec\]$", output, re.M)
    result.note = f"own 'processed in' {processed.group(1) if processed else '?'} s"
    return result


def measure(
    name: str,
    log: Path,
    config: Path,
    own_jails: list[str],
    peer_spec: str,
    args: argparse.Namespace,
    floor: str,
) -> Service:
    lines = _count_lines(log)
    ours, per_jail = run_bruteguard(log, lines, config, args.runs)
    service = Service(name, str(log), lines, ours)
    service.own_failures = sum(per_jail[jail] for jail in own_jails)
    if floor == "lines/s":
        service.floor = f">= {FLOOR_LINES_PER_SECOND:,} lines/s"
        service.passed = ours.lines_per_second >= FLOOR_LINES_PER_SECOND
    if peer_spec and not args.skip_fail2ban:
        service.peer_filter = peer_spec
        short = args.peer_lines and args.peer_lines < lines
        peer_log = _prefix(log, args.peer_lines, args.out.parent) if short else log
        peer = run_fail2ban(peer_log, min(lines, args.peer_lines or lines), peer_spec, args.runs)
        service.peer = peer
        service.ratio = ours.lines_per_second / peer.lines_per_second
        if floor == "ratio":
            service.floor = f">= {FLOOR_VS_FAIL2BAN:g}x fail2ban-regex"
            service.passed = service.ratio >= FLOOR_VS_FAIL2BAN
        if (peer.failures or 0) < PEER_MATCHED_MIN * peer.lines:
            service.notes.append(
                f"fail2ban-regex matched only {peer.failures or 0:,} of {peer.lines:,} lines:"
                " its filter does not read this log's format, the ratio means little"
            )
    elif not peer_spec:
        service.notes.append("fail2ban has no filter for this service: timed alone")
    return service


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def print_table(services: list[Service]) -> None:
    print(
        "| log | lines | bruteguard s | bruteguard lines/s | failures (own jail / all) | bans"
        " | fail2ban filter | f2b lines | f2b s | f2b lines/s | f2b matched | bg ÷ f2b | floor |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for s in services:
        peer = s.peer
        verdict = "" if s.passed is None else ("PASS" if s.passed else "FAIL")
        print(
            f"| {Path(s.log).name} | {s.lines:,} | {s.ours.seconds:.3f}"
            f" | **{s.ours.lines_per_second:,.0f}**"
            f" | {_count(s.own_failures)} / {_count(s.ours.failures)} | {_count(s.ours.bans)}"
            f" | {f'`{s.peer_filter}`' if s.peer_filter else '—'}"
            f" | {_count(peer.lines) if peer else ''}"
            f" | {f'{peer.seconds:.3f}' if peer else ''}"
            f" | {f'{peer.lines_per_second:,.0f}' if peer else ''}"
            f" | {_count(peer.failures) if peer else ''}"
            f" | {f'**{s.ratio:.1f}{TIMES}**' if s.ratio is not None else ''}"
            f" | {f'{s.floor}: {verdict}' if s.floor else ''} |"
        )
    for s in services:
        for note in s.notes:
            print(f"- {Path(s.log).name}: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data-dir", type=Path, default=Path("bench/data/services"))
    parser.add_argument("--authlog", type=Path, default=Path("bench/data/auth.log"))
    add_run_arguments(parser)
    parser.add_argument("--only", action="append", default=[], metavar="FILTER")
    parser.add_argument("--skip-fail2ban", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench/out/scan_services.json"))
    args = parser.parse_args(argv)
    manifest_path = args.data_dir / "manifest.json"
    if not manifest_path.exists():
        parser.error(f"{manifest_path} does not exist: run bench/gen_servicelogs.py first")
    if not args.authlog.exists():
        parser.error(f"{args.authlog} does not exist: run bench/gen_authlog.py first")
    if not Path(GNU_TIME).exists():
        parser.error(f"{GNU_TIME} is missing: apt-get install time")
    missing = bruteguard_available()
    if missing:
        parser.error(f"bruteguard can't be measured: {missing}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(manifest_path.read_text())
    filters, jail_filters = builtin_filters()

    load = os.getloadavg()
    services: list[Service] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bg-services-") as scratch:
        config = write_config(Path(scratch))
        jobs: list[tuple[str, Path, list[str], str, str]] = [
            ("sshd benchmark", args.authlog, ["sshd"], PEERS["sshd"], "lines/s")
        ]
        for name in sorted(manifest):
            if args.only and name not in args.only:
                continue
            if name not in filters:
                skipped.append(f"{name} (not a built-in filter yet)")
                continue
            own = [jail for jail, f in jail_filters.items() if f == name]
            if not own:
                skipped.append(f"{name} (a built-in filter, but no built-in jail uses it yet)")
            jobs.append((name, Path(manifest[name]["log"]), own, PEERS.get(name, ""), "ratio"))
        for name, log, own, peer, floor in jobs:
            print(f"measuring {name}: {log}", file=sys.stderr)
            service = measure(name, log, config, own, peer, args, floor)
            expected = manifest.get(name, {}).get("expected_attempts")
            if expected and (service.own_failures or 0) < expected / 2:
                service.notes.append(
                    f"its own jail counted {service.own_failures:,} attempts of the"
                    f" {expected:,} its sample lines stand for"
                )
            services.append(service)
        config_text = config.read_text()

    print_table(services)
    if skipped:
        print(f"- not measured: {', '.join(skipped)}")
    checks = [(s.name, s.floor, s.passed) for s in services if s.floor]
    print()
    for name, floor, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {floor}")
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runs": args.runs,
        "peer_lines": args.peer_lines,
        "machine": _machine(),
        "loadavg_at_start": load,
        "config": config_text,
        "built_in_filters": filters,
        "built_in_jails": sorted(jail_filters),
        "skipped": skipped,
        "services": [
            {
                **asdict(s),
                "lines_per_second": round(s.ours.lines_per_second),
                "peer_lines_per_second": round(s.peer.lines_per_second) if s.peer else None,
                "manifest": manifest.get(s.name),
            }
            for s in services
        ],
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {args.out}")
    return 1 if any(passed is False for _, _, passed in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
