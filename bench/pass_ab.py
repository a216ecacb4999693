"""Time two builds' compiled pass alone on one log, interleaved: what a change to the
signatures or the engine costs, without process start-up, forks and page-cache reads.

Why: ``scan_ab.py`` times the whole ``bruteguard scan`` process, which forks one worker per
core for a large file and so moves with whatever else the machine runs; here each build's
interpreter matches the same bytes in one ``Stream.collect`` call and reports its CPU time
(best of ``--runs``), and the builds take turns ``--rounds`` times.

    git worktree add /tmp/bg-before REV && python3 -m venv /tmp/bg-before/.venv
    /tmp/bg-before/.venv/bin/pip install -e /tmp/bg-before
    head -200000 bench/data/auth.log > bench/data/auth-200k.log
    .venv/bin/python bench/pass_ab.py /tmp/bg-before/.venv/bin/python .venv/bin/python \\
        bench/data/auth-200k.log --jails sshd sshd-ddos
"""

from __future__ import annotations

import argparse
import subprocess

# Run by each build's own interpreter: argv = log, runs, jails...
_PASS = """
import sys, time
from bruteguard.match.engine import Matcher
data = open(sys.argv[1], "rb").read()
matcher = Matcher({jail: jail for jail in sys.argv[3:]})
best = float("inf")
for _ in range(int(sys.argv[2])):
    stream = matcher.stream(reference=0.0)
    series = matcher.new_series()
    began = time.process_time()
    stream.collect(data, series)
    best = min(best, time.process_time() - began)
print(best, stream.stats.matched, stream.stats.attempts)
"""


def _time(python: str, log: str, runs: int, jails: list[str]) -> tuple[float, int, int]:
    argv = [python, "-c", _PASS, log, str(runs), *jails]
    best, matched, attempts = subprocess.run(
        argv, check=True, capture_output=True, text=True
    ).stdout.split()
    return float(best), int(matched), int(attempts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="the Python interpreter of the old build's venv")
    parser.add_argument("after", help="the Python interpreter of the new build's venv")
    parser.add_argument("log", help="the log to match (read whole into memory)")
    parser.add_argument("--runs", type=int, default=25, help="passes per turn (best is kept)")
    parser.add_argument("--rounds", type=int, default=3, help="turns per build")
    parser.add_argument("--jails", nargs="+", default=["sshd"])
    args = parser.parse_args()
    for round_ in range(1, args.rounds + 1):
        before = _time(args.before, args.log, args.runs, args.jails)
        after = _time(args.after, args.log, args.runs, args.jails)
        change = 100 * (after[0] / before[0] - 1)
        print(
            f"round {round_}: before {before[0]:.4f} s ({before[1]:,} matched, {before[2]:,}"
            f" attempts)  after {after[0]:.4f} s ({after[1]:,} matched, {after[2]:,}"
            f" attempts)  change {change:+.1f} %"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
