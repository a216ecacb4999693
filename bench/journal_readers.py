"""Read one big journal with both journal readers: systemd-python vs journalctl's JSON.

Why: without a compiler a venv has no systemd-python, and bruteguard then reads the journal
through ``journalctl --output=json``; this measures what that costs. The journal is a real
``.journal`` file that systemd-journal-remote writes from export format: ``--entries`` sshd
entries (failed passwords, invalid users, disconnects from ~5,000 documentation-range
addresses), 1 s apart, with the trusted fields journald records for sshd. Each reader is the
bruteguard source itself (``JournalSource`` / ``JournalctlSource``), reading from the oldest
entry to the last, ``--runs`` times after one warm-up read; the best wall-clock time counts.
Both must produce the same lines (their SHA-256 is compared).

    .venv/bin/python bench/journal_readers.py --entries 200000 --runs 5

Needs the Debian packages systemd (journalctl) and systemd-journal-remote, and the venv with
the ``journal`` extra (systemd-python) for the first reader.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bruteguard.sources import Source
from bruteguard.sources.journal import JournalSource
from bruteguard.sources.journalctl import JournalctlSource, find_journalctl

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
DATA = Path(__file__).resolve().parent / "data"
OUT = Path(__file__).resolve().parent / "out"
T0 = 1_700_000_000_000_000  # microseconds; any fixed start keeps the file reproducible
MATCHES = ["_SYSTEMD_UNIT=ssh.service", "_COMM=sshd", "_COMM=sshd-session"]


def _address(rng: random.Random) -> str:
    net = rng.choice(("192.0.2", "198.51.100", "203.0.113"))
    return (
        f"{net}.{rng.randrange(1, 255)}"
        if rng.random() < 0.9
        else f"2001:db8::{rng.randrange(1, 1 << 16):x}"
    )


def export_entries(count: int, seed: int) -> bytes:
    """``count`` sshd entries in journal export format."""
    rng = random.Random(seed)
    users = ["root", "admin", "ubuntu", "test", "oracle", "git", "postgres", "user"]
    chunks = []
    for i in range(count):
        ip = _address(rng)
        port = rng.randrange(1024, 65536)
        kind = rng.random()
        if kind < 0.5:
            message = f"Failed password for root from {ip} port {port} ssh2"
        elif kind < 0.8:
            message = f"Invalid user {rng.choice(users)} from {ip} port {port}"
        else:
            message = f"Disconnected from authenticating user root {ip} port {port} [preauth]"
        chunks.append(
            f"__REALTIME_TIMESTAMP={T0 + i * 1_000_000}\n"
            f"__MONOTONIC_TIMESTAMP={1_000_000 + i * 1_000_000}\n"
            "_BOOT_ID=0123456789abcdef0123456789abcdef\n"
            "_MACHINE_ID=fedcba9876543210fedcba9876543210\n"
            "_HOSTNAME=web1\n_TRANSPORT=syslog\nSYSLOG_IDENTIFIER=sshd\n"
            "_COMM=sshd-session\n_EXE=/usr/lib/openssh/sshd-session\n_UID=0\n_GID=0\n"
            "_SYSTEMD_UNIT=ssh.service\n_SYSTEMD_SLICE=system.slice\nPRIORITY=6\n"
            "SYSLOG_FACILITY=4\n_CMDLINE=sshd-session: root [priv]\n"
            f"_PID={10_000 + i % 50_000}\nMESSAGE={message}\n\n"
        )
    return "".join(chunks).encode()


def write_journal(directory: Path, entries: int, seed: int) -> Path:
    """The journal file for these arguments, written once and kept in bench/data."""
    marker = directory / "entries.txt"
    if marker.exists() and marker.read_text() == f"{entries} {seed}\n":
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    subprocess.run(
        [JOURNAL_REMOTE, "-o", str(directory / "remote.journal"), "-"],
        input=export_entries(entries, seed),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker.write_text(f"{entries} {seed}\n")
    return directory


async def read_all(source: Source, entries: int) -> tuple[int, str]:
    """Lines read (until ``entries``) and their SHA-256."""
    digest = hashlib.sha256()
    lines = 0
    batches = source.batches()
    try:
        while lines < entries:
            batch = await asyncio.wait_for(anext(batches), 120)
            digest.update(batch.data)
            lines += batch.data.count(b"\n")
    finally:
        await source.aclose()
    return lines, digest.hexdigest()


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(name: str, directory: Path, entries: int, runs: int) -> dict[str, object]:
    readers = {"systemd-python": JournalSource, "journalctl": JournalctlSource}
    times, cpu, children, digest = [], [], [], ""
    for run in range(runs + 1):  # the first run warms the page cache
        source = readers[name](MATCHES, since=0, path=directory)
        began, began_cpu, began_children = time.perf_counter(), time.process_time(), child_cpu()
        lines, digest = asyncio.run(read_all(source, entries))
        if run:
            times.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
            children.append(child_cpu() - began_children)
        assert lines == entries, (name, lines)
    best = min(range(runs), key=times.__getitem__)
    return {
        "reader": name,
        "entries": entries,
        "seconds": round(times[best], 3),
        "entries_per_second": round(entries / times[best]),
        "python_cpu_seconds": round(cpu[best], 3),
        "journalctl_cpu_seconds": round(children[best], 3),
        "runs": [round(t, 3) for t in times],
        "sha256": digest,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--journal", type=Path, default=DATA / "journal")
    args = parser.parse_args()
    if find_journalctl() is None:
        sys.exit("journalctl not found (Debian package systemd)")
    directory = write_journal(args.journal, args.entries, args.seed)
    size = sum(f.stat().st_size for f in directory.glob("*.journal"))
    results = [
        measure(name, directory, args.entries, args.runs)
        for name in ("systemd-python", "journalctl")
    ]
    if results[0]["sha256"] != results[1]["sha256"]:
        sys.exit("the two readers produced different lines")
    report = {
        "journal_mb": round(size / 1e6, 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "journalctl": subprocess.run(
            [find_journalctl() or "journalctl", "--version"], capture_output=True, text=True
        ).stdout.splitlines()[0],
        "results": results,
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "journal_readers.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"journal: {args.entries:,} sshd entries, {report['journal_mb']} MB")
    print(f"journalctl: {report['journalctl']}")
    for result in results:
        print(
            f"{result['reader']:>15}: {result['entries_per_second']:>9,} entries/s "
            f"({result['seconds']} s; CPU: python {result['python_cpu_seconds']} s, "
            f"journalctl {result['journalctl_cpu_seconds']} s)"
        )
    print("same lines from both:", results[0]["sha256"][:16])
    return 0


if __name__ == "__main__":
    sys.exit(main())
