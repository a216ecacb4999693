"""The hosts.deny enforcer: its file handling, and a real TCP-wrapped sshd obeying it.

The daemon is Debian's own OpenSSH server, which is linked with libwrap: right after
accepting a connection it asks hosts_access(3) about the client under the daemon name
``sshd``. A refused client's TCP handshake succeeds, but the server sends no
``SSH-2.0-...`` banner: libwrap's refuse() logs, sleeps five seconds and exits, so the
client sees the connection closed without a word. An allowed client gets the banner at
once. That is what the tests observe, from the lab's client namespaces; each refusal must
also be one "Connection refused by tcp wrapper" line in sshd's own debug log, so a
connection closed for any other reason (a crash, MaxStartups) is not taken for a ban.

The daemon test never touches the host's /etc/hosts.deny or /etc/hosts.allow. sshd runs
as PID 1's child in private mount and PID namespaces inside the lab's server namespace,
where /etc is an overlay whose hosts.deny and hosts.allow are symlinks to files in the
test's tmp directory. Symlinks, not bind mounts: the enforcer replaces the file by rename,
which gives it a new inode, and a bind mount would go on showing the old one. The enforcer
runs here, outside, and writes the tmp file directly; libwrap in sshd opens it through
the symlink on every connection. /run is a private tmpfs there too, holding sshd's
privilege separation directory /run/sshd.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bruteguard.enforce.hostsdeny import HostsDenyEnforcer
from bruteguard.errors import EnforcerError
from enforcekit import NOW, Jail
from enforcekit import ban_at as ban
from netns import Host, Lab, require_root_netns

BEGIN = "# BEGIN bruteguard (managed: do not edit inside this block)\n"
END = "# END bruteguard\n"


# -- the file -------------------------------------------------------------------------------

ADMIN = b"# admin's own rules\r\nALL: 192.0.2.200\n\xff\xfe not utf-8 \nin.tftpd: ALL"


@pytest.fixture
def deny(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.deny"
    path.write_bytes(ADMIN)
    return path


def make(path: Path) -> HostsDenyEnforcer:
    enforcer = HostsDenyEnforcer(str(path), daemons={"sshd": "sshd", "ftp": "pure-ftpd, proftpd"})
    enforcer.setup([Jail("sshd", allow=("198.51.100.7", "2001:db8:1::/80")), Jail("ftp", (21,))])
    return enforcer


def test_block_format_and_bytes_outside_kept(deny: Path) -> None:
    enforcer = make(deny)
    assert deny.read_bytes() == ADMIN + b"\n" + (BEGIN + END).encode()
    enforcer.ban(
        [
            ban("203.0.113.9", "sshd"),
            ban("::ffff:203.0.113.10", "ftp"),
            ban("198.51.100.0/24", "sshd"),
            ban("2001:db8:1::/64", "sshd"),
            ban("2001:db8::7", "ftp"),
            ban("198.51.100.7", "sshd"),  # allowed: not written
            ban("203.0.113.11", "sshd", until=NOW - 1),  # expired: not written
        ],
        NOW,
    )
    assert deny.read_text("latin-1").split(BEGIN)[1] == (
        "# jail ftp\n"
        "pure-ftpd, proftpd: 203.0.113.10\n"
        "pure-ftpd, proftpd: [2001:db8::7]\n"
        "# jail sshd\n"
        "sshd: 203.0.113.9\n"
        "sshd: 198.51.100.0/255.255.255.0 EXCEPT 198.51.100.7\n"
        "sshd: [2001:db8:1::]/64 EXCEPT [2001:db8:1::]/80\n" + END
    )
    enforcer.unban([ban("203.0.113.9", "sshd"), ban("2001:db8::7", "ftp"), ban("192.0.2.1")])
    enforcer.unban([ban("203.0.113.10", "ftp")])
    text = deny.read_text("latin-1")
    assert "203.0.113.9" not in text and "# jail ftp" not in text
    enforcer.teardown()
    assert deny.read_bytes() == ADMIN + b"\n"


def test_reconcile_writes_exactly_the_active_bans(deny: Path) -> None:
    enforcer = make(deny)
    enforcer.ban([ban("203.0.113.9", "sshd"), ban("203.0.113.8", "ftp")], NOW)
    enforcer.reconcile([ban("203.0.113.7", "sshd"), ban("203.0.113.6", "ftp", until=NOW)], NOW)
    block = deny.read_text("latin-1").split(BEGIN)[1]
    assert block == "# jail sshd\nsshd: 203.0.113.7\n" + END


def test_rewrite_is_atomic_and_keeps_mode_owner_and_symlink(tmp_path: Path) -> None:
    real = tmp_path / "etc" / "hosts.deny"
    real.parent.mkdir()
    real.write_bytes(b"ALL: 192.0.2.200\n")
    os.chmod(real, 0o640)
    os.chown(real, 1234, 5678)
    link = tmp_path / "hosts.deny.link"
    link.symlink_to(real)
    with real.open("rb") as before:  # a reader holding the old file, as libwrap may be
        enforcer = make(link)
        enforcer.ban([ban("203.0.113.9", "sshd")], NOW)
        # Replaced by rename, not rewritten in place: the old file is still whole.
        # (Inode numbers can't tell: some filesystems reuse them at once.)
        assert before.read() == b"ALL: 192.0.2.200\n"
    assert link.is_symlink() and link.resolve() == real
    info = real.stat()
    assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (0o640, 1234, 5678)
    assert sorted(p.name for p in real.parent.iterdir()) == ["hosts.deny"]  # no temp files
    assert "sshd: 203.0.113.9\n" in real.read_text()


def test_missing_file_is_created(tmp_path: Path) -> None:
    path = tmp_path / "hosts.deny"
    make(path).ban([ban("203.0.113.9", "ftp")], NOW)
    assert path.read_text() == BEGIN + "# jail ftp\npure-ftpd, proftpd: 203.0.113.9\n" + END
    assert path.stat().st_mode & 0o777 == 0o644


def test_broken_blocks_are_refused_unchanged(deny: Path) -> None:
    broken = ADMIN + b"\n" + BEGIN.encode() + b"# jail sshd\nsshd: 203.0.113.9\n"
    deny.write_bytes(broken)
    enforcer = HostsDenyEnforcer(str(deny))
    with pytest.raises(EnforcerError, match=r"no '# END bruteguard' line closes it: add"):
        enforcer.setup([Jail("sshd")])
    assert "no '# END bruteguard'" in (enforcer.check() or "")
    deny.write_bytes(BEGIN.encode() + b"ALL: 192.0.2.1 : spawn /bin/true\n" + END.encode())
    with pytest.raises(EnforcerError, match="line 2 inside the bruteguard block"):
        enforcer.setup([Jail("sshd")])
    deny.write_bytes(END.encode())
    with pytest.raises(EnforcerError, match="without its"):
        enforcer.setup([Jail("sshd")])
    assert deny.read_bytes() == END.encode()


def test_lines_of_jails_no_longer_set_up_survive_until_unbanned(deny: Path) -> None:
    enforcer = make(deny)
    enforcer.ban([ban("203.0.113.9", "ftp")], NOW)
    later = HostsDenyEnforcer(str(deny))
    later.setup([Jail("sshd")])
    later.ban([ban("203.0.113.5", "sshd")], NOW)
    block = deny.read_text("latin-1").split(BEGIN)[1]
    assert block == (
        "# jail ftp\npure-ftpd, proftpd: 203.0.113.9\n# jail sshd\nALL: 203.0.113.5\n" + END
    )
    later.unban([ban("203.0.113.9", "ftp")])
    assert "203.0.113.9" not in deny.read_text("latin-1")


def test_bad_names_and_addresses_are_refused(deny: Path) -> None:
    with pytest.raises(EnforcerError, match="not a daemon list"):
        HostsDenyEnforcer(str(deny), daemons={"sshd": "sshd: ALL"})
    with pytest.raises(EnforcerError, match="not a daemon list"):
        HostsDenyEnforcer(str(deny), daemons={"sshd": "ALL EXCEPT sshd"})
    enforcer = make(deny)
    before = deny.read_bytes()
    for ip in ["203.0.113.9\nALL: ALL", "ALL", "203.0.113.9 EXCEPT x"]:
        with pytest.raises(EnforcerError, match="not an IP address"):
            enforcer.ban([ban(ip, "sshd")], NOW)
    with pytest.raises(EnforcerError, match="cannot be used"):
        enforcer.ban([ban("203.0.113.9", "ssh d")], NOW)
    assert deny.read_bytes() == before


# -- a real TCP-wrapped daemon --------------------------------------------------------------

SSH = 22  # sshd on the server's IPv4 and IPv6 addresses (its IPv6 socket is IPv6-only)

# PID 1 of the private namespaces: /etc becomes an overlay (writes go to WORK/upper, never to
# the host's /etc) with hosts.deny and hosts.allow pointing at the test's files, and /run a
# private tmpfs with sshd's privilege separation directory (the host's /run is not touched).
LAUNCHER = """
import os, subprocess, sys
work = sys.argv[1]
subprocess.run(["mount", "-t", "overlay", "bg-etc", "-o",
                f"lowerdir=/etc,upperdir={work}/upper,workdir={work}/overlay-work", "/etc"],
               check=True)
for name in ("hosts.deny", "hosts.allow"):
    if os.path.lexists(f"/etc/{name}"):
        os.unlink(f"/etc/{name}")
    os.symlink(f"{work}/wrap/{name}", f"/etc/{name}")
subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "bg-run", "/run"],
               check=True)
os.mkdir("/run/sshd")
os.chmod("/run/sshd", 0o755)
sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", f"{work}/sshd_config"])
while True:  # as PID 1 we also reap any orphan of sshd's
    pid, status = os.wait()
    if pid == sshd.pid:
        sys.exit(f"sshd exited with status {status}")
"""

# What the server said first: "banner" (an SSH-2.0 identification line), "closed" (end of
# stream or reset before any byte), or what else happened. libwrap holds a refused
# connection open for 5 s before it closes it, hence the longer read timeout.
PROBE = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as conn:
        conn.settimeout(12)
        line = conn.makefile("rb").readline(256)
except ConnectionResetError:
    line = b""
except OSError as error:
    sys.exit(f"error: {error}")
print("banner" if line.startswith(b"SSH-2.0-") else "closed" if not line else f"other: {line!r}")
"""

SSHD_CONFIG = """\
Port {port}
ListenAddress {ipv4}
ListenAddress {ipv6}
HostKey {work}/ssh_host_ed25519_key
PidFile {work}/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication no
AuthorizedKeysFile none
PermitRootLogin no
DenyUsers *
UseDNS no
LogLevel DEBUG1
"""

REFUSAL = re.compile(r"^debug1: Connection refused by tcp wrapper\r?$", re.MULTILINE)


class WrappedSshd:
    """Debian's libwrap-linked sshd in the lab's server, behind private /etc files."""

    def __init__(self, lab: Lab, work: Path) -> None:
        self.lab = lab
        self.work = work
        self.deny = work / "wrap" / "hosts.deny"
        self.allow = work / "wrap" / "hosts.allow"
        self.log = work / "sshd.log"

    def start(self) -> None:
        for name in ("wrap", "upper", "overlay-work"):
            (self.work / name).mkdir(mode=0o755)
        self.deny.write_text("# the admin's own line stays\nALL: 198.51.100.200\n")
        self.allow.write_text("")
        key = self.work / "ssh_host_ed25519_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bgtw", "-f", str(key)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        server = self.lab.server
        (self.work / "sshd_config").write_text(
            SSHD_CONFIG.format(port=SSH, ipv4=server.ipv4, ipv6=server.ipv6, work=self.work)
        )
        argv = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                "--kill-child", "--mount-proc",
                sys.executable, "-c", LAUNCHER, str(self.work)]  # fmt: skip
        with self.log.open("ab") as log:  # append: every sshd process writes its own lines
            self.process = server.popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 15
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                self.process.wait(timeout=10)
                raise AssertionError(f"sshd did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def _listening(self) -> bool:
        output = self.lab.server.run(["ss", "-H", "-l", "-n", "-t"], check=False).stdout
        local = {line.split()[3] for line in output.splitlines() if len(line.split()) > 3}
        server = self.lab.server
        return {f"{server.ipv4}:{SSH}", f"[{server.ipv6}]:{SSH}"} <= local

    def _refusals(self) -> int:
        return len(REFUSAL.findall(self.log.read_text(errors="replace")))

    def replies(self, client: Host) -> dict[str, str]:
        """What ``client`` got from sshd over IPv4 and over IPv6 (probed at the same time).

        "refused" is a connection closed without a banner AND, for each, one refusal line
        in sshd's log; a closed connection that libwrap did not refuse stays "closed".
        """
        server = self.lab.server
        ways = {"v4": server.ipv4, "v6": server.ipv6}
        before = self._refusals()
        probes = {
            way: client.popen(
                [sys.executable, "-c", PROBE, addr, str(SSH)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for way, addr in ways.items()
        }
        replies = {way: probe.communicate(timeout=30)[0].strip() for way, probe in probes.items()}
        closed = [way for way, reply in replies.items() if reply == "closed"]
        if closed and self._refusals() - before == len(closed):
            replies.update(dict.fromkeys(closed, "refused"))
        return replies


BANNER = {"v4": "banner", "v6": "banner"}
REFUSED = {"v4": "refused", "v6": "refused"}


@pytest.fixture
def host_files() -> Iterator[None]:
    """The host's own hosts.deny/hosts.allow (and /run/sshd) must be exactly as before."""

    def snapshot() -> dict[str, object]:
        state: dict[str, object] = {}
        for name in ("/etc/hosts.deny", "/etc/hosts.allow"):
            path = Path(name)
            state[name] = (path.read_bytes(), path.stat().st_ino) if path.exists() else None
        state["/run/sshd"] = os.path.isdir("/run/sshd")
        return state

    before = snapshot()
    yield
    assert snapshot() == before


@pytest.fixture
def sshd(tmp_path: Path, host_files: None) -> Iterator[WrappedSshd]:
    require_root_netns()
    with Lab(prefix="bgtw") as lab:
        server = WrappedSshd(lab, tmp_path)
        server.start()
        yield server


@pytest.mark.netns
def test_sshd_refuses_banned_clients(sshd: WrappedSshd) -> None:
    attacker, innocent = sshd.lab.clients["attacker"], sshd.lab.clients["innocent"]
    enforcer = HostsDenyEnforcer(str(sshd.deny), daemons={"sshd": "sshd", "ftp": "pure-ftpd"})
    enforcer.setup([Jail("sshd"), Jail("ftp", (21,)), Jail("recidive", ())])
    assert sshd.replies(attacker) == BANNER
    now = time.time()
    enforcer.ban([ban(attacker.ipv4, until=now + 60), ban(attacker.ipv6, until=now + 60)], now)
    assert sshd.replies(attacker) == REFUSED
    assert sshd.replies(innocent) == BANNER
    enforcer.unban([ban(attacker.ipv4), ban(attacker.ipv6)])
    assert sshd.replies(attacker) == BANNER
    # A jail mapped to another daemon does not shut sshd; one without a mapping (ALL) does.
    enforcer.ban([ban(attacker.ipv4, "ftp", now + 60), ban(attacker.ipv6, "ftp", now + 60)], now)
    assert "pure-ftpd: [2001:db8::a]\n" in sshd.deny.read_text()
    assert sshd.replies(attacker) == BANNER
    enforcer.ban([ban(attacker.ipv4, "recidive", now + 60)], now)
    assert sshd.replies(attacker) == {"v4": "refused", "v6": "banner"}
    enforcer.teardown()
    assert sshd.replies(attacker) == BANNER
    assert sshd.deny.read_text() == "# the admin's own line stays\nALL: 198.51.100.200\n"


@pytest.mark.netns
def test_sshd_allowed_client_inside_banned_network(sshd: WrappedSshd) -> None:
    attacker, innocent = sshd.lab.clients["attacker"], sshd.lab.clients["innocent"]
    enforcer = HostsDenyEnforcer(str(sshd.deny), daemons={"sshd": "sshd"})
    enforcer.setup([Jail("sshd", allow=(innocent.ipv4, f"{innocent.ipv6}/128"))])
    now = time.time()
    enforcer.ban([ban("192.0.2.0/24", until=now + 60), ban("2001:db8::/64", until=now + 60)], now)
    assert "sshd: 192.0.2.0/255.255.255.0 EXCEPT 192.0.2.11\n" in sshd.deny.read_text()
    assert "sshd: [2001:db8::]/64 EXCEPT [2001:db8::b]\n" in sshd.deny.read_text()
    assert sshd.replies(attacker) == REFUSED
    assert sshd.replies(innocent) == BANNER
    enforcer.reconcile([ban(attacker.ipv6, until=now + 60)], now)
    assert sshd.replies(attacker) == {"v4": "banner", "v6": "refused"}
    assert sshd.allow.read_text() == "", "hosts.allow is never written"
