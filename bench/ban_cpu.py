"""CPU per ban round of the nftables enforcer, two builds interleaved in one namespace.

Why: under a flood the daemon bans in rounds of one or two addresses, and what each round
costs the firewall thread is most of what the enforcer adds to the daemon's CPU. Each run
starts one build's Python inside a fresh namespace (as the daemon runs: no thread hops to
another namespace), sets up two jails, reconciles ``--prefill`` bans, then bans
``--bans`` addresses one round each and prints the process's CPU seconds per round (all
its threads). The namespace is created here and always deleted.

    python bench/ban_cpu.py /work/main/.venv/bin/python .venv/bin/python --runs 5
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _netns import exec_prefix, namespace

__all__ = ["main"]


def _inside(bans: int, prefill: int) -> float:
    """In the namespace: CPU seconds per ban round (one new address each)."""
    from bruteguard.enforce.nftables import NftablesEnforcer
    from bruteguard.model import Ban

    class Jail:
        def __init__(self, name: str, ports: tuple[int, ...]) -> None:
            self.name, self.ports, self.protocol = name, ports, "tcp"

    enforcer = NftablesEnforcer()
    enforcer.setup([Jail("sshd", (22,)), Jail("web", (8443,))])
    now = time.time()
    prefilled = (f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}" for i in range(prefill))
    enforcer.reconcile([Ban(ip, "sshd", now, now + 3600) for ip in prefilled], now)
    rounds = [[Ban(f"172.16.{i >> 8}.{i & 255}", "sshd", now, now + 600)] for i in range(bans)]
    started = time.process_time()
    for round_ in rounds:
        enforcer.ban(round_, time.time())
    spent = time.process_time() - started
    enforcer.teardown()
    return spent / bans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("python", nargs="*", help="interpreters of the builds to compare")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bans", type=int, default=2000)
    parser.add_argument("--prefill", type=int, default=100_000)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(f"{_inside(args.bans, args.prefill):.9f}")
        return
    best: dict[str, float] = {}
    script = str(Path(__file__).resolve())
    with namespace("bg-bancpu") as ns:
        for run in range(args.runs):
            for python in args.python:
                argv = [*exec_prefix(ns), python, script, "--inside"]
                argv += ["--bans", str(args.bans), "--prefill", str(args.prefill)]
                output = subprocess.run(argv, check=True, capture_output=True, text=True)
                per_ban = float(output.stdout.split()[-1])
                best[python] = min(best.get(python, per_ban), per_ban)
                print(f"run {run + 1} {python}: {per_ban * 1000:.3f} ms CPU per ban", flush=True)
    for python, seconds in best.items():
        print(f"best {python}: {seconds * 1000:.3f} ms CPU per ban")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
