"""Time ``bruteguard bans`` through the control socket of a real daemon with 1 M bans.

Why: the answer used to be read by appending each ``recv`` to one bytes object, quadratic in
its size (1 M bans took 130 s through the socket, 4.5 s from the ledger). It is now streamed
a page at a time; the floor is the issue's: < 5 s for 1 M bans (20 % of them IPv6 /64s).
The daemon runs with the dry-run enforcer in a temporary directory: no firewall is touched.

    python bench/control_bans.py --bans 1000000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bruteguard.model import Ban
from bruteguard.store.sqlite import SqliteStore

FLOOR_SECONDS = 5.0
BIN = Path(sys.executable).with_name("bruteguard")


def targets(count: int) -> list[str]:
    """``count`` distinct targets: 80 % IPv4 addresses, 20 % IPv6 /64 networks."""
    networks = count // 5
    v4 = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(count - networks)]
    v6 = [f"2001:db8:{i >> 16:x}:{i & 0xFFFF:x}::/64" for i in range(networks)]
    return v4 + v6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bans", type=int, default=1_000_000)
    parser.add_argument("--ready-timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bg-bans-") as tmp:
        root = Path(tmp)
        (root / "auth.log").touch()
        config = root / "bg.toml"
        config.write_text(
            f'store = "{root}/bg.db"\nsocket = "{root}/bg.sock"\nenforcers = ["dry-run"]\n'
            f'[jails.sshd]\nbackend = "file"\nlogpath = ["{root}/auth.log"]\n'
        )
        now = time.time()
        with SqliteStore(root / "bg.db") as store:
            store.add_bans(
                Ban(ip, "sshd", now, now + 86400, 5, "5 failures") for ip in targets(args.bans)
            )
        started = time.perf_counter()
        with SqliteStore(root / "bg.db") as store:
            from_ledger = len(store.active_bans(time.time()))
        ledger_seconds = time.perf_counter() - started

        daemon = subprocess.Popen(
            [str(BIN), "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            cli = [str(BIN), "bans", "--json", "--config", str(config)]
            deadline = time.monotonic() + args.ready_timeout
            status = [str(BIN), "status", "--config", str(config)]
            while subprocess.run(status, capture_output=True).returncode != 0:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    print("FAIL: the daemon did not become ready", file=sys.stderr)
                    return 1
                time.sleep(0.5)
            started = time.perf_counter()
            done = subprocess.run(cli, capture_output=True, check=True)
            socket_seconds = time.perf_counter() - started
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
        listed = done.stdout.count(b'"ip":')
    ok = listed == from_ledger == args.bans and socket_seconds < FLOOR_SECONDS
    print(
        f"bans: {args.bans:,}; from the ledger {ledger_seconds:.2f}s; "
        f"`bruteguard bans --json` through the socket {socket_seconds:.2f}s "
        f"({listed:,} listed, {len(done.stdout) / 1e6:.0f} MB); floor < {FLOOR_SECONDS:g}s: "
        + ("PASS" if ok else "FAIL")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
