"""Restart the real daemon with N active bans in its ledger: start → ready, peak RSS, stop.

Why: bans outlive the daemon (they sit in the ledger and, with their timeouts, in the
kernel), so a restart during a long attack starts with a large ledger. Floors (issue 18):
with 1,000,000 active bans (20 % IPv6 /64) the daemon is ready in < 10 s with <= 600 MB peak
RSS, and ``stop`` returns in < 5 s.

The ledger is pre-filled here (through ``SqliteStore``, so the schema and its trigger are
the daemon's own); then ``bruteguard run`` starts twice inside a namespace made here:

1. from an empty firewall; ready = ``status`` answers through the control socket; then the
   kernel's sets are counted (they must hold exactly the N bans) and a plain ``stop`` is
   timed (the bans must stay in the set);
2. again, with the sets still full (the ordinary restart); then ``stop --unban`` is timed
   (the table must be gone and the ledger hold no active ban).

Ready is when ``status`` first answers (``listening``: when the control socket first accepts,
before the first ``status``, which counts the active bans in SQL); ``cpu_s_ready`` is the CPU
the daemon and its ended children (``nft -f -``) had used by then. Peak RSS is the daemon's
own ``VmHWM`` when it first listens and again just before ``stop``. Addresses are drawn from
10.0.0.0/8 and fd00::/8 (the documentation ranges are far too small for a million) and are
text in a set of a throw-away namespace: no packet is sent to them.

    python bench/restart_bans.py --bans 1000000
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _netns import exec_prefix, namespace
from blocklist_load import AddressSpace, scan_set
from bruteguard.config import BUILTIN_JAILS
from bruteguard.model import Ban
from bruteguard.store.sqlite import SqliteStore

__all__ = ["main"]

BRUTEGUARD = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "bruteguard"
READY_FLOOR_SECONDS = 10.0
RSS_FLOOR_MB = 600.0
STOP_FLOOR_SECONDS = 5.0
JAIL = "sshd"
_V6_BASE = int(ipaddress.IPv6Address("fd00::"))


def fill_ledger(path: Path, count: int, v6_share: float, now: float, seed: int = 18) -> None:
    """``count`` active bans of jail sshd, ``v6_share`` of them IPv6 /64s, started within
    the last day (so the recidive jail's window holds them all) and ending within 2 h."""
    rng = random.Random(seed)
    v6 = round(count * v6_share)
    v4_space = AddressSpace("10.0.0.0/8", count - v6, rng)
    a, c = rng.randrange(1, 1 << 56, 2), rng.randrange(1 << 56)

    def bans() -> object:
        for index in range(count - v6):
            yield _ban(v4_space.address(index), rng, now)
        for index in range(v6):
            prefix = _V6_BASE + (((a * index + c) % (1 << 56)) << 64)
            yield _ban(f"{ipaddress.IPv6Address(prefix)}/64", rng, now)

    with SqliteStore(path) as store:
        store.add_bans(bans())  # type: ignore[arg-type]


def _ban(target: str, rng: random.Random, now: float) -> Ban:
    return Ban(target, JAIL, now - rng.uniform(60, 80000), now + rng.uniform(1800, 7200), 5,
               "5 failures in 1m")  # fmt: skip


def _config(workdir: Path) -> Path:
    log = workdir / "auth.log"
    log.touch()
    config = workdir / "bruteguard.toml"
    config.write_text(
        f'store = "{workdir / "bruteguard.db"}"\n'
        f'socket = "{workdir / "control.sock"}"\n'
        'enforcers = ["nftables"]\n\n'
        f"[jails.{JAIL}]\n"
        'backend = "file"\n'
        f'logpath = ["{log}"]\n'
        "maxretry = 5\n"
        'bantime = "1h"\n\n'
        "[jails.recidive]\n"
        "enabled = true\n"
        # The other built-in jails would switch on where this host has their logs.
        + "".join(
            f"\n[jails.{name}]\nenabled = false\n"
            for name in BUILTIN_JAILS
            if name not in (JAIL, "recidive")
        ),
        encoding="utf-8",
    )
    return config


def ask(path: Path, command: str, timeout: float, **arguments: object) -> object:
    """One control request; its result (the reply read in blocks, not concatenated)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps({"command": command, **arguments}).encode() + b"\n")
        blocks = []
        while True:
            block = sock.recv(1 << 20)
            if not block:
                break
            blocks.append(block)
            if block.endswith(b"\n"):
                break
    reply = json.loads(b"".join(blocks))
    if not reply.get("ok"):
        raise RuntimeError(f"{command}: {reply.get('error')}")
    return reply["result"]


def _wait_listening(control: Path, daemon: subprocess.Popen, began: float, limit: float) -> float:
    """Seconds from ``began`` until the control socket accepts a connection (the daemon
    serves it once the firewall is reconciled and every source is positioned)."""
    while time.perf_counter() - began < limit:
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited ({daemon.returncode}) before it was ready")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(control))
                return time.perf_counter() - began
            except (FileNotFoundError, ConnectionRefusedError):
                pass
        time.sleep(0.02)
    raise RuntimeError(f"not listening within {limit:g} s")


def _cpu_s(pid: int) -> float:
    """CPU seconds the daemon has used so far, its own and its ended children's (``nft -f
    -``, whose system time is the kernel loading the sets): on a shared machine the wall
    clock says more about the neighbours than about the daemon."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def _elements(ns: str) -> int:
    """Ban elements in the jail's sets, as the kernel lists them (0 if the table is gone):
    the ledger holds addresses and IPv6 /64s, so the /64 set is the only network set."""
    total = 0
    for set_name in (f"{JAIL}_v4", f"{JAIL}_v6", f"{JAIL}_v6n64"):
        try:
            total += scan_set(ns, set_name, table="bruteguard")[0]
        except RuntimeError:  # no such table (nft says so on stderr): nothing is banned
            return 0
    return total


def run_once(
    ns: str, workdir: Path, config: Path, unban: bool, limit: float, exe: Path
) -> dict[str, float]:
    """Start the daemon, wait until ready, measure, stop it; the numbers."""
    control = workdir / "control.sock"
    with (workdir / "daemon.log").open("ab") as out:
        began = time.perf_counter()
        daemon = subprocess.Popen(
            [*exec_prefix(ns), str(exe), "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            listening = _wait_listening(control, daemon, began, limit)
            rss_listening = _peak_rss_mb(daemon.pid)
            ask(control, "status", timeout=limit)
            ready = time.perf_counter() - began
            cpu = _cpu_s(daemon.pid)
            in_set = _elements(ns)
            rss = _peak_rss_mb(daemon.pid)
            stopping = time.perf_counter()
            ask(control, "stop", timeout=limit, unban=unban)
            daemon.wait(timeout=limit)
            stop = time.perf_counter() - stopping
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait(timeout=30)
    return {
        "listening_s": round(listening, 2),
        "ready_s": round(ready, 2),
        "cpu_s_ready": round(cpu, 2),
        "peak_rss_listening_mb": round(rss_listening, 1),
        "peak_rss_mb": round(rss, 1),
        "stop_s": round(stop, 2),
        "in_set_when_ready": in_set,
        "in_set_after_stop": _elements(ns),
    }


def _active_in_ledger(path: Path) -> int:
    with SqliteStore(path) as store, store.read("count") as db:
        (count,) = db.execute(
            "SELECT count(*) FROM bans WHERE lifted IS NULL AND until > ?", (time.time(),)
        ).fetchone()
    return int(count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bans", type=int, default=1_000_000)
    parser.add_argument("--v6-share", type=float, default=0.2, help="IPv6 /64 share of bans")
    parser.add_argument("--limit", type=float, default=300.0, help="seconds per step at most")
    parser.add_argument("--out", type=Path, default=Path("bench/out/restart_bans.json"))
    parser.add_argument(
        "--bruteguard", type=Path, default=BRUTEGUARD, help="the daemon to run (A/B: another tree)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bg-restart-") as tmp:
        workdir = Path(tmp)
        config = _config(workdir)
        filling = time.perf_counter()
        fill_ledger(workdir / "bruteguard.db", args.bans, args.v6_share, time.time())
        record: dict[str, object] = {
            "bans": args.bans,
            "v6_share": args.v6_share,
            "fill_s": round(time.perf_counter() - filling, 1),
        }
        try:
            with namespace("bg-restart") as ns:
                exe = args.bruteguard
                record["cold"] = cold = run_once(ns, workdir, config, False, args.limit, exe)
                record["warm"] = warm = run_once(ns, workdir, config, True, args.limit, exe)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(f"failed: {error}", file=sys.stderr)
            print((workdir / "daemon.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            return 1
        record["active_after_unban"] = _active_in_ledger(workdir / "bruteguard.db")
        log_tail = (workdir / "daemon.log").read_text(errors="replace").splitlines()[-40:]
    checks = {
        "every ban in the set when ready": cold["in_set_when_ready"] == args.bans
        and warm["in_set_when_ready"] == args.bans,
        "stop keeps the bans": cold["in_set_after_stop"] == args.bans,
        "stop --unban lifts them all": warm["in_set_after_stop"] == 0
        and record["active_after_unban"] == 0,
        f"ready < {READY_FLOOR_SECONDS:g} s": max(cold["ready_s"], warm["ready_s"])
        < READY_FLOOR_SECONDS,
        f"peak RSS <= {RSS_FLOOR_MB:g} MB": max(cold["peak_rss_mb"], warm["peak_rss_mb"])
        <= RSS_FLOOR_MB,
        f"stop < {STOP_FLOOR_SECONDS:g} s": max(cold["stop_s"], warm["stop_s"])
        < STOP_FLOOR_SECONDS,
    }
    record["checks"] = checks
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**record, "daemon_log": log_tail}, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
