"""``.ci/wait-unlocked``, which ``.ci/run`` uses to wait for another apt's lock on the
package lists (a fresh cloud machine's apt-daily at first boot), against real fcntl locks
held by a real process, as apt holds them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

WAIT = Path(__file__).resolve().parent.parent / ".ci" / "wait-unlocked"

# Takes the lock apt takes (fcntl, whole file), says so, holds it for argv[2] seconds.
_HOLDER = """
import fcntl, sys, time
with open(sys.argv[1], "w") as lock:
    fcntl.lockf(lock, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def wait(path: Path, seconds: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WAIT), str(path), str(seconds)], capture_output=True, text=True, timeout=60
    )


def test_waits_while_another_process_holds_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    lock.touch()
    holder = hold(lock, 2.5)
    started = time.monotonic()
    done = wait(lock, 30)
    waited = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert holder.poll() is not None, "it returned while the lock was still held"
    assert 1.5 < waited < 10


def test_gives_up_after_its_limit_and_says_why(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    lock.touch()
    holder = hold(lock, 30)
    try:
        done = wait(lock, 1)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    assert done.stderr == f"another process has held {lock} for too long\n"


def test_a_free_or_missing_lock_file_goes_on_at_once(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    assert wait(lock, 0).returncode == 0  # no file: nobody holds it
    lock.touch()
    assert wait(lock, 0).returncode == 0
