"""A real vsftpd and a real Dovecot (IMAP) inside a Lab, writing the log lines production has.

Issue 6 asks for one real daemon per family, end to end: the lines bruteguard meets must be
the ones the service writes, in the files it writes them to. ``VsftpdLab`` and ``DovecotLab``
build a ``netns.Lab`` and, in its server namespace, start ``tests/servicelab-launch.sh`` as
PID 1 of private mount and PID namespaces (``labkit.DaemonLab``, as ``SshLab``): a private
``/dev`` (so ``/dev/log`` exists only there) and ``/run``, rsyslogd, then the service.

Each service logs where Debian's package makes it log, or to syslog (``log_to``):

- vsftpd, Debian's ``/etc/vsftpd.conf`` settings (``listen_ipv6``: one dual-stack socket, so
  IPv4 clients appear as ``::ffff:192.0.2.10``), ``xferlog_enable``: its own
  ``vsftpd.log`` (``FAIL LOGIN: Client "…"``), or with ``syslog_enable`` the same lines via
  syslog. Passwords go through PAM's ``pam_unix`` (``pam_service_name=vsftpd``), so syslog
  also gets pam_unix's ``authentication failure`` lines. vsftpd is not installed (it
  conflicts with pure-ftpd): ``tests/fetch-vsftpd.sh`` unpacks Debian's binary into
  ``VSFTPD_PREFIX``. The account exists only in the lab: the launcher binds the lab's own
  ``passwd``, ``group``, ``shadow`` and ``pam.d`` over /etc's, in its mount namespace only.
- Dovecot, as Debian runs it: syslog, facility mail (``mail.log``), or its own ``log_path``
  file. Plain IMAP on port 143 (``ssl = no``): with TLS the login process's ``auth failed``
  line only gains a ``TLS`` field. A ``passwd-file`` user, mail home in the private ``/run``.

- Apache (``apache2``, event MPM), basic authentication on ``/private/`` with an
  htpasswd file, its own ``error.log`` (``ErrorLog``): HTTP/1.1 requests are logged as
  ``[client ADDR:PORT]``, HTTP/2 (h2c, curl's) as ``[remote ADDR:PORT]``. Its worker
  processes run as www-data, so the htpasswd file and the document root are copied into
  the private ``/run``.

User name and password are fresh and random per lab. Nothing on the host is touched; every
command is an argv list; config files hold only this module's own text (paths, the random
user name, a crypt hash).
"""

from __future__ import annotations

import json
import re
import secrets
import select
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar, Literal

from labkit import DaemonLab, Timestamps, poll_until
from netns import Host

__all__ = [
    "FETCH_VSFTPD",
    "VSFTPD",
    "VSFTPD_PREFIX",
    "ApacheLab",
    "DovecotLab",
    "LogTo",
    "Mode",
    "Outcome",
    "ServiceLab",
    "VsftpdLab",
]

VSFTPD_PREFIX = Path("/var/cache/bruteguard-tests/vsftpd")
VSFTPD = VSFTPD_PREFIX / "usr/sbin/vsftpd"
FETCH_VSFTPD = Path(__file__).with_name("fetch-vsftpd.sh")
DOVECOT = "/usr/sbin/dovecot"
APACHE = "/usr/sbin/apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
RSYSLOGD = "/usr/sbin/rsyslogd"

HOME = "/run/servicelab-home"  # the user's home, inside the launcher's private /run
USER_ID = 60123  # the vsftpd user's uid and gid: in the lab's own passwd only
NOBODY = 65534  # Dovecot's mail user (nobody:nogroup), as the abuse-desk tests use
MAX_ATTEMPTS = 20

LogTo = Literal["file", "syslog"]
Outcome = Literal["accepted", "rejected", "unreachable", "error"]
Protocol = Literal["ftp", "imap", "pop3", "submission", "http", "h2c"]
Mode = Literal["serial", "parallel", "session"]

# One child process makes every attempt of a call: each on its own connection, one after
# the other ("serial") or all at once ("parallel": both services delay each failed answer,
# vsftpd ~1 s, Dovecot ~2 s and more), or all on one connection ("session", as a guesser
# that saves handshakes does). Protocol, address, port, user and password arrive as argv,
# never as code. It prints one JSON line: the outcomes in attempt order, and what each said.
_CLIENT_SCRIPT = """
import base64, ftplib, http.client, imaplib, json, poplib, smtplib, subprocess, sys, threading
proto, addr, port, timeout, count, mode, user, password = sys.argv[1:9]
port, timeout, count = int(port), float(timeout), int(count)

def ftp(tries):
    client = ftplib.FTP(timeout=timeout)
    try:
        client.connect(addr, port)
    except (OSError, EOFError) as exc:
        return [("unreachable", repr(exc))] * tries
    results = []
    try:
        while len(results) < tries:
            try:
                client.login(user, password)
                client.pwd()
                results.append(("accepted", ""))
                break
            except ftplib.error_perm as exc:
                results.append(("rejected", str(exc)))
    except (OSError, EOFError, ftplib.Error) as exc:
        results.append(("error", repr(exc)))
    finally:
        client.close()
    return results

def imap(tries):
    try:
        client = imaplib.IMAP4(addr, port, timeout=timeout)
    except (OSError, EOFError, imaplib.IMAP4.error) as exc:
        return [("unreachable", repr(exc))] * tries
    results = []
    try:
        while len(results) < tries:
            try:
                client.login(user, password)
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                results.append(("rejected", str(exc)))
                continue
            typ, data = client.select("INBOX")
            results.append(("accepted", "") if typ == "OK" else ("error", repr(data)))
            break
    except (OSError, EOFError, imaplib.IMAP4.error) as exc:
        results.append(("error", repr(exc)))
    finally:
        try:
            client.logout()
        except (OSError, EOFError, imaplib.IMAP4.error):
            pass
    return results

def pop3(tries):
    try:
        client = poplib.POP3(addr, port, timeout=timeout)
    except (OSError, EOFError, poplib.error_proto) as exc:
        return [("unreachable", repr(exc))] * tries
    results = []
    try:
        while len(results) < tries:
            try:
                client.user(user)
                client.pass_(password)
            except poplib.error_proto as exc:
                results.append(("rejected", str(exc)))
                continue
            client.stat()
            results.append(("accepted", ""))
            break
    except (OSError, EOFError, poplib.error_proto) as exc:
        results.append(("error", repr(exc)))
    finally:
        try:
            client.quit()
        except (OSError, EOFError, poplib.error_proto):
            pass
    return results

def submission(tries):
    try:
        client = smtplib.SMTP(addr, port, timeout=timeout)
        client.ehlo("client.example")
    except (OSError, smtplib.SMTPException) as exc:
        return [("unreachable", repr(exc))] * tries
    client.user, client.password = user, password
    results = []
    try:
        while len(results) < tries:
            try:
                # One AUTH PLAIN per try (smtplib's login() would try every mechanism).
                client.auth("PLAIN", client.auth_plain)
            except smtplib.SMTPAuthenticationError as exc:
                results.append(("rejected", str(exc)))
                continue
            results.append(("accepted", ""))
            break
    except (OSError, smtplib.SMTPException) as exc:
        results.append(("error", repr(exc)))
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            pass
    return results

def web(tries, h2c=False):
    # One request per try, each on its own connection; 401 is a rejection. h2c (HTTP/2
    # without TLS, prior knowledge) is curl's: an argv list, the password on its stdin.
    host = f"[{addr}]" if ":" in addr else addr
    url = f"http://{host}:{port}/private/"
    results = []
    for _ in range(tries):
        try:
            if h2c:
                answer = subprocess.run(
                    ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                     "--http2-prior-knowledge", "--max-time", str(timeout), "-K", "-", url],
                    input=f'user = "{user}:{password}"\\n', capture_output=True, text=True,
                    timeout=timeout + 5,
                )
                status = int(answer.stdout or 0)
                if status == 0:
                    return results + [("unreachable", answer.stderr)] * (tries - len(results))
            else:
                client = http.client.HTTPConnection(addr, port, timeout=timeout)
                token = base64.b64encode(f"{user}:{password}".encode()).decode()
                client.request("GET", "/private/", headers={"Authorization": "Basic " + token})
                status = client.getresponse().status
                client.close()
        except OSError as exc:
            return results + [("unreachable", repr(exc))] * (tries - len(results))
        if status == 401:
            results.append(("rejected", str(status)))
        else:
            results.append(("accepted", "") if status == 200 else ("error", str(status)))
            break
    return results

sessions = {"ftp": ftp, "imap": imap, "pop3": pop3, "submission": submission, "http": web,
            "h2c": lambda tries: web(tries, h2c=True)}
session = sessions[proto]
results = [None] * count

def connection(i, tries):
    results[i] = session(tries)

if mode == "session":
    connection(0, count)
elif mode == "parallel":
    threads = [threading.Thread(target=connection, args=(i, 1)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
else:
    for i in range(count):
        connection(i, 1)
done = [result for one in results if one for result in one]
print(json.dumps({"outcomes": [o for o, _ in done], "details": [d for _, d in done]}), flush=True)
"""


def _nul_words(words: Iterable[str]) -> bytes:
    """``words`` as the launcher reads its lists: NUL-terminated, never split again."""
    return b"".join(word.encode() + b"\0" for word in words)


def _sha512_crypt(password: str) -> str:
    """A SHA-512 crypt hash (fast to check, unlike yescrypt); the password goes on stdin."""
    hashed = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"],
        input=password + "\n", capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip
    if not re.fullmatch(r"\$6\$[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{86}", hashed):
        raise RuntimeError(f"openssl passwd gave an unexpected hash {hashed!r}")
    return hashed


def _htpasswd_line(user: str, password: str) -> str:
    """``user:bcrypt-hash`` from Apache's htpasswd; the password goes on stdin."""
    line = subprocess.run(
        ["htpasswd", "-n", "-i", "-B", "-C", "5", user],
        input=password, capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip
    if not re.fullmatch(rf"{re.escape(user)}:\$2y\$05\$[./A-Za-z0-9]{{53}}", line):
        raise RuntimeError(f"htpasswd gave an unexpected line {line!r}")
    return line + "\n"


class ServiceLab(DaemonLab):
    """One service daemon and rsyslogd in a Lab; the clients log in over real TCP.

    ``log_path`` (DaemonLab's) is rsyslog's file; ``jail_log`` is the file a jail reads: the
    service's own log (``log_to="file"``) or that syslog file (``log_to="syslog"``).
    """

    LAUNCHER = Path(__file__).with_name("servicelab-launch.sh")
    LOG_NAME = "syslog.log"
    PORT: ClassVar[int]
    PROTOCOL: ClassVar[Protocol]
    # Other protocols the service may also speak in a lab (see ``attempts``), and their ports.
    PORTS: ClassVar[dict[str, int]] = {}
    SERVICE_LOG: ClassVar[str]  # the service's own log file in the work directory
    SYSLOG_SELECTOR: ClassVar[str]
    CLIENT_TIMEOUT: ClassVar[float] = 8.0  # seconds a client waits for each answer
    LOG_TO: ClassVar[LogTo] = "file"  # where the service logs unless told

    def __init__(
        self,
        workdir: Path,
        log_to: LogTo | None = None,
        clients: Iterable[str] = ("attacker", "innocent"),
        timestamps: Timestamps = "traditional",
    ) -> None:
        super().__init__(workdir, clients, timestamps)
        log_to = log_to or self.LOG_TO
        if log_to not in ("file", "syslog"):
            raise ValueError(f"log_to must be 'file' or 'syslog', not {log_to!r}")
        self.log_to = log_to
        self.service_log = self.workdir / self.SERVICE_LOG

    @property
    def jail_log(self) -> Path:
        """The file holding the service's failure lines (what bruteguard's jail reads)."""
        return self.service_log if self.log_to == "file" else self.log_path

    # -- what a service provides --------------------------------------------------------

    def _daemon_argv(self) -> list[str]:
        raise NotImplementedError

    def _run_dirs(self) -> list[tuple[str, str, int]]:
        """(path in /run, mode, uid=gid) of the directories the launcher makes."""
        raise NotImplementedError

    def _etc_binds(self) -> list[tuple[Path, str]]:
        """(work file, /etc path) pairs the launcher binds, in its mount namespace only."""
        return []

    def _run_files(self) -> list[tuple[Path, str, str]]:
        """(work file, path in /run, mode) the launcher copies (after making ``_run_dirs``):
        for a service whose unprivileged processes read them (the work directory is root's
        alone)."""
        return []

    def _write_service_config(self) -> None:
        raise NotImplementedError

    # -- life cycle ---------------------------------------------------------------------

    def _prepare(self) -> None:
        work = self.workdir
        self._write_rsyslog_conf(self.SYSLOG_SELECTOR)
        self.service_log.touch()
        self._write_service_config()
        dirs = [word for path, mode, owner in self._run_dirs() for word in
                (path, mode, f"{owner}:{owner}")]  # fmt: skip
        (work / "dirs").write_bytes(_nul_words(dirs))
        binds = [word for source, target in self._etc_binds() for word in (str(source), target)]
        (work / "binds").write_bytes(_nul_words(binds))
        files = [word for source, target, mode in self._run_files()
                 for word in (str(source), target, mode)]  # fmt: skip
        (work / "files").write_bytes(_nul_words(files))
        (work / "daemon.argv").write_bytes(_nul_words(self._daemon_argv()))

    def _ready(self) -> bool:
        """The service listens on its port for IPv4 and IPv6, per the kernel."""
        result = self.lab.server.run(["ss", "-H", "-l", "-n", "-t"], check=False)
        local = {fields[3] for fields in map(str.split, result.stdout.splitlines())
                 if len(fields) >= 4}  # fmt: skip
        port = f":{self.PORT}"
        # One dual-stack socket (vsftpd's listen_ipv6) shows as "*:PORT"; Dovecot's two
        # listeners ("*, ::") as "0.0.0.0:PORT" and "[::]:PORT".
        return f"*{port}" in local or {f"0.0.0.0{port}", f"[::]{port}"} <= local

    # -- the service's log --------------------------------------------------------------

    def jail_lines(self, pattern: str) -> list[str]:
        """Lines of ``jail_log`` matching the (anchored) regex ``pattern``."""
        regex = re.compile(pattern)
        text = self.jail_log.read_text(encoding="utf-8", errors="replace")
        return [line for line in text.splitlines() if regex.match(line)]

    def wait_for_jail_log(self, pattern: str, timeout: float = 10.0, count: int = 1) -> list[str]:
        """Wait until ``jail_log`` holds ``count`` lines matching ``pattern``; return them."""

        def enough() -> list[str]:
            lines = self.jail_lines(pattern)
            return lines if len(lines) >= count else []

        return poll_until(
            enough, timeout, f"{count} line(s) matching {pattern!r} in {self.jail_log.name}",
            self.diagnostics, 0.1,
        )  # fmt: skip

    # -- clients ------------------------------------------------------------------------

    def _host(self, host: Host | str) -> Host:
        return self.lab.clients[host] if isinstance(host, str) else host

    def connects(self, from_host: Host | str, address: str) -> bool:
        """True if a TCP handshake from ``from_host`` to the service's port completes."""
        return self._host(from_host).tcp_connect(address, self.PORT, timeout=1.5)

    def attempts(
        self,
        from_host: Host | str,
        address: str,
        user: str,
        password: str,
        count: int = 1,
        mode: Mode = "serial",
        timeout: float | None = None,
        protocol: Protocol | None = None,
    ) -> list[Outcome]:
        """``count`` logins from ``from_host`` to ``address``: each on its own connection,
        one after the other (``serial``) or at once (``parallel``), or all on one connection
        (``session``; it stops at the first success).

        An outcome is ``accepted`` (logged in, and a command worked), ``rejected`` (the
        server said no), ``unreachable`` (no connection: banned) or ``error`` (e.g. the
        server hung up). Bounded: the client is killed after its time is up. ``protocol``:
        another one the lab's service speaks (``PORTS``), instead of ``PROTOCOL``.
        """
        if not 1 <= count <= MAX_ATTEMPTS:
            raise ValueError(f"count must be 1..{MAX_ATTEMPTS}")
        if mode not in ("serial", "parallel", "session"):
            raise ValueError(f"unknown mode {mode!r}")
        protocol = protocol or self.PROTOCOL
        port = self.PORT if protocol == self.PROTOCOL else self.PORTS[protocol]
        host = self._host(from_host)
        timeout = self.CLIENT_TIMEOUT if timeout is None else timeout
        argv = [sys.executable, "-c", _CLIENT_SCRIPT, protocol, address, str(port),
                str(timeout), str(count), mode, user, password]  # fmt: skip
        bound = (1 if mode == "parallel" else count) * (timeout + 5) + 10
        started = time.monotonic()
        process = host.popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert process.stdout is not None
        try:
            readable, _, _ = select.select([process.stdout], [], [], bound)
            line = process.stdout.readline() if readable else ""
        finally:
            process.kill()
            _, stderr = process.communicate(timeout=10)
        report = json.loads(line) if line else None
        took = time.monotonic() - started
        target = f"{protocol} [{address}]:{port} as {user!r} x{count} {mode}"
        self._log_client(f"{host.name} -> {target}: {report} ({took:.1f}s)")
        if report is None:
            raise AssertionError(f"client in {host.name} gave no report in {bound:g}s: {stderr}")
        return report["outcomes"]

    def fail_logins(
        self,
        from_host: Host | str,
        address: str,
        count: int,
        mode: Mode = "parallel",
        protocol: Protocol | None = None,
    ) -> list[Outcome]:
        """``count`` logins as the lab's user with a fresh wrong password (never right)."""
        wrong = "wrong-" + secrets.token_urlsafe(9)
        return self.attempts(from_host, address, self.user, wrong, count, mode, protocol=protocol)

    def login(self, from_host: Host | str, address: str) -> bool:
        """One login with the right password: True if a session opened and worked."""
        return self.attempts(from_host, address, self.user, self.password) == ["accepted"]


class VsftpdLab(ServiceLab):
    """vsftpd with Debian's logging settings, PAM (pam_unix) and a lab-only local user."""

    PREFIX = "bgvsf"
    READY = "vsftpd to listen on port 21"
    PORT = 21
    PROTOCOL = "ftp"
    SERVICE_LOG = "vsftpd.log"
    SYSLOG_SELECTOR = "ftp,auth,authpriv.*"
    DIAGNOSED = ("vsftpd.log",)

    def __enter__(self) -> VsftpdLab:
        if not VSFTPD.is_file():
            raise RuntimeError(
                f"{VSFTPD} is missing: run `bash {FETCH_VSFTPD}` as root first "
                "(CI's .ci/run does; it downloads Debian's vsftpd without installing it)"
            )
        super().__enter__()
        return self

    def _daemon_argv(self) -> list[str]:
        return [str(VSFTPD), str(self.workdir / "vsftpd.conf")]

    def _run_dirs(self) -> list[tuple[str, str, int]]:
        # secure_chroot_dir must be empty and not writable by the session user.
        return [("/run/vsftpd", "0755", 0), ("/run/vsftpd/empty", "0555", 0),
                (HOME, "0755", USER_ID)]  # fmt: skip

    def _etc_binds(self) -> list[tuple[Path, str]]:
        etc = self.workdir / "etc"
        return [(etc / "passwd", "/etc/passwd"), (etc / "group", "/etc/group"),
                (etc / "shadow", "/etc/shadow"), (etc / "pam.d", "/etc/pam.d")]  # fmt: skip

    def _write_service_config(self) -> None:
        work = self.workdir
        syslog = "YES" if self.log_to == "syslog" else "NO"
        # Debian's /etc/vsftpd.conf (listen_ipv6, local users, xferlog_enable,
        # use_localtime, pam_service_name=vsftpd) with the lab's paths; no write access.
        conf = work / "vsftpd.conf"
        conf.write_text(
            "listen=NO\n"
            "listen_ipv6=YES\n"
            "background=NO\n"
            "anonymous_enable=NO\n"
            "local_enable=YES\n"
            "write_enable=NO\n"
            "use_localtime=YES\n"
            "xferlog_enable=YES\n"
            f"vsftpd_log_file={self.service_log}\n"
            f"syslog_enable={syslog}\n"
            "secure_chroot_dir=/run/vsftpd/empty\n"
            "pam_service_name=vsftpd\n"
            "ssl_enable=NO\n"
            f"max_clients={MAX_ATTEMPTS * 2}\n"
        )
        conf.chmod(0o600)  # vsftpd wants its config owned by the user running it: root
        etc = work / "etc"
        (etc / "pam.d").mkdir(parents=True, exist_ok=True)
        hashed = _sha512_crypt(self.password)
        uid = USER_ID
        (etc / "passwd").write_text(
            "root:x:0:0:root:/root:/bin/bash\n"
            f"nobody:x:{NOBODY}:{NOBODY}:nobody:/nonexistent:/usr/sbin/nologin\n"
            f"{self.user}:x:{uid}:{uid}::{HOME}:/bin/sh\n"
        )
        (etc / "group").write_text(f"root:x:0:\nnogroup:x:{NOBODY}:\n{self.user}:x:{uid}:\n")
        shadow = etc / "shadow"
        shadow.write_text(
            "root:*:19000:0:99999:7:::\n"
            "nobody:*:19000:0:99999:7:::\n"
            f"{self.user}:{hashed}:19000:0:99999:7:::\n"
        )
        shadow.chmod(0o600)
        # Debian's common-auth/common-account, reduced to pam_unix; nothing else may log in.
        # nodelay: no 2 s pause after a wrong password (vsftpd adds its own 1 s); the lines
        # pam_unix and vsftpd write are the same with or without it.
        (etc / "pam.d" / "vsftpd").write_text(
            "auth required pam_unix.so nodelay\n"
            "account required pam_unix.so\n"
            "session required pam_permit.so\n"
        )
        (etc / "pam.d" / "other").write_text(
            "auth required pam_deny.so\naccount required pam_deny.so\n"
            "password required pam_deny.so\nsession required pam_deny.so\n"
        )


class DovecotLab(ServiceLab):
    """Dovecot IMAP (plain, port 143) with a passwd-file user, logging as Debian's does;
    with POP3 (110) and submission (587, no relay: only its login matters) where their
    packages are installed (dovecot-pop3d, dovecot-submissiond)."""

    PREFIX = "bgdov"
    READY = "dovecot to listen on port 143"
    PORT = 143
    PROTOCOL = "imap"
    SERVICE_LOG = "dovecot.log"
    SYSLOG_SELECTOR = "mail,auth,authpriv.*"
    # Dovecot delays every login from an address (IPv6: its /48) that failed lately, up to
    # 15 s, the right password too: the innocent neighbour of an attacker waits that long.
    CLIENT_TIMEOUT = 25.0
    DIAGNOSED = ("dovecot.log",)
    LOG_TO = "syslog"  # Debian's log_path = syslog
    PORTS = {"pop3": 110, "submission": 587}

    @staticmethod
    def speaks(protocol: str) -> bool:
        """Whether the Dovecot installed here has ``protocol`` (its package's file)."""
        return Path(f"/usr/share/dovecot/protocols.d/{protocol}d.protocol").is_file()

    def _daemon_argv(self) -> list[str]:
        return [DOVECOT, "-F", "-c", str(self.workdir / "dovecot.conf")]

    def _run_dirs(self) -> list[tuple[str, str, int]]:
        return [("/run/servicelab-dovecot", "0755", 0), ("/run/servicelab-dovecot-state",
                "0750", 0), (HOME, "0755", NOBODY)]  # fmt: skip

    def _write_service_config(self) -> None:
        work = self.workdir
        users = work / "dovecot-users"
        users.write_text(f"{self.user}:{{SHA512-CRYPT}}{_sha512_crypt(self.password)}\n")
        users.chmod(0o600)
        log_path = self.service_log if self.log_to == "file" else "syslog"
        # Debian's defaults where they matter to the log (syslog facility mail, no
        # auth_verbose); plain text logins allowed since the lab speaks IMAP without TLS.
        (work / "dovecot.conf").write_text(
            f"""\
base_dir = /run/servicelab-dovecot
state_dir = /run/servicelab-dovecot-state
log_path = {log_path}
syslog_facility = mail
protocols = {" ".join(self._protocols())}
listen = *, ::
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {NOBODY}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={NOBODY} gid={NOBODY} home={HOME}/%u
}}
service auth {{
  user = root
}}
service imap-login {{
  inet_listener imap {{
    port = {self.PORT}
  }}
  inet_listener imaps {{
    port = 0
  }}
  process_limit = {MAX_ATTEMPTS * 2}
}}
{self._more_services()}"""
        )

    def _more_services(self) -> str:
        """The listeners of the other protocols this Dovecot speaks."""
        text = ""
        if self.speaks("pop3"):
            text += (
                "service pop3-login {\n"
                f"  inet_listener pop3 {{\n    port = {self.PORTS['pop3']}\n  }}\n"
                "  inet_listener pop3s {\n    port = 0\n  }\n}\n"
            )
        if self.speaks("submission"):
            text += (
                "service submission-login {\n"
                f"  inet_listener submission {{\n    port = {self.PORTS['submission']}\n  }}\n"
                "}\nsubmission_relay_host = 127.0.0.1\nhostname = mail.example.org\n"
            )
        return text

    def _protocols(self) -> list[str]:
        return ["imap", *(name for name in self.PORTS if self.speaks(name))]


class ApacheLab(ServiceLab):
    """Apache 2.4 (Debian's apache2, event MPM) with basic authentication on ``/private/``,
    over HTTP/1.1 and h2c, logging to its own error.log."""

    PREFIX = "bgapa"
    READY = "apache2 to listen on port 80"
    PORT = 80
    PROTOCOL = "http"
    PORTS = {"h2c": 80}
    SERVICE_LOG = "error.log"
    SYSLOG_SELECTOR = "daemon.*"
    CLIENT_TIMEOUT = 8.0
    DIAGNOSED = ("error.log", "access.log")
    ROOT = "/run/servicelab-apache"  # in the launcher's private /run

    def __init__(self, workdir: Path, log_to: LogTo | None = None, **kw: object) -> None:
        if log_to not in (None, "file"):
            raise ValueError("the Apache lab logs to its own error.log only")
        super().__init__(workdir, "file", **kw)  # type: ignore[arg-type]

    def _daemon_argv(self) -> list[str]:
        return [APACHE, "-DFOREGROUND", "-f", str(self.workdir / "httpd.conf")]

    def _run_dirs(self) -> list[tuple[str, str, int]]:
        return [(self.ROOT, "0755", 0), (f"{self.ROOT}/run", "0755", 0),
                (f"{self.ROOT}/htdocs", "0755", 0),
                (f"{self.ROOT}/htdocs/private", "0755", 0)]  # fmt: skip

    def _run_files(self) -> list[tuple[Path, str, str]]:
        return [(self.workdir / "htpasswd", f"{self.ROOT}/htpasswd", "0644"),
                (self.workdir / "index.html", f"{self.ROOT}/htdocs/private/index.html",
                 "0644")]  # fmt: skip

    def _write_service_config(self) -> None:
        work, root = self.workdir, self.ROOT
        (work / "htpasswd").write_text(_htpasswd_line(self.user, self.password))
        (work / "index.html").write_text("private\n")
        modules = "".join(
            f"LoadModule {name}_module {APACHE_MODULES}/mod_{name}.so\n"
            for name in ("mpm_event", "authn_core", "authn_file", "authz_core", "authz_user",
                         "auth_basic", "http2", "dir")
        )  # fmt: skip
        (work / "httpd.conf").write_text(
            f"""\
{modules}ServerName lab.example
Listen {self.PORT}
PidFile {root}/run/httpd.pid
DefaultRuntimeDir {root}/run
ErrorLog {self.service_log}
LogLevel warn
LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{{Referer}}i\\" \\"%{{User-Agent}}i\\"" combined
CustomLog {work}/access.log combined
User www-data
Group www-data
Protocols h2c http/1.1
DocumentRoot {root}/htdocs
DirectoryIndex index.html
<Directory {root}/htdocs/private>
  AuthType Basic
  AuthName "private"
  AuthUserFile {root}/htpasswd
  Require valid-user
</Directory>
"""
        )
