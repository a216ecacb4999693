"""Measure how long a failure line takes to become a firewall ban: log append → set element.

Why: a ban that lands seconds late lets a fast attacker try hundreds more passwords. The
real daemon (``bruteguard run``, maxretry=1) runs inside a namespace made here; each sample
appends one failure line for a fresh address, then polls the kernel every millisecond until
``get element inet bruteguard sshd_v4 { ADDRESS }`` succeeds. Floor: p99 < 50 ms.

Polling goes through libnftables in this process (ctypes; no ``nft`` fork per poll, which
would cost more than the resolution we want), after this process joins the namespace with
``setns``. The addresses are documentation ranges and are only text: no traffic is sent.

    python bench/ban_latency.py --samples 200
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bruteguard.config import BUILTIN_JAILS, RECIDIVE
from nft_push import namespace

__all__ = ["Kernel", "daemon_config", "main", "percentile"]

BRUTEGUARD = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "bruteguard"
FLOOR_P99_MS = 50.0
CLONE_NEWNET = 0x40000000
TABLE, SET = "bruteguard", "sshd_v4"


class Kernel:
    """Asks the kernel's nftables about one set through libnftables (one netlink round trip)."""

    def __init__(self) -> None:
        self._lib = ctypes.CDLL("libnftables.so.1")
        self._lib.nft_ctx_new.restype = ctypes.c_void_p
        self._lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        self._lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        self._lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        self._lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self._ctx = self._lib.nft_ctx_new(0)
        if not self._ctx:
            raise RuntimeError("libnftables: nft_ctx_new failed")
        # Buffered output: nothing is printed, only the return code matters.
        self._lib.nft_ctx_buffer_output(self._ctx)
        self._lib.nft_ctx_buffer_error(self._ctx)

    def run(self, command: str) -> bool:
        """True if the nft command succeeded (for ``get element``: the element exists)."""
        return self._lib.nft_run_cmd_from_buffer(self._ctx, command.encode()) == 0

    def close(self) -> None:
        self._lib.nft_ctx_free(self._ctx)


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """Move this thread into namespace ``ns`` (checked), and back to where it was after."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns} failed")
        if os.stat("/proc/thread-self/ns/net").st_ino != os.fstat(target).st_ino:
            raise RuntimeError(f"not inside namespace {ns} after setns")
        yield
    finally:
        if libc.setns(home, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "could not return to the original namespace")
        os.close(target)
        os.close(home)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: every value reported was measured)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def _addresses() -> Iterator[str]:
    """Fresh documentation addresses, never one twice in a run (508; up to 30 go to warm-up)."""
    for net in ("198.51.100", "203.0.113"):
        for host in range(1, 255):
            yield f"{net}.{host}"


def _failure_line(ip: str, rng: random.Random) -> bytes:
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime())
    user = rng.choice(("admin", "oracle", "test", "ubuntu"))
    return (
        f"{stamp} web1 sshd[{rng.randint(2000, 400000)}]: Failed password for invalid user "
        f"{user} from {ip} port {rng.randint(1024, 65535)} ssh2\n"
    ).encode()


def daemon_config(workdir: Path, log: Path, maxretry: int = 1) -> Path:
    """A config whose sshd jail reads ``log`` into nftables; the other built-in jails off
    (not this machine's own web or mail logs), recidive on as by default."""
    config = workdir / "bruteguard.toml"
    config.write_text(
        f'store = "{workdir / "bruteguard.db"}"\n'
        f'socket = "{workdir / "control.sock"}"\n'
        'enforcers = ["nftables"]\n\n'
        "[jails.sshd]\n"
        'backend = "file"\n'
        f'logpath = ["{log}"]\n'
        f"maxretry = {maxretry}\n"
        'bantime = "1h"\n'
        + "".join(f"\n[jails.{name}]\nenabled = false\n" for name in BUILTIN_JAILS
                  if name not in ("sshd", RECIDIVE)),
        encoding="utf-8",
    )  # fmt: skip
    return config


def _wait_banned(kernel: Kernel, ip: str, since: float, timeout: float) -> float | None:
    """Seconds from ``since`` until ``ip`` is in the set, polling every millisecond."""
    command = f"get element inet {TABLE} {SET} {{ {ip} }}"
    deadline = since + timeout
    while True:
        if kernel.run(command):
            return time.perf_counter() - since
        if time.perf_counter() > deadline:
            return None
        time.sleep(0.001)


def _warm_up(kernel: Kernel, fd: int, addresses: Iterator[str], rng: random.Random) -> None:
    """Append a failure a second until one is banned: the daemon is up and tailing the file."""
    for _ in range(30):
        ip = next(addresses)
        os.write(fd, _failure_line(ip, rng))
        if _wait_banned(kernel, ip, time.perf_counter(), 1.0) is not None:
            return
    raise RuntimeError("the daemon banned none of the warm-up addresses within 30 s")


def daemon_available() -> str:
    """Empty if ``bruteguard run`` exists, else why not (the lead is still writing it)."""
    if not BRUTEGUARD.exists():
        return f"{BRUTEGUARD} does not exist"
    probe = subprocess.run(
        [str(BRUTEGUARD), "run", "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        return f"`bruteguard run --help` failed: {last}"
    return ""


def measure(samples: int, timeout: float, workdir: Path) -> tuple[list[float], int, str]:
    """Run the daemon in a new namespace; return latencies (s), misses and its log tail."""
    log = workdir / "auth.log"
    log.touch()
    daemon_log = workdir / "daemon.log"
    rng = random.Random(3)
    latencies: list[float] = []
    misses = 0
    with namespace("bg-latency") as ns, daemon_log.open("wb") as daemon_out:
        daemon = subprocess.Popen(
            ["ip", "netns", "exec", ns, str(BRUTEGUARD), "run", "--config",
             str(daemon_config(workdir, log))],
            stdout=daemon_out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            with inside(ns):
                kernel = Kernel()
                try:
                    addresses = _addresses()
                    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
                    try:
                        _warm_up(kernel, fd, addresses, rng)
                        for _ in range(samples):
                            ip = next(addresses)
                            line = _failure_line(ip, rng)
                            since = time.perf_counter()
                            os.write(fd, line)
                            waited = _wait_banned(kernel, ip, since, timeout)
                            if waited is None:
                                misses += 1
                            else:
                                latencies.append(waited)
                            time.sleep(rng.uniform(0.005, 0.05))  # no phase lock with timers
                    finally:
                        os.close(fd)
                finally:
                    kernel.close()
        finally:
            daemon.terminate()
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=10)
    tail = daemon_log.read_text(encoding="utf-8", errors="replace")[-2000:]
    return latencies, misses, tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--samples", type=int, default=200, help="at most 478")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per sample")
    parser.add_argument("--out", type=Path, default=Path("bench/out/ban_latency.json"))
    args = parser.parse_args(argv)
    if not 1 <= args.samples <= 478:
        parser.error("--samples must be between 1 and 478 (fresh documentation addresses)")
    missing = daemon_available()
    if missing:
        print(f"bruteguard run not measured: {missing}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bg-latency-") as tmp:
        try:
            latencies, misses, tail = measure(args.samples, args.timeout, Path(tmp))
        except RuntimeError as error:
            print(f"failed: {error}\n--- daemon output ---\n", file=sys.stderr)
            print((Path(tmp) / "daemon.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            return 1
    ms = [value * 1000 for value in latencies]
    stats = (
        {name: round(percentile(ms, q), 2) for name, q in (("p50", 0.5), ("p95", 0.95),
                                                           ("p99", 0.99), ("max", 1.0))}
        if ms
        else {}
    )  # fmt: skip
    print(f"samples: {len(ms)} banned, {misses} not banned within {args.timeout:g} s")
    for name, value in stats.items():
        print(f"{name:>4}: {value:8.2f} ms")
    passed = bool(ms) and misses == 0 and stats["p99"] < FLOOR_P99_MS
    print(f"{'PASS' if passed else 'FAIL'}  p99 < {FLOOR_P99_MS:g} ms and no misses")
    if misses:
        print(f"--- daemon output (tail) ---\n{tail}")
    args.out.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "samples": len(ms),
                "misses": misses,
                "ms": stats,
                "passed": passed,
                "all_ms": [round(v, 3) for v in ms],
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"written: {args.out}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
