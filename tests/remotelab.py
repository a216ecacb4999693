"""Real remote-access daemons in a Lab: dropbear (SSH), OpenVPN (TCP) and cockpit-ws.

Issue 15 asks for the services other tools protect, each proven end to end with the real
daemon: the lines bruteguard meets must be the ones the service writes. Each lab here is a
``servicelab.ServiceLab``: ``tests/servicelab-launch.sh`` runs rsyslogd and the daemon as
PID 1 of private mount and PID namespaces in the lab's server namespace, with a private
``/dev`` (``/dev/log`` only there), ``/run`` and, where the daemon checks accounts, the
lab's own ``passwd``, ``group``, ``shadow`` and ``pam.d`` bound over /etc's.

- ``DropbearLab``: Debian's dropbear 2022.83 on port 2222 (its own port: it never meets the
  host's or another lab's sshd), logging through syslog (facility authpriv, as Debian's
  init script runs it) to the lab's auth log. Clients are OpenSSH's ``ssh`` with
  ``sshpass``, one password per connection.
- ``OpenvpnLab``: OpenVPN 2.6 as a TCP server on port 1194 (``proto tcp6-server``: one
  dual-stack socket), a lab CA made with ``openssl`` (server and client certificates, and a
  client certificate from a CA the server does not trust), ``auth-user-pass-verify`` with a
  script that accepts only the lab's user and password, logging to syslog (facility
  daemon, as Debian's ``openvpn@.service`` with ``--daemon``). Clients are real
  ``openvpn`` processes in the client namespaces: no tun device is needed to fail or pass
  authentication (``dev null``), and a client is done once the server has said yes or no.
- ``CockpitLab``: cockpit-ws 287 with ``--no-tls`` on port 9090, ``cockpit-session``
  authenticating through the lab's PAM (``pam_unix``), which logs through syslog
  (facility authpriv). Clients speak HTTP to ``/cockpit/login`` with Basic authorization,
  as the login page's script does.

User names and passwords are fresh and random per lab. Nothing on the host is touched;
every command is an argv list; config files hold only this module's own text (paths, the
random user name, a crypt hash, certificate file names).
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar, Self

from netns import Host
from servicelab import NOBODY, Mode, Outcome, Protocol, ServiceLab, _sha512_crypt

__all__ = [
    "COCKPIT_WS",
    "DROPBEAR",
    "OPENVPN",
    "CockpitLab",
    "DropbearLab",
    "OpenvpnLab",
    "RemoteLab",
]

DROPBEAR = Path("/usr/sbin/dropbear")
DROPBEARKEY = Path("/usr/bin/dropbearkey")
OPENVPN = Path("/usr/sbin/openvpn")
COCKPIT_WS = Path("/usr/lib/cockpit/cockpit-ws")

HOME = "/run/remotelab-home"  # the lab user's home, in the launcher's private /run
USER_ID = 60124  # the lab user's uid and gid: in the lab's own passwd only
MAX_ATTEMPTS = 20


def _accounts(etc: Path, user: str, password: str, shell: str = "/bin/sh") -> None:
    """The lab's passwd, group and shadow: root (no password), nobody and the lab user."""
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        f"nobody:x:{NOBODY}:{NOBODY}:nobody:/nonexistent:/usr/sbin/nologin\n"
        f"{user}:x:{USER_ID}:{USER_ID}::{HOME}:{shell}\n"
    )
    (etc / "group").write_text(f"root:x:0:\nnogroup:x:{NOBODY}:\n{user}:x:{USER_ID}:\n")
    shadow = etc / "shadow"
    shadow.write_text(
        "root:*:19000:0:99999:7:::\n"
        "nobody:*:19000:0:99999:7:::\n"
        f"{user}:{_sha512_crypt(password)}:19000:0:99999:7:::\n"
    )
    shadow.chmod(0o600)


def _account_binds(etc: Path, pam: bool) -> list[tuple[Path, str]]:
    binds = [(etc / "passwd", "/etc/passwd"), (etc / "group", "/etc/group"),
             (etc / "shadow", "/etc/shadow")]  # fmt: skip
    return [*binds, (etc / "pam.d", "/etc/pam.d")] if pam else binds


class RemoteLab(ServiceLab):
    """A ServiceLab whose clients are real programs run once per attempt (``_attempt``)."""

    LOG_TO = "syslog"
    SERVICE_LOG = "unused.log"  # these daemons log through syslog only
    CLIENT_TIMEOUT: ClassVar[float] = 15.0
    PROGRAM: ClassVar[Path]  # the daemon
    PACKAGE: ClassVar[str]  # the Debian package that installs it (.ci/run does)

    @classmethod
    def missing(cls) -> str | None:
        """Why the lab cannot run here (what to install), or None."""
        if not cls.PROGRAM.is_file():
            return f"{cls.PROGRAM} is missing: apt-get install {cls.PACKAGE} (CI installs it)"
        return None

    def __enter__(self) -> Self:
        why = self.missing()
        if why:
            raise RuntimeError(why)
        return super().__enter__()

    def __init__(self, workdir: Path, log_to: str | None = None, **kw: object) -> None:
        if log_to not in (None, "syslog"):
            raise ValueError(f"{type(self).__name__} logs through syslog only")
        super().__init__(workdir, "syslog", **kw)  # type: ignore[arg-type]

    def _attempt(
        self, host: Host, address: str, user: str, password: str, timeout: float
    ) -> tuple[str, str]:
        """One login on its own connection: an ``Outcome`` and what the client said."""
        raise NotImplementedError

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
        """``count`` logins, each on its own connection, one after the other (the only
        mode: every client here makes one attempt per connection). Each lab speaks one
        protocol, its own client's: ``protocol`` is there for the shared signature only."""
        if not 1 <= count <= MAX_ATTEMPTS:
            raise ValueError(f"count must be 1..{MAX_ATTEMPTS}")
        if protocol is not None:
            raise ValueError(f"{type(self).__name__}: speaks only its own client's protocol")
        if mode == "session":
            raise ValueError(f"{type(self).__name__}: one attempt per connection only")
        host = self._host(from_host)
        timeout = self.CLIENT_TIMEOUT if timeout is None else timeout
        outcomes: list[Outcome] = []
        for _ in range(count):
            started = time.monotonic()
            outcome, detail = self._attempt(host, address, user, password, timeout)
            took = time.monotonic() - started
            target = f"[{address}]:{self.PORT} as {user!r}"
            self._log_client(f"{host.name} -> {target}: {outcome} {detail!r} ({took:.1f}s)")
            outcomes.append(outcome)  # type: ignore[arg-type]
        return outcomes

    def fail_logins(
        self, from_host: Host | str, address: str, count: int, mode: Mode = "serial"
    ) -> list[Outcome]:
        return super().fail_logins(from_host, address, count, "serial")


class DropbearLab(RemoteLab):
    """dropbear (Debian's, no PAM: it checks /etc/shadow itself) on port 2222."""

    PREFIX = "bgdrb"
    READY = "dropbear to listen on port 2222"
    PORT = 2222
    SYSLOG_SELECTOR = "auth,authpriv.*"
    PROGRAM = DROPBEAR
    PACKAGE = "dropbear-bin"

    EXTRA_ARGS: ClassVar[tuple[str, ...]] = ()

    def _daemon_argv(self) -> list[str]:
        # -F: foreground; no -E: syslog, as Debian's init script runs it. -j -k: no port
        # forwarding; the host key is the lab's own.
        key = self.workdir / "host_key"
        return [str(DROPBEAR), "-F", "-m", "-p", str(self.PORT), "-r", str(key),
                "-P", "/run/remotelab-dropbear.pid", "-j", "-k", *self.EXTRA_ARGS]  # fmt: skip

    def _run_dirs(self) -> list[tuple[str, str, int]]:
        return [(HOME, "0755", USER_ID)]

    def _etc_binds(self) -> list[tuple[Path, str]]:
        return _account_binds(self.workdir / "etc", pam=False)

    def _write_service_config(self) -> None:
        key = self.workdir / "host_key"
        subprocess.run([str(DROPBEARKEY), "-t", "ed25519", "-f", str(key)],
                       capture_output=True, timeout=30, check=True)  # fmt: skip
        _accounts(self.workdir / "etc", self.user, self.password)

    def _attempt(
        self, host: Host, address: str, user: str, password: str, timeout: float
    ) -> tuple[str, str]:
        argv = [
            "sshpass", "-e",
            "ssh", "-F", "/dev/null",
            "-o", "BatchMode=no",
            "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "PreferredAuthentications=password",
            "-o", "PubkeyAuthentication=no",
            "-o", "NumberOfPasswordPrompts=1",
            "-o", "ConnectionAttempts=1",
            "-o", f"ConnectTimeout={max(1, int(timeout / 3))}",
            "-o", "LogLevel=ERROR",
            "-p", str(self.PORT),
            "-l", user,
            "--", address, "id", "-un",
        ]  # fmt: skip
        env = {**os.environ, "SSHPASS": password}
        try:
            result = host.run(argv, check=False, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "error", f"no answer within {timeout:g}s"
        said = f"exit {result.returncode}: {result.stdout.strip()!r} {result.stderr.strip()}"
        if result.returncode == 0 and result.stdout.strip() == user:
            return "accepted", said
        if "Permission denied" in result.stderr:
            return "rejected", said
        if "Connection refused" in result.stderr or "timed out" in result.stderr:
            return "unreachable", said
        return "error", said


# OpenVPN's auth-user-pass-verify script ("via-file": argv[1] holds the user name and the
# password, one a line). It accepts only the lab's user with the password whose SHA-256 is
# given; it is this module's own text, the two values arrive as argv from the config.
_VERIFY_SCRIPT = """\
import hashlib, sys
user, digest, path = sys.argv[1:4]
with open(path, encoding="utf-8", errors="replace") as given:
    lines = given.read().split("\\n")
given = hashlib.sha256(lines[1].encode()).hexdigest() if len(lines) >= 2 else ""
sys.exit(0 if lines[0] == user and given == digest else 1)
"""


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], capture_output=True, timeout=60, check=True)


def _certificate(work: Path, name: str, subject: str, issuer: str, usage: str) -> None:
    """``name``.key/.crt in ``work``: an EC key and a certificate for ``subject`` signed by
    ``issuer`` (its .key/.crt in ``work``), for ``usage`` (serverAuth or clientAuth)."""
    (work / f"{name}.ext").write_text(
        f"basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyAgreement\n"
        f"extendedKeyUsage={usage}\n"
    )
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(work / f"{name}.key"), "-subj", f"/CN={subject}",
             "-out", str(work / f"{name}.csr"))  # fmt: skip
    _openssl("x509", "-req", "-in", str(work / f"{name}.csr"), "-CA", str(work / f"{issuer}.crt"),
             "-CAkey", str(work / f"{issuer}.key"), "-CAcreateserial", "-days", "2",
             "-out", str(work / f"{name}.crt"), "-extfile", str(work / f"{name}.ext"))  # fmt: skip


def _authority(work: Path, name: str, subject: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(work / f"{name}.key"), "-subj", f"/CN={subject}",
             "-days", "2", "-out", str(work / f"{name}.crt"))  # fmt: skip


class OpenvpnLab(RemoteLab):
    """OpenVPN 2.6, a TCP server on port 1194 with certificates and a user/password check.

    The lab CA signs the server's and the clients' certificates (``client``); a second CA
    the server does not know signs ``rogue``, a certificate whose handshake must fail. The
    tunnel (``tun0``, 198.51.100.0/24, in the server namespace) is never used: a client is
    done when the server pushed its options (accepted) or said no.
    """

    PREFIX = "bgovpn"
    READY = "openvpn to listen on port 1194"
    PORT = 1194
    SYSLOG_SELECTOR = "daemon.*"
    PROGRAM = OPENVPN
    PACKAGE = "openvpn"
    CLIENT_TIMEOUT = 20.0

    def _daemon_argv(self) -> list[str]:
        return [str(OPENVPN), "--config", str(self.workdir / "server.conf")]

    def _run_dirs(self) -> list[tuple[str, str, int]]:
        return [("/run/remotelab-openvpn", "0700", 0)]

    def _prepare(self) -> None:
        super()._prepare()
        (self.workdir / "devices").write_bytes(b"net/tun\0")  # the server's tun0

    def _write_service_config(self) -> None:
        work = self.workdir
        _authority(work, "ca", "bruteguard lab CA")
        _authority(work, "rogue-ca", "unknown CA")
        _certificate(work, "server", "server", "ca", "serverAuth")
        _certificate(work, "client", "client", "ca", "clientAuth")
        _certificate(work, "rogue", "rogue", "rogue-ca", "clientAuth")
        verify = work / "verify.py"
        verify.write_text(_VERIFY_SCRIPT)
        digest = hashlib.sha256(self.password.encode()).hexdigest()
        # Debian's sample server.conf where it matters to the log (verb 3, syslog through
        # --daemon ovpn-server: here --syslog, which stays in the foreground).
        (work / "server.conf").write_text(
            "port 1194\n"
            "proto tcp6-server\n"
            "dev tun\n"
            "topology subnet\n"
            "server 198.51.100.0 255.255.255.0\n"
            f"ca {work / 'ca.crt'}\ncert {work / 'server.crt'}\nkey {work / 'server.key'}\n"
            "dh none\n"
            "script-security 2\n"
            f'auth-user-pass-verify "{sys.executable} -I {verify} {self.user} {digest}" via-file\n'
            "tmp-dir /run/remotelab-openvpn\n"
            "keepalive 10 120\n"
            "syslog ovpn-server\n"
            "verb 3\n"
        )

    def _attempt(
        self, host: Host, address: str, user: str, password: str, timeout: float
    ) -> tuple[str, str]:
        return self.vpn_attempt(host, address, user, password, "client", timeout)

    def vpn_attempt(
        self,
        host: Host,
        address: str,
        user: str,
        password: str,
        certificate: str = "client",
        timeout: float | None = None,
    ) -> tuple[str, str]:
        """One connection of a real ``openvpn`` client with ``certificate`` (``client`` or
        ``rogue``): ``accepted`` once the server pushes its options, ``rejected`` when it
        refuses the password or the handshake fails, ``unreachable`` when the connection is
        refused. The client is killed as soon as the outcome is known (bounded)."""
        work = self.workdir
        secret = work / f"client-{time.monotonic_ns()}.pass"
        secret.touch(mode=0o600)
        secret.write_text(f"{user}\n{password}\n")
        argv = [str(OPENVPN), "--client", "--dev", "null", "--proto", "tcp-client",
                "--remote", address, str(self.PORT), "--nobind", "--remote-cert-tls", "server",
                "--ca", str(work / "ca.crt"), "--cert", str(work / f"{certificate}.crt"),
                "--key", str(work / f"{certificate}.key"), "--auth-user-pass", str(secret),
                "--auth-retry", "none", "--connect-retry-max", "1", "--connect-timeout", "5",
                "--verb", "3"]  # fmt: skip
        timeout = self.CLIENT_TIMEOUT if timeout is None else timeout
        verdicts = (
            ("PUSH: Received control message: 'PUSH_REPLY", "accepted"),
            ("AUTH_FAILED", "rejected"),
            ("Connection refused", "unreachable"),
            ("connection-reset", "rejected"),
            ("TLS Error", "rejected"),
        )
        process = host.popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        outcome, said = "error", f"no verdict within {timeout:g}s"
        try:
            while time.monotonic() < deadline:
                readable, _, _ = select.select([process.stdout], [], [], 0.5)
                if not readable:
                    continue
                line = process.stdout.readline()
                if not line:
                    said = "the client exited without a verdict"
                    break
                verdict = next((v for text, v in verdicts if text in line), None)
                if verdict:
                    outcome, said = verdict, line.strip()
                    break
        finally:
            process.kill()
            process.communicate(timeout=10)
            secret.unlink()
        return outcome, said


# One login as cockpit's login page makes it: GET /cockpit/login with Basic authorization
# (and, when given, an X-Forwarded-For header of the client's choosing). Address, port,
# user, password and header arrive as argv. It prints one JSON line: the HTTP status (0:
# no connection) and what happened.
_COCKPIT_CLIENT = """
import base64, http.client, json, sys
addr, port, timeout, user, password, forwarded = sys.argv[1:7]
token = base64.b64encode(f"{user}:{password}".encode()).decode()
headers = {"Authorization": f"Basic {token}", "X-Requested-With": "XMLHttpRequest"}
if forwarded:
    headers["X-Forwarded-For"] = forwarded
try:
    connection = http.client.HTTPConnection(addr, int(port), timeout=float(timeout))
    connection.request("GET", "/cockpit/login", headers=headers)
    response = connection.getresponse()
    said = response.read(300).decode(errors="replace")
    print(json.dumps({"status": response.status, "said": said}))
except OSError as error:
    print(json.dumps({"status": 0, "said": repr(error)}))
"""


class CockpitLab(RemoteLab):
    """cockpit-ws 287 without TLS on port 9090; logins through cockpit-session and PAM.

    ``forwarded_for``: cockpit.conf's ``[WebService] ForwardedForHeader = X-Forwarded-For``
    (what an admin sets behind a reverse proxy): cockpit then takes the client's address
    from that header, which a client connecting directly writes itself.
    """

    PREFIX = "bgckpt"
    READY = "cockpit-ws to listen on port 9090"
    PORT = 9090
    SYSLOG_SELECTOR = "auth,authpriv,daemon.*"
    PROGRAM = COCKPIT_WS
    PACKAGE = "cockpit-ws"

    @classmethod
    def missing(cls) -> str | None:
        if not Path("/usr/bin/cockpit-bridge").is_file():  # what a successful login runs
            return "cockpit-bridge is missing: apt-get install cockpit-bridge (CI installs it)"
        return super().missing()

    def __init__(self, workdir: Path, log_to: str | None = None, forwarded_for: bool = False,
                 **kw: object) -> None:  # fmt: skip
        super().__init__(workdir, log_to, **kw)
        self.forwarded_for = forwarded_for

    def _daemon_argv(self) -> list[str]:
        config = f"XDG_CONFIG_DIRS={self.workdir / 'config'}"
        return ["/usr/bin/env", config, str(COCKPIT_WS), "--no-tls", "--port", str(self.PORT)]

    def _run_dirs(self) -> list[tuple[str, str, int]]:
        return [(HOME, "0755", USER_ID)]

    def _etc_binds(self) -> list[tuple[Path, str]]:
        return _account_binds(self.workdir / "etc", pam=True)

    def _write_service_config(self) -> None:
        etc = self.workdir / "etc"
        _accounts(etc, self.user, self.password, shell="/bin/bash")
        (etc / "pam.d").mkdir(exist_ok=True)
        # Debian's /etc/pam.d/cockpit reduced to pam_unix (common-auth, common-account);
        # nodelay: no 2 s pause after a wrong password (the lines are the same).
        (etc / "pam.d" / "cockpit").write_text(
            "auth required pam_unix.so nodelay\n"
            "account required pam_unix.so\n"
            "session required pam_permit.so\n"
        )
        (etc / "pam.d" / "other").write_text(
            "auth required pam_deny.so\naccount required pam_deny.so\n"
            "password required pam_deny.so\nsession required pam_deny.so\n"
        )
        config = self.workdir / "config" / "cockpit"
        config.mkdir(parents=True, exist_ok=True)
        header = "ForwardedForHeader = X-Forwarded-For\n" if self.forwarded_for else ""
        (config / "cockpit.conf").write_text(f"[WebService]\n{header}")

    def _attempt(
        self, host: Host, address: str, user: str, password: str, timeout: float
    ) -> tuple[str, str]:
        return self.http_login(host, address, user, password, timeout=timeout)

    def http_login(
        self,
        host: Host,
        address: str,
        user: str,
        password: str,
        forwarded: str = "",
        timeout: float | None = None,
    ) -> tuple[str, str]:
        """One login over HTTP: ``accepted`` (200), ``rejected`` (401, or 403 for a
        refused account), ``unreachable`` (no connection), else ``error``."""
        timeout = self.CLIENT_TIMEOUT if timeout is None else timeout
        argv = [sys.executable, "-c", _COCKPIT_CLIENT, address, str(self.PORT),
                str(timeout), user, password, forwarded]  # fmt: skip
        try:
            result = host.run(argv, check=False, timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            return "error", f"no answer within {timeout:g}s"
        try:
            report = json.loads(result.stdout)
        except ValueError:
            return "error", f"{result.stdout!r} {result.stderr!r}"
        status, said = report["status"], f"{report['status']} {report['said'][:120]!r}"
        verdict = {200: "accepted", 401: "rejected", 403: "rejected", 0: "unreachable"}
        return verdict.get(status, "error"), said
