"""``bruteguard dashboard`` without a browser, and ``bruteguard top``: what the server
refuses (no login, wrong password, no CSRF token, another origin, not JSON, too many tries),
the headers it always sends, actions through the real daemon (dry-run enforcer) and the
abuse desk (a real relay on loopback), and the terminal view of the same numbers.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from bruteguard.config import config_from_dict
from bruteguard.dashboard.auth import Login, Sessions, hash_password, verify_password
from bruteguard.errors import ConfigError
from dashkit import PASSWORD, Client, dashboard
from labkit import poll_until
from test_cli_abuse import CONTACT, _draft, setup  # noqa: F401  (setup: a fixture)
from test_daemon import Daemon, _failure

HOSTILE_USER = "<img src=x onerror=alert(1)>"
TERMINAL_USER = "\x1b[2J[bold red]pwned[/]"


def _with_dashboard(config: Path, **settings: Any) -> None:
    """Append a [dashboard] table: port 0, the test password, and ``settings``."""
    lines = ['listen = "127.0.0.1:0"', f'password_hash = "{hash_password(PASSWORD)}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    with config.open("a") as file:
        file.write("\n[dashboard]\n" + "\n".join(lines) + "\n")


@pytest.fixture
def running(tmp_path: Path):
    daemon = Daemon(tmp_path)
    _with_dashboard(daemon.config)
    daemon.start()
    yield daemon
    if daemon.process is not None and daemon.process.poll() is None:
        daemon.process.kill()
        daemon.process.wait(timeout=20)


def _bruteguard() -> Path:
    from test_daemon import BIN

    return BIN


def test_password_hashes_and_tokens_compare_as_they_should() -> None:
    stored = hash_password("s3cret-enough")
    assert stored.startswith("scrypt$32768$8$1$")
    assert verify_password("s3cret-enough", stored)
    assert not verify_password("s3cret-enougH", stored)
    assert not verify_password("s3cret-enough", "scrypt$garbage")
    assert hash_password("same") != hash_password("same"), "salted"
    login = Login(token="a-token-of-32-characters-or-so..")
    assert login.accepts("a-token-of-32-characters-or-so..") and not login.accepts("a-token")
    with pytest.raises(ValueError):
        Login()
    sessions = Sessions(ttl=60, max_failures=2)
    key, session = sessions.open()
    assert sessions.get(key) is session and sessions.get("other") is None
    assert sessions.csrf_ok(session, session.csrf) and not sessions.csrf_ok(session, None)
    sessions.failed(), sessions.failed()
    assert sessions.throttled()


@pytest.mark.parametrize(
    ("dashboard", "error"),
    [
        ({"listen": "0.0.0.0:8780"}, "not loopback"),
        ({"listen": "[2001:db8::1]:8780"}, "not loopback"),
        ({"listen": "localhost:8780"}, "ADDRESS:PORT"),
        ({"listen": "127.0.0.1:8780", "tls_cert": "/etc/cert.pem"}, "tls_key"),
        ({"password_hash": "plain text"}, "not a scrypt hash"),
        ({"token_file": "relative/token"}, "absolute"),
    ],
)
def test_config_refuses_what_would_expose_the_dashboard(dashboard: dict, error: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(error)):
        config_from_dict({"dashboard": dashboard})


def test_config_allows_remote_listening_with_tls_or_when_told() -> None:
    tls = {"listen": "0.0.0.0:8443", "tls_cert": "/c.pem", "tls_key": "/k.pem"}
    assert config_from_dict({"dashboard": tls}).dashboard.tls
    proxy = {"listen": "[::]:8780", "plain_http_remote": True}
    assert config_from_dict({"dashboard": proxy}).dashboard.listen == "[::]:8780"
    assert config_from_dict({}).dashboard.listen == "127.0.0.1:8780"


def test_without_a_secret_the_dashboard_does_not_start(tmp_path: Path) -> None:
    config = tmp_path / "bg.toml"
    config.write_text(f'store = "{tmp_path}/bg.db"\n[dashboard]\nlisten = "127.0.0.1:0"\n')
    done = subprocess.run(
        [str(_bruteguard()), "dashboard", "--config", str(config)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode != 0 and "nobody could log in" in done.stderr


def test_hash_password_reads_stdin_and_refuses_a_short_one() -> None:
    done = subprocess.run(
        [str(_bruteguard()), "dashboard", "--hash-password"],
        input="long enough pass\n", capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0 and verify_password("long enough pass", done.stdout.strip())
    short = subprocess.run(
        [str(_bruteguard()), "dashboard", "--hash-password"],
        input="short\n", capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert short.returncode != 0 and "8 characters" in short.stderr


def test_the_server_guards_every_door(running: Daemon, tmp_path: Path) -> None:
    running.append(
        "".join(_failure(pid, "198.51.100.7") for pid in (1, 2, 3)).replace(
            "for root", f"for invalid user {HOSTILE_USER}"
        )
    )
    poll_until(running.bans, 10, "the daemon's ban")
    with dashboard(_bruteguard(), running.config, tmp_path / "dashboard.log") as url:
        client = Client(url)
        status, headers, _ = client.request("GET", "/")
        assert (status, headers["Location"]) == (303, "/login")
        assert client.request("GET", "/api/state")[0] == 401
        assert client.request("GET", "/events")[0] == 401
        assert client.act("/api/unban", {"ip": "198.51.100.7"})[0] == 401
        assert client.log_in("wrong password")[0] == 401 and not client.cookie
        # DNS rebinding: another site's name pointed at 127.0.0.1 gets nothing, not even
        # the login form to guess at.
        rebound = {"Host": f"attacker.example:{client.port}"}
        assert client.request("GET", "/login", headers=rebound)[0] == 421
        local = {"Host": f"localhost:{client.port}"}
        assert client.request("GET", "/login", headers=local)[0] == 200

        status, headers, _ = client.log_in()
        assert status == 303
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie

        status, headers, page = client.request("GET", "/")
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe" not in csp
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Server"] == "bruteguard", "no version for a scanner"
        assert not re.search(rb"<script(?![^>]*\bsrc=)", page), "no inline script"
        assert b" style=" not in page and b"<style" not in page
        status, headers, script = client.request("GET", "/static/dashboard.js")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        assert b"innerHTML" not in script, "the script writes text, never markup"
        assert client.request("GET", "/static/../config.py")[0] == 404

        state = json.loads(client.request("GET", "/api/state")[2])
        assert state["active"] == 1 and state["bans"][0]["ip"] == "198.51.100.7"
        assert state["users"] == [[HOSTILE_USER, 3]]
        assert "running" in state["daemon"]
        assert [s["lines"] for s in state["sources"] if s["jail"] == "sshd"] == [3]

        status, headers, svg = client.request("GET", "/plots/users.svg")
        assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
        assert headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert b"&lt;img src=x onerror=alert(1)&gt;" in svg and HOSTILE_USER.encode() not in svg

        # Refused: no token, a wrong one, another site's origin, not JSON. Nothing changes.
        for headers_sent in (
            {"X-CSRF-Token": ""},
            {"X-CSRF-Token": client.csrf[:-1] + "x"},
            {"Origin": "http://attacker.example"},
        ):
            assert client.act("/api/unban", {"ip": "198.51.100.7"}, headers_sent)[0] == 403
        plain = client.request(
            "POST", "/api/unban", b'{"ip": "198.51.100.7"}',
            {"Content-Type": "text/plain", "X-CSRF-Token": client.csrf},
        )  # fmt: skip
        assert plain[0] == 415
        assert [ban["ip"] for ban in running.bans()] == ["198.51.100.7"]

        # Accepted: through the daemon, as `bruteguard ban/unban` would.
        assert client.act("/api/ban", {"ip": "not an address"})[0] == 400
        assert client.act("/api/ban", {"ip": "203.0.113.9", "jail": "nope"})[0] == 502
        status, reply = client.act("/api/ban", {"ip": "203.0.113.9", "for": "10m"})
        assert status == 200 and reply["result"]["ip"] == "203.0.113.9"
        assert {ban["ip"] for ban in running.bans()} == {"198.51.100.7", "203.0.113.9"}
        status, reply = client.act("/api/unban", {"ip": "198.51.100.7"})
        assert status == 200 and reply["result"]["lifted"]
        assert [ban["ip"] for ban in running.bans()] == ["203.0.113.9"]

        # The live stream: server-sent events carrying the snapshot.
        import http.client

        connection = http.client.HTTPConnection(client.host, client.port, timeout=10)
        connection.request("GET", "/events", headers={"Cookie": client.cookie})
        response = connection.getresponse()
        assert response.getheader("Content-Type").startswith("text/event-stream")
        first = response.readline()
        assert first.startswith(b"data: ") and json.loads(first[6:])["active"] == 1
        connection.close()

        # Logging out ends the session: its cookie opens nothing any more.
        form = f"csrf={client.csrf}".encode()
        type_ = {"Content-Type": "application/x-www-form-urlencoded"}
        assert client.request("POST", "/logout", form, type_)[0] == 303
        assert client.request("GET", "/api/state")[0] == 401


def test_failed_logins_are_bounded(running: Daemon, tmp_path: Path) -> None:
    with dashboard(_bruteguard(), running.config, tmp_path / "dashboard.log") as url:
        client = Client(url)
        statuses = [client.log_in(f"guess {n}")[0] for n in range(21)]
        assert statuses[:20] == [401] * 20 and statuses[20] == 429
        assert client.log_in()[0] == 429, "not even the right password, for a minute"


def test_a_draft_complaint_is_sent_with_one_action(setup: Any, tmp_path: Path) -> None:  # noqa: F811
    config, _, relay = setup
    case_id = _draft(config)
    _with_dashboard(config)
    with dashboard(_bruteguard(), config, tmp_path / "dashboard.log") as url:
        client = Client(url)
        client.log_in()
        state = json.loads(client.request("GET", "/api/state")[2])
        assert [(c["id"], c["state"], c["contact"]) for c in state["cases"]] == [
            (case_id, "draft", CONTACT)
        ]
        assert client.act("/api/send", {"case": case_id}, {"X-CSRF-Token": ""})[0] == 403
        assert relay.received == []
        status, reply = client.act("/api/send", {"case": case_id})
        assert status == 200 and reply["result"] == {"case": case_id, "state": "sent"}
        assert len(relay.received) == 1
        status, reply = client.act("/api/send", {"case": case_id})
        assert status == 502 and "nothing to send" in reply["error"]
        assert len(relay.received) == 1, "sent once"


def test_top_once_prints_the_numbers_as_text(running: Daemon) -> None:
    running.append(
        "".join(_failure(pid, "198.51.100.7") for pid in (1, 2, 3)).replace(
            "for root", f"for invalid user {TERMINAL_USER}"
        )
    )
    poll_until(running.bans, 10, "the daemon's ban")
    done = subprocess.run(
        [str(_bruteguard()), "top", "--once", "--config", str(running.config)],
        capture_output=True, text=True, timeout=30, env={"COLUMNS": "160", "TERM": "dumb"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "1 active bans" in out and "daemon: running" in out
    assert "198.51.100.7" in out and "3 failures" in out
    assert re.search(r"sshd\s+0\.3\s+3\s+1\s", out), out  # per minute, last hour, banned
    assert str(running.log) in out.replace("\n", "") or "auth.log" in out
    assert "\x1b" not in out, "no escape sequence reaches the terminal"
    assert "\\x1b[2J[bold red]pwned[/]" in out, "the user name, shown as its characters"


_ESCAPE = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-B]|[=>78])")


def _terminal_text(raw: bytes) -> str:
    """What a terminal shows of ``raw`` (escape sequences removed, lines joined)."""
    return _ESCAPE.sub("", raw.decode(errors="replace")).replace("\r", "").replace("\n", " ")


def _read_terminal(master: int, into: bytearray, wait: float) -> bool:
    """Add to ``into`` what the terminal's other side wrote within ``wait`` seconds; False
    once that side is closed (EIO, or nothing more to read)."""
    if not select.select([master], [], [], wait)[0]:
        return True
    try:
        chunk = os.read(master, 65536)
    except OSError:  # EIO: every process on the other side is gone
        return False
    into.extend(chunk)
    return bool(chunk)


def test_top_live_redraws_in_a_terminal_and_restores_it_on_ctrl_c(running: Daemon) -> None:
    """``bruteguard top`` without --once, on a real pseudo-terminal: it takes the alternate
    screen, draws a frame, draws again when the numbers change (a ban made while it runs),
    and on SIGINT (Ctrl-C) gives the terminal back and exits 130, within bounded waits."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color"}
    try:
        top = subprocess.Popen(
            [str(_bruteguard()), "top", "--interval", "0.2", "--config", str(running.config)],
            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
        )  # fmt: skip
    finally:
        os.close(slave)
    seen = bytearray()

    def read_until(wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in _terminal_text(bytes(seen)):
            left = deadline - time.monotonic()
            assert left > 0, f"no {wanted!r} on the terminal in {timeout} s: {seen[-2000:]!r}"
            if not _read_terminal(master, seen, min(left, 0.5)):
                break
        assert wanted in _terminal_text(bytes(seen)), bytes(seen)[-2000:]

    try:
        read_until("0 active bans", 30)
        assert b"\x1b[?1049h" in seen, "the alternate screen is taken"
        first_frame = len(seen)
        running.append("".join(_failure(pid, "198.51.100.9") for pid in (1, 2, 3)))
        poll_until(running.bans, 10, "the daemon's ban")
        read_until("1 active bans", 20)  # drawn again by the same process
        read_until("198.51.100.9", 10)  # the banned address, in the frame's bans
        assert "1 active bans" not in _terminal_text(bytes(seen[:first_frame]))
        top.send_signal(signal.SIGINT)
        assert top.wait(timeout=10) == 130
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _read_terminal(master, seen, 0.2):
            pass  # the rest of what it wrote, up to its side's close
        assert seen.rfind(b"\x1b[?1049l") > seen.rfind(b"\x1b[?1049h"), "the screen given back"
    finally:
        if top.poll() is None:
            top.kill()
            top.wait(timeout=10)
        os.close(master)


def test_snapshots_read_the_hour_again_only_when_it_changed(tmp_path: Path) -> None:
    """The live part is read every time; the hour's aggregates when a failure arrived (at
    most every ``busy`` seconds), else every ``slow`` seconds, or at once after ``forget``."""
    from bruteguard.dashboard.snapshot import Snapshots
    from bruteguard.model import Ban, Failure
    from bruteguard.store.sqlite import SqliteStore

    now = 1_000_000.0
    config = config_from_dict({"store": str(tmp_path / "bg.db"), "socket": str(tmp_path / "s")})
    snapshots = Snapshots(config, fleet=False, slow=10.0, busy=2.0)
    assert snapshots.take(now).active == 0, "no ledger yet: nothing, and none made"
    assert not (tmp_path / "bg.db").exists()

    def fail(at: float, user: str) -> None:
        with SqliteStore(config.store) as store:
            store.add_failures([Failure(at, "192.0.2.7", "sshd", user, "line")])

    def users(at: float) -> list[tuple[str, int]]:
        return [tuple(pair) for pair in snapshots.take(at).users]

    fail(now - 10, "alice")
    snapshots.forget()
    assert users(now) == [("alice", 1)]
    fail(now + 0.5, "bob")
    first = snapshots.take(now + 1)
    assert first.failures[0].user == "bob", "the live part is read every time"
    assert [tuple(u) for u in first.users] == [("alice", 1)], "within busy: not again"
    assert sorted(users(now + 2.5)) == [("alice", 1), ("bob", 1)], "a new failure, after busy"
    fail(now - 20, "carol")  # not the newest: nothing says the hour changed
    assert len(users(now + 5)) == 2
    assert len(users(now + 13)) == 3, "slow: the window slid"
    fail(now - 30, "dave")
    snapshots.forget()
    assert len(users(now + 13.5)) == 4
    with SqliteStore(config.store) as store:
        store.add_bans([Ban("192.0.2.7", "sshd", now, now + 60, 4, "4 failures")])
    shot = snapshots.take(now + 14)
    assert shot.active == 1 and [j.banned_now for j in shot.jails] == [1], "bans: live"
    assert snapshots.take(now + 61).active == 0
