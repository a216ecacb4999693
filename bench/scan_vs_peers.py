"""Time ``bruteguard scan`` against fail2ban-regex and SSHGuard's parser on one auth.log.

Why one script, one run: speed ratios only mean something when every tool reads the same
file on the same machine in the same minute. Each tool runs ``--runs`` times after the
page cache is warmed; the best wall-clock time counts. fail2ban-regex is slow, so it reads
only the first ``--peer-lines`` lines and its lines/s is measured on what it read.

    python bench/scan_vs_peers.py bench/data/auth.log --runs 3 --peer-lines 100000
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Result", "add_run_arguments", "main"]

BRUTEGUARD = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "bruteguard"
SOURCE = Path(__file__).resolve().parent.parent / "src" / "bruteguard"
FAIL2BAN_REGEX = "fail2ban-regex"
FAIL2BAN_FILTER = "/etc/fail2ban/filter.d/sshd.conf"
SSHG_PARSER = "/usr/libexec/sshguard/sshg-parser"
GNU_TIME = "/usr/bin/time"  # Debian package "time"

FLOOR_LINES_PER_SECOND = 2_000_000
FLOOR_VS_FAIL2BAN = 50.0
FLOOR_VS_SSHGUARD = 3.0
FLOOR_PEAK_MB = 200.0


@dataclass
class Result:
    """One tool's best run: how many lines it read, how fast, how much memory, what it found."""

    tool: str
    command: list[str]
    lines: int
    seconds: float = 0.0
    runs: list[float] = field(default_factory=list)
    peak_mb: float = 0.0
    failures: int | None = None
    bans: int | None = None
    note: str = ""

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


def _run_once(argv: list[str], stdin: Path | None, capture: bool) -> tuple[float, float, str]:
    """Wall seconds, the tool's peak RSS (MB) and its stdout if captured.

    Peak RSS comes from GNU time, not from our own wait4: Python starts children with vfork,
    and Linux then books this (large) benchmark process's peak to the child.
    """
    with contextlib.ExitStack() as stack:
        stdin_file = stack.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
        errors = stack.enter_context(tempfile.TemporaryFile())
        peak = stack.enter_context(tempfile.NamedTemporaryFile(prefix="bg-peak-"))
        began = time.perf_counter()
        process = subprocess.run(
            [GNU_TIME, "--format=%M", f"--output={peak.name}", *argv],
            stdin=stdin_file,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=errors,
            check=False,
        )
        seconds = time.perf_counter() - began
        if process.returncode != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{argv[0]} exited {process.returncode}: {message}")
        peak_kb = int(Path(peak.name).read_text().split()[-1])
    return seconds, peak_kb / 1024, (process.stdout or b"").decode(errors="replace")


def _best_of(result: Result, runs: int, stdin: Path | None = None, capture: bool = False) -> str:
    """Fill ``result`` with the best of ``runs`` runs; return the last run's stdout."""
    output = ""
    for _ in range(runs):
        seconds, peak_mb, output = _run_once(result.command, stdin, capture)
        result.runs.append(round(seconds, 4))
        result.peak_mb = max(result.peak_mb, round(peak_mb, 1))
    result.seconds = min(result.runs)
    return output


def _count_lines(path: Path) -> int:
    """Also warms the page cache: every tool then reads the file from memory."""
    count = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def _prefix(path: Path, lines: int, out_dir: Path) -> Path:
    """The first ``lines`` lines of ``path`` as their own file, for the slow peers."""
    target = out_dir / f"{path.stem}.first-{lines}{path.suffix}"
    with path.open("rb") as source, target.open("wb") as sink:
        for number, line in enumerate(source):
            if number >= lines:
                break
            sink.write(line)
    _count_lines(target)
    return target


def bruteguard_available() -> str:
    """Empty if ``bruteguard scan`` runs, else why not (the lead is still writing it).

    Also compiles bruteguard's bytecode, as pip does when it installs a package (and
    Debian does for fail2ban): the venv's editable install under PYTHONDONTWRITEBYTECODE
    would otherwise compile every module again on every timed run.
    """
    if not BRUTEGUARD.exists():
        return f"{BRUTEGUARD} does not exist"
    compileall.compile_dir(SOURCE, quiet=1)
    probe = subprocess.run(
        [str(BRUTEGUARD), "scan", "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        return f"`bruteguard scan --help` failed: {last}"
    return ""


def run_bruteguard(log: Path, lines: int, runs: int) -> Result:
    result = Result("bruteguard scan", [str(BRUTEGUARD), "scan", str(log), "--jail", "sshd"], lines)
    _best_of(result, runs)
    # One more, untimed run for the counts: the JSON summary line says what it found.
    summary_run = [*result.command, "--json"]
    _, _, output = _run_once(summary_run, None, capture=True)
    for line in reversed(output.splitlines()):
        if line.startswith("{") and '"summary"' in line:
            summary = json.loads(line)
            result.failures, result.bans = summary.get("failures"), summary.get("bans")
            result.note = (
                f"with --json (a JSON line per failure) its own 'seconds' were"
                f" {summary.get('seconds', '?')} s"
            )
            if summary.get("lines") not in (None, lines):
                result.note += f"; says it read {summary['lines']} lines, not {lines}"
            break
    return result


def run_fail2ban(log: Path, lines: int, runs: int) -> Result:
    result = Result("fail2ban-regex", [FAIL2BAN_REGEX, str(log), FAIL2BAN_FILTER], lines)
    output = _best_of(result, runs, capture=True)  # its stdout is a short summary
    counted = re.search(r"^Lines: (\d+) lines, (\d+) ignored, (\d+) matched", output, re.M)
    processed = re.search(r"^\[processed in ([\d.]+) sec\]$", output, re.M)
    if counted:
        result.failures = int(counted.group(3))
    result.note = (
        f"first {lines} lines only; own 'processed in' "
        f"{processed.group(1) if processed else '?'} s, wall time counted"
    )
    return result


def run_sshguard(log: Path, lines: int, runs: int) -> Result:
    result = Result("sshg-parser", [SSHG_PARSER], lines)
    _best_of(result, runs, stdin=log)
    _, _, output = _run_once(result.command, log, capture=True)  # untimed: count attacks
    result.failures = output.count("\n")
    result.note = "one output line per attack it recognised"
    return result


def _machine() -> dict[str, str]:
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def _checks(results: dict[str, Result]) -> list[tuple[str, bool | None, str]]:
    """(floor, passed or None when it could not be measured, measured value)."""
    ours = results.get("bruteguard scan")
    if ours is None:
        return [
            (name, None, "bruteguard not measured")
            for name in (
                f"bruteguard >= {FLOOR_LINES_PER_SECOND:,} lines/s",
                f">= {FLOOR_VS_FAIL2BAN:g}x fail2ban-regex",
                f">= {FLOOR_VS_SSHGUARD:g}x sshg-parser",
                f"peak memory < {FLOOR_PEAK_MB:g} MB",
            )
        ]
    checks: list[tuple[str, bool | None, str]] = [
        (
            f"bruteguard >= {FLOOR_LINES_PER_SECOND:,} lines/s",
            ours.lines_per_second >= FLOOR_LINES_PER_SECOND,
            f"{ours.lines_per_second:,.0f}",
        )
    ]
    for peer, floor in (("fail2ban-regex", FLOOR_VS_FAIL2BAN), ("sshg-parser", FLOOR_VS_SSHGUARD)):
        name = f">= {floor:g}x {peer}"
        if peer in results:
            ratio = ours.lines_per_second / results[peer].lines_per_second
            checks.append((name, ratio >= floor, f"{ratio:.1f}x"))
        else:
            checks.append((name, None, "peer not measured"))
    checks.append(
        (
            f"peak memory < {FLOOR_PEAK_MB:g} MB",
            ours.peak_mb < FLOOR_PEAK_MB,
            f"{ours.peak_mb:.1f} MB",
        )
    )
    return checks


def _print_table(results: dict[str, Result], checks: list[tuple[str, bool | None, str]]) -> None:
    ours = results.get("bruteguard scan")
    header = (
        f"{'tool':<16} {'lines':>10} {'seconds':>9} {'lines/s':>12} {'bg/peer':>8} "
        f"{'peak MB':>8} {'failures':>9} {'bans':>7}"
    )
    print(header)
    print("-" * len(header))
    for result in results.values():
        ratio = ""
        if ours is not None and result is not ours:
            ratio = f"{ours.lines_per_second / result.lines_per_second:.1f}x"
        print(
            f"{result.tool:<16} {result.lines:>10,} {result.seconds:>9.3f} "
            f"{result.lines_per_second:>12,.0f} {ratio:>8} {result.peak_mb:>8.1f} "
            f"{'' if result.failures is None else f'{result.failures:,}':>9} "
            f"{'' if result.bans is None else f'{result.bans:,}':>7}"
        )
    for result in results.values():
        if result.note:
            print(f"  {result.tool}: {result.note}")
    print()
    for name, passed, value in checks:
        verdict = "SKIP" if passed is None else ("PASS" if passed else "FAIL")
        print(f"{verdict}  {name}: {value}")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """--runs and --peer-lines, as every scan benchmark takes them."""
    parser.add_argument("--runs", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument(
        "--peer-lines",
        type=int,
        default=100_000,
        help="fail2ban-regex reads only this many first lines (0: all)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("log", type=Path, nargs="?", default=Path("bench/data/auth.log"))
    add_run_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("bench/out/scan_vs_peers.json"))
    parser.add_argument(
        "--skip", action="append", default=[], choices=("bruteguard", "fail2ban", "sshguard")
    )
    args = parser.parse_args(argv)
    if not args.log.exists():
        parser.error(f"{args.log} does not exist: run bench/gen_authlog.py first")
    if not Path(GNU_TIME).exists():
        parser.error(f"{GNU_TIME} is missing: apt-get install time")
    args.out.parent.mkdir(parents=True, exist_ok=True)

    load = os.getloadavg()  # other work on the machine shows up as noise: record it
    lines = _count_lines(args.log)
    results: dict[str, Result] = {}
    missing = "" if "bruteguard" in args.skip else bruteguard_available()
    if "bruteguard" not in args.skip and not missing:
        results["bruteguard scan"] = run_bruteguard(args.log, lines, args.runs)
    elif missing:
        print(f"bruteguard not measured: {missing}", file=sys.stderr)
    if "fail2ban" not in args.skip:
        short = args.peer_lines and args.peer_lines < lines
        prefix = _prefix(args.log, args.peer_lines, args.out.parent) if short else args.log
        results["fail2ban-regex"] = run_fail2ban(
            prefix, min(lines, args.peer_lines or lines), args.runs
        )
    if "sshguard" not in args.skip:
        results["sshg-parser"] = run_sshguard(args.log, lines, args.runs)

    checks = _checks(results)
    _print_table(results, checks)
    print(
        f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores)"
    )
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "log": str(args.log),
        "runs": args.runs,
        "machine": _machine(),
        "loadavg_at_start": load,
        "results": [
            {**asdict(r), "lines_per_second": round(r.lines_per_second)} for r in results.values()
        ],
        "checks": [{"floor": n, "passed": p, "value": v} for n, p, v in checks],
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {args.out}")
    return 1 if any(passed is False for _, passed, _ in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
