"""JournalctlSource (``journalctl --output=json --follow``) against real journal files.

The journal files are written by systemd-journal-remote (see ``journalkit``), and read by
the real journalctl with ``--directory``; where the systemd bindings are installed (the
test extra's ``journal``), the same files are read by ``JournalSource`` too, and both
readers must produce the same lines and the same cursors. Needs the Debian packages
systemd (journalctl) and systemd-journal-remote.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bruteguard.errors import ConfigError
from bruteguard.model import SourcePosition
from bruteguard.sources import MAX_LINE, Source, SourceHealth, health_of
from bruteguard.sources.journal import JournalSource, journal_key
from bruteguard.sources.journalctl import (
    JournalctlSource,
    entry_from_json,
    find_journalctl,
    journalctl_argv,
)
from journalkit import (
    SSHD_UNIT,
    T0,
    TIMEOUT,
    Reading,
    RemoteJournal,
    export,
    run,
    settle,
)

FAST_RESTART = (0.2, 0.4)  # seconds: a test waits for a restart, not a minute


@pytest.fixture
def remote(tmp_path: Path) -> Any:
    journal = RemoteJournal(tmp_path)
    try:
        yield journal
    finally:
        journal.close()


def test_journalctl_is_installed() -> None:
    """Every test here runs the real journalctl (Debian package systemd)."""
    assert find_journalctl() is not None


def hostile_entries(remote: RemoteJournal) -> int:
    """Entries whose MESSAGE journalctl's JSON writes in each of its forms; returns how many
    lines they make (one entry is too long for a line and is skipped)."""
    remote.add("Failed password for root from 203.0.113.5 port 22 ssh2")  # a JSON string
    remote.add(b"binary \xff\xfe message from 203.0.113.6")  # invalid UTF-8: a byte array
    remote.add("carriage\rreturn and a tab\there")  # CR: a byte array too
    remote.add("first line\nFailed password for x from 192.0.2.1 port 1 ssh2")
    remote.add('quotes " and \\ and \u2028 and {} ]')  # JSON's own syntax, escaped
    remote.add("x" * 100_000)  # over 4096 bytes: null unless --all
    remote.add(b"\xff" * (MAX_LINE + 10))  # too long for a line: skipped by both readers
    remote.add("", _COMM="", _PID="", _TRANSPORT="kernel", _HOSTNAME="evil host")
    remote.add(  # forged: the program becomes untrusted-logger, as with the bindings
        "Failed password for root from 198.51.100.7 port 22 ssh2",
        SYSLOG_IDENTIFIER="sshd",
        _COMM="logger",
        _EXE="/usr/bin/logger",
        _UID="1000",
        _SYSTEMD_UNIT="session-3.scope",
    )
    assert remote.process.stdin is not None
    remote.count += 1
    # A field set twice is an array of values in JSON; the first one counts, as before.
    twice = export(
        {
            "__REALTIME_TIMESTAMP": str(T0 + remote.count * 1_000_000 + 123_456),
            "__MONOTONIC_TIMESTAMP": str(remote.count * 1000),
            "_BOOT_ID": "0123456789abcdef0123456789abcdef",
            "_HOSTNAME": "web1",
            "_COMM": "sshd",
            "_EXE": "/usr/sbin/sshd",
            "_UID": "0",
            "_PID": "77",
            "MESSAGE": "first value",
        }
    )
    twice = twice[:-1] + b"_PID=78\nMESSAGE=second value\n\n"
    remote.process.stdin.write(twice)
    remote.process.stdin.flush()
    return remote.count - 1


async def read_all(source: Source, count: int) -> list[bytes]:
    reading = Reading(source)
    lines = await reading.take(count)
    assert await reading.nothing_more()
    await reading.close()
    return lines


def test_lines_are_those_of_the_bindings_reader_however_hostile_the_message(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    count = hostile_entries(remote)
    remote.close()
    source = JournalctlSource([], since=0, path=tmp_path)
    assert isinstance(source, Source)
    lines = run(read_all(source, count))
    assert source.skipped_long_lines == 1 and source.bad_entries == 0
    messages = [line.split(b": ", 1)[1] for line in lines]
    assert messages[:5] == [
        b"Failed password for root from 203.0.113.5 port 22 ssh2\n",
        b"binary \xff\xfe message from 203.0.113.6\n",
        b"carriage\rreturn and a tab\there\n",
        b"first line#012Failed password for x from 192.0.2.1 port 1 ssh2\n",
        'quotes " and \\ and \u2028 and {} ]\n'.encode(),
    ]
    assert messages[5] == b"x" * 100_000 + b"\n"
    assert lines[6].split(b" ")[1:3] == [b"evil_host", b"kernel:"]
    assert b" untrusted-logger[" in lines[7]
    assert lines[8].endswith(b" web1 sshd[77]: first value\n")
    assert lines[0].startswith(f"{remote.stamp(1)} web1 sshd[4001]: ".encode())

    bindings = JournalSource([], since=0, path=tmp_path)
    assert run(read_all(bindings, count)) == lines
    assert bindings.skipped_long_lines == 1


def test_matches_are_alternatives_passed_as_argv_words(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    remote.add("from the unit", _COMM="sshd-session", _EXE="/usr/lib/openssh/sshd-session")
    remote.add("from sshd outside the unit", _SYSTEMD_UNIT="other.service")
    remote.add("cron", _COMM="cron", _EXE="/usr/sbin/cron", _SYSTEMD_UNIT="cron.service")
    remote.add("other", _COMM="other", _EXE="/usr/sbin/other", _SYSTEMD_UNIT="o.service")
    remote.close()
    messages = [
        line.split(b": ", 1)[1]
        for line in run(read_all(JournalctlSource(SSHD_UNIT, since=0, path=tmp_path), 2))
    ]
    assert messages == [b"from the unit\n", b"from sshd outside the unit\n"]
    # fail2ban's form: terms AND'ed, "+" for OR, inside one journalmatch entry
    fail2ban = ["_COMM=cron _SYSTEMD_UNIT=cron.service + _COMM=other"]
    lines = run(read_all(JournalctlSource(fail2ban, since=0, path=tmp_path), 2))
    assert [line.split(b": ", 1)[1] for line in lines] == [b"cron\n", b"other\n"]


def test_the_system_journal_is_this_machines_in_every_alternative() -> None:
    argv = journalctl_argv("journalctl", ["_COMM=sshd", "_A=1 + _B=2"], None, ["--lines=1"])
    machine = Path("/etc/machine-id").read_text().strip()
    tail = argv[argv.index("--") + 1 :]
    assert tail == [
        "_COMM=sshd", f"_MACHINE_ID={machine}", "+",
        "_A=1", f"_MACHINE_ID={machine}", "+",
        "_B=2", f"_MACHINE_ID={machine}",
    ]  # fmt: skip
    assert "--system" in argv and "--merge" in argv  # --follow alone means "this boot only"
    files = journalctl_argv("journalctl", [], ["/j/a[1]*.journal"], [])
    assert "--file=/j/a\\[1]\\*.journal" in files  # --file takes a glob
    assert files[-1] == "--"  # every entry, and no _MACHINE_ID for a copied journal


def test_default_start_is_the_end_and_appended_entries_are_followed(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    for i in range(3):
        remote.add(f"before start {i}")

    async def body() -> list[bytes]:
        await settle(remote)
        source = JournalctlSource(SSHD_UNIT, path=tmp_path)
        assert not source.health().reading
        assert source.health().detail.endswith("via journalctl: not started yet")
        reading = Reading(source)
        await reading.start()  # positioned: a jail reading it is protected from now on
        assert source.health().reading
        assert await reading.nothing_more()
        assert source.health().reading
        remote.add("live 1")
        first = await reading.messages(1)
        remote.add("live 2")
        remote.add("live 3")
        rest = await reading.messages(2)
        await reading.close()
        return first + rest

    assert run(body()) == [b"live 1\n", b"live 2\n", b"live 3\n"]


def test_an_empty_journal_is_followed_from_its_first_entry(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    remote.add("not ours", _COMM="cron", _EXE="/usr/sbin/cron", _SYSTEMD_UNIT="cron.service")

    async def body() -> list[bytes]:
        await settle(remote)
        reading = Reading(JournalctlSource(SSHD_UNIT, path=tmp_path))
        assert await reading.nothing_more()
        remote.add("the first of ours")
        messages = await reading.messages(1)
        await reading.close()
        return messages

    assert run(body()) == [b"the first of ours\n"]


def test_following_costs_no_cpu_while_idle_or_while_the_consumer_is_busy(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    remote.add("first")

    async def body() -> tuple[float, float]:
        await settle(remote)
        reading = Reading(JournalctlSource(SSHD_UNIT, path=tmp_path))
        began = time.process_time()
        assert await reading.nothing_more(0.5)
        idle = time.process_time() - began
        remote.add("live")
        assert await reading.messages(1) == [b"live\n"]
        began = time.process_time()
        for i in range(5):  # entries arrive while nobody asks for the next batch
            remote.add(f"more {i}")
            await asyncio.sleep(0.1)
        busy = time.process_time() - began
        assert await reading.messages(5) == [f"more {i}\n".encode() for i in range(5)]
        await reading.close()
        return idle, busy

    idle, busy = run(body())
    assert idle < 0.05 and busy < 0.05, (idle, busy)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (JournalctlSource, JournalctlSource),
        (JournalctlSource, JournalSource),  # one cursor for both readers: a host may switch
        (JournalSource, JournalctlSource),
    ],
)
def test_resume_from_cursor_neither_repeats_nor_misses(
    remote: RemoteJournal, tmp_path: Path, first: type[Any], second: type[Any]
) -> None:
    for i in range(3):
        remote.add(f"seen {i}")

    async def body() -> None:
        await settle(remote)
        reading = Reading(first(SSHD_UNIT, since=0, path=tmp_path))
        assert await reading.messages(3) == [b"seen 0\n", b"seen 1\n", b"seen 2\n"]
        saved = reading.position
        assert saved is not None
        assert saved.key == journal_key(SSHD_UNIT) and saved.cursor.startswith("s=")
        await reading.close()

        remote.add("while stopped 1")
        remote.add("not ours", _COMM="cron", _EXE="/usr/sbin/cron", _SYSTEMD_UNIT="cron.service")
        remote.add("while stopped 2")
        await settle(remote)
        # since=0 would replay everything: the cursor must win over it
        again = Reading(second(SSHD_UNIT, saved=saved, since=0, path=tmp_path))
        assert await again.messages(2) == [b"while stopped 1\n", b"while stopped 2\n"]
        assert await again.nothing_more()
        remote.add("live")
        assert await again.messages(1) == [b"live\n"]
        await again.close()

    run(body())


def test_a_cursor_saved_before_a_reboot_resumes_in_that_boot(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    """``journalctl --follow`` alone reads the current boot only: the rest of the boot the
    cursor was saved in (what sshd logged before the reboot) must still be read."""
    remote.add("boot 1, seen")

    async def body() -> list[bytes]:
        await settle(remote)
        first = Reading(JournalctlSource(SSHD_UNIT, since=0, path=tmp_path))
        await first.take(1)
        await first.close()
        remote.add("boot 1, after the cursor")
        remote.add("boot 2", _BOOT_ID="fedcba9876543210fedcba9876543210")
        await settle(remote)
        again = Reading(JournalctlSource(SSHD_UNIT, saved=first.position, path=tmp_path))
        messages = await again.messages(2)
        remote.add("boot 2, live", _BOOT_ID="fedcba9876543210fedcba9876543210")
        messages += await again.messages(1)
        await again.close()
        return messages

    assert run(body()) == [b"boot 1, after the cursor\n", b"boot 2\n", b"boot 2, live\n"]


@pytest.mark.parametrize("reader", [JournalctlSource, JournalSource])
def test_a_vacuumed_cursor_resumes_at_the_next_entry_still_there(
    tmp_path: Path, reader: type[Any]
) -> None:
    """The saved entry is gone (the old file vacuumed, a new one holds what came after):
    the first entry after it is new and is read; an unusable cursor starts at ``since``."""
    (tmp_path / "old").mkdir()
    old = RemoteJournal(tmp_path / "old")
    for i in range(3):
        old.add(f"entry {i}")
    old.close()

    async def saved_at_entry(number: int) -> SourcePosition:
        reading = Reading(JournalctlSource(SSHD_UNIT, since=0, path=tmp_path / "old"))
        await reading.take(number)
        await reading.close()
        assert reading.position is not None
        return reading.position

    saved = run(saved_at_entry(2))
    (tmp_path / "new").mkdir()
    new = RemoteJournal(tmp_path / "new")
    new.count = 2  # the old file's third entry and one more, at the same times
    for i in range(2, 4):
        new.add(f"entry {i}")
    new.close()
    again = reader(SSHD_UNIT, saved=saved, since=0, path=tmp_path / "new")
    assert run(read_all(again, 2)) == [
        f"{new.stamp(3)} web1 sshd[4003]: entry 2\n".encode(),
        f"{new.stamp(4)} web1 sshd[4004]: entry 3\n".encode(),
    ]
    garbage = SourcePosition(key=saved.key, cursor="s=not-a-cursor")
    fresh = reader(SSHD_UNIT, saved=garbage, since=0, path=tmp_path / "new")
    assert len(run(read_all(fresh, 2))) == 2


def test_since_starts_at_that_time(remote: RemoteJournal, tmp_path: Path) -> None:
    for i in range(4):
        remote.add(f"entry {i}")
    remote.close()
    since = (T0 + 3 * 1_000_000) / 1_000_000  # between entries 2 and 3
    messages = [
        line.split(b": ", 1)[1]
        for line in run(read_all(JournalctlSource(SSHD_UNIT, since=since, path=tmp_path), 2))
    ]
    assert messages == [b"entry 2\n", b"entry 3\n"]


def test_journalctl_that_exits_is_started_again_from_its_cursor(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    for i in range(2):
        remote.add(f"before {i}")

    async def body() -> None:
        await settle(remote)
        source = JournalctlSource(SSHD_UNIT, since=0, path=tmp_path, restart_delays=(1.0, 2.0))
        reading = Reading(source)
        assert await reading.messages(2) == [b"before 0\n", b"before 1\n"]
        assert source.pid is not None and source.health().reading
        os.kill(source.pid, signal.SIGKILL)
        assert await reading.nothing_more(0.01)  # a read is pending, as the daemon's always is
        async with asyncio.timeout(5):
            while source.health().reading:
                await asyncio.sleep(0.02)
        health = health_of(source)
        assert "journalctl exited with status -9; starting it again in 1 s" in health.detail
        remote.add("while it was down")
        assert await reading.messages(1) == [b"while it was down\n"]
        assert source.health() == SourceHealth(
            True,
            "journal (_SYSTEMD_UNIT=ssh.service or _COMM=sshd) via journalctl "
            "(journalctl restarted: 1)",
        )
        remote.add("after")
        assert await reading.messages(1) == [b"after\n"]
        assert await reading.nothing_more()
        await reading.close()
        assert source.pid is None

    run(body())


def test_a_journalctl_that_keeps_failing_is_retried_ever_more_slowly_and_says_why(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        missing = tmp_path / "no-journal-here"  # journalctl refuses a missing directory
        source = JournalctlSource(SSHD_UNIT, since=0, path=missing, restart_delays=FAST_RESTART)
        reading = Reading(source)
        assert await reading.nothing_more(0.1)
        health = source.health()
        assert not health.reading
        assert "journalctl exited with status 1" in health.detail, health.detail
        assert str(missing) in health.detail
        # 0.2 s, then 0.4 s between tries: a few, never a busy loop. Counted by the clock,
        # not in a fixed window: on a busy machine each try's journalctl starts slowly.
        loop = asyncio.get_running_loop()
        began, first = loop.time(), source.restarts
        async with asyncio.timeout(10):
            while source.restarts < first + 3:
                await asyncio.sleep(0.05)
        waited = loop.time() - began
        assert waited >= 0.2 + 0.4 + 0.4 - 0.2 - 0.05, waited  # the first wait may be under way
        assert source.restarts - first <= waited / 0.2 + 1, (source.restarts, waited)
        assert "again in 0.4 s" in source.health().detail
        await reading.close()

    run(body())


def test_no_journalctl_is_a_clear_health_message_never_a_crash(tmp_path: Path) -> None:
    async def body() -> None:
        source = JournalctlSource(SSHD_UNIT, journalctl=str(tmp_path / "journalctl"))
        reading = Reading(source)
        assert await reading.nothing_more(0.2)
        health = source.health()
        assert not health.reading
        assert f"{tmp_path}/journalctl not found" in health.detail
        await reading.close()

    run(body())

    # With none on PATH and no bindings: the reader says so, and auto picks files instead.
    program = (
        "import asyncio, sys\n"
        "sys.modules['systemd'] = None  # a venv without systemd-python\n"
        "from bruteguard.config import JailConfig\n"
        "from bruteguard.sources.journalctl import JournalctlSource\n"
        "from bruteguard.sources.select import journal_reader, resolve_sources\n"
        "assert journal_reader([sys.argv[1]]) is None\n"
        "jail = JailConfig(name='sshd', backend='journal', journalmatch=['_COMM=sshd'])\n"
        "(spec,) = resolve_sources(jail)\n"
        "assert spec.reader == 'journalctl', spec\n"
        "async def main():\n"
        "    source = JournalctlSource(['_COMM=sshd'])\n"
        "    batches = source.batches()\n"
        "    pending = asyncio.ensure_future(anext(batches))\n"
        "    await asyncio.sleep(0.2)\n"
        "    print(source.health().detail)\n"
        "    await source.aclose()\n"
        "    await asyncio.gather(pending, return_exceptions=True)\n"
        "asyncio.run(main())\n"
    )
    journal = tmp_path / "journal"
    journal.mkdir()
    (journal / "system.journal").write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-c", program, str(journal)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "PATH": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "journalctl not found (it comes with systemd" in result.stdout


def test_entry_from_json_refuses_what_is_not_an_entry() -> None:
    cursor, fields = entry_from_json(
        b'{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"5","MESSAGE":[104,105],"_PID":["1","2"]}'
    )
    assert cursor == "s=1" and fields["MESSAGE"] == b"hi" and fields["_PID"] == b"1"
    for bad in (b"-- No entries --", b'{"MESSAGE":[300]}', b'{"MESSAGE":5}', b"[]"):
        with pytest.raises(ValueError):
            entry_from_json(bad)


def test_bad_journalmatch_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not FIELD=value"):
        JournalctlSource(["--since=yesterday"])


# Runs as root, as PID 1 of private mount and PID namespaces (see the test below): a private
# /run (and /var/log/journal) hides the host's journal, so the journald started here is the
# only one, keeps its journal in this /run, and dies with the namespace. The source then
# reads *the system journal* (no directory given), as the daemon does.
_SYSTEM_JOURNAL = r"""
import asyncio, os, subprocess, sys, time
from bruteguard.sources.journalctl import JournalctlSource, recent_entries

DEVLOG = "/run/systemd/journal/dev-log"
def run(*argv):
    subprocess.run(argv, check=True, timeout=10)
run("mount", "-t", "tmpfs", "-o", "mode=0755", "bruteguard-run", "/run")
if os.path.isdir("/var/log/journal"):
    run("mount", "-t", "tmpfs", "-o", "mode=0755", "bruteguard-journal", "/var/log/journal")
os.makedirs("/run/systemd/journald.conf.d")
with open("/run/systemd/journald.conf.d/private.conf", "w") as conf:
    conf.write("[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\n"
               "ForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\n")
journald = subprocess.Popen(["/lib/systemd/systemd-journald"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})
deadline = time.monotonic() + 10
while not os.path.exists(DEVLOG):
    assert time.monotonic() < deadline, "journald did not start"
    time.sleep(0.05)

def log(message):
    run("logger", "-u", DEVLOG, "-t", "bgtest", message)
    run("journalctl", "--sync")

async def take(batches, count):
    lines = []
    while len(lines) < count:
        batch = await asyncio.wait_for(anext(batches), 10)
        lines += batch.data.split(b"\n")[:-1]
        position = batch.position
    return [line.split(b": ", 1)[1].decode() for line in lines], position

async def main():
    log("before the start")
    source = JournalctlSource(["SYSLOG_IDENTIFIER=bgtest"])
    batches = source.batches()
    pending = asyncio.ensure_future(take(batches, 2))
    await asyncio.sleep(0.5)
    log("after 1")
    log("after 2")
    seen, position = await pending
    print("live:", seen)
    await source.aclose()
    log("while stopped")
    again = JournalctlSource(["SYSLOG_IDENTIFIER=bgtest"], saved=position)
    seen, _ = await take(again.batches(), 1)
    print("resumed:", seen)
    await again.aclose()
    newest = recent_entries(["SYSLOG_IDENTIFIER=bgtest"], limit=2, since=time.time() - 60)
    print("doctor sees:", [entry["MESSAGE"].decode() for entry in newest])

asyncio.run(main())
journald.terminate()
journald.wait(10)
"""


@pytest.mark.netns
def test_the_system_journal_of_a_real_journald_is_followed_and_resumed() -> None:
    """No directory given: ``--system --merge`` and this machine's ``_MACHINE_ID`` select a
    real journald's entries; the start is the end, and a saved cursor resumes."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root: it starts journald in private mount namespaces")
    unshare = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
               "--kill-child", "--mount-proc", "--"]  # fmt: skip
    argv = [*unshare, sys.executable, "-c", _SYSTEM_JOURNAL]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "live: ['after 1', 'after 2']",
        "resumed: ['while stopped']",
        "doctor sees: ['while stopped', 'after 2']",  # newest first, at most the limit
    ], result.stdout + result.stderr


# The daemon itself, without the bindings (as after a plain `pip install .`), reading a real
# journald's system journal: in private mount and PID namespaces as above. argv[1] is the
# config; the daemon's and the CLI's Python cannot import `systemd`.
_DAEMON = r"""
import json, os, subprocess, sys, time

config = sys.argv[1]
DEVLOG = "/run/systemd/journal/dev-log"
WITHOUT_BINDINGS = ("import sys; sys.modules['systemd'] = None; "
                    "from bruteguard.cli import main; sys.exit(main())")
def run(*argv):
    subprocess.run(argv, check=True, timeout=10)
run("mount", "-t", "tmpfs", "-o", "mode=0755", "bruteguard-run", "/run")
if os.path.isdir("/var/log/journal"):
    run("mount", "-t", "tmpfs", "-o", "mode=0755", "bruteguard-journal", "/var/log/journal")
os.makedirs("/run/systemd/journald.conf.d")
with open("/run/systemd/journald.conf.d/private.conf", "w") as conf:
    conf.write("[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\n"
               "ForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\n")
journald = subprocess.Popen(["/lib/systemd/systemd-journald"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})
deadline = time.monotonic() + 10
while not os.path.exists(DEVLOG):
    assert time.monotonic() < deadline, "journald did not start"
    time.sleep(0.05)

def log(message):
    run("logger", "-u", DEVLOG, "-t", "bgtest", message)

def bruteguard(*args):
    return [sys.executable, "-c", WITHOUT_BINDINGS, *args, "--config", config]

def source():
    out = subprocess.run(bruteguard("status", "--json"), capture_output=True, text=True,
                         timeout=30)
    if out.returncode:
        return None
    (sshd,) = [jail for jail in json.loads(out.stdout)["jails"] if jail["name"] == "sshd"]
    return sshd["sources"][0]

def until(test, what):
    deadline = time.monotonic() + 20
    while not test():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)

def daemon():
    process = subprocess.Popen(bruteguard("run"), stdin=subprocess.DEVNULL,
                               stdout=sys.stderr, stderr=sys.stderr)
    until(lambda: source() is not None, "the daemon's status")
    return process

log("before the daemon ever ran")
first = daemon()
print("source:", json.dumps({k: source()[k] for k in ("key", "reading", "detail")}))
for i in range(3):
    log(f"line {i}")
until(lambda: source()["lines"] >= 3, "3 lines")
time.sleep(0.5)
print("first run read:", source()["lines"])
first.terminate()
first.wait(20)
log("while the daemon was down 1")
log("while the daemon was down 2")
second = daemon()
until(lambda: source()["lines"] >= 2, "2 lines")
time.sleep(0.5)
print("second run read:", source()["lines"])
second.terminate()
second.wait(20)
journald.terminate()
journald.wait(10)
"""


@pytest.mark.netns
def test_the_daemon_without_bindings_reads_the_journal_with_journalctl_across_restarts(
    make_config: Any,
) -> None:
    """``bruteguard run`` where systemd-python cannot import: the sshd jail's source is
    journalctl's, says so in ``status``, reads only what came after its start, and after a
    restart exactly what was written while it was down (its cursor is in the store)."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root: it starts journald in private mount namespaces")
    config = make_config(
        enforcers=["dry-run"],
        jails={"sshd": {"backend": "auto", "journalmatch": ["SYSLOG_IDENTIFIER=bgtest"]}},
    )
    unshare = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
               "--kill-child", "--mount-proc", "--"]  # fmt: skip
    argv = [*unshare, sys.executable, "-c", _DAEMON, str(config)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    source = (
        '{"key": "journal:SYSLOG_IDENTIFIER=bgtest", "reading": true, '
        '"detail": "journal (SYSLOG_IDENTIFIER=bgtest) via journalctl"}'
    )
    assert result.stdout.splitlines() == [
        f"source: {source}",
        "first run read: 3",
        "second run read: 2",
    ], result.stdout + result.stderr
