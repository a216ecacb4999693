"""The real ``bruteguard run`` process with the dry-run enforcer: pipeline, restarts,
control socket, signals and systemd notification. (Firewall effects are proven with real
nftables in test_e2e_sshd.py; here the ledger and the control socket are the observables.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).with_name("bruteguard")


def _stamp() -> str:
    return time.strftime("%b %e %H:%M:%S")


def _failure(pid: int, address: str) -> str:
    return (
        f"{_stamp()} host sshd[{pid}]: Failed password for root from {address} port 4{pid} ssh2\n"
    )


def _wait(probe, timeout: float = 10.0, what: str = "condition", interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Daemon:
    def __init__(self, tmp: Path, maxretry: int = 3, socket_dir: Path | None = None) -> None:
        self.tmp = tmp
        self.socket = (socket_dir or tmp) / "bg.sock"
        self.log = tmp / "auth.log"
        self.log.touch()
        self.config = tmp / "bg.toml"
        self.config.write_text(
            f'store = "{tmp}/bg.db"\nsocket = "{self.socket}"\nenforcers = ["dry-run"]\n'
            f'[jails.sshd]\nbackend = "file"\nlogpath = ["{self.log}"]\n'
            f'maxretry = {maxretry}\nbantime = "1h"\n'
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> None:
        """Start ``bruteguard run``; return once ``status`` answers, i.e. its logs are followed."""
        with open(self.tmp / "daemon.err", "ab") as stderr:
            self.process = subprocess.Popen(
                [str(BIN), "run", "--config", str(self.config)],
                stderr=stderr,
                env={**os.environ, **(env or {})},
            )

        def answers() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"bruteguard run exited early:\n{self.errors()}")
            return self.cli("status", check=False).returncode == 0

        _wait(answers, what="`bruteguard status` to answer")

    def failures(self) -> int:
        """Failures the running daemon has read from the log (its own counter)."""
        status = json.loads(self.cli("status", "--json").stdout)
        return sum(jail["failures"] for jail in status["jails"])

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(BIN), *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"bruteguard {args}: {done.returncode}\n{done.stderr}")
        return done

    def bans(self) -> list[dict]:
        return json.loads(self.cli("bans", "--json").stdout)

    def append(self, text: str) -> None:
        with self.log.open("a") as handle:
            handle.write(text)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=20)

    def errors(self) -> str:
        return (self.tmp / "daemon.err").read_text(errors="replace")


@pytest.fixture
def daemon(tmp_path: Path):
    instance = Daemon(tmp_path)
    yield instance
    if instance.process is not None and instance.process.poll() is None:
        instance.process.kill()
        instance.process.wait(timeout=20)


def test_bans_after_maxretry_and_lifts_by_hand(daemon: Daemon) -> None:
    daemon.start()
    daemon.append(_failure(1, "198.51.100.7") + _failure(2, "198.51.100.7"))
    _wait(lambda: daemon.failures() == 2, what="the daemon to read two failures")
    assert daemon.bans() == []
    daemon.append(_failure(3, "198.51.100.7"))
    bans = _wait(daemon.bans, what="a ban")
    assert [(b["ip"], b["jail"], b["failures"]) for b in bans] == [("198.51.100.7", "sshd", 3)]
    status = json.loads(daemon.cli("status", "--json").stdout)
    assert status["jails"][0]["banned"] == ["198.51.100.7"]
    assert "1 lifted" not in daemon.cli("unban", "198.51.100.7").stdout
    assert daemon.bans() == []
    assert daemon.stop() == 0


def test_restart_resumes_exactly_where_it_stopped(daemon: Daemon) -> None:
    """Lines before a stop are not counted twice; lines written while down are not missed."""
    daemon.start()
    daemon.append(_failure(1, "203.0.113.5") + _failure(2, "203.0.113.5"))
    _wait(lambda: daemon.failures() == 2, what="the daemon to read two failures")
    assert daemon.stop() == 0
    daemon.append(_failure(3, "203.0.113.5"))  # written while bruteguard was down
    daemon.start()
    bans = _wait(daemon.bans, what="the ban from the line written while down")
    assert [b["ip"] for b in bans] == ["203.0.113.5"]
    assert daemon.failures() == 1  # only the line written while down was read
    # A second restart must not replay the three lines into a second ban decision. A
    # source reads any backlog before `status` first answers, so a replay would show now.
    assert daemon.stop() == 0
    daemon.start()
    assert daemon.failures() == 0
    assert len(daemon.bans()) == 1
    assert daemon.stop() == 0
    assert daemon.errors().count("ban 203.0.113.5 in sshd") == 1


def test_an_unban_holds_across_a_restart(daemon: Daemon) -> None:
    """The failures behind a ban lifted by ``unban`` are replayed from the ledger on start;
    they must not revive it: the next maxretry failures ban again at once, not after the
    lifted ban's hour."""
    daemon.start()
    daemon.append("".join(_failure(pid, "198.51.100.7") for pid in (1, 2, 3)))
    _wait(daemon.bans, what="the first ban")
    daemon.cli("unban", "198.51.100.7")
    assert daemon.stop() == 0
    daemon.start()
    daemon.append(_failure(4, "198.51.100.7") + _failure(5, "198.51.100.7"))
    _wait(lambda: daemon.failures() == 2, what="two new failures read")
    assert daemon.bans() == []  # not before maxretry new ones
    daemon.append(_failure(6, "198.51.100.7"))
    bans = _wait(daemon.bans, what="the ban after the restart")
    assert [(b["ip"], b["failures"]) for b in bans] == [("198.51.100.7", 3)]
    assert daemon.stop() == 0


def test_stop_keeps_bans_and_stop_unban_lifts_them(daemon: Daemon) -> None:
    daemon.start()
    daemon.cli("ban", "198.51.100.9", "--for", "1h")
    assert daemon.stop() == 0
    assert [b["ip"] for b in daemon.bans()] == ["198.51.100.9"]  # read from the ledger
    daemon.start()
    assert [b["ip"] for b in daemon.bans()] == ["198.51.100.9"]
    assert "stopped and lifted every ban" in daemon.cli("stop", "--unban").stdout
    assert daemon.process.wait(timeout=20) == 0
    assert daemon.bans() == []


def test_control_socket_refuses_non_root(tmp_path: Path) -> None:
    shared = Path(tempfile.mkdtemp(prefix="bg-sock-"))  # traversable by nobody, unlike tmp_path
    shared.chmod(0o755)
    daemon = Daemon(tmp_path, socket_dir=shared)
    try:
        daemon.start()
        assert daemon.socket.stat().st_mode & 0o777 == 0o600
        script = (
            "import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX)\n"
            "try:\n s.connect(sys.argv[1])\nexcept PermissionError:\n print('denied')\n"
            'else:\n s.sendall(b\'{"command":"bans"}\\n\'); print(s.recv(999).decode())\n'
        )
        as_nobody = [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            sys.executable,
            "-c",
            script,
            str(daemon.socket),
        ]
        done = subprocess.run(as_nobody, capture_output=True, text=True, timeout=30)
        assert done.stdout.strip() == "denied", done.stdout + done.stderr
        # Even through a socket made world-writable by mistake, the peer's uid is checked.
        daemon.socket.chmod(0o666)
        done = subprocess.run(as_nobody, capture_output=True, text=True, timeout=30)
        assert "root only" in done.stdout, done.stdout + done.stderr
        assert daemon.bans() == []
        assert daemon.stop() == 0
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(timeout=20)
        shutil.rmtree(shared, ignore_errors=True)


def _raw_request(path: Path, payload: bytes) -> dict:
    """One request line straight to the control socket, bypassing the CLI's own checks."""
    with socket.socket(socket.AF_UNIX) as raw:
        raw.settimeout(10)
        raw.connect(str(path))
        raw.sendall(payload)
        return json.loads(raw.makefile("rb").readline())


def test_bad_control_requests_get_clear_errors(daemon: Daemon) -> None:
    daemon.start()
    done = daemon.cli("ban", "not-an-address", check=False)
    assert done.returncode == 2 and "not an IP address" in done.stderr  # bad usage
    done = daemon.cli("ban", "198.51.100.7", "--jail", "nosuch", check=False)
    assert done.returncode == 1 and "no enabled jail" in done.stderr
    # The daemon checks too: the socket is an interface of its own.
    reply = _raw_request(daemon.socket, b'{"command": "ban", "ip": "not-an-address"}\n')
    assert not reply["ok"] and "not an IP address" in reply["error"], reply
    reply = _raw_request(daemon.socket, b"\xff\xfe garbage\n")
    assert not reply["ok"], reply
    assert daemon.bans() == []
    assert daemon.process.poll() is None
    assert daemon.stop() == 0


def test_bans_with_50k_in_the_ledger_are_streamed_whole(daemon: Daemon) -> None:
    """`bans` through the socket: the answer comes as pages (JSON lines), every active ban
    exactly once, the expired and lifted ones not at all; the CLI prints all of them."""
    from bruteguard.model import Ban
    from bruteguard.store.sqlite import SqliteStore

    now = time.time()
    active = [f"198.51.{i >> 8 & 255}.{i & 255}" for i in range(25_000)]
    active += [f"2001:db8:{i >> 16:x}:{i & 0xFFFF:x}::/64" for i in range(25_000)]
    with SqliteStore(daemon.tmp / "bg.db") as store:
        store.add_bans(Ban(ip, "sshd", now - 10, now + 3600, 3, "3 failures") for ip in active)
        store.add_bans([Ban("203.0.113.1", "sshd", now - 99, now - 9, 3, "over")])
        store.add_bans([Ban("203.0.113.2", "sshd", now - 9, now + 3600, 3, "lifted")])
        store.lift_bans(["203.0.113.2"], now)
    daemon.start()

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(30)
        client.connect(str(daemon.socket))
        client.sendall(b'{"command": "bans"}\n')
        lines = client.makefile("rb").read().splitlines()
    head, *pages, end = map(json.loads, lines)
    assert head == {"ok": True, "stream": True}
    assert len(pages) == 5 and all(len(page) == 10_000 for page in pages)
    assert end == {"end": True, "count": 50_000}
    streamed = [ban["ip"] for page in pages for ban in page]
    assert streamed == active, "every active ban once, oldest first"

    assert [ban["ip"] for ban in daemon.bans()] == active
    table = daemon.cli("bans").stdout.splitlines()
    assert len(table) == 1 + 50_000 and table[1].startswith("198.51.0.0 ")
    assert daemon.stop() == 0


def _evidence(daemon: Daemon) -> dict:
    return json.loads(daemon.cli("status", "--json").stdout)["identity"]


def test_sighup_with_a_broken_config_keeps_running(daemon: Daemon) -> None:
    daemon.start()
    evidence = _evidence(daemon)
    assert evidence["evidence"] == "conntrack", evidence
    good = daemon.config.read_text()
    daemon.config.write_text(good.replace("maxretry = 3", 'maxretry = "three"'))
    daemon.process.send_signal(signal.SIGHUP)
    _wait(lambda: "reload refused" in daemon.errors(), what="the refused reload")
    daemon.config.write_text(good.replace("maxretry = 3", "maxretry = 1"))
    daemon.process.send_signal(signal.SIGHUP)
    _wait(lambda: "configuration reloaded" in daemon.errors(), what="the reload")
    daemon.append(_failure(7, "198.51.100.77"))
    _wait(daemon.bans, what="a ban under the reloaded maxretry = 1")
    # maxretry is nothing the identity stage depends on: its evidence was kept whole.
    assert _evidence(daemon)["complete_since"] == evidence["complete_since"]
    # Other ports are: the evidence starts again.
    daemon.config.write_text(good.replace("maxretry = 3", "maxretry = 1\nport = [2222]"))
    daemon.process.send_signal(signal.SIGHUP)
    _wait(lambda: daemon.errors().count("configuration reloaded") == 2, what="the second reload")
    assert _evidence(daemon)["complete_since"] > evidence["complete_since"]
    assert daemon.stop() == 0


def test_tells_systemd_ready_and_stopping(daemon: Daemon) -> None:
    path = daemon.tmp / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(15)
        daemon.start(env={"NOTIFY_SOCKET": str(path)})
        assert listener.recv(4096).split(b"\n")[0] == b"READY=1"
        daemon.process.send_signal(signal.SIGTERM)
        assert listener.recv(4096) == b"STOPPING=1"
    assert daemon.process.wait(timeout=20) == 0


def test_missing_nft_is_a_clear_error_with_nothing_half_made(tmp_path: Path) -> None:
    config = tmp_path / "bg.toml"
    config.write_text(
        f'store = "{tmp_path}/bg.db"\nsocket = "{tmp_path}/bg.sock"\n'
        f'[jails.sshd]\nbackend = "file"\nlogpath = ["{tmp_path}/auth.log"]\n'
    )
    # In a throw-away network namespace: should the daemon find nft after all, the host's
    # firewall must still never be touched.
    done = subprocess.run(
        ["/usr/bin/unshare", "--net", str(BIN), "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PATH": str(tmp_path)},  # no nft (nor ip) on this PATH
    )
    assert done.returncode == 1
    assert "nft" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "bg.sock").exists()


def test_a_failure_naming_a_host_without_connection_evidence_is_shown_never_banned(
    daemon: Daemon,
) -> None:
    """With connection tracking off nothing can tie a name to a connection: no DNS answer
    makes it anyone's; ``status`` lists it, with the reason, its escapes shown as text.
    (Attribution itself: test_identity_stage.py and test_e2e_identity.py.)"""
    text = daemon.config.read_text()
    daemon.config.write_text(
        text.replace("[jails.sshd]", "[identity]\nconntrack = false\n[jails.sshd]")
    )
    daemon.start()
    name = "nx\x1b[2J.attacker.test"  # a PTR may carry terminal escapes
    daemon.append(
        "".join(
            f"{_stamp()} host sshd[{pid}]: Failed password for root from {name} port 4 ssh2\n"
            for pid in (1, 2, 3, 4)
        )
    )
    status = _wait(
        lambda: (
            (s := json.loads(daemon.cli("status", "--json").stdout))["unattributed"]
            and s["jails"][0]["unattributed"] == 4
            and s
        ),
        what="four unattributed failures",
    )
    jail = next(j for j in status["jails"] if j["name"] == "sshd")
    assert (jail["failures"], jail["banned"]) == (0, [])
    reason = "no connection evidence: identity.conntrack is off"
    assert {(u["name"], u["reason"], tuple(u["candidates"])) for u in status["unattributed"]} == {
        (name, reason, ())
    }
    assert status["identity"]["evidence"] == "none"
    text = daemon.cli("status").stdout
    assert "unattributed: 4" in text
    assert f"nx\\x1b[2J.attacker.test: {reason}; real connections: none" in text
    assert "host names: never attributed (identity.conntrack is off)" in text
    assert "\x1b" not in text
    assert daemon.bans() == []


def _failure_at(moment: float, pid: int, address: str) -> str:
    """A failure line stamped ``moment``: the log's time is the detector's clock."""
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime(moment))
    return f"{stamp} host sshd[{pid}]: Failed password for root from {address} port 4{pid} ssh2\n"


def test_ban_times_grow_and_recidive_follows_across_a_sigkill(tmp_path: Path) -> None:
    """The log's clock runs ahead: bans one, two and three of one address come an hour
    and more apart. Growth (1h, 2h, 4h) and the recidive count survive a SIGKILL."""
    daemon = Daemon(tmp_path, maxretry=1)
    with daemon.config.open("a") as config:
        config.write('bantime_factor = 2\n[jails.recidive]\nmaxretry = 3\nfindtime = "1d"\n')
    attacker = "198.51.100.7"
    start = time.time() - 60
    moments = [start, start + 3601, start + 3601 + 7201]
    try:
        daemon.start()
        daemon.append(_failure_at(moments[0], 1, attacker))
        _wait(lambda: len(daemon.bans()) == 1, what="the first ban")
        daemon.append(_failure_at(moments[1], 2, attacker))
        _wait(lambda: [b["step"] for b in daemon.bans()] == [1, 2], what="the second ban")
        daemon.process.kill()  # no clean shutdown
        daemon.process.wait(timeout=20)
        daemon.start()
        daemon.append(_failure_at(moments[2], 3, attacker))
        bans = _wait(lambda: len(b := daemon.bans()) == 4 and b, what="the third ban")
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(timeout=20)
    # The log's clock is ahead of the wall clock: the earlier bans are still active too.
    by_step = {(ban["jail"], ban["step"]): ban for ban in bans}
    assert set(by_step) == {("sshd", 1), ("sshd", 2), ("sshd", 3), ("recidive", 1)}
    sshd, recidive = by_step[("sshd", 3)], by_step[("recidive", 1)]
    assert sshd["step"] == 3
    assert sshd["until"] - sshd["start"] == pytest.approx(4 * 3600)
    assert int(sshd["start"]) == int(moments[2])
    assert (recidive["ip"], recidive["step"]) == (attacker, 1)
    assert recidive["until"] - recidive["start"] == pytest.approx(7 * 86400)
    assert recidive["reason"] == "3 bans in 3h"
    table = daemon.cli("bans").stdout
    assert "recidive" in table and " 3  " in table  # the step column


def test_networks_are_banned_by_hand_and_unbanning_an_address_lifts_what_covers_it(
    daemon: Daemon,
) -> None:
    daemon.start()
    done = daemon.cli("ban", "198.51.100.77/24", "--for", "30d")
    assert "banned 198.51.100.0/24 in sshd" in done.stdout
    [ban] = daemon.bans()
    assert (ban["ip"], ban["failures"]) == ("198.51.100.0/24", 0)
    assert ban["until"] - ban["start"] == pytest.approx(30 * 86400)
    daemon.cli("ban", "2001:db8:bad::/48")
    assert {b["ip"] for b in daemon.bans()} == {"198.51.100.0/24", "2001:db8:bad::/48"}
    done = daemon.cli("unban", "198.51.100.7")
    assert done.stdout.strip() == (
        "unbanned 198.51.100.7 and the bans covering it: 198.51.100.0/24"
    )
    assert [b["ip"] for b in daemon.bans()] == ["2001:db8:bad::/48"]
    assert "(it was not banned)" in daemon.cli("unban", "203.0.113.9").stdout


def test_the_admin_is_told_of_each_ban_by_webhook(tmp_path: Path) -> None:
    """``[notify]``: a real apprise ``json://`` webhook on loopback hears of the ban."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    posts: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    instance = Daemon(tmp_path, maxretry=1)
    with instance.config.open("a") as config:
        config.write(f'[notify]\nurls = ["json://127.0.0.1:{server.server_address[1]}/hook"]\n')
    try:
        instance.start()
        instance.append(_failure(7, "203.0.113.77"))
        _wait(lambda: posts, 15, "the ban notification")
        assert "203.0.113.77" in posts[0]["title"]
        assert "sshd" in posts[0]["message"] and "203.0.113.77" in posts[0]["message"]
    finally:
        if instance.process is not None and instance.process.poll() is None:
            instance.stop()
        server.shutdown()
        server.server_close()


def _jail(status: dict, name: str) -> dict:
    (jail,) = [jail for jail in status["jails"] if jail["name"] == name]
    return jail


def test_a_jail_whose_log_is_missing_says_it_protects_nothing_until_the_log_appears(
    daemon: Daemon,
) -> None:
    """Never a claim of protection that isn't there: the jail is DEGRADED in status, in the
    log and in systemd's STATUS=; the missing log is watched, and read from its first line
    the moment it appears."""
    daemon.log.unlink()
    path = daemon.tmp / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(15)
        daemon.start(env={"NOTIFY_SOCKET": str(path)})
        ready = listener.recv(4096).decode()
    assert ready.startswith("READY=1\nSTATUS=protecting ")
    degraded_now = ready.partition("DEGRADED (no readable log): ")[2].split(", ")
    assert "sshd" in degraded_now
    assert "jail sshd protects nothing" in daemon.errors()
    status = json.loads(daemon.cli("status", "--json").stdout)
    assert "sshd" in status["degraded"]
    jail = _jail(status, "sshd")
    assert jail["state"] == "degraded"
    assert [s["reading"] for s in jail["sources"]] == [False]
    assert "does not exist" in jail["sources"][0]["detail"]
    assert "sshd" in daemon.cli("status").stdout.partition("DEGRADED: ")[2].split(" read no")[0]

    daemon.log.write_text(_failure(1, "198.51.100.7") + _failure(2, "198.51.100.8"))
    _wait(lambda: daemon.failures() == 2, what="the new log's first lines to be read")
    status = json.loads(daemon.cli("status", "--json").stdout)
    assert "sshd" not in status["degraded"]
    jail = _jail(status, "sshd")
    assert jail["state"] == "protected"
    assert jail["sources"][0]["lines"] == 2 and jail["sources"][0]["last_line"] is not None
    assert f"reads file {daemon.log}: 2 lines" in daemon.cli("status", "sshd").stdout


def test_status_says_where_each_jail_bans_and_how_far_its_log_is_read(daemon: Daemon) -> None:
    """`bruteguard -c FILE status` (the option before the command); a jail with no ports
    bans on every port and protocol; each file source says bytes read of its size."""
    daemon.append(_failure(1, "198.51.100.7") * 3)
    daemon.start()
    daemon.append(_failure(2, "198.51.100.8"))
    _wait(lambda: daemon.failures() == 1, what="the new line to be read")
    done = subprocess.run(
        [str(BIN), "-c", str(daemon.config), "status"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    (recidive,) = [line for line in lines if line.startswith("jail recidive:")]
    assert recidive.endswith(" on every port and protocol")
    (sshd,) = [line for line in lines if line.startswith("jail sshd:")]
    assert sshd.endswith(" on port 22")
    assert "catching up" not in done.stdout  # read to the end
    status = json.loads(daemon.cli("status", "sshd", "--json").stdout)
    (source,) = _jail(status, "sshd")["sources"]
    size = daemon.log.stat().st_size
    assert (source["read_bytes"], source["size_bytes"]) == (size, size)


def test_a_source_behind_its_log_says_how_far_it_has_read() -> None:
    from bruteguard.cli.daemon import _source_line

    source = {"reading": True, "detail": "file /var/log/auth.log", "lines": 9, "last_line": None}
    mib = 1 << 20
    behind = {**source, "read_bytes": 3 * mib, "size_bytes": 12 * mib}
    assert _source_line(behind) == (
        "reads file /var/log/auth.log: 9 lines, no line yet;"
        " catching up: 3.0 of 12.0 MiB read (25%)"
    )
    # Less than a MiB behind is following, not catching up; a journal tells no sizes.
    close = {**source, "read_bytes": 12 * mib - 10, "size_bytes": 12 * mib}
    assert _source_line(close) == _source_line(source)
    assert _source_line(source) == "reads file /var/log/auth.log: 9 lines, no line yet"


def test_status_answers_while_a_big_backlog_is_read_and_says_how_far(tmp_path: Path) -> None:
    """`run --since` over a 14 MiB log: `status` answers between batches, its bytes read grow
    up to the file's size, and the text says `catching up` until then."""
    from bruteguard.cli.daemon import _source_line
    from bruteguard.control import request

    daemon = Daemon(tmp_path)
    now = time.time()
    with daemon.log.open("w") as log:
        for n in range(150_000):
            stamp = time.strftime("%b %e %H:%M:%S", time.localtime(now - 600 + n // 300))
            log.write(
                f"{stamp} web1 sshd[{n}]: Failed password for root from"
                f" 198.51.{n % 200}.{n % 250 + 1} port {n % 60000} ssh2\n"
            )
    size = daemon.log.stat().st_size
    with open(tmp_path / "daemon.err", "ab") as stderr:
        process = subprocess.Popen(
            [str(BIN), "run", "--since", "1h", "--config", str(daemon.config)], stderr=stderr
        )
    try:

        def sshd_source() -> dict | None:
            try:
                status = request(str(daemon.socket), "status", jail="sshd")
            except Exception:  # not listening yet
                assert process.poll() is None, daemon.errors()
                return None
            return _jail(status, "sshd")["sources"][0]

        seen = [_wait(sshd_source, what="the first status answer")]
        while seen[-1]["read_bytes"] < size:
            seen.append(_wait(sshd_source, timeout=60, what="status"))
        assert seen[0]["read_bytes"] < size  # answered in the middle of the backlog
        text = _source_line(seen[0])  # what `bruteguard status` prints for it
        assert "catching up: " in text and f" of {size / (1 << 20):.1f} MiB read (" in text
        reads = [source["read_bytes"] for source in seen]
        assert reads == sorted(reads) and {s["size_bytes"] for s in seen} == {size}
        assert _wait(lambda: daemon.failures() == 150_000, timeout=60, what="every line")
        assert "catching up" not in daemon.cli("status", "sshd").stdout
    finally:
        process.terminate()
        process.wait(timeout=30)


def _timed_stop(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    """SIGTERM; the exit status and how long the process took to end."""
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=30)
    return code, time.monotonic() - began


def test_a_fifo_at_a_log_path_stalls_nothing_and_sigterm_still_stops_within_5s(
    daemon: Daemon,
) -> None:
    """Whoever can write in a watched log directory used to switch bruteguard off with a
    FIFO (a blocking open in the event loop: no `status`, no bans, SIGTERM ignored)."""
    pipe = daemon.tmp / "trap.log"
    os.mkfifo(pipe)
    daemon.config.write_text(
        daemon.config.read_text()
        + f'[jails.trap]\nfilter = "sshd"\nbackend = "file"\nlogpath = ["{pipe}"]\n'
    )
    daemon.start()
    status = json.loads(daemon.cli("status", "--json").stdout)
    assert "trap" in status["degraded"] and "sshd" not in status["degraded"]
    (source,) = _jail(status, "trap")["sources"]
    assert not source["reading"]
    assert source["detail"] == (
        f"file {pipe} is a FIFO (named pipe), not a regular file: refused"
        " (watched until a log file is there)"
    )
    assert "is a FIFO (named pipe)" in daemon.cli("status", "trap").stdout
    daemon.append(_failure(1, "198.51.100.7") * 3)  # the other source bans as ever
    assert [b["ip"] for b in _wait(daemon.bans, what="a ban from auth.log")] == ["198.51.100.7"]
    assert daemon.process is not None
    code, took = _timed_stop(daemon.process)
    assert code == 0 and took < 5, (code, took, daemon.errors())
    assert "Traceback" not in daemon.errors()


def test_a_directory_at_the_log_path_is_refused_until_a_log_file_replaces_it(
    daemon: Daemon,
) -> None:
    daemon.log.unlink()
    daemon.log.mkdir()
    daemon.start()
    status = json.loads(daemon.cli("status", "--json").stdout)
    assert "sshd" in status["degraded"]
    (source,) = _jail(status, "sshd")["sources"]
    assert "is a directory, not a regular file: refused" in source["detail"]
    daemon.log.rmdir()
    daemon.log.write_text(_failure(1, "203.0.113.9") * 3)
    assert [b["ip"] for b in _wait(daemon.bans, what="the new file's lines")] == ["203.0.113.9"]
    status = json.loads(daemon.cli("status", "--json").stdout)
    assert "sshd" not in status["degraded"] and daemon.failures() == 3
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.errors()


def test_sigterm_stops_within_5s_even_while_the_enforcer_hangs(tmp_path: Path) -> None:
    """A firewall command that does not return (here: a ban command that sleeps) cannot
    hold the daemon past 5 s: the ban is in the store already, and the next start hands
    it to the firewall again."""
    instance = Daemon(tmp_path)
    instance.config.write_text(
        'command_ban = ["sleep", "9"]\ncommand_unban = ["true"]\n'
        + instance.config.read_text().replace('"dry-run"', '"command"')
        # a real enforcer would install the conntrack rule in this (the host's) namespace,
        # and the forced exit would leave it there: the host's firewall is not the test's
        + "[identity]\nconntrack = false\n"
    )
    instance.start()
    try:
        instance.append(_failure(1, "198.51.100.20") * 3)
        _wait(instance.bans, what="the ban in the store (the ban command now sleeps)")
        time.sleep(0.3)
        assert instance.process is not None
        code, took = _timed_stop(instance.process)
        assert took < 5, (took, instance.errors())
        assert code == 1 and "not stopped 4.5s after the signal" in instance.errors()
    finally:
        if instance.process is not None and instance.process.poll() is None:
            instance.process.kill()
            instance.process.wait(timeout=20)


def test_a_backtracking_filter_on_the_same_log_as_sshd_leaves_sshd_deciding_at_once(
    daemon: Daemon,
) -> None:
    """One auth.log read for the built-in sshd jail and for a jail whose imported filter
    backtracks: a flood of hostile lines in that log costs the sshd jail nothing (the
    compiled pass decides on the event loop, the imported filter works on its own thread
    and drops what it cannot match in time), and status says which jail is degraded."""
    from bruteguard.control import request

    evil = daemon.tmp / "evil.conf"
    evil.write_text(
        "[Definition]\nfailregex = ^\\s*\\S+ slowapp: login failed for (?:\\w|\\w\\w)+ "
        "from <HOST>$\n"
    )
    daemon.config.write_text(
        daemon.config.read_text()
        + f'[jails.slowapp]\nfilter = "{evil}"\nbackend = "file"\nlogpath = ["{daemon.log}"]\n'
        'port = [8080]\nmaxretry = 3\nbantime = "1h"\n'
    )
    daemon.start()
    hostile = f"{_stamp()} host slowapp: login failed for {'a' * 40}!\n"
    daemon.append(hostile * 400)  # 20 s of backtracking, were it matched line by line
    started = time.monotonic()
    daemon.append(_failure(1, "198.51.100.7") * 3)
    # Asked through the socket itself: a CLI process's start-up is no part of the delay.
    bans = _wait(lambda: request(str(daemon.socket), "bans"), what="the sshd ban")
    took = time.monotonic() - started
    assert [(b["ip"], b["jail"]) for b in bans] == [("198.51.100.7", "sshd")]
    assert took < 1.0, f"the sshd ban took {took:.1f}s behind the hostile flood"
    # The hostile batch ran over its budget (the lane may have recovered already, if the
    # sshd lines came as a batch of their own): the log and the count tell the story.
    degraded = "jail slowapp degraded: its filter is over its time budget"
    _wait(lambda: degraded in daemon.errors(), what="the log to say slowapp is degraded")
    status = request(str(daemon.socket), "status")
    slow = _jail(status, "slowapp")
    assert 0 < slow["matching"]["dropped_lines"] < 400 and slow["failures"] == 0
    assert _jail(status, "sshd")["state"] == "protected"

    def keeps_up() -> bool:  # ordinary lines go on after the flood
        daemon.append(f"{_stamp()} host cron[9]: (root) CMD (true)\n")
        time.sleep(0.5)
        return not request(str(daemon.socket), "status")["over_budget"]

    _wait(keeps_up, what="the slow jail to keep up again after the flood")
    assert daemon.stop() == 0


def test_a_sigkill_between_a_ban_and_the_save_of_its_lines_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    """A ban is stored at once, the lines read are saved with their position a moment later
    (0.1 s; a source's first position at once): killed in between, the restart re-reads
    those lines from the position saved before, counts each once in the ledger and does
    not decide the stored ban again."""
    daemon = Daemon(tmp_path)
    ledger = tmp_path / "bg.db"

    def stored(what: str) -> int:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(f"SELECT count(*) FROM {what}").fetchone()[0]

    try:
        daemon.start()
        daemon.append(_failure(9, "203.0.113.1"))
        _wait(lambda: stored("positions") == 1, what="the first position saved")
        daemon.append("".join(_failure(pid, "198.51.100.9") for pid in (1, 2, 3)))
        _wait(lambda: stored("bans") == 1, what="the ban in the ledger", interval=0.002)
        daemon.process.kill()  # most likely before the lines were saved (0.1 s later)
        daemon.process.wait(timeout=20)
        daemon.start()
        _wait(lambda: stored("failures") >= 4, what="the lines saved")
        assert daemon.stop() == 0
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(timeout=20)
    assert stored("failures") == 4
    assert stored("bans") == 1
    assert daemon.errors().count("ban 198.51.100.9 in sshd") == 1


def test_status_counts_every_ban_and_names_only_the_newest(daemon: Daemon) -> None:
    """``status`` with many bans: an exact count per jail from SQL, the newest few by name,
    and the CLI says how many more there are (``bans`` lists them all)."""
    from bruteguard.daemon import STATUS_BANNED_SHOWN
    from bruteguard.model import Ban
    from bruteguard.store.sqlite import SqliteStore

    now = time.time()
    banned = [f"198.51.100.{i + 1}" for i in range(STATUS_BANNED_SHOWN + 30)]
    with SqliteStore(daemon.tmp / "bg.db") as store:
        store.add_bans(Ban(ip, "sshd", now - 60, now + 3600, 3, "3 failures") for ip in banned)
        store.add_bans([Ban("203.0.113.9", "sshd", now - 7200, now - 3600, 3, "ran out")])
    daemon.start()
    jails = json.loads(daemon.cli("status", "--json").stdout)["jails"]
    jail = next(j for j in jails if j["name"] == "sshd")
    assert jail["banned_now"] == len(banned)
    assert jail["banned"] == sorted(banned[-STATUS_BANNED_SHOWN:])
    text = daemon.cli("status").stdout
    assert f"banned now: {len(banned)}," in text
    assert "… and 30 more" in text
    assert len(daemon.bans()) == len(banned)
    assert daemon.stop() == 0


def test_the_collector_pauses_while_the_ledger_is_learned_and_comes_back() -> None:
    """The restart's learning runs without cyclic collection; after it the collector is as
    it was (still off if someone else had turned it off), and a start's objects are frozen
    (never walked again) while a reload's are not."""
    import gc

    from bruteguard.daemon import _collector_paused

    frozen = gc.get_freeze_count()
    kept = [[n] for n in range(1000)]  # what a start learns: lists that live on
    try:
        with _collector_paused(freeze=False):
            assert not gc.isenabled()
        assert gc.isenabled() and gc.get_freeze_count() == frozen
        with _collector_paused(freeze=True):
            assert not gc.isenabled()
            kept += [[n] for n in range(1000)]
        assert gc.isenabled() and gc.get_freeze_count() >= frozen + 2000
        gc.disable()
        with _collector_paused(freeze=False):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
    assert len(kept) == 2000
