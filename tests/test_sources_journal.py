"""JournalSource against real journal files written by systemd-journal-remote.

journal-remote turns journal export format on its stdin into a genuine ``.journal`` file,
so a test can choose the trusted fields (``_COMM``, ``_EXE``, ``_UID``, ``_SYSTEMD_UNIT``,
``_PID``, ``_HOSTNAME``) that journald would set, and keep the process running to append
entries while a source follows the file. That is also how the forged entries are made: the
fields are what journald records for ``logger -t sshd``, a renamed process and so on. The
last test checks that against a real journald that it starts in private mount and PID
namespaces (its own ``/run``), so no test writes to this host's journal. Needs the Debian
packages systemd-journal-remote, systemd, util-linux and bsdutils.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bruteguard.errors import ConfigError
from bruteguard.match.engine import Matcher
from bruteguard.sources import Source
from bruteguard.sources.journal import (
    UID_MIN,
    JournalSource,
    format_entry,
    journal_files,
    journal_key,
    read_uid_min,
)
from bruteguard.sources.journalctl import JournalctlSource
from bruteguard.sources.select import journal_reader
from journalkit import (
    BOOT_ID,
    SSHD_UNIT,
    T0,
    TIMEOUT,
    Reading,
    RemoteJournal,
    program_of,
    run,
    settle,
)


@pytest.fixture
def remote(tmp_path: Path) -> Any:
    journal = RemoteJournal(tmp_path)
    try:
        yield journal
    finally:
        journal.close()


def test_entries_become_one_line_each_with_trusted_program_names(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    remote.add("Failed password for root from 203.0.113.5 port 22 ssh2")
    remote.add(
        "Failed password for root from 198.51.100.7 port 22 ssh2",
        SYSLOG_IDENTIFIER="sshd",  # logger -t sshd, by a user in a login session
        _COMM="logger",
        _EXE="/usr/bin/logger",
        _UID="1000",
        _SYSTEMD_UNIT="session-3.scope",
    )
    remote.add("first line\nFailed password for x from 192.0.2.1 port 1 ssh2")
    remote.add(b"binary \xff\xfe message")
    remote.add("Out of memory", _COMM="", _PID="", _TRANSPORT="kernel", _HOSTNAME="evil host")
    remote.close()

    async def body() -> list[bytes]:
        source = JournalSource([], since=0, path=tmp_path)
        assert isinstance(source, Source)
        reading = Reading(source)
        lines = await reading.take(5)
        assert await reading.nothing_more()
        await reading.close()
        return lines

    assert run(body()) == [
        f"{remote.stamp(1)} web1 sshd[4001]: "
        "Failed password for root from 203.0.113.5 port 22 ssh2\n".encode(),
        f"{remote.stamp(2)} web1 untrusted-logger[4002]: "
        "Failed password for root from 198.51.100.7 port 22 ssh2\n".encode(),
        f"{remote.stamp(3)} web1 sshd[4003]: "
        "first line#012Failed password for x from 192.0.2.1 port 1 ssh2\n".encode(),
        f"{remote.stamp(4)} web1 sshd[4004]: ".encode() + b"binary \xff\xfe message\n",
        f"{remote.stamp(5)} evil_host kernel: Out of memory\n".encode(),
    ]


def test_journalmatch_entries_are_alternatives(remote: RemoteJournal, tmp_path: Path) -> None:
    remote.add("from the unit", _COMM="sshd-session", _EXE="/usr/lib/openssh/sshd-session")
    remote.add("from sshd outside the unit", _SYSTEMD_UNIT="other.service")
    remote.add(
        "forged",
        SYSLOG_IDENTIFIER="sshd",
        _COMM="logger",
        _EXE="/usr/bin/logger",
        _UID="1000",
        _SYSTEMD_UNIT="session-3.scope",
    )
    remote.add("unrelated", _COMM="cron", _EXE="/usr/sbin/cron", _SYSTEMD_UNIT="cron.service")
    remote.close()

    async def body() -> list[bytes]:
        source = JournalSource(SSHD_UNIT, since=0, path=tmp_path)
        reading = Reading(source)
        messages = await reading.messages(2)
        assert await reading.nothing_more()
        await reading.close()
        return messages

    assert run(body()) == [b"from the unit\n", b"from sshd outside the unit\n"]


def test_default_start_is_the_end_and_appended_entries_are_followed(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    for i in range(3):
        remote.add(f"before start {i}")

    async def body() -> list[bytes]:
        await settle(remote)
        source = JournalSource(SSHD_UNIT, path=tmp_path)
        reading = Reading(source)
        assert await reading.nothing_more()  # opened and positioned at the end
        remote.add("live 1")
        first = await reading.messages(1)
        remote.add("live 2")
        remote.add("live 3")
        rest = await reading.messages(2)
        await reading.close()
        return first + rest

    assert run(body()) == [b"live 1\n", b"live 2\n", b"live 3\n"]


def test_following_costs_no_cpu_while_idle_or_while_the_consumer_is_busy(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    remote.add("first")

    async def body() -> tuple[float, float]:
        await settle(remote)
        reading = Reading(JournalSource(SSHD_UNIT, path=tmp_path))
        began = time.process_time()
        assert await reading.nothing_more(0.5)
        idle = time.process_time() - began
        remote.add("live")
        assert await reading.messages(1) == [b"live\n"]
        began = time.process_time()
        for i in range(5):  # journal changes while nobody asks for the next batch
            remote.add(f"more {i}")
            await asyncio.sleep(0.1)
        busy = time.process_time() - began
        assert await reading.messages(5) == [f"more {i}\n".encode() for i in range(5)]
        await reading.close()
        return idle, busy

    idle, busy = run(body())
    assert idle < 0.05 and busy < 0.05, (idle, busy)


def test_resume_from_cursor_neither_repeats_nor_misses(
    remote: RemoteJournal, tmp_path: Path
) -> None:
    for i in range(3):
        remote.add(f"seen {i}")

    async def body() -> None:
        await settle(remote)
        reading = Reading(JournalSource(SSHD_UNIT, since=0, path=tmp_path))
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
        again = Reading(JournalSource(SSHD_UNIT, saved=saved, since=0, path=tmp_path))
        assert await again.messages(2) == [b"while stopped 1\n", b"while stopped 2\n"]
        assert await again.nothing_more()
        remote.add("live")
        assert await again.messages(1) == [b"live\n"]
        await again.close()

    run(body())


def test_since_starts_at_that_time(remote: RemoteJournal, tmp_path: Path) -> None:
    for i in range(4):
        remote.add(f"entry {i}")
    remote.close()
    since = (T0 + 3 * 1_000_000) / 1_000_000  # between entries 2 and 3

    async def body() -> list[bytes]:
        reading = Reading(JournalSource(SSHD_UNIT, since=since, path=tmp_path))
        messages = await reading.messages(2)
        assert await reading.nothing_more()
        await reading.close()
        return messages

    assert run(body()) == [b"entry 2\n", b"entry 3\n"]


def test_format_entry_escapes_every_newline_and_tokenises_names() -> None:
    entry = {
        "__REALTIME_TIMESTAMP": 1_795_423_801_000_001,
        "_HOSTNAME": b"host\nname",
        "_COMM": b"ss hd",
        "_EXE": b"/usr/sbin/ss hd",
        "_UID": b"0",
        "_PID": [b"12", b"13"],
        "MESSAGE": b"a\nb\n",
    }
    assert (
        format_entry(entry) == b"2026-11-23T08:50:01.000001+00:00 host_name ss_hd[12]: a#012b#012\n"
    )


def test_missing_bindings_raise_journal_unavailable() -> None:
    program = (
        "import asyncio, sys\n"
        "sys.modules['systemd'] = None  # as on a host without python3-systemd\n"
        "from bruteguard.sources.journal import JournalSource, JournalUnavailable\n"
        "from bruteguard.sources.journal import bindings_available\n"
        "assert not bindings_available()\n"
        "async def main():\n"
        "    try:\n"
        "        await anext(JournalSource(['_COMM=sshd']).batches())\n"
        "    except JournalUnavailable as error:\n"
        "        print(error)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    assert "cannot read the systemd journal with systemd-python" in result.stdout


def test_a_journal_is_read_only_where_there_are_journal_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert journal_files([str(empty), str(tmp_path / "missing")]) == []
    assert journal_reader([str(empty), str(tmp_path / "missing")]) is None
    machine = tmp_path / "persistent" / BOOT_ID
    machine.mkdir(parents=True)
    (machine / "system.journal").write_bytes(b"")
    assert journal_files([str(empty), str(tmp_path / "persistent")]) == [
        str(machine / "system.journal")
    ]
    # The bindings are installed here (the test extra's journal): the faster reader wins.
    assert journal_reader([str(empty), str(tmp_path / "persistent")]) == "systemd-python"


def test_bad_journalmatch_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not FIELD=value"):
        JournalSource(["sshd"])
    assert journal_key([]) == "journal"
    assert journal_key(["_COMM=sshd", "_SYSTEMD_UNIT=ssh.service"]) == journal_key(
        ["_SYSTEMD_UNIT=ssh.service", "_COMM=sshd"]
    )


# Forged sshd failures: each names 198.51.100.7, with the trusted fields journald records for
# that way of writing it. None may count.
FORGED_FAILURE = "Failed password for root from 198.51.100.7 port 22 ssh2"
FORGED: dict[str, dict[str, str]] = {
    "logger -t sshd, by a user": {
        "SYSLOG_IDENTIFIER": "sshd",
        "_COMM": "logger",
        "_EXE": "/usr/bin/logger",
        "_UID": "1000",
        "_SYSTEMD_UNIT": "session-3.scope",
    },
    "logger -t sshd, by root's cron job": {
        "SYSLOG_IDENTIFIER": "sshd",
        "_COMM": "logger",
        "_EXE": "/usr/bin/logger",
        "_UID": "0",
        "_SYSTEMD_UNIT": "cron.service",
    },
    "the real sshd binary, run by a user": {
        "_COMM": "sshd",
        "_EXE": "/usr/sbin/sshd",
        "_UID": "1000",
        "_SYSTEMD_UNIT": "",
    },
    "a web shell that renamed itself (prctl)": {
        "_COMM": "sshd",
        "_EXE": "/usr/bin/python3.11",
        "_UID": "33",
        "_SYSTEMD_UNIT": "apache2.service",
    },
    "a binary copied to /tmp/sshd by a web shell": {
        "_COMM": "sshd",
        "_EXE": "/tmp/sshd",
        "_UID": "33",
        "_SYSTEMD_UNIT": "apache2.service",
    },
    "sshd as root inside a login session": {
        "_COMM": "sshd",
        "_EXE": "/usr/sbin/sshd",
        "_UID": "0",
        "_SYSTEMD_UNIT": "session-3.scope",
    },
    "sshd under root's user manager": {
        "_COMM": "sshd",
        "_EXE": "/usr/sbin/sshd",
        "_UID": "0",
        "_SYSTEMD_UNIT": "user@0.service",
    },
    "no _EXE (journald could not look)": {"_COMM": "sshd", "_EXE": "", "_UID": "0"},
    "no _UID": {"_COMM": "sshd", "_EXE": "/usr/sbin/sshd", "_UID": ""},
}
# Genuine failures, each from another address.
GENUINE: list[tuple[str, dict[str, str]]] = [
    (
        "Failed password for root from 203.0.113.5 port 22 ssh2",
        {"_COMM": "sshd", "_EXE": "/usr/sbin/sshd", "_UID": "0", "_SYSTEMD_UNIT": "ssh.service"},
    ),
    (
        "Failed password for invalid user admin from 203.0.113.6 port 40022 ssh2",
        {
            "_COMM": "sshd-session",
            "_EXE": "/usr/lib/openssh/sshd-session",
            "_UID": "0",
            "_SYSTEMD_UNIT": "ssh.service",
        },
    ),
    (  # the listener after an upgrade replaced its binary, started outside systemd
        "Failed publickey for invalid user git from 2001:db8::66 port 4022 ssh2",
        {"_COMM": "sshd", "_EXE": "/usr/sbin/sshd (deleted)", "_UID": "0", "_SYSTEMD_UNIT": ""},
    ),
]


def test_only_sshd_vouched_for_by_the_kernel_counts(remote: RemoteJournal, tmp_path: Path) -> None:
    remote.add(GENUINE[0][0], **GENUINE[0][1])
    for fields in FORGED.values():
        remote.add(FORGED_FAILURE, **fields)
    remote.add("sshd[999]: " + FORGED_FAILURE, _COMM="myapp", _EXE="/opt/myapp/bin/myapp")
    for message, fields in GENUINE[1:]:
        remote.add(message, **fields)
    remote.close()
    total = len(GENUINE) + len(FORGED) + 1

    async def body() -> list[bytes]:
        reading = Reading(JournalSource([], since=0, path=tmp_path))  # every entry
        lines = await reading.take(total)
        assert await reading.nothing_more()
        await reading.close()
        return lines

    lines = run(body())
    stream = Matcher({"sshd": "sshd"}).stream()
    hits = stream.feed(b"".join(lines))
    assert sorted(hit[1] for hit in hits) == ["2001:db8::66", "203.0.113.5", "203.0.113.6"]
    assert stream.stats.lines == total
    forged = [line for line in lines if b"198.51.100.7" in line]
    assert len(forged) == len(FORGED) + 1  # every forged line is there, just not counted
    programs = sorted(program_of(line) for line in forged)
    assert programs == [b"logger", b"myapp", b"untrusted-logger"] + [b"untrusted-sshd"] * 7


@pytest.mark.parametrize("way", list(FORGED))
def test_each_forgery_alone_is_not_counted(way: str) -> None:
    """Each rule on its own, through the real matcher; the same entry, made genuine, counts."""
    fields = {"_HOSTNAME": "web1", "_PID": "4242", **FORGED[way]}
    genuine = {
        **fields,
        "_COMM": "sshd",
        "_EXE": "/usr/sbin/sshd",
        "_UID": "0",
        "_SYSTEMD_UNIT": "ssh.service",
    }

    def entry(fields: dict[str, str]) -> dict[str, Any]:
        raw: dict[str, Any] = {k: v.encode() for k, v in fields.items() if v}
        raw["MESSAGE"] = FORGED_FAILURE.encode()
        raw["__REALTIME_TIMESTAMP"] = T0
        return raw

    matcher = Matcher({"sshd": "sshd"})
    assert matcher.stream().feed(format_entry(entry(fields))) == []
    (hit,) = matcher.stream().feed(format_entry(entry(genuine)))
    assert hit[1] == "198.51.100.7"


@pytest.mark.parametrize(
    ("fields", "program"),
    [
        ({"_COMM": b"sshd", "_EXE": b"/usr/sbin/sshd", "_UID": b"0"}, b"sshd"),
        ({"_COMM": b"sshd", "_EXE": b"/sbin/sshd", "_UID": str(UID_MIN - 1).encode()}, b"sshd"),
        (
            {"_COMM": b"sshd", "_EXE": b"/usr/sbin/sshd", "_UID": str(UID_MIN).encode()},
            b"untrusted-sshd",
        ),
        ({"_COMM": b"sshd", "_EXE": b"/usr/sbin/sshd", "_UID": b"root"}, b"untrusted-sshd"),
        ({"_COMM": b"sshd", "_EXE": b"/usr/sbin/sshd", "_UID": b"-1"}, b"untrusted-sshd"),
        # the kernel keeps 15 bytes of the name: a shorter prefix is a rename
        (
            {"_COMM": b"systemd-journal", "_EXE": b"/lib/systemd/systemd-journald", "_UID": b"0"},
            b"systemd-journal",
        ),
        (
            {"_COMM": b"systemd-journ", "_EXE": b"/lib/systemd/systemd-journald", "_UID": b"0"},
            b"untrusted-systemd-journ",
        ),
        ({"_COMM": b"sshd", "_EXE": b"/usr/sbin/sshd-session", "_UID": b"0"}, b"untrusted-sshd"),
        ({"_COMM": b"sshd", "_EXE": b"/home/sshd", "_UID": b"0"}, b"untrusted-sshd"),
        ({"_COMM": b"sshd", "_EXE": b"sshd", "_UID": b"0"}, b"untrusted-sshd"),
        (
            {
                "_COMM": b"sshd",
                "_EXE": b"/usr/sbin/sshd",
                "_UID": b"0",
                "_SYSTEMD_UNIT": b"user-runtime-dir@1000.service",  # a system service
            },
            b"sshd",
        ),
        ({"_COMM": b"s\nshd", "_EXE": b"/tmp/x", "_UID": b"0"}, b"untrusted-s_shd"),
        ({"_COMM": b"sshd", "_EXE": b"/usr/sbin/sshd", "_TRANSPORT": b"kernel"}, b"kernel"),
        ({"_EXE": b"/usr/sbin/sshd", "_UID": b"0"}, b"-"),
    ],
)
def test_program_token(fields: dict[str, bytes], program: bytes) -> None:
    entry: dict[str, Any] = {"__REALTIME_TIMESTAMP": T0, "_HOSTNAME": b"web1", **fields}
    entry["MESSAGE"] = b"m"
    assert format_entry(entry) == b"2026-11-23T08:50:01.000000+00:00 web1 %s: m\n" % program


def test_uid_min_is_read_from_login_defs(tmp_path: Path) -> None:
    defs = tmp_path / "login.defs"
    assert read_uid_min(tmp_path / "missing") == 1000
    defs.write_bytes(b"# UID_MIN 10\nUID_MAX 60000\n\tUID_MIN\t\t 500 # old Red Hat\n")
    assert read_uid_min(defs) == 500
    defs.write_bytes(b"UID_MIN 500\nUID_MIN 0x7d0\n")  # the last one wins; hex as getdef
    assert read_uid_min(defs) == 2000
    for bad in (b"UID_MIN\n", b"UID_MIN lots\n", b"UID_MIN 0\n", b"UID_MIN -5\n", b"\xff\x00"):
        defs.write_bytes(bad)
        assert read_uid_min(defs) == 1000, bad
    assert read_uid_min(tmp_path) == 1000  # a directory: unreadable, not a crash
    assert read_uid_min() == UID_MIN  # what the module uses is this host's value


# Runs as root, as PID 1 of private mount and PID namespaces (see the test below): a private
# /run (and /var/log/journal) hides the host's journal sockets and files, so the journald
# started here is the only one these programs can reach, keeps its journal in this /run, and
# dies with the namespace. It neither reads nor writes the kernel log.
_PRIVATE_JOURNALD = r"""
import os, shutil, subprocess, sys, time

out, user, python = sys.argv[1], sys.argv[2], sys.argv[3]
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
with open(os.path.join(out, "journald.log"), "wb") as log:
    journald = subprocess.Popen(["/lib/systemd/systemd-journald"], stdout=log, stderr=log,
                                env={"SYSTEMD_LOG_TARGET": "console", "PATH": "/usr/bin:/bin"})
deadline = time.monotonic() + 10
while not os.path.exists(DEVLOG):
    if time.monotonic() > deadline:
        sys.exit("journald did not create " + DEVLOG)
    time.sleep(0.05)

def recorded():
    run("journalctl", "--sync")
    return subprocess.run(["journalctl", "-D", "/run/log/journal", "-o", "cat", "--no-pager"],
                          capture_output=True, text=True, timeout=10, check=True).stdout

def logged_by(argv, message):
    # The sender stays alive until journald has recorded its line: journald reads _COMM and
    # _EXE from /proc, so a sender that had already exited would leave them out.
    sender = subprocess.Popen(argv, stdin=subprocess.PIPE)
    sender.stdin.write(message.encode() + b"\n")
    sender.stdin.flush()
    deadline = time.monotonic() + 10
    while message not in recorded():
        if time.monotonic() > deadline:
            sys.exit("journald did not record the line of " + argv[-1])
        time.sleep(0.05)
    sender.stdin.close()
    sender.wait(10)

failure = "Failed password for root from 198.51.100.7 port {} ssh2"
as_user = ["setpriv", "--reuid", user, "--regid", user, "--clear-groups"]
as_www = ["setpriv", "--reuid", "33", "--regid", "33", "--clear-groups"]
logger = ["-u", DEVLOG, "-t", "sshd"]
logged_by([*as_user, "logger", *logger], failure.format(1))
logged_by(["logger", *logger], failure.format(2))
os.mkdir("/run/fake")
shutil.copy("/usr/bin/logger", "/run/fake/sshd")
logged_by([*as_www, "/run/fake/sshd", *logger], failure.format(3))
renamed = (
    "import ctypes, os, socket, sys\n"
    "ctypes.CDLL(None).prctl(15, b'sshd', 0, 0, 0)  # PR_SET_NAME\n"
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
    "for line in sys.stdin:\n"
    "    s.sendto(b'<38>sshd[%d]: %s' % (os.getpid(), line.strip().encode()), sys.argv[1])\n"
)
logged_by([*as_www, python, "-c", renamed, DEVLOG], failure.format(4))
journald.terminate()
journald.wait(10)
shutil.copytree("/run/log/journal", os.path.join(out, "journal"))
"""


@pytest.mark.netns
def test_a_real_journald_records_forgeries_as_untrusted(tmp_path: Path) -> None:
    """``logger -t sshd`` and a renamed process, logged through a private, real journald.

    Checks that the fields the export-format tests above give their forged entries are the
    ones journald really records, and that those lines count for nothing.
    """
    if os.geteuid() != 0:
        pytest.fail("this test needs root: it starts journald in private mount namespaces")
    for tool, package in [
        ("unshare", "util-linux"),
        ("setpriv", "util-linux"),
        ("logger", "bsdutils"),
        ("journalctl", "systemd"),
        ("/lib/systemd/systemd-journald", "systemd"),
    ]:
        if shutil.which(tool) is None:
            pytest.fail(f"this test needs {tool} (Debian package {package})")
    python = "/usr/bin/python3"
    argv = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
            "--kill-child", "--mount-proc", "--", python, "-c", _PRIVATE_JOURNALD,
            str(tmp_path), str(UID_MIN), python]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    journald_log = (tmp_path / "journald.log").read_text(errors="replace")
    assert result.returncode == 0, result.stderr + journald_log

    async def body(source: Source) -> list[bytes]:
        reading = Reading(source)
        lines: list[bytes] = []
        while not await reading.nothing_more():
            lines += await reading.take(1)
        await reading.close()
        return lines

    lines = run(body(JournalSource([], since=0, path=tmp_path / "journal")))
    # journalctl's JSON carries the same fields: the same lines, the same verdicts
    assert run(body(JournalctlSource([], since=0, path=tmp_path / "journal"))) == lines
    forged = {
        line.split(b" port ")[1][:1]: program_of(line) for line in lines if b"198.51.100.7" in line
    }
    assert forged == {
        b"1": b"untrusted-logger",  # a regular user's `logger -t sshd`
        b"2": b"logger",  # root's: vouched for, but not sshd
        b"3": b"untrusted-sshd",  # www-data's copy of a binary at /run/fake/sshd
        b"4": b"untrusted-sshd",  # www-data's python that renamed itself sshd
    }, lines
    # journald's own lines: comm "systemd-journal", the first 15 bytes of its file's name
    assert any(b" systemd-journal[" in line for line in lines), lines
    stream = Matcher({"sshd": "sshd"}).stream()
    assert stream.feed(b"".join(lines)) == []
    assert stream.stats.lines == len(lines)
