"""``bruteguard report LOG --html FILE`` on the 1 M-line benchmark log: time and size.

The floor (issue 20): written in under 5 s (best of N) and under 2 MB. Each run is the whole
command (interpreter start, geo data load, replay, summary, HTML) as an admin runs it:

    .venv/bin/python bench/gen_authlog.py --lines 1000000 --out bench/data/auth.log
    .venv/bin/python bench/report_html.py bench/data/auth.log --runs 5

``--make-ledger PATH`` first fills a new ledger with what a replay of LOG finds (every
failure, every ban): the same attack, as the daemon would have stored it.

Also prints ``/usr/bin/time``'s peak RSS of the last run and the least CPU time of a run
(user+sys of the command and its replay workers): on a busy machine the wall time says
more about the neighbours than about the report. ``--ledger`` times the report of
a ledger instead (``report --ledger PATH --html``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

LIMIT_SECONDS = 5.0
LIMIT_BYTES = 2_000_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", help="the log (bench/gen_authlog.py makes one), or the ledger")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ledger", action="store_true", help="LOG is a ledger (SQLite)")
    parser.add_argument("--out", default="bench/out/report.html")
    parser.add_argument("--make-ledger", metavar="PATH", help="fill this new ledger from LOG")
    args = parser.parse_args()
    if args.make_ledger:
        make_ledger(args.log, args.make_ledger)
        return 0
    exe = str(Path(sys.executable).with_name("bruteguard"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    source = ["--ledger", args.log] if args.ledger else [args.log]
    argv = ["/usr/bin/time", "-f", "%M %U %S", exe, "report", *source, "--html", args.out]
    times = []
    cpu = []
    peak = ""
    for _ in range(args.runs):
        began = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - began)
        peak, user, system = done.stderr.strip().splitlines()[-1].split()
        cpu.append(float(user) + float(system))
    size = os.path.getsize(args.out)
    best, worst = min(times), max(times)
    print(
        f"report --html: best {best:.2f} s, worst {worst:.2f} s of {args.runs};"
        f" {size:,} bytes; peak RSS {int(peak) / 1024:.0f} MiB;"
        f" CPU (user+sys, all processes) best {min(cpu):.2f} s"
    )
    ok = best < LIMIT_SECONDS and size < LIMIT_BYTES
    verdict = "met" if ok else "MISSED"
    print(f"floor (< {LIMIT_SECONDS:.0f} s, < {LIMIT_BYTES / 1e6:.0f} MB): {verdict}")
    return 0 if ok else 1


def make_ledger(log: str, path: str) -> None:
    from bruteguard.config import load_config
    from bruteguard.model import Failure
    from bruteguard.scan import scan_logs
    from bruteguard.store.sqlite import SqliteStore

    if os.path.exists(path):
        raise SystemExit(f"{path} exists: give a new file")
    config = load_config(None)
    with SqliteStore(path) as store:
        bans = []

        def keep(hits, decided) -> None:
            store.add_failures(Failure(t, ip, jail, user, line) for t, ip, user, jail, line in hits)
            bans.extend(decided)

        summary = scan_logs([log], config, config.enabled_jails(), on_hits=keep)
        store.add_bans(bans)
    print(
        f"{path}: {summary.failures:,} failures ({sum(summary.per_jail.values()):,} rows),"
        f" {len(bans):,} bans"
    )


if __name__ == "__main__":
    raise SystemExit(main())
