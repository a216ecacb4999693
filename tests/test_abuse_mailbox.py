"""The abuse desk's mailbox reader, against real mailboxes: stdlib-built Maildir and mbox
files, and a real Dovecot IMAP server started by the test on 127.0.0.1.

Every test also checks the reader's promise to the administrator who owns the mailbox:
after a fetch, the same files with the same names, bytes, times and IMAP flags are there.
"""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import logging
import mailbox
import os
import random
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from bruteguard.abuse.mailbox import Fetched, MailboxConfig, MailboxError, fetch
from bruteguard.errors import ConfigError
from conftest import require_dovecot

# Broken in every way a bounce can be: 8-bit junk, a bad address, a header line without a
# colon, a multipart without its boundary, base64 on a multipart, a NUL in the body.
GARBLED = (
    b"Subject: \xff\xfe =?utf-8?b?!!!?=\r\n"
    b'From: <<<@@@>>> "unterminated\r\n'
    b'Content-Type: multipart/report; boundary="x"; report-type=\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"no colon on this header line\r\n"
    b"\r\n"
    b"\x00--x\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.\xff\r\n--y--\r\n"
)


def assert_garbled(item: Fetched) -> None:
    """Yielded, parsed as far as it goes, its damage recorded as defects (not raised)."""
    assert isinstance(item.message, EmailMessage)
    assert item.message.get_content_type() == "multipart/report"
    assert item.message.defects
    assert not item.truncated


def make_message(n: int, body: str = "") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "MAILER-DAEMON@mx.example.net"
    message["To"] = "abuse-desk@example.org"
    message["Subject"] = f"reply {n}"
    message["Message-ID"] = f"<reply-{n}@mx.example.net>"
    message.set_content(body or f"Delivery report number {n} for 192.0.2.{n}.\n")
    return message


def subjects(fetched: list[Fetched]) -> list[str]:
    return [str(item.message["Subject"]) for item in fetched]


def snapshot(root: Path) -> dict[str, tuple[int, int, int, str] | None]:
    """Every file under ``root``: (size, mtime, atime, sha256) — what 'untouched' means.

    Directories are listed by name only: listing them (as any reader must) moves their atime.
    """
    files: dict[str, tuple[int, int, int, str] | None] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_dir():
            files[name] = None
            continue
        info = path.lstat()
        data = path.read_bytes()
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # undo our own read's atime
        files[name] = (info.st_size, info.st_mtime_ns, info.st_atime_ns, sha256(data))
    return files


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def past_times(path: Path, when: int) -> None:
    """Deliver 'in the past' at ``when`` (s), with atime == mtime as on a fresh delivery."""
    os.utime(path, (when, when))


# --- config ----------------------------------------------------------------------------------


def test_config_refuses_bad_combinations() -> None:
    with pytest.raises(ConfigError, match="never sent without TLS"):
        MailboxConfig("imap", host="127.0.0.1", tls="off", username="u", password="p")
    with pytest.raises(ConfigError, match="username and password"):
        MailboxConfig("imap", host="127.0.0.1", username="u")
    with pytest.raises(ConfigError, match="out of range"):
        MailboxConfig("imap", host="127.0.0.1", port=0, username="u", password="p")
    with pytest.raises(ConfigError, match="host"):
        MailboxConfig("imap", username="u", password="p")
    with pytest.raises(ConfigError, match="tls"):
        MailboxConfig("imap", host="h", tls="maybe", username="u", password="p")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="CR, LF or NUL"):
        MailboxConfig("imap", host="h", username="u", password="p\r\nA1 LOGOUT")
    with pytest.raises(ConfigError, match="folder"):
        MailboxConfig("imap", host="h", username="u", password="p", folder="In\r\nbox")
    with pytest.raises(ConfigError, match="takes no host"):
        MailboxConfig("mbox", path="/var/mail/abuse", password="p")
    with pytest.raises(ConfigError, match="needs a path"):
        MailboxConfig("maildir")
    with pytest.raises(ConfigError, match="kind"):
        MailboxConfig("pop3", path="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timeout"):
        MailboxConfig("mbox", path="x", timeout=0)
    config = MailboxConfig("imap", host="h", username="u", password="hunter2-secret")
    assert "hunter2-secret" not in repr(config)


# --- Maildir ---------------------------------------------------------------------------------


def build_maildir(root: Path, count: int) -> tuple[mailbox.Maildir, list[str]]:
    """``count`` messages delivered in order; some read and flagged by the admin (in cur/)."""
    box = mailbox.Maildir(root, create=True)
    keys = []
    for n in range(count):
        message = mailbox.MaildirMessage(make_message(n))
        if n % 2:
            message.set_subdir("cur")
            message.set_flags("FS")
        keys.append(box.add(message))
    box.close()
    # Delivery order is the mtime, not the name order: make them disagree on purpose.
    for n, key in enumerate(keys):
        path = next(root.glob(f"*/{key}*"))
        past_times(path, 1_700_000_000 + 60 * n)
    return box, keys


def test_maildir_unseen_oldest_first_with_limit(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    _box, keys = build_maildir(root, 6)
    for n, key in enumerate(keys):  # names sort differently from delivery order
        path = next(root.glob(f"*/{key}*"))
        os.rename(path, path.with_name(f"{9_000_000_000 - n}.{key}{path.name[len(key) :]}"))
    keys = [f"{9_000_000_000 - n}.{key}" for n, key in enumerate(keys)]
    before = snapshot(root)
    config = MailboxConfig("maildir", path=str(root))

    everything = fetch(config, lambda key: False)
    assert subjects(everything) == [f"reply {n}" for n in range(6)]
    assert [item.key for item in everything] == keys
    assert all(not item.truncated for item in everything)
    assert everything[0].message.get_content().startswith("Delivery report number 0")

    seen = {keys[0], keys[3]}
    assert subjects(fetch(config, seen.__contains__, limit=2)) == ["reply 1", "reply 2"]
    assert subjects(fetch(config, seen.__contains__)) == [f"reply {n}" for n in (1, 2, 4, 5)]
    assert fetch(config, lambda key: True) == []
    assert fetch(config, lambda key: False, limit=0) == []
    assert snapshot(root) == before  # same names (flags), bytes, mtimes and atimes


def test_maildir_key_survives_read_by_the_admin(tmp_path: Path) -> None:
    """The admin's client moves new/ → cur/ and adds flags: still the same message, still seen."""
    root = tmp_path / "Maildir"
    _box, keys = build_maildir(root, 1)
    config = MailboxConfig("maildir", path=str(root))
    (first,) = fetch(config, lambda key: False)
    assert first.key == keys[0]
    new = next((root / "new").iterdir())
    os.rename(new, root / "cur" / f"{new.name}:2,RS")
    assert fetch(config, {first.key}.__contains__) == []
    assert [item.key for item in fetch(config, lambda key: False)] == [first.key]


def test_maildir_garbled_and_huge_messages_are_still_yielded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "Maildir"
    box = mailbox.Maildir(root, create=True)
    body = "".join(f"line {i} of the returned original, 192.0.2.9 port 22\n" for i in range(5000))
    keys = [box.add(make_message(1)), box.add(GARBLED), box.add(make_message(3, body))]
    box.close()
    for n, key in enumerate(keys):
        past_times(next(root.glob(f"*/{key}*")), 1_700_000_000 + n)
    before = snapshot(root)

    with caplog.at_level(logging.WARNING, logger="bruteguard.abuse.mailbox"):
        fetched = fetch(MailboxConfig("maildir", path=str(root)), lambda key: False, max_bytes=4096)
    assert [item.key for item in fetched] == keys
    garbled, huge = fetched[1], fetched[2]
    assert_garbled(garbled)
    assert huge.truncated and not fetched[0].truncated
    assert str(huge.message["Subject"]) == "reply 3"  # headers survive the cut
    kept = huge.message.get_payload(decode=True)
    assert kept.startswith(b"line 0 of") and kept.endswith(b"port 22\n")  # cut at a line end
    assert len(kept) < 4096
    assert any(
        "over max_bytes=4096" in r.getMessage() and keys[2] in r.getMessage()
        for r in caplog.records
    )
    assert snapshot(root) == before


def test_maildir_does_not_follow_symlinks_or_open_fifos(tmp_path: Path) -> None:
    """A mailbox owner must not make a root daemon read files they could not, or hang it."""
    root = tmp_path / "Maildir"
    box = mailbox.Maildir(root, create=True)
    box.add(make_message(1))
    box.close()
    secret = tmp_path / "shadow"
    secret.write_text("Subject: root-only secret\n\nhunter2\n")
    (root / "cur" / "1700000000.evil.host:2,").symlink_to(secret)
    os.mkfifo(root / "new" / "1700000001.fifo.host")
    started = time.monotonic()
    fetched = fetch(MailboxConfig("maildir", path=str(root)), lambda key: False)
    assert time.monotonic() - started < 5
    assert subjects(fetched) == ["reply 1"]


def test_maildir_unreadable_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MailboxError, match=re.escape(str(tmp_path / "nope"))):
        fetch(MailboxConfig("maildir", path=str(tmp_path / "nope")), lambda key: False)
    (tmp_path / "half" / "new").mkdir(parents=True)
    with pytest.raises(MailboxError, match=r"half: cannot read cur/"):
        fetch(MailboxConfig("maildir", path=str(tmp_path / "half")), lambda key: False)


# --- mbox ------------------------------------------------------------------------------------


def build_mbox(path: Path, messages: list[EmailMessage | bytes]) -> list[str]:
    """The mbox written by the stdlib, and each message's key as the stdlib splits it."""
    box = mailbox.mbox(path, create=True)
    for message in messages:
        box.add(message)
    box.flush()
    keys = [hashlib.sha256(box.get_bytes(key)).hexdigest() for key in box.iterkeys()]
    box.close()
    past_times(path, 1_700_000_000)
    return keys


def test_mbox_splits_like_the_stdlib_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "abuse.mbox"
    tricky = make_message(2, "From the desk: a body line the MDA must escape.\n\nFrom here too\n")
    keys = build_mbox(path, [make_message(1), tricky, make_message(3), make_message(4)])
    before = snapshot(tmp_path)
    config = MailboxConfig("mbox", path=str(path))

    fetched = fetch(config, lambda key: False)
    assert [item.key for item in fetched] == keys
    assert subjects(fetched) == ["reply 1", "reply 2", "reply 3", "reply 4"]
    assert ">From the desk" in fetched[1].message.get_content()

    seen = {keys[1]}
    assert subjects(fetch(config, seen.__contains__, limit=2)) == ["reply 1", "reply 3"]
    assert fetch(config, set(keys).__contains__) == []
    assert snapshot(tmp_path) == before  # bytes, mtime and atime (mutt's "new mail") unchanged


def test_mbox_split_matches_the_stdlib_on_odd_files(tmp_path: Path) -> None:
    """Text before the first From_, From_ lines without a blank line before them, CRLF,
    ">From" quoting, no final newline: the same messages as :class:`mailbox.mbox` finds."""
    rng = random.Random(20261123)
    pieces = [
        *(b"From ", b"From x\n", b"\n", b"\r\n", b"body\n", b">From y\n", b"Fro", b"m \n"),
        *(b"From MAILER-DAEMON Sat Jan  1 00:00:00 2000\n", b"Subject: s\n", b"x" * 70_000),
    ]
    path = tmp_path / "odd.mbox"
    for _trial in range(300):
        path.write_bytes(b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 25))))
        box = mailbox.mbox(path, create=False)
        expected = [sha256(box.get_bytes(key)) for key in box.iterkeys()]
        box.close()
        fetched = fetch(MailboxConfig("mbox", path=str(path)), lambda key: False, limit=1000)
        assert [item.key for item in fetched] == expected, path.read_bytes()[:300]


def test_mbox_garbled_and_huge_messages(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "abuse.mbox"
    long_line = "x" * 200_000  # longer than one read chunk
    huge = make_message(3, "first line\n" + long_line + "\n" + "tail line\n" * 10_000)
    keys = build_mbox(path, [make_message(1), GARBLED, huge, make_message(4)])
    before = snapshot(tmp_path)

    with caplog.at_level(logging.WARNING, logger="bruteguard.abuse.mailbox"):
        fetched = fetch(MailboxConfig("mbox", path=str(path)), lambda k: False, max_bytes=100_000)
    assert [item.key for item in fetched] == keys  # the huge one hashed whole, not its head
    assert [item.truncated for item in fetched] == [False, False, True, False]
    assert_garbled(fetched[1])
    assert str(fetched[2].message["Subject"]) == "reply 3"
    assert str(fetched[3].message["Subject"]) == "reply 4"
    assert any("over max_bytes=100000" in record.getMessage() for record in caplog.records)
    assert snapshot(tmp_path) == before


def test_mbox_waits_for_the_delivery_lock(tmp_path: Path) -> None:
    """While an MDA holds the fcntl write lock, reading waits; past the timeout, a clear error."""
    path = tmp_path / "abuse.mbox"
    build_mbox(path, [make_message(1)])
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "f = open(sys.argv[1], 'r+b'); fcntl.lockf(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True); time.sleep(float(sys.argv[2]))\n",
            str(path),
            "1.5",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        started = time.monotonic()
        with pytest.raises(MailboxError, match=r"abuse\.mbox: locked by another program"):
            fetch(MailboxConfig("mbox", path=str(path), timeout=0.3), lambda key: False)
        assert time.monotonic() - started < 1.2
        # A timeout longer than the holder's lock: the read waits for it and succeeds.
        fetched = fetch(MailboxConfig("mbox", path=str(path), timeout=10), lambda key: False)
        assert subjects(fetched) == ["reply 1"]
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_mbox_unreadable_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MailboxError, match=r"missing\.mbox: cannot open"):
        fetch(MailboxConfig("mbox", path=str(tmp_path / "missing.mbox")), lambda key: False)
    with pytest.raises(MailboxError, match="cannot open"):
        fetch(MailboxConfig("mbox", path=str(tmp_path)), lambda key: False)
    empty = tmp_path / "empty.mbox"
    empty.write_bytes(b"")
    assert fetch(MailboxConfig("mbox", path=str(empty)), lambda key: False) == []


# --- IMAP against a real Dovecot -------------------------------------------------------------

USER, PASSWORD = "abuse-desk", "s3cret-Pa55word"
MAIL_UID = 65534  # nobody: Dovecot refuses to access mail as root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A throw-away self-signed certificate for 127.0.0.1, made by the openssl CLI."""
    cert, key = tmp_path / "imap.crt", tmp_path / "imap.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=imap.example.org",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def _children(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of the processes whose parent is ``pid``: what must die with it."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.add((int(entry.name), fields[19]))
    return found


def _alive(process: tuple[int, str]) -> bool:
    try:
        fields = Path(f"/proc/{process[0]}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == process[1] and fields[0] != "Z"


@dataclass
class Dovecot:
    imaps: int
    imap: int
    context: ssl.SSLContext
    log: Path
    mail: Path

    def config(self, **overrides: object) -> MailboxConfig:
        settings: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.imaps,
            "username": USER,
            "password": PASSWORD,
            "ssl_context": self.context,
            "timeout": 10.0,
        }
        settings.update(overrides)
        return MailboxConfig("imap", **settings)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def session(self) -> Iterator[imaplib.IMAP4_SSL]:
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.imaps, ssl_context=self.context, timeout=10)
        try:
            imap.login(USER, PASSWORD)
            yield imap
        finally:
            imap.logout()

    def append(self, *messages: bytes | EmailMessage, flags: str | None = None) -> list[str]:
        """Deliver as an MDA would (through the server); the keys fetch() must report."""
        keys = []
        with self.session() as imap:
            for message in messages:
                raw = message if isinstance(message, bytes) else message.as_bytes()
                typ, data = imap.append("INBOX", flags, None, raw)
                assert typ == "OK", data
                found = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
                assert found, data
                keys.append(f"{int(found[1])}:{int(found[2])}")
        return keys

    def flags(self) -> dict[int, set[str]]:
        """Each message's flags, read by another client in read-only mode (\\Recent aside)."""
        with self.session() as imap:
            assert imap.select("INBOX", readonly=True)[0] == "OK"
            typ, data = imap.uid("FETCH", "1:*", "(FLAGS)")
            assert typ == "OK", data
        flags = {}
        for line in data:
            if isinstance(line, bytes):
                found = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", line)
                assert found, line
                flags[int(found[1])] = set(found[2].decode().split()) - {"\\Recent"}
        return flags

    def logins(self) -> list[str]:
        return re.findall(r"Login: user=<[^>]*>.*", self.log.read_text(errors="replace"))

    def new_login(self, before: int) -> str:
        """The log line of the first login after ``before`` lines (the log is written async)."""
        deadline = time.monotonic() + 5
        while len(lines := self.logins()) <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(lines) > before, "dovecot logged no new login"
        return lines[before]


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    """A private Dovecot: imaps and a plain (STARTTLS) listener on 127.0.0.1, ssl=required."""
    binary = require_dovecot()
    if os.geteuid() != 0:
        pytest.fail("the IMAP tests start Dovecot, which needs root (CI runs as root)")
    cert, key = make_cert(tmp_path)
    imaps, imap = free_port(), free_port()
    # The mail process drops root; a chroot (entered as root) lets it reach its Maildir
    # although pytest's tmp_path parents are root-only (0700).
    jail = tmp_path / "jail"
    (jail / USER).mkdir(parents=True)
    os.chown(jail / USER, MAIL_UID, MAIL_UID)
    users = tmp_path / "users"
    users.write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    log = tmp_path / "dovecot.log"
    conf = tmp_path / "dovecot.conf"
    conf.write_text(
        f"""\
base_dir = {tmp_path}/r
state_dir = {tmp_path}/state
log_path = {log}
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
default_internal_user = dovecot
default_login_user = dovenull
auth_mechanisms = plain login
first_valid_uid = {MAIL_UID}
valid_chroot_dirs = {jail}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={MAIL_UID} gid={MAIL_UID} home={jail}/./%u
}}
service auth {{
  user = root
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
"""
    )
    with (tmp_path / "dovecot.stderr").open("wb") as stderr:
        master = subprocess.Popen(
            [binary, "-F", "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    context = ssl.create_default_context(cafile=str(cert))
    server = Dovecot(imaps, imap, context, log, jail / USER / "Maildir")
    children: set[tuple[int, str]] = set()
    try:
        deadline = time.monotonic() + 20
        pending = {imaps, imap}
        while pending:
            if master.poll() is not None or time.monotonic() > deadline:
                text = (tmp_path / "dovecot.stderr").read_text() + (
                    log.read_text() if log.exists() else ""
                )
                pytest.fail(f"dovecot did not start listening:\n{text[-3000:]}")
            for port in list(pending):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                    pending.discard(port)
            time.sleep(0.05)
        yield server
    finally:
        children = _children(master.pid)
        master.terminate()
        try:
            master.wait(timeout=15)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(child) for child in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = [child for child in children if _alive(child)]
        for pid, _start in survivors:  # ours, by id: never let one outlive the test
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
    assert not survivors, f"dovecot processes outlived their master: {survivors}"


def test_imap_fetch_over_implicit_tls(dovecot: Dovecot) -> None:
    keys = dovecot.append(make_message(1), make_message(2))
    keys += dovecot.append(make_message(3), flags="(\\Flagged)")
    keys += dovecot.append(make_message(4), flags="(\\Seen)")  # the admin read this one
    keys += dovecot.append(GARBLED.replace(b"\x00", b""))  # IMAP literals carry no NUL
    flags_before = dovecot.flags()
    assert flags_before[3] == {"\\Flagged"} and flags_before[1] == set()

    logins = len(dovecot.logins())
    fetched = fetch(dovecot.config(), {keys[1]}.__contains__)
    assert "TLS" in dovecot.new_login(logins)
    assert [item.key for item in fetched] == [keys[0], keys[2], keys[3], keys[4]]
    assert subjects(fetched[:3]) == ["reply 1", "reply 3", "reply 4"]
    assert fetched[0].message.get_content().startswith("Delivery report number 1")
    assert_garbled(fetched[3])
    uidvalidity = keys[0].split(":")[0]
    assert all(re.fullmatch(rf"{uidvalidity}:\d+", item.key) for item in fetched)
    assert dovecot.flags() == flags_before  # no \Seen set by the reader


def test_imap_fetch_over_starttls(dovecot: Dovecot) -> None:
    keys = dovecot.append(make_message(1), make_message(2))
    flags_before = dovecot.flags()
    config = dovecot.config(port=dovecot.imap, tls="starttls")
    logins = len(dovecot.logins())
    fetched = fetch(config, lambda key: False)
    assert [item.key for item in fetched] == keys
    assert subjects(fetched) == ["reply 1", "reply 2"]
    # Dovecot logs "TLS" for a session upgraded by STARTTLS ("secured" for loopback cleartext).
    assert re.search(r"user=<abuse-desk>.*, TLS, ", dovecot.new_login(logins))
    assert dovecot.flags() == flags_before


def test_imap_seen_keys_limit_and_new_mail(dovecot: Dovecot) -> None:
    keys = dovecot.append(*(make_message(n) for n in range(5)))
    seen: set[str] = set()
    first = fetch(dovecot.config(), seen.__contains__, limit=3)
    assert [item.key for item in first] == keys[:3]
    seen.update(item.key for item in first)
    keys += dovecot.append(make_message(5))
    rest = fetch(dovecot.config(), seen.__contains__)
    assert [item.key for item in rest] == keys[3:]
    assert subjects(rest) == ["reply 3", "reply 4", "reply 5"]
    seen.update(item.key for item in rest)
    assert fetch(dovecot.config(), seen.__contains__) == []
    assert all("\\Seen" not in flags for flags in dovecot.flags().values())


def test_imap_huge_message_is_cut(dovecot: Dovecot, caplog: pytest.LogCaptureFixture) -> None:
    body = "".join(f"returned line {i}: sshd[42]: Failed password from 192.0.2.9\n"
                   for i in range(4000))  # fmt: skip
    keys = dovecot.append(make_message(1, body), make_message(2))
    with caplog.at_level(logging.WARNING, logger="bruteguard.abuse.mailbox"):
        fetched = fetch(dovecot.config(), lambda key: False, max_bytes=8192)
    assert [item.key for item in fetched] == keys
    assert [item.truncated for item in fetched] == [True, False]
    assert str(fetched[0].message["Subject"]) == "reply 1"
    kept = fetched[0].message.get_payload(decode=True)
    assert kept.startswith(b"returned line 0:") and kept.endswith(b"192.0.2.9\r\n")  # IMAP: CRLF
    assert len(kept) < 8192
    assert any(keys[0] in record.getMessage() for record in caplog.records)
    assert all("\\Seen" not in flags for flags in dovecot.flags().values())


def test_imap_wrong_password_names_the_mailbox_not_the_password(dovecot: Dovecot) -> None:
    wrong = "Wr0ng-but-secret"
    with pytest.raises(MailboxError) as caught:
        fetch(dovecot.config(password=wrong), lambda key: False)
    text = str(caught.value)
    assert f"abuse-desk@127.0.0.1:{dovecot.imaps}/INBOX" in text
    assert "refused the login" in text
    assert wrong not in text and PASSWORD not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_imap_untrusted_certificate_and_missing_folder(dovecot: Dovecot) -> None:
    with pytest.raises(MailboxError, match=r"TLS failed.*certificate verify failed"):
        fetch(dovecot.config(ssl_context=None), lambda key: False)  # system CAs: self-signed
    with pytest.raises(MailboxError, match=r"TLS failed.*certificate verify failed"):
        fetch(dovecot.config(port=dovecot.imap, tls="starttls", ssl_context=None), lambda k: False)
    with pytest.raises(MailboxError, match="cannot open the folder"):
        fetch(dovecot.config(folder="Bounces"), lambda key: False)


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_imap_unreachable_or_silent_server(tls: str) -> None:
    """A refused port fails at once; a server that never greets fails after ``timeout``."""
    config = dict(host="127.0.0.1", tls=tls, username=USER, password=PASSWORD, timeout=1.0)
    closed = free_port()
    started = time.monotonic()
    with pytest.raises(MailboxError, match=rf"127\.0\.0\.1:{closed}/INBOX: cannot connect"):
        fetch(MailboxConfig("imap", port=closed, **config), lambda key: False)  # type: ignore[arg-type]
    assert time.monotonic() - started < 1.0

    with socket.socket() as silent:  # listens, never accepts: the kernel completes the handshake
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(MailboxError, match="timed out"):
            fetch(MailboxConfig("imap", port=port, **config), lambda key: False)  # type: ignore[arg-type]
        assert 0.9 <= time.monotonic() - started < 5
