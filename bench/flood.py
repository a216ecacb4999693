"""Does the daemon keep up with a flood? Line → ban latency, CPU and memory at a fixed rate.

Why: an attack is rarely one address at a time. The real daemon (``bruteguard run``) runs in
a namespace made here with real nftables, its ledger pre-filled with ``--bans`` active bans
(``--v6-share`` of them IPv6 /64s), while this process appends sshd failure lines to the
watched log at ``--rate`` lines/s for ``--seconds``: every flood line is a new attacker (so
``rate * seconds`` distinct addresses are tracked), and every ``--probe-every`` seconds a
fresh probe address sends ``maxretry`` failures in a row. ``nft monitor`` inside the namespace
says when each element reaches the kernel; latency = last probe line written → element in
the set. Also measured: the daemon's CPU seconds per 100 k lines
(``/proc/PID/stat``, its nft children included), how far behind it is when the writer stops
(the log's size vs the offset it committed to its ledger), and its RSS.

Floors (issue 18): p99 < 20 ms at 1 k lines/s, < 100 ms at 10 k lines/s, 50 k lines/s kept
up with, <= 5 CPU-s per 100 k lines, 1 M distinct attackers in <= 500 MB.

Addresses are only text in a log and in sets of a throw-away namespace: no packet is sent.
IPv4 attackers are 10.0.0.0/8 text (the documentation ranges hold 762 addresses), IPv6 ones
2001:db8::/32. ``--profile FILE`` runs the daemon under cProfile (``BRUTEGUARD_PROFILE``).

    python bench/flood.py --rate 1000 --seconds 20
    python bench/flood.py --rate 50000 --seconds 20 --bans 100000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ban_latency import BRUTEGUARD, daemon_available, daemon_config, percentile
from bruteguard.model import Ban
from bruteguard.store.sqlite import SqliteStore
from nft_push import namespace

__all__ = ["main"]

TABLE = "bruteguard"
TICK = 0.002  # the writer appends what is due every 2 ms
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _v4(index: int, first_octet: int = 10) -> str:
    return f"{first_octet}.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"


def _attacker(index: int, v6_share: float) -> str:
    """The ``index``-th flood attacker: every 1/v6_share-th one IPv6 (its own /64)."""
    every = round(1 / v6_share) if v6_share > 0 else 0
    if every and index % every == 0:
        return f"2001:db8:{0x4000 + (index >> 16):x}:{index & 0xFFFF:x}::{index % 997 + 1:x}"
    return _v4(index)


def _probe(index: int) -> tuple[str, str, str]:
    """The ``index``-th probe: (address, set, element) — every fifth one IPv6 (a /64 ban)."""
    if index % 5 == 4:
        prefix = f"2001:db8:9:{index:x}"
        return f"{prefix}::5", "sshd_v6n64", f"{prefix}::"
    address = _v4(index, 11)
    return address, "sshd_v4", address


def _prefill(db: Path, count: int, v6_share: float) -> None:
    """``count`` active bans in the ledger, ``v6_share`` of them IPv6 /64 networks."""
    now = time.time()
    networks = int(count * v6_share)
    bans = [
        Ban(f"2001:db8:1:{i:x}::/64", "sshd", now, now + 86400, 3, "prefilled")
        if i < networks
        else Ban(_v4(i, 12), "sshd", now, now + 86400, 3, "prefilled")
        for i in range(count)
    ]
    with SqliteStore(str(db)) as store:
        store.add_bans(bans)


def _line(stamp: str, ip: str, port: int) -> str:
    return (
        f"{stamp} web1 sshd[{port * 7 % 400000 + 1000}]: Failed password for invalid user admin "
        f"from {ip} port {port} ssh2\n"
    )


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """User + system time of ``pid``, and of the children it waited for (nft runs)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own, children = fields[11:13], fields[13:15]
    return sum(map(int, own)) / CLOCK_TICKS, sum(map(int, children)) / CLOCK_TICKS


def _memory_kib(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def _read_up_to(db: Path) -> int:
    """The offset the daemon has committed for the log (the ledger's positions table):
    cheaper to ask than ``status``, which lists every active ban (100 k here)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as ledger:
        row = ledger.execute('SELECT max("offset") FROM positions').fetchone()
    return row[0] or 0


class Monitor(threading.Thread):
    """``nft monitor new elements`` inside the namespace: when each element reached the kernel.

    Not a poll: with 100 k elements in the table every ``get element`` fills libnftables'
    cache with the whole set first (~seconds), the events come as the kernel commits.
    """

    def __init__(self, ns: str) -> None:
        super().__init__(daemon=True)
        self.seen: dict[str, float] = {}
        self.written: dict[str, float] = {}
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", ns, "nft", "monitor", "new", "elements"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
        )  # fmt: skip

    def run(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            at = time.perf_counter()
            inside_braces = line.partition(b"{")[2].rpartition(b"}")[0]
            for element in inside_braces.split(b","):
                text = element.split()[0].decode() if element.split() else ""
                self.seen.setdefault(text, at)

    def wait_for(self, element: str, timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while element not in self.seen:
            if time.perf_counter() > deadline:
                return False
            time.sleep(0.01)
        return True

    def latencies(self) -> tuple[list[float], int]:
        """Seconds from each probe's last line written to its element; and the probes missed."""
        found = [self.seen[e] - t for e, t in self.written.items() if e in self.seen]
        return found, len(self.written) - len(found)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _write(
    fd: int,
    rate: int,
    seconds: float,
    v6_share: float,
    maxretry: int,
    probe_every: float,
    monitor: Monitor,
) -> tuple[int, float]:
    """Append at ``rate`` lines/s for ``seconds``; (lines written, seconds it took)."""
    rng = random.Random(18)
    written = probes = attacker = 0
    start = time.perf_counter()
    next_probe = start + probe_every
    stamp_second, stamp = -1, ""
    while True:
        now = time.perf_counter()
        elapsed = now - start
        if elapsed >= seconds:
            break
        due = int(min(elapsed, seconds) * rate) - written
        wall = int(time.time())
        if wall != stamp_second:
            stamp_second, stamp = wall, time.strftime("%b %e %H:%M:%S", time.localtime(wall))
        lines = []
        for _ in range(max(due, 0)):
            lines.append(_line(stamp, _attacker(attacker, v6_share), rng.randint(1024, 65535)))
            attacker += 1
        probe = None
        if now >= next_probe:
            address, set_name, element = _probe(probes)
            probe = (set_name, element)
            probes += 1
            next_probe += probe_every
            lines += [_line(stamp, address, rng.randint(1024, 65535)) for _ in range(maxretry)]
        if lines:
            os.write(fd, "".join(lines).encode())
            written += len(lines)
            if probe is not None:
                monitor.written[probe[1]] = time.perf_counter()
        time.sleep(max(0.0, TICK - (time.perf_counter() - now)))
    return written, time.perf_counter() - start


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    log = workdir / "auth.log"
    log.touch()
    _prefill(workdir / "bruteguard.db", args.bans, args.v6_share)
    config = daemon_config(workdir, log, args.maxretry)
    socket_path = str(workdir / "control.sock")
    ledger = workdir / "bruteguard.db"
    env = dict(os.environ)
    if args.profile:
        env["BRUTEGUARD_PROFILE"] = str(args.profile.resolve())
    with namespace("bg-flood") as ns, (workdir / "daemon.log").open("wb") as daemon_out:
        started = time.perf_counter()
        daemon = subprocess.Popen(
            ["ip", "netns", "exec", ns, str(args.daemon), "run", "--config", str(config)],
            stdout=daemon_out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        monitor = Monitor(ns)
        try:
            for _ in range(int(args.start_timeout * 10)):
                if os.path.exists(socket_path) or daemon.poll() is not None:
                    break
                time.sleep(0.1)
            ready = time.perf_counter() - started
            if daemon.poll() is not None or not os.path.exists(socket_path):
                raise RuntimeError("the daemon did not open its control socket")
            monitor.start()
            fd = os.open(log, os.O_WRONLY | os.O_APPEND)
            try:
                # Warm-up: one probe banned means the daemon is tailing the file.
                stamp = time.strftime("%b %e %H:%M:%S")
                os.write(fd, b"".join(_line(stamp, "11.255.255.1", 2000 + i).encode()
                                      for i in range(args.maxretry)))  # fmt: skip
                if not monitor.wait_for("11.255.255.1", 30):
                    raise RuntimeError("the warm-up probe was not banned within 30 s")
                cpu_before = _cpu_seconds(daemon.pid)
                written, took = _write(fd, args.rate, args.seconds, args.v6_share,
                                       args.maxretry, args.probe_every, monitor)  # fmt: skip
            finally:
                os.close(fd)
            stopped_writing = time.perf_counter()
            size = log.stat().st_size
            behind = size - _read_up_to(ledger)
            caught_up = None
            while time.perf_counter() - stopped_writing < args.catch_up_timeout:
                if _read_up_to(ledger) >= size:
                    caught_up = time.perf_counter() - stopped_writing
                    break
                time.sleep(0.05)
            for element in list(monitor.written):
                monitor.wait_for(element, max(0.0, stopped_writing + args.catch_up_timeout
                                              - time.perf_counter()))  # fmt: skip
            after = _cpu_seconds(daemon.pid)
            own, children = after[0] - cpu_before[0], after[1] - cpu_before[1]
            cpu = own + children
            memory = _memory_kib(daemon.pid)
        finally:
            monitor.close()
            daemon.terminate()
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=10)
    latencies, missed = monitor.latencies()
    ms = [value * 1000 for value in latencies]
    return {
        "rate": args.rate,
        "seconds": args.seconds,
        "prefilled_bans": args.bans,
        "ready_seconds": round(ready, 2),
        "lines_written": written,
        "write_seconds": round(took, 2),
        "achieved_rate": round(written / took),
        "behind_bytes_at_stop": behind,
        "behind_lines_at_stop": round(behind / (size / (written + args.maxretry))),
        "caught_up_after_s": None if caught_up is None else round(caught_up, 2),
        "sustained_lines_per_s": round(written / (took + caught_up)) if caught_up is not None
        else None,
        "probes_banned": len(ms),
        "probes_missed": missed,
        "ms": {name: round(percentile(ms, q), 2) for name, q in
               (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))} if ms else {},
        "all_ms": [round(value, 2) for value in sorted(ms)],
        "cpu_seconds": round(cpu, 2),
        "cpu_seconds_in_nft": round(children, 2),
        "cpu_s_per_100k_lines": round(cpu / written * 100_000, 2) if written else None,
        "rss_mib": round(memory.get("VmRSS", 0) / 1024, 1),
        "peak_rss_mib": round(memory.get("VmHWM", 0) / 1024, 1),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=int, default=1000, help="lines per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--bans", type=int, default=100_000, help="active bans prefilled")
    parser.add_argument("--v6-share", type=float, default=0.2)
    parser.add_argument("--maxretry", type=int, default=3)
    parser.add_argument("--probe-every", type=float, default=0.05, help="seconds")
    parser.add_argument("--start-timeout", type=float, default=180.0)
    parser.add_argument("--catch-up-timeout", type=float, default=120.0)
    parser.add_argument("--profile", type=Path, help="cProfile output of the daemon")
    parser.add_argument(
        "--daemon", type=Path, default=BRUTEGUARD, help="the bruteguard to run (another build)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out/flood.json"))
    args = parser.parse_args(argv)
    if not (1 <= args.rate <= 200_000 and 0 < args.seconds <= 300 and 0 <= args.bans <= 2_000_000):
        parser.error("--rate 1..200000, --seconds up to 300, --bans up to 2 M")
    missing = daemon_available()
    if missing:
        print(f"bruteguard run not measured: {missing}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bg-flood-") as tmp:
        try:
            result = measure(args, Path(tmp))
        except RuntimeError as error:
            print(f"failed: {error}\n--- daemon output ---", file=sys.stderr)
            print((Path(tmp) / "daemon.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            return 1
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
