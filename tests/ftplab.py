"""A real pure-ftpd that logs client *hostnames*, and the real DNS that names them, in a Lab.

bruteguard must attribute a failure logged as ``(?@some.name)`` to the right address without
trusting the PTR record alone. The honest test is a real FTP server resolving real clients
through a real DNS server whose records the test chose. ``FtpLab`` builds a ``netns.Lab``
and, in its server namespace, starts ``tests/ftplab-launch.sh`` as PID 1 of private mount
and PID namespaces (``labkit.DaemonLab``, as ``SshLab``): that script gives the server its
own ``/dev`` (so ``/dev/log`` exists only there), ``/run``, and its own ``/etc/resolv.conf``,
``/etc/nsswitch.conf`` and ``/etc/hosts`` bind-mounted over the host's *inside that mount
namespace only*, then runs rsyslogd, dnsmasq (the lab's DNS, answering only the records the
test gave) and ``pure-ftpd`` with name resolution on (no ``-H``), logging to syslog.

The FTP account is a pure-ftpd *virtual* user (``-l puredb:``, a database in the work
directory, random name and password, running as ``nobody`` chrooted to a private home), so
no system account is created. Nothing on the host is touched; every command is an argv list.

DNS records (``ptr``, ``a``) are fixed when the lab starts. Client addresses are known as
soon as the ``FtpLab`` exists, so a test can fill ``lab.ptr`` / ``lab.a`` before ``with``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import secrets
import select
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import dns.reversename

from labkit import DaemonLab, Timestamps, poll_until, process_alive
from netns import Host

__all__ = [
    "FTP_PORT",
    "FtpAttempts",
    "FtpLab",
    "Outcome",
    "process_alive",
]

FTP_PORT = 21
DNS_PORT = 53
PURE_FTPD = "/usr/sbin/pure-ftpd"
PURE_PW = "/usr/bin/pure-pw"
DNSMASQ = "/usr/sbin/dnsmasq"
FTP_HOME = "/run/ftplab-home"  # inside the launcher's private /run
FTP_OWNER = (65534, 65534)  # nobody:nogroup: the virtual user's uid and gid
MAX_ATTEMPTS = 50
MAX_HOLD = 300.0  # seconds a held connection may stay open before its client gives up

# Reverse zones of the documentation ranges: dnsmasq answers every name there (and in
# .test) itself, NXDOMAIN if it has no record, instead of REFUSED for lack of an upstream.
_LOCAL_ZONES = (
    "test",
    "2.0.192.in-addr.arpa",
    "100.51.198.in-addr.arpa",
    "113.0.203.in-addr.arpa",
    "8.b.d.0.1.0.0.2.ip6.arpa",
)

# DNS names as dnsmasq options can carry them: no '/', ',', '#', space or newline.
_LABEL = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}"
_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?$")

Outcome = Literal["accepted", "rejected", "unreachable", "error"]

# One child process makes every attempt of a call, each on its own connection: one after
# the other, or all at once ("parallel": pure-ftpd answers each failure only after a ~3 s
# anti-guessing delay, so N parallel attempts take ~3 s instead of ~3N s). Address, port,
# user and password arrive as argv, never as code. It prints one JSON line with the
# outcomes in attempt order; with "hold" it then keeps its connections open until its
# stdin closes or max_hold seconds pass.
_FTP_SCRIPT = """
import ftplib, json, select, sys, threading
addr, port, timeout, count, mode, hold, max_hold, user, password = sys.argv[1:10]
port, timeout, count, max_hold = int(port), float(timeout), int(count), float(max_hold)
outcomes, details, held = [None] * count, [""] * count, []

def attempt(i):
    ftp = ftplib.FTP(timeout=timeout)
    try:
        ftp.connect(addr, port)
    except (OSError, EOFError) as exc:
        outcomes[i], details[i] = "unreachable", repr(exc)
        return
    try:
        ftp.login(user, password)
        ftp.pwd()
        outcomes[i] = "accepted"
    except ftplib.error_perm as exc:
        outcomes[i], details[i] = "rejected", str(exc)
    except (OSError, EOFError, ftplib.Error) as exc:
        outcomes[i], details[i] = "error", repr(exc)
    if hold == "hold":
        held.append(ftp)
    else:
        ftp.close()

if mode == "parallel":
    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
else:
    for i in range(count):
        attempt(i)
print(json.dumps({"outcomes": outcomes, "details": details}), flush=True)
if hold == "hold":
    select.select([sys.stdin], [], [], max_hold)
"""

_RESOLVE_SCRIPT = """
import json, sys
import dns.resolver, dns.reversename
server, port, kind, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = [server]
resolver.port = port
resolver.timeout = resolver.lifetime = 3.0
qname = dns.reversename.from_address(key) if kind == "PTR" else key
try:
    answer = resolver.resolve(qname, kind, search=False)
    print(json.dumps(sorted(rr.to_text() for rr in answer)))
except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
    print("[]")
"""

# The attack that beat "who is connected now": COUNT connections at once, each idles IDLE
# seconds after the banner, sends USER and PASS, and resets the connection (SO_LINGER 0)
# a second later: pure-ftpd has read the password and sleeps (at least 3 s) before it
# answers and writes the failure, when the client is gone. (A reset before pure-ftpd read
# the command would discard it unread.) Prints how many passwords were sent.
_HOLD_AND_RESET_SCRIPT = """
import json, socket, struct, sys, threading, time
addr, port, count, idle, user, password = sys.argv[1:7]
port, count, idle = int(port), int(count), float(idle)
sent = []

def reply(sock):
    data = b""
    while not data.endswith(b"\\r\\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data

def attempt():
    sock = socket.create_connection((addr, port), timeout=idle + 30)
    try:
        reply(sock)
        time.sleep(idle)
        sock.sendall(f"USER {user}\\r\\n".encode())
        reply(sock)
        sock.sendall(f"PASS {password}\\r\\n".encode())
        time.sleep(1.0)
        sent.append(1)
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

threads = [threading.Thread(target=attempt) for _ in range(count)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"sent": len(sent)}), flush=True)
"""

# One TCP SYN with a forged source address (scapy, raw socket): how an attacker makes a
# host it does not own look like a client. It never completes a handshake.
_FORGED_SYN_SCRIPT = """
import random, sys
from scapy.all import IP, IPv6, TCP, send
source, target, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
layer = IPv6 if ":" in target else IP
syn = layer(src=source, dst=target) / TCP(sport=random.randint(20000, 60000), dport=port, flags="S")
send(syn, verbose=0)
"""

# What pure-ftpd itself does with a client address: the libc resolver, name required.
_LIBC_NAME_SCRIPT = """
import socket, sys
try:
    print(socket.getnameinfo((sys.argv[1], 0), socket.NI_NAMEREQD)[0])
except OSError:
    print("")
"""


@dataclass
class FtpAttempts:
    """What ``FtpLab.ftp_attempts`` did: one outcome per attempt, maybe held connections."""

    outcomes: list[Outcome]
    details: list[str]
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def rejected(self) -> int:
        """How many attempts the server answered with a refusal (each is one log line)."""
        return self.outcomes.count("rejected")

    def release(self, timeout: float = 10.0) -> None:
        """Close the held connections (the client exits when its stdin closes)."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class FtpLab(DaemonLab):
    """A Lab whose server runs pure-ftpd (names resolved) and dnsmasq, logging to ``log_path``.

    ``ptr`` maps client addresses to the names their PTR records give; ``a`` maps names to
    the address(es) their A/AAAA records give. An ``a`` entry creates no PTR record (so a
    name can point at an innocent host that does not point back), and answers only A and
    AAAA (other types of that name get NODATA). As with dnsmasq's ``--address``, sub-names
    of an ``a`` name get the same answer. Every other name under ``.test`` or the
    documentation ranges' reverse zones is NXDOMAIN.
    """

    LAUNCHER = Path(__file__).with_name("ftplab-launch.sh")
    PREFIX = "bgftp"
    LOG_NAME = "ftp.log"
    READY = "pure-ftpd and dnsmasq to listen"
    DIAGNOSED = ("dnsmasq.log",)

    def __init__(
        self,
        workdir: Path,
        ptr: Mapping[str, str] | None = None,
        a: Mapping[str, str | Sequence[str]] | None = None,
        clients: Iterable[str] = ("attacker", "innocent"),
        timestamps: Timestamps = "traditional",
        facility: Literal["ftp", "auth"] = "ftp",
        log_pid: bool = True,
        ttl: int = 600,
    ) -> None:
        super().__init__(workdir, clients, timestamps)
        self.ttl = ttl
        self.ptr: dict[str, str] = dict(ptr or {})
        self.a: dict[str, str | Sequence[str]] = dict(a or {})
        self.facility = facility
        self.log_pid = log_pid

    # -- the lab's parts ----------------------------------------------------------------

    @property
    def dns_server(self) -> str:
        """The lab's DNS server (dnsmasq in the server namespace, also on ``SERVER_IPV6``)."""
        return self.lab.server.ipv4

    @property
    def system_dns_prefix(self) -> list[str]:
        """argv prefix running a command where pure-ftpd runs: the lab's resolv.conf & co.

        It enters the launcher's mount, network and PID namespaces (``nsenter`` forks; a
        process started so dies at the latest when the lab closes, not when nsenter is
        killed). Plain ``lab.server`` commands see the host's /etc/resolv.conf instead.
        """
        if self._namespace_pid is None:
            raise RuntimeError("the lab is not running")
        pid = str(self._namespace_pid)
        return ["nsenter", "--target", pid, "--mount", "--net", "--pid", "--"]

    # -- life cycle ---------------------------------------------------------------------

    def __enter__(self) -> FtpLab:
        self._dnsmasq_argv()  # bad records fail here, before anything exists
        return super().__enter__()

    def _host(self, host: Host | str) -> Host:
        return self.lab.clients[host] if isinstance(host, str) else host

    # -- configuration ------------------------------------------------------------------

    def _dnsmasq_argv(self) -> list[str]:
        argv = [
            DNSMASQ,
            "--no-resolv", "--no-hosts", "--no-daemon", "--bind-interfaces",
            f"--listen-address={self.lab.server.ipv4}",
            f"--listen-address={self.lab.server.ipv6}",
            f"--port={DNS_PORT}",
            f"--pid-file={self.workdir / 'dnsmasq.pid'}",
            f"--log-facility={self.workdir / 'dnsmasq.log'}",
            "--log-queries",
            "--cache-size=0",
            # Real zones give their records a TTL; dnsmasq's default for its own is 0.
            f"--local-ttl={self.ttl}",
        ]  # fmt: skip
        argv += [f"--local=/{zone}/" for zone in _LOCAL_ZONES]
        for ip, name in self.ptr.items():
            reverse = dns.reversename.from_address(_address(ip)).to_text(omit_final_dot=True)
            argv.append(f"--ptr-record={reverse},{_dns_name(name)}")
        for name, addresses in self.a.items():
            name = _dns_name(name).rstrip(".")
            values = [addresses] if isinstance(addresses, str) else list(addresses)
            if not values:
                raise ValueError(f"no address for {name!r}")
            # --address makes no PTR record (--host-record would); --local turns queries
            # for other record types of the name into NODATA instead of NXDOMAIN.
            argv += [f"--address=/{name}/{_address(value)}" for value in values]
            argv.append(f"--local=/{name}/")
        return argv

    def _ftpd_argv(self) -> list[str]:
        argv = [
            PURE_FTPD,
            "-l", f"puredb:{self.workdir / 'pureftpd.pdb'}",
            "-E",  # no anonymous logins
            "-A",  # chroot everyone
            "-f", self.facility,
            "-g", str(self.workdir / "pure-ftpd.pid"),
            "-S", f",{FTP_PORT}",
            "-c", str(MAX_ATTEMPTS + 10),
            "-C", str(MAX_ATTEMPTS + 10),
            "-I", "5",  # minutes idle; held test connections close with the lab anyway
        ]  # fmt: skip
        if self.log_pid:
            argv.append("-1")
        return argv

    def _prepare(self) -> None:
        work = self.workdir
        self._write_rsyslog_conf("ftp,auth,authpriv.*")
        etc = work / "etc"
        etc.mkdir(exist_ok=True)
        (etc / "resolv.conf").write_text(
            f"nameserver {self.dns_server}\noptions timeout:2 attempts:1\n"
        )
        (etc / "nsswitch.conf").write_text(
            "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
        )
        (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
        (work / "ftp-home").write_text(FTP_HOME)
        (work / "ftp-owner").write_text(f"{FTP_OWNER[0]}:{FTP_OWNER[1]}")
        for name, argv in (("dnsmasq", self._dnsmasq_argv()), ("pure-ftpd", self._ftpd_argv())):
            (work / f"{name}.argv").write_bytes(b"".join(w.encode() + b"\0" for w in argv))
        self._write_user_db()

    def _write_user_db(self) -> None:
        """The virtual user, with a SHA-512 crypt hash: pure-pw's own argon2id costs ~4 s per
        login checked, which would make every test attempt slow. The password goes to
        openssl on stdin, never on a command line.
        """
        hashed = subprocess.run(
            ["openssl", "passwd", "-6", "-stdin"],
            input=self.password + "\n", capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()  # fmt: skip
        if not hashed.startswith("$6$") or ":" in hashed or "\n" in hashed:
            raise RuntimeError(f"openssl passwd gave an unexpected hash {hashed!r}")
        uid, gid = FTP_OWNER
        # pure-pw's passwd format: login:hash:uid:gid:gecos:home/./ (chrooted), then limits.
        passwd = self.workdir / "pureftpd.passwd"
        passwd.write_text(f"{self.user}:{hashed}:{uid}:{gid}::{FTP_HOME}/./::::::::::::\n")
        passwd.chmod(0o600)
        database = self.workdir / "pureftpd.pdb"
        database.unlink(missing_ok=True)
        subprocess.run(
            [PURE_PW, "mkdb", str(database), "-f", str(passwd)],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip

    # -- daemons ------------------------------------------------------------------------

    def _ready(self) -> bool:
        """pure-ftpd on port 21 (IPv4 and IPv6) and dnsmasq on port 53, per the kernel."""
        result = self.lab.server.run(["ss", "-H", "-l", "-n", "-t", "-u"], check=False)
        wanted = {
            ("tcp", f"0.0.0.0:{FTP_PORT}"), ("tcp", f"[::]:{FTP_PORT}"),
            ("udp", f"{self.lab.server.ipv4}:{DNS_PORT}"),
            ("udp", f"[{self.lab.server.ipv6}]:{DNS_PORT}"),
        }  # fmt: skip
        seen = set()
        for line in result.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 5:
                seen.add((fields[0], fields[4]))
        return wanted <= seen

    # -- DNS, as the tests and pure-ftpd see it -----------------------------------------

    def _query(self, kind: str, key: str) -> list[str]:
        argv = [sys.executable, "-c", _RESOLVE_SCRIPT, self.dns_server, str(DNS_PORT), kind, key]
        result = self.lab.server.run(argv, timeout=20)
        return [value.rstrip(".") for value in json.loads(result.stdout)]

    def resolve_a(self, name: str) -> list[str]:
        """The lab DNS's A records for ``name`` (sorted; empty for NXDOMAIN or NODATA)."""
        return self._query("A", name)

    def resolve_aaaa(self, name: str) -> list[str]:
        """The lab DNS's AAAA records for ``name`` (sorted; empty for NXDOMAIN or NODATA)."""
        return self._query("AAAA", name)

    def resolve_ptr(self, ip: str) -> list[str]:
        """The lab DNS's PTR names for ``ip``, without the final dot (empty if none)."""
        return self._query("PTR", _address(ip))

    def libc_name(self, ip: str) -> str:
        """The name pure-ftpd's libc gives ``ip`` (``getnameinfo``, name required), or ""."""
        argv = [*self.system_dns_prefix, sys.executable, "-c", _LIBC_NAME_SCRIPT, _address(ip)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True)
        return result.stdout.strip()

    # -- clients ------------------------------------------------------------------------

    def ftp_connects(self, from_host: Host | str, address: str | None = None) -> bool:
        """True if a TCP handshake from ``from_host`` to the FTP port completes."""
        return self._host(from_host).tcp_connect(address or self.lab.server.ipv4, FTP_PORT)

    def ftp_attempts(
        self,
        from_host: Host | str,
        user: str,
        password: str,
        count: int = 1,
        address: str | None = None,
        port: int = FTP_PORT,
        timeout: float = 10.0,
        hold: bool = False,
        parallel: bool = False,
    ) -> FtpAttempts:
        """``count`` logins from ``from_host``, each on its own new connection.

        Each attempt is one USER/PASS; its outcome is ``accepted`` (230 and a working
        session), ``rejected`` (530: one ``Authentication failed`` line), ``unreachable``
        (no connection: e.g. banned) or ``error``. With ``hold`` the connections stay open
        (after the reply) until ``release()`` or the lab closes, at most ``MAX_HOLD`` s.
        ``parallel`` makes all attempts at once (log order then is the server's).
        """
        if not 1 <= count <= MAX_ATTEMPTS:
            raise ValueError(f"count must be 1..{MAX_ATTEMPTS}")
        host = self._host(from_host)
        address = address or self.lab.server.ipv4
        argv = [sys.executable, "-c", _FTP_SCRIPT, address, str(port), str(timeout),
                str(count), "parallel" if parallel else "serial", "hold" if hold else "close",
                str(MAX_HOLD), user, password]  # fmt: skip
        started = time.monotonic()
        bound = (1 if parallel else count) * (timeout + 5) + 10
        process = host.popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = ""
        try:
            line = _readline(process, bound)
            report = json.loads(line) if line else None
        finally:
            if not hold or not line:
                process.kill()
                process.communicate(timeout=10)
        took = time.monotonic() - started
        target = f"[{address}]:{port} as {user!r} x{count}"
        self._log_client(f"{host.name} -> {target}: {report} ({took:.1f}s)")
        if report is None:
            raise AssertionError(f"FTP client in {host.name} gave no report in {bound:g}s")
        return FtpAttempts(report["outcomes"], report["details"], process if hold else None)

    def ftp_login(
        self,
        from_host: Host | str,
        user: str | None = None,
        password: str | None = None,
        port: int = FTP_PORT,
        address: str | None = None,
        timeout: float = 10.0,
    ) -> bool:
        """One login (default: the lab's user and password): True if a session opened."""
        result = self.ftp_attempts(
            from_host,
            self.user if user is None else user,
            self.password if password is None else password,
            address=address,
            port=port,
            timeout=timeout,
        )
        return result.outcomes == ["accepted"]

    def ftp_hold_and_reset(
        self, from_host: Host | str, count: int, idle: float, address: str | None = None
    ) -> int:
        """``count`` connections that idle ``idle`` seconds, send a wrong password and reset
        before the verdict (see _HOLD_AND_RESET_SCRIPT); returns how many were sent."""
        if not 1 <= count <= MAX_ATTEMPTS or not 0 <= idle <= MAX_HOLD:
            raise ValueError(f"count must be 1..{MAX_ATTEMPTS}, idle 0..{MAX_HOLD:g}")
        host = self._host(from_host)
        address = address or self.lab.server.ipv4
        password = "wrong-" + secrets.token_urlsafe(9)
        argv = [sys.executable, "-c", _HOLD_AND_RESET_SCRIPT, address, str(FTP_PORT),
                str(count), str(idle), self.user, password]  # fmt: skip
        result = host.run(argv, timeout=idle + 90)
        self._log_client(f"{host.name} -> [{address}] hold {idle:g}s and reset x{count}")
        return int(json.loads(result.stdout)["sent"])

    def forge_syn(self, from_host: Host | str, source: str, address: str | None = None) -> None:
        """One SYN to the FTP port from ``from_host`` with the forged ``source`` address."""
        host = self._host(from_host)
        address = address or self.lab.server.ipv4
        argv = [sys.executable, "-c", _FORGED_SYN_SCRIPT, source, address, str(FTP_PORT)]
        host.run(argv, timeout=60)
        self._log_client(f"{host.name} -> [{address}] forged SYN from {source}")

    def set_online(self, host: Host | str, online: bool, address: str | None = None) -> None:
        """Bring a client's link up or down (down: it answers nothing, not even ARP/ND).
        Up returns once the client reaches the server's ``address`` again (at most 15 s:
        the server's neighbour entry for it may have failed while it was away)."""
        target = self._host(host)
        if not online:  # Linux drops a downed link's IPv6 addresses unless told to keep them
            target.run(["sysctl", "-q", "-w", "net.ipv6.conf.eth0.keep_addr_on_down=1"])
        target.run(["ip", "link", "set", "eth0", "up" if online else "down"])
        if online:
            server = address or self.lab.server.ipv4
            poll_until(
                lambda: target.tcp_connect(server, FTP_PORT, timeout=1.0),
                15,
                f"{target.name} to reach {server} again",
                self.diagnostics,
            )

    def ftp_fail_logins(
        self,
        from_host: Host | str,
        count: int,
        hold: bool = False,
        address: str | None = None,
        user: str | None = None,
        parallel: bool = True,
    ) -> FtpAttempts:
        """``count`` wrong-password logins, one connection each (see ``ftp_attempts``).

        They run in parallel by default: each failure costs pure-ftpd's ~3 s delay.
        The default user is the lab's own (a real account, wrong password); the password is
        fresh and random, so it is never right.
        """
        return self.ftp_attempts(
            from_host,
            self.user if user is None else user,
            "wrong-" + secrets.token_urlsafe(9),
            count=count,
            address=address,
            hold=hold,
            parallel=parallel,
        )


def _readline(process: subprocess.Popen, timeout: float) -> str:
    """The child's first stdout line, or "" if it exits or stays silent for ``timeout``."""
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline() if readable else ""


def _address(value: str) -> str:
    """``value`` as a canonical IP address; ValueError for anything else."""
    return str(ipaddress.ip_address(value))


def _dns_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"not a DNS name dnsmasq can serve: {value!r}")
    return value
