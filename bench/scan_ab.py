"""Time two bruteguard builds on one log, interleaved, best of N: what a change costs.

Why interleaved: runs of one build after the other would also measure the machine's drift.

    git worktree add /tmp/bg-before REV && python3 -m venv /tmp/bg-before/.venv
    /tmp/bg-before/.venv/bin/pip install -e /tmp/bg-before
    .venv/bin/python bench/scan_ab.py /tmp/bg-before/.venv/bin/bruteguard \\
        .venv/bin/bruteguard bench/data/auth.log --runs 7

With ``--config FILE`` both builds read that config and scan with every jail it enables
(``bench/scan_services.py`` writes one with all built-in jails on); without, ``--jail sshd``
on the defaults.
"""

from __future__ import annotations

import argparse
import subprocess
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="the bruteguard executable of the old build")
    parser.add_argument("after", help="the bruteguard executable of the new build")
    parser.add_argument("log", help="the log to scan (bench/gen_authlog.py makes one)")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines in the log")
    parser.add_argument("--config", help="scan with every jail this config enables")
    args = parser.parse_args()
    jails = ["--config", args.config] if args.config else ["--jail", "sshd"]
    best = {"before": float("inf"), "after": float("inf")}
    for _ in range(args.runs):
        for name in best:
            argv = [getattr(args, name), "scan", args.log, *jails]
            began = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
            best[name] = min(best[name], time.perf_counter() - began)
    for name, seconds in best.items():
        print(f"{name:7} {seconds:.3f} s  {args.lines / seconds:,.0f} lines/s")
    print(f"change: {(best['after'] / best['before'] - 1) * 100:+.1f} % time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
