"""Does the daemon keep up with a flood? Line → ban latency, CPU and memory at a fixed rate.

Why: an attack is rarely one address at a time. The daemon under test runs in a namespace
made here with real nftables while this process appends sshd failure lines to the watched
log at ``--rate`` lines/s for ``--seconds``: every flood line is a new attacker (so
``rate * seconds`` distinct addresses are tracked), and every ``--probe-every`` seconds a
fresh probe address sends ``maxretry`` failures in a row. ``nft monitor`` inside the namespace
says when each element reaches the kernel; latency = last probe line written → element in
the set. Also measured: CPU seconds per 100 k lines of the daemon's processes (``/proc``,
every process it started, the ``nft`` runs they waited for included), how far behind it is
when the writer stops (lines not yet read; and a last probe written right at the stop: the
time until it is banned is how far behind the daemon fell), and its RSS.

``--daemon`` picks what runs: ``bruteguard`` (the real ``bruteguard run``, its ledger
pre-filled with ``--bans`` active bans, ``--v6-share`` of them IPv6 /64s; ``--bruteguard``
another build), ``fail2ban`` or ``sshguard`` (Debian's packages, set up by ``peers.py`` with
the same maxretry, findtime and bantime; ``apt-get install -y fail2ban python3-pyinotify
sshguard``); ``--peers`` runs all three, each in its own namespace, one after the other at
every ``--rate`` given, and prints one table. Prefilled bans are bruteguard's only (default
100,000 alone, 0 with ``--peers``): the peers cannot be given a ledger of bans.

Floors (issue 18): p99 < 20 ms at 1 k lines/s, < 100 ms at 10 k lines/s, 50 k lines/s kept
up with, <= 5 CPU-s per 100 k lines, 1 M distinct attackers in <= 500 MB.

Addresses are only text in a log and in sets of a throw-away namespace: no packet is sent.
IPv4 attackers are 10.0.0.0/8 text (the documentation ranges hold 762 addresses), IPv6 ones
2001:db8::/32. ``--profile FILE`` runs bruteguard under cProfile (``BRUTEGUARD_PROFILE``).

    python bench/flood.py --rate 1000 --seconds 20
    python bench/flood.py --rate 50000 --seconds 20 --bans 100000
    python bench/flood.py --peers --rate 1000 10000 50000 --seconds 10
"""

from __future__ import annotations

import argparse
import array
import contextlib
import fcntl
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

from _netns import exec_prefix, namespace
from ban_latency import BRUTEGUARD, daemon_available, daemon_config, percentile
from bruteguard.model import Ban
from bruteguard.store.sqlite import SqliteStore
from peers import Group, fail2ban_argv, fail2ban_backend, fail2ban_config, missing, sshguard_argvs

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


def _tree(roots: list[int]) -> list[int]:
    """``roots`` (those alive) and every process descended from them."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid for pid in roots if Path(f"/proc/{pid}").exists()]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, ()))
    return found


def _cpu_seconds(roots: list[int]) -> dict[str, tuple[float, float]]:
    """Per program under ``roots``: user + system time, and that of the children they waited
    for (nft runs). A child that ends moves its time into its parent's children's time, so
    the sums' difference over a run is what the whole tree spent in it."""
    found: dict[str, tuple[float, float]] = {}
    for pid in _tree(roots):
        try:
            comm, _, rest = Path(f"/proc/{pid}/stat").read_text().rpartition(")")
        except OSError:
            continue
        fields, name = rest.split(), comm.partition("(")[2]
        own, children = found.get(name, (0.0, 0.0))
        found[name] = (
            own + (int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
            children + (int(fields[13]) + int(fields[14])) / CLOCK_TICKS,
        )
    return found


def _cpu_spent(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
               ) -> dict[str, tuple[float, float]]:  # fmt: skip
    """Per program: (own, children's) CPU seconds between two :func:`_cpu_seconds`."""
    spent = {}
    for name, (own, children) in after.items():
        was = before.get(name, (0.0, 0.0))
        spent[name] = (own - was[0], children - was[1])
    return spent


def _memory_kib(roots: list[int]) -> dict[str, int]:
    """VmRSS and VmHWM summed over the processes under ``roots`` (a pipeline's stages)."""
    found = {"VmRSS": 0, "VmHWM": 0}
    for pid in _tree(roots):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            name, _, value = line.partition(":")
            if name in found:
                found[name] += int(value.split()[0])
    return found


def _read_offset(roots: list[int], log: Path) -> int | None:
    """Where the processes under ``roots`` have read ``log`` to (the largest ``pos`` of an
    open descriptor on it), or None if none holds it open."""
    best = None
    for pid in _tree(roots):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(log):
                    info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
                    pos = int(info.split("pos:", 1)[1].split()[0])
                    best = pos if best is None else max(best, pos)
        except (OSError, IndexError, ValueError):
            continue
    return best


def _queued(pid: int) -> int:
    """Bytes waiting in the pipe that is ``pid``'s standard input (FIONREAD on a second
    read end, opened through /proc; nothing is read from it)."""
    try:
        fd = os.open(f"/proc/{pid}/fd/0", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return 0
    try:
        waiting = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, waiting)
        return waiting[0]
    finally:
        os.close(fd)


def _read_up_to(db: Path) -> int:
    """The offset the daemon has committed for the log (the ledger's positions table):
    cheaper to ask than ``status``, which lists every active ban (100 k here)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as ledger:
        row = ledger.execute('SELECT max("offset") FROM positions').fetchone()
    return row[0] or 0


class Daemon:
    """What runs under the flood: started in namespace ``ns``, stopped on every way out."""

    name = ""

    def __init__(self, args: argparse.Namespace, workdir: Path, log: Path) -> None:
        self.args, self.workdir, self.log = args, workdir, log
        self.group: Group | None = None

    def start(self, ns: str) -> None:
        raise NotImplementedError

    def ready(self) -> bool:
        """Started (bruteguard: its control socket is there); the warm-up probe says the rest."""
        return self.group is not None and self.group.alive()

    @property
    def pids(self) -> list[int]:
        return self.group.pids if self.group else []

    def element(self, address: str, set_element: str) -> str:
        """What ``nft monitor`` shows when the probe from ``address`` is banned (bruteguard
        and SSHGuard ban an IPv6 attacker's /64, fail2ban the address)."""
        return set_element

    def lines_read(self, size: int, lines: int) -> int | None:
        """How many of the log's ``lines`` (``size`` bytes) the daemon has read (None: it
        does not say): where its open descriptor on the log stands."""
        offset = _read_offset(self.pids, self.log)
        return None if offset is None else round(offset / (size / lines))

    def stop(self) -> None:
        if self.group is not None:
            self.group.stop()

    def output(self) -> str:
        return (self.workdir / "daemon.log").read_text(errors="replace")[-3000:]


class Bruteguard(Daemon):
    name = "bruteguard"

    def start(self, ns: str) -> None:
        _prefill(self.workdir / "bruteguard.db", self.args.bans, self.args.v6_share)
        config = daemon_config(self.workdir, self.log, self.args.maxretry)
        if self.args.profile:
            os.environ["BRUTEGUARD_PROFILE"] = str(self.args.profile.resolve())
        argv = [str(self.args.bruteguard), "run", "--config", str(config)]
        self.group = Group(exec_prefix(ns), [argv], self.workdir / "daemon.log")

    def ready(self) -> bool:
        return super().ready() and (self.workdir / "control.sock").exists()

    def lines_read(self, size: int, lines: int) -> int | None:
        """The offset committed to the ledger: read, matched and saved."""
        return round(_read_up_to(self.workdir / "bruteguard.db") / (size / lines))


class Fail2ban(Daemon):
    name = "fail2ban"

    def start(self, ns: str) -> None:
        self.backend = fail2ban_backend()
        config = fail2ban_config(
            self.workdir, self.log, maxretry=self.args.maxretry, findtime=FINDTIME,
            bantime=BANTIME, backend=self.backend,
        )  # fmt: skip
        self.group = Group(exec_prefix(ns), [fail2ban_argv(config, self.workdir)],
                           self.workdir / "daemon.log")  # fmt: skip

    def element(self, address: str, set_element: str) -> str:
        return address

    def lines_read(self, size: int, lines: int) -> int | None:
        """The failures its log says it found (every line of the flood is one): pyinotify
        reads the file and closes it again, so no descriptor says where it is."""
        own = self.workdir / "fail2ban.log"
        return own.read_bytes().count(b"] Found ") if own.exists() else None

    def output(self) -> str:
        own = self.workdir / "fail2ban.log"
        text = own.read_text(errors="replace")[-3000:] if own.exists() else ""
        return super().output() + text


class Sshguard(Daemon):
    name = "sshguard"

    def start(self, ns: str) -> None:
        argvs = sshguard_argvs(self.log, maxretry=self.args.maxretry, findtime=FINDTIME,
                               bantime=BANTIME)  # fmt: skip
        self.group = Group(exec_prefix(ns), argvs, self.workdir / "daemon.log")

    def lines_read(self, size: int, lines: int) -> int | None:
        """Where ``tail`` is in the log, less what waits in the pipes before the parser and
        the blocker (the blocker is where SSHGuard spends its time)."""
        read = super().lines_read(size, lines)
        if read is None or self.group is None:
            return read
        _tail, parser, blocker, _backend = self.group.pids
        parsed = [f"100 {address} {6 if ':' in address else 4} 10\n" for address in
                  (_attacker(i, self.args.v6_share) for i in range(1000))]  # fmt: skip
        per_parsed = sum(map(len, parsed)) / len(parsed)
        waiting = _queued(parser) / (size / lines) + _queued(blocker) / per_parsed
        return max(0, round(read - waiting))


DAEMONS: dict[str, type[Daemon]] = {d.name: d for d in (Bruteguard, Fail2ban, Sshguard)}


class Monitor(threading.Thread):
    """``nft monitor new elements`` inside the namespace: when each element reached the kernel.

    Not a poll: with 100 k elements in the table every ``get element`` fills libnftables'
    cache with the whole set first (~seconds), the events come as the kernel commits. An
    interval set's element is shown as ``2001:db8::/64``: the prefix length is dropped, so a
    /64 ban is ``2001:db8::`` whichever daemon made it.
    """

    def __init__(self, ns: str) -> None:
        super().__init__(daemon=True)
        self.seen: dict[str, float] = {}
        self.written: dict[str, float] = {}
        self.process = subprocess.Popen(
            [*exec_prefix(ns), "nft", "monitor", "new", "elements"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
        )  # fmt: skip

    def run(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            at = time.perf_counter()
            inside_braces = line.partition(b"{")[2].rpartition(b"}")[0]
            for element in inside_braces.split(b","):
                text = element.split()[0].decode() if element.split() else ""
                self.seen.setdefault(text.partition("/")[0], at)

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
    args: argparse.Namespace,
    rate: int,
    monitor: Monitor,
    daemon: Daemon,
) -> tuple[int, float]:
    """Append at ``rate`` lines/s for ``args.seconds``; (lines written, seconds it took)."""
    rng = random.Random(18)
    written = probes = attacker = 0
    start = time.perf_counter()
    next_probe = start + args.probe_every
    stamp_second, stamp = -1, ""
    while True:
        now = time.perf_counter()
        elapsed = now - start
        if elapsed >= args.seconds:
            break
        due = int(min(elapsed, args.seconds) * rate) - written
        wall = int(time.time())
        if wall != stamp_second:
            stamp_second, stamp = wall, time.strftime("%b %e %H:%M:%S", time.localtime(wall))
        lines = []
        for _ in range(max(due, 0)):
            lines.append(_line(stamp, _attacker(attacker, args.v6_share), rng.randint(1024, 65535)))
            attacker += 1
        probe = None
        if now >= next_probe:
            address, _set, element = _probe(probes)
            probe = daemon.element(address, element)
            probes += 1
            next_probe += args.probe_every
            lines += [_line(stamp, address, rng.randint(1024, 65535)) for _ in range(args.maxretry)]
        if lines:
            os.write(fd, "".join(lines).encode())
            written += len(lines)
            if probe is not None:
                monitor.written[probe] = time.perf_counter()
        time.sleep(max(0.0, TICK - (time.perf_counter() - now)))
    return written, time.perf_counter() - start


def _probe_lines(address: str, maxretry: int, first_port: int) -> bytes:
    stamp = time.strftime("%b %e %H:%M:%S")
    return "".join(_line(stamp, address, first_port + i) for i in range(maxretry)).encode()


def _warm_up(fd: int, monitor: Monitor, maxretry: int, tries: int = 30) -> int:
    """A fresh probe every 2 s until one is banned: the daemon is up and tailing the file
    (SSHGuard's ``tail -n 0`` misses what was written before it opened the file). Returns
    the lines written."""
    for index in range(tries):
        address = f"11.255.254.{index + 1}"
        os.write(fd, _probe_lines(address, maxretry, 2000))
        if monitor.wait_for(address, 2.0):
            return (index + 1) * maxretry
    raise RuntimeError(f"none of {tries} warm-up probes was banned within {tries * 2} s")


def _kill_leftovers(ns: str) -> None:
    """Anything still running in the bench's namespace is one of ours (a peer's straggler):
    end it by its pid before the namespace goes."""
    listing = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                             check=False, timeout=30)  # fmt: skip
    for pid in listing.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def measure(args: argparse.Namespace, workdir: Path, name: str, rate: int) -> dict[str, object]:
    log = workdir / "auth.log"
    log.touch()
    daemon = DAEMONS[name](args, workdir, log)
    with namespace(f"bg-flood-{name[:4]}") as ns:
        started = time.perf_counter()
        monitor = None
        try:
            daemon.start(ns)
            monitor = Monitor(ns)
            deadline = started + args.start_timeout
            while not daemon.ready() and time.perf_counter() < deadline:
                if daemon.group is not None and not daemon.group.alive():
                    break
                time.sleep(0.1)
            ready = time.perf_counter() - started
            if not daemon.ready():
                raise RuntimeError(f"{name} did not start within {args.start_timeout:g} s")
            monitor.start()
            fd = os.open(log, os.O_WRONLY | os.O_APPEND)
            try:
                warm_lines = _warm_up(fd, monitor, args.maxretry)
                cpu_before = _cpu_seconds(daemon.pids)
                written, took = _write(fd, args, rate, monitor, daemon)
                # The last probe, right after the last flood line: the time until it is
                # banned is how far behind the daemon fell.
                os.write(fd, _probe_lines(LAST_PROBE, args.maxretry, 3000))
                stopped_writing = monitor.written[LAST_PROBE] = time.perf_counter()
            finally:
                os.close(fd)
            size = log.stat().st_size
            total_lines = warm_lines + written + args.maxretry
            read = daemon.lines_read(size, total_lines)
            behind = None if read is None else max(0, total_lines - read)
            deadline = stopped_writing + args.catch_up_timeout
            caught_up = None
            if monitor.wait_for(LAST_PROBE, args.catch_up_timeout):
                caught_up = monitor.seen[LAST_PROBE] - stopped_writing
            for element in list(monitor.written):
                monitor.wait_for(element, max(0.0, deadline - time.perf_counter()))
            read_at_end = daemon.lines_read(size, total_lines)
            spent = _cpu_spent(cpu_before, _cpu_seconds(daemon.pids))
            children = sum(kids for _own, kids in spent.values())
            cpu = sum(own for own, _kids in spent.values()) + children
            memory = _memory_kib(daemon.pids)
            alive = daemon.group is not None and daemon.group.alive()
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n--- {name} output ---\n{daemon.output()}") from None
        finally:
            if monitor is not None:
                monitor.close()
            daemon.stop()
            _kill_leftovers(ns)
    monitor.written.pop(LAST_PROBE)
    latencies, missed = monitor.latencies()
    ms = [value * 1000 for value in latencies]
    result = {
        "daemon": name,
        "rate": rate,
        "seconds": args.seconds,
        "prefilled_bans": args.bans if name == "bruteguard" else 0,
        "ready_seconds": round(ready, 2),
        "lines_written": written,
        "write_seconds": round(took, 2),
        "achieved_rate": round(written / took),
        "behind_lines_at_stop": behind,
        "caught_up_after_s": None if caught_up is None else round(caught_up, 2),
        "catch_up_timeout_s": args.catch_up_timeout,
        "sustained_lines_per_s": round(written / (took + caught_up)) if caught_up is not None
        else None,
        "probes_banned": len(ms),
        "probes_missed": missed,
        "ms": {key: round(percentile(ms, q), 2) for key, q in
               (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))} if ms else {},
        "all_ms": [round(value, 2) for value in sorted(ms)],
        "cpu_seconds": round(cpu, 2),
        "cpu_seconds_in_children": round(children, 2),
        "cpu_seconds_by_program": {key: round(own + kids, 2) for key, (own, kids) in
                                   sorted(spent.items(), key=lambda item: -sum(item[1]))},
        "cpu_s_per_100k_lines": round(cpu / written * 100_000, 2) if written else None,
        # A daemon that fell behind spent its CPU on fewer lines than were written:
        "lines_read_at_end": read_at_end,
        "cpu_s_per_100k_lines_read": round(cpu / (read_at_end - warm_lines) * 100_000, 2)
        if read_at_end is not None and read_at_end > warm_lines else None,
        "rss_mib": round(memory["VmRSS"] / 1024, 1),
        "peak_rss_mib": round(memory["VmHWM"] / 1024, 1),
        "alive_at_end": alive,
        "load_average_at_start": LOAD_AT_START.get((name, rate)),
    }  # fmt: skip
    if name == "fail2ban":
        result["fail2ban_backend"] = daemon.backend  # type: ignore[attr-defined]
    return result


LOAD_AT_START: dict[tuple[str, int], list[float]] = {}
LAST_PROBE = "11.255.255.254"
FINDTIME = 600  # bruteguard's sshd default, given to the peers
BANTIME = 3600  # daemon_config's bantime


def _fmt_ms(result: dict[str, object], key: str) -> str:
    value = result["ms"].get(key) if result["ms"] else None  # type: ignore[union-attr]
    if value is None:
        return "—"
    return f"{value / 1000:,.2f} s" if value >= 1000 else f"{value:,.1f} ms"


def table(results: list[dict[str, object]]) -> str:
    """The runs as one Markdown table (what docs/benchmarks.md shows)."""
    rows = [
        "| rate | daemon | load at start | p50 / p99 line → ban | probes banned | "
        "lines behind at stop | fell behind by | sustained lines/s | CPU-s / 100 k lines read | "
        "peak RSS |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        load = " ".join(f"{x:.2f}" for x in r["load_average_at_start"] or [])
        caught = r["caught_up_after_s"]
        fell = f"{caught:,.2f} s" if caught is not None else f"> {r['catch_up_timeout_s']:g} s"
        behind, sustained = r["behind_lines_at_stop"], r["sustained_lines_per_s"]
        probes = r["probes_banned"] + r["probes_missed"]  # type: ignore[operator]
        rows.append(
            f"| {r['rate']:,} | {r['daemon']} | {load} | "
            f"{_fmt_ms(r, 'p50')} / {_fmt_ms(r, 'p99')} | {r['probes_banned']} of {probes} | "
            f"{'—' if behind is None else f'{behind:,}'} | {fell} | "
            f"{'—' if sustained is None else f'{sustained:,}'} | "
            f"{r['cpu_s_per_100k_lines_read']} | {r['peak_rss_mib']} MiB |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=int, nargs="+", default=[1000], help="lines per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--bans", type=int, help="bruteguard's prefilled active bans "
                        "(default 100,000 alone, 0 with a peer)")  # fmt: skip
    parser.add_argument("--v6-share", type=float, default=0.2)
    parser.add_argument("--maxretry", type=int, default=3)
    parser.add_argument("--probe-every", type=float, default=0.05, help="seconds")
    parser.add_argument("--start-timeout", type=float, default=180.0)
    parser.add_argument("--catch-up-timeout", type=float, default=120.0)
    parser.add_argument("--profile", type=Path, help="cProfile output of the daemon")
    parser.add_argument(
        "--daemon", default="bruteguard",
        help="bruteguard, fail2ban or sshguard (a path: another bruteguard build)",
    )  # fmt: skip
    parser.add_argument("--peers", action="store_true", help="bruteguard, fail2ban, sshguard")
    parser.add_argument(
        "--bruteguard", type=Path, default=BRUTEGUARD, help="the bruteguard to run (another build)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out/flood.json"))
    args = parser.parse_args(argv)
    if args.daemon not in DAEMONS:  # the older spelling: --daemon PATH, another build
        args.bruteguard, args.daemon = Path(args.daemon), "bruteguard"
    names = list(DAEMONS) if args.peers else [args.daemon]
    if args.bans is None:
        args.bans = 0 if len(names) > 1 or names != ["bruteguard"] else 100_000
    if not (all(1 <= rate <= 200_000 for rate in args.rate) and 0 < args.seconds <= 300
            and 0 <= args.bans <= 2_000_000 and 1 <= args.maxretry <= 100
            and 0 < args.catch_up_timeout <= 600):  # fmt: skip
        parser.error("--rate 1..200000, --seconds up to 300, --bans up to 2 M, "
                     "--maxretry 1..100, --catch-up-timeout up to 600")  # fmt: skip
    for name in names:
        missing_what = daemon_available() if name == "bruteguard" else missing(name)
        if missing_what:
            print(f"{name} not measured: {missing_what}", file=sys.stderr)
            return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    for rate in args.rate:
        for name in names:
            LOAD_AT_START[(name, rate)] = list(os.getloadavg())
            with tempfile.TemporaryDirectory(prefix=f"bg-flood-{name}-") as tmp:
                try:
                    result = measure(args, Path(tmp), name, rate)
                except RuntimeError as error:
                    print(f"{name} at {rate} lines/s failed: {error}", file=sys.stderr)
                    return 1
            print(json.dumps({k: v for k, v in result.items() if k != "all_ms"}), flush=True)
            results.append(result)
    print(table(results))
    document = results[0] if len(results) == 1 else {"runs": results}
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
