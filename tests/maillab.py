"""Real mail, DNS and file servers inside a Lab (issue 15): Cyrus IMAP, Sendmail, OpenSMTPD,
nginx's mail proxy, BIND's named and Samba's smbd, writing the lines production has.

Each lab is a ``servicelab.ServiceLab``: ``tests/servicelab-launch.sh`` runs as PID 1 of
private mount and PID namespaces in the lab's server network namespace, with a private
``/dev`` (``/dev/log`` exists only there), a private ``/run``, rsyslogd, and the service.
Lab-only accounts are bound over /etc's ``passwd``, ``group`` (and ``shadow``) in that mount
namespace only. The clients speak the real protocol over real TCP or UDP from their own
namespaces.

Services whose Debian package conflicts with an installed one (Cyrus with Dovecot, Sendmail
with any MTA) are never installed: ``tests/fetch-unpacked.sh`` unpacks
Debian's package into ``/var/cache/bruteguard-tests/PACKAGE`` (as ``fetch-vsftpd.sh`` does
for vsftpd), and the lab runs the binaries from there; their shared libraries are installed
packages (``.ci/run``).

User names and passwords are fresh and random per lab; every command is an argv list;
config files hold only this module's own text. Only documentation addresses are used.
"""

from __future__ import annotations

import json
import secrets
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

from netns import Host
from servicelab import MAX_ATTEMPTS, NOBODY, Outcome, ServiceLab, _nul_words, _sha512_crypt

__all__ = [
    "CYRUS",
    "FETCH_UNPACKED",
    "OPENSMTPD",
    "SENDMAIL",
    "UNPACKED",
    "BindLab",
    "CyrusLab",
    "MailLab",
    "NginxMailLab",
    "OpenSmtpdLab",
    "SambaLab",
    "SendmailLab",
    "require_unpacked",
]

UNPACKED = Path("/var/cache/bruteguard-tests")
FETCH_UNPACKED = Path(__file__).with_name("fetch-unpacked.sh")

CYRUS = UNPACKED / "cyrus-imapd"  # cyrus-common and cyrus-imapd unpacked together
CYRUS_BIN = CYRUS / "usr/lib/cyrus/bin"
CYRUS_LIBS = CYRUS / "usr/lib/x86_64-linux-gnu"

CYRUS_ID = 60124  # the lab's "cyrus" user and "mail" group: in the lab's passwd only
RUN = "/run/maillab"  # the services' state, inside the launcher's private /run

# One child process makes every attempt of a call, each on its own connection (serial or
# parallel) or all on one ("session"). Protocol, address, port, user and password arrive as
# argv, never as code. It prints one JSON line: each attempt's outcome and what was said.
# "starttls" is SMTP AUTH after STARTTLS (the server's certificate is not verified).
# "relay" is SMTP without AUTH: MAIL FROM:<user> and RCPT TO:<password> per attempt (an
# attempt to relay when the recipient is elsewhere; "rejected" when the RCPT is refused).
_CLIENT_SCRIPT = """
import imaplib, json, poplib, smtplib, ssl, sys, threading
proto, addr, port, timeout, count, mode, user, password = sys.argv[1:9]
port, timeout, count = int(port), float(timeout), int(count)

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
            results.append(("accepted", ""))
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
            results.append(("accepted", ""))
            break
    except (OSError, EOFError) as exc:
        results.append(("error", repr(exc)))
    finally:
        try:
            client.quit()
        except (OSError, EOFError, poplib.error_proto):
            pass
    return results

def smtp(tries, tls=False):
    try:
        client = smtplib.SMTP(addr, port, timeout=timeout)
        client.ehlo("client.example.net")
        if tls:
            # The lab's certificate is self-signed: encryption without verification.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            # Anonymous ECDH (TLS 1.2): Debian 12's OpenSMTPD 6.8 cannot use its private key
            # under OpenSSL 3 (the key lives in its privilege-separated "ca" process, and
            # OpenSSL 3 no longer routes the handshake's signature or decryption there:
            # OpenSMTPD issues 1171, 1239); a handshake that needs no key still works.
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers("AECDH-AES256-SHA:@SECLEVEL=0")
            client.starttls(context=context)
            client.ehlo("client.example.net")
        # One AUTH command per attempt (smtplib would try the next mechanism after a 535).
        client.esmtp_features["auth"] = "PLAIN"
    except (OSError, EOFError, smtplib.SMTPException) as exc:
        return [("unreachable", repr(exc))] * tries
    results = []
    try:
        while len(results) < tries:
            try:
                client.login(user, password)
            except (smtplib.SMTPAuthenticationError, smtplib.SMTPResponseException) as exc:
                if exc.smtp_code not in (535, 454):
                    raise
                results.append(("rejected", str(exc)))
                continue
            results.append(("accepted", ""))
            break
    except (OSError, EOFError, smtplib.SMTPException) as exc:
        results.append(("error", repr(exc)))
    finally:
        try:
            client.quit()
        except (OSError, EOFError, smtplib.SMTPException):
            pass
    return results

def relay(tries):
    try:
        client = smtplib.SMTP(addr, port, timeout=timeout)
        client.ehlo("client.example.net")
    except (OSError, EOFError, smtplib.SMTPException) as exc:
        return [("unreachable", repr(exc))] * tries
    results = []
    try:
        while len(results) < tries:
            client.rset()
            code, said = client.mail(user)
            if code == 250:
                code, said = client.rcpt(password)
            outcome = "accepted" if code in (250, 251) else "rejected" if code >= 500 else "error"
            results.append((outcome, said.decode(errors="replace")))
    except (OSError, EOFError, smtplib.SMTPException) as exc:
        results.append(("error", repr(exc)))
    finally:
        try:
            client.quit()
        except (OSError, EOFError, smtplib.SMTPException):
            pass
    return results

session = {"imap": imap, "pop3": pop3, "smtp": smtp, "relay": relay,
           "starttls": lambda tries: smtp(tries, tls=True)}[proto]
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


def require_unpacked(*paths: Path) -> None:
    """Raise (the test fails, never skips) when an unpacked binary is missing."""
    for path in paths:
        if not path.exists():
            raise RuntimeError(
                f"{path} is missing: run `bash {FETCH_UNPACKED}` as root first (CI's .ci/run"
                " does; it downloads Debian's packages and unpacks them without installing)"
            )


class MailLab(ServiceLab):
    """A ServiceLab whose clients speak IMAP, POP3 or SMTP AUTH (``PROTOCOL``), and whose
    launcher (``tests/maillab-launch.sh``) also copies work files into the private /run
    (``_copies``): servers that read their configuration after dropping root cannot read
    the work directory (pytest's tmp is root's alone)."""

    LAUNCHER = Path(__file__).with_name("maillab-launch.sh")
    PROTOCOL: ClassVar[str]  # type: ignore[assignment]  # "imap", "pop3" or "smtp"
    CLIENT_TIMEOUT = 10.0

    def _copies(self) -> list[tuple[str, str, str, int]]:
        """(work file name, path in /run, mode, uid=gid) the launcher copies."""
        return []

    def _covers(self) -> list[str]:
        """Existing directories under /var/ the launcher hides under an empty tmpfs."""
        return []

    def _ready(self) -> bool:
        """The service listens on its port for IPv4 and IPv6 (any address), per the kernel."""
        result = self.lab.server.run(["ss", "-H", "-l", "-n", "-t"], check=False)
        local = [fields[3] for fields in map(str.split, result.stdout.splitlines())
                 if len(fields) >= 4 and fields[3].endswith(f":{self.PORT}")]  # fmt: skip
        ipv6 = any(address.startswith(("[", "*")) for address in local)
        ipv4 = any(not address.startswith("[") for address in local)
        return ipv4 and ipv6

    def _prepare(self) -> None:
        super()._prepare()
        copies = [
            word
            for name, target, mode, owner in self._copies()
            for word in (str(self.workdir / name), target, mode, f"{owner}:{owner}")
        ]
        (self.workdir / "copies").write_bytes(_nul_words(copies))
        (self.workdir / "covers").write_bytes(_nul_words(self._covers()))

    def attempts(  # type: ignore[override]
        self,
        from_host: Host | str,
        address: str,
        user: str,
        password: str,
        count: int = 1,
        mode: str = "serial",
        timeout: float | None = None,
        protocol: str | None = None,
        port: int | None = None,
    ) -> list[Outcome]:
        """``count`` logins (see ``ServiceLab.attempts``), in ``protocol`` on ``port``."""
        if not 1 <= count <= MAX_ATTEMPTS:
            raise ValueError(f"count must be 1..{MAX_ATTEMPTS}")
        if mode not in ("serial", "parallel", "session"):
            raise ValueError(f"unknown mode {mode!r}")
        host = self._host(from_host)
        protocol = protocol or self.PROTOCOL
        port = port or self.PORT
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

    def fail_logins(  # type: ignore[override]
        self, from_host: Host | str, address: str, count: int, mode: str = "serial", **kw
    ) -> list[Outcome]:
        """``count`` logins as the lab's user with a fresh wrong password (never right)."""
        wrong = "wrong-" + secrets.token_urlsafe(9)
        return self.attempts(from_host, address, self.user, wrong, count, mode, **kw)

    def _lab_accounts(self, extra_passwd: str = "", extra_group: str = "") -> None:
        """The lab's own passwd and group (root, nobody and the service's users), bound over
        /etc's in the launcher's mount namespace."""
        etc = self.workdir / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "passwd").write_text(
            "root:x:0:0:root:/root:/bin/bash\n"
            f"nobody:x:{NOBODY}:{NOBODY}:nobody:/nonexistent:/usr/sbin/nologin\n" + extra_passwd
        )
        (etc / "group").write_text(f"root:x:0:\nnogroup:x:{NOBODY}:\n" + extra_group)
        # The clients' PTR names, as the services' getnameinfo finds them (no DNS here).
        names = "".join(
            f"{address} {name}.example.net\n"
            for name, host in self.lab.clients.items()
            for address in (host.ipv4, host.ipv6)
        )
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n::1 localhost\n{names}")

    def _etc_binds(self) -> list[tuple[Path, str]]:
        etc = self.workdir / "etc"
        return [(etc / "passwd", "/etc/passwd"), (etc / "group", "/etc/group"),
                (etc / "hosts", "/etc/hosts")]  # fmt: skip


class CyrusLab(MailLab):
    """Cyrus IMAP 3.6 (Debian's cyrus-imapd, unpacked): master with imapd on 143 and pop3d
    on 110, plain-text logins allowed, users in a sasldb; syslog ident ``cyrus/imap`` and
    ``cyrus/pop3`` (Debian's ``syslog_prefix: cyrus``), facility mail."""

    PREFIX = "bgcyr"
    READY = "Cyrus imapd to listen on port 143"
    PORT = 143
    POP3_PORT = 110
    PROTOCOL = "imap"
    SERVICE_LOG = "cyrus.log"  # unused: Cyrus logs to syslog only
    SYSLOG_SELECTOR = "mail,auth,authpriv.*"
    LOG_TO = "syslog"
    DIAGNOSED = ("master.stderr",)
    REALM = "maillab"

    def __enter__(self) -> CyrusLab:
        require_unpacked(CYRUS_BIN / "master", CYRUS_BIN / "imapd")
        super().__enter__()
        return self

    def _daemon_argv(self) -> list[str]:
        return ["/usr/bin/env", f"LD_LIBRARY_PATH={CYRUS_LIBS}", str(CYRUS_BIN / "master"),
                "-D", "-C", f"{RUN}/imapd.conf", "-M", f"{RUN}/cyrus.conf",
                "-p", f"{RUN}/master.pid", "-L", str(self.workdir / "master.stderr")]  # fmt: skip

    def _copies(self) -> list[tuple[str, str, str, int]]:
        return [(name, f"{RUN}/{name}", "0640", CYRUS_ID)
                for name in ("imapd.conf", "cyrus.conf", "sasldb2")]  # fmt: skip

    def _run_dirs(self) -> list[tuple[str, str, int]]:
        dirs = [RUN, f"{RUN}/config", f"{RUN}/spool"]
        dirs += [f"{RUN}/config/{d}" for d in ("db", "proc", "socket", "log", "msg", "user",
                                               "quota", "sieve", "lock")]  # fmt: skip
        return [(path, "0750", CYRUS_ID) for path in dirs]

    def _write_service_config(self) -> None:
        work = self.workdir
        self._lab_accounts(
            f"cyrus:x:{CYRUS_ID}:{CYRUS_ID}::{RUN}:/usr/sbin/nologin\n",
            f"mail:x:{CYRUS_ID}:cyrus\n",
        )
        sasldb = work / "sasldb2"
        subprocess.run(
            ["saslpasswd2", "-f", str(sasldb), "-u", self.REALM, "-c", "-p", self.user],
            input=self.password, text=True, capture_output=True, timeout=30, check=True,
        )  # fmt: skip
        # Debian's /etc/imapd.conf where it matters to the log (syslog_prefix cyrus,
        # sasl_pwcheck_method, allowplaintext), with the lab's paths and a 1 s pause.
        (work / "imapd.conf").write_text(
            f"configdirectory: {RUN}/config\n"
            "defaultpartition: default\n"
            f"partition-default: {RUN}/spool\n"
            f"servername: {self.REALM}\n"
            "syslog_prefix: cyrus\n"
            "allowplaintext: yes\n"
            "sasl_pwcheck_method: auxprop\n"
            "sasl_auxprop_plugin: sasldb\n"
            f"sasl_sasldb_path: {RUN}/sasldb2\n"
            "sasl_mech_list: PLAIN LOGIN\n"
            "failedloginpause: 1\n"
            "autocreate_users: nobody\n"
            f"proc_path: {RUN}/config/proc\n"
        )
        conf = f"{RUN}/imapd.conf"
        (work / "cyrus.conf").write_text(
            "START {\n}\n"
            "SERVICES {\n"
            f'  imap cmd="{CYRUS_BIN}/imapd -C {conf}" listen="{self.PORT}" prefork=0\n'
            f'  pop3 cmd="{CYRUS_BIN}/pop3d -C {conf}" listen="{self.POP3_PORT}" prefork=0\n'
            "}\n"
            "EVENTS {\n}\n"
        )


SENDMAIL = UNPACKED / "sendmail"
SENDMAIL_BIN = SENDMAIL / "usr/libexec/sendmail/sendmail"
SENDMAIL_CF = SENDMAIL / "usr/share/sendmail/cf"


class SendmailLab(MailLab):
    """Sendmail 8.17 (Debian's sendmail-bin, unpacked): ``sendmail -bD`` on port 25 with a
    sendmail.cf built by m4 from Debian's sendmail-cf, SMTP AUTH (PLAIN, LOGIN) against a
    sasldb bound over /etc/sasldb2 (Cyrus SASL's default for the "Sendmail" application),
    Debian's default LogLevel 9; syslog ident ``sm-mta``, facility mail."""

    PREFIX = "bgsm"
    READY = "sendmail to listen on port 25"
    PORT = 25
    PROTOCOL = "smtp"
    SERVICE_LOG = "sendmail.log"  # unused: Sendmail logs to syslog only
    SYSLOG_SELECTOR = "mail,auth,authpriv.*"
    LOG_TO = "syslog"
    REALM = "maillab"

    def __enter__(self) -> SendmailLab:
        require_unpacked(SENDMAIL_BIN, SENDMAIL_CF / "m4/cf.m4")
        super().__enter__()
        return self

    def _daemon_argv(self) -> list[str]:
        # -bD: the daemon in the foreground; -L: syslog ident as Debian's init script gives.
        return [str(SENDMAIL_BIN), "-bD", "-L", "sm-mta", "-C", f"{RUN}/sendmail.cf"]

    def _run_dirs(self) -> list[tuple[str, str, int]]:
        return [(RUN, "0755", 0), (f"{RUN}/mqueue", "0700", 0)]

    def _copies(self) -> list[tuple[str, str, str, int]]:
        return [("sendmail.cf", f"{RUN}/sendmail.cf", "0644", 0)]

    def _etc_binds(self) -> list[tuple[Path, str]]:
        return [*super()._etc_binds(), (self.workdir / "sasldb2", "/etc/sasldb2")]

    def _write_service_config(self) -> None:
        work = self.workdir
        self._lab_accounts()
        subprocess.run(
            ["saslpasswd2", "-f", str(work / "sasldb2"), "-u", self.REALM, "-c", "-p",
             self.user],
            input=self.password, text=True, capture_output=True, timeout=30, check=True,
        )  # fmt: skip
        # Debian's sendmail.mc where it matters to the log (LogLevel 9, SMTP AUTH), with
        # the lab's paths; no DNS (a fixed domain name, no interface probing).
        (work / "sendmail.mc").write_text(
            "divert(0)dnl\n"
            "OSTYPE(`linux')dnl\n"
            "define(`confDOMAIN_NAME', `mail.example.org')dnl\n"
            "define(`confDONT_PROBE_INTERFACES', `True')dnl\n"
            "define(`confLOG_LEVEL', `9')dnl\n"
            "define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl\n"
            "TRUST_AUTH_MECH(`PLAIN LOGIN')dnl\n"
            f"define(`confAUTH_REALM', `{self.REALM}')dnl\n"
            f"define(`confDEF_USER_ID', `{NOBODY}:{NOBODY}')dnl\n"
            f"define(`QUEUE_DIR', `{RUN}/mqueue')dnl\n"
            f"define(`confPID_FILE', `{RUN}/sendmail.pid')dnl\n"
            f"define(`STATUS_FILE', `{RUN}/statistics')dnl\n"
            "define(`ALIAS_FILE', `')dnl\n"
            "define(`confHOST_STATUS_DIRECTORY', `')dnl\n"
            "FEATURE(`no_default_msa')dnl\n"
            # a client that talks before the greeting is refused (and logged)
            "FEATURE(`greet_pause', `300')dnl\n"
            # Debian's two daemons (its mc binds them to loopback; here the lab's addresses)
            f"DAEMON_OPTIONS(`Family=inet, Name=MTA-v4, Port={self.PORT},"
            f" Addr={self.server.ipv4}')dnl\n"
            f"DAEMON_OPTIONS(`Family=inet6, Name=MTA-v6, Port={self.PORT},"
            f" Addr={self.server.ipv6}')dnl\n"
            "MAILER(`local')dnl\n"
            "MAILER(`smtp')dnl\n"
        )
        cf = subprocess.run(
            ["m4", f"-D_CF_DIR_={SENDMAIL_CF}/", str(SENDMAIL_CF / "m4/cf.m4"),
             str(work / "sendmail.mc")],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
        (work / "sendmail.cf").write_text(cf)


OPENSMTPD = UNPACKED / "opensmtpd"
OPENSMTPD_BIN = OPENSMTPD / "usr/sbin/smtpd"
# Debian's build: the privilege-separation users, and the paths compiled into smtpd.
OPENSMTPD_USERS = (("opensmtpd", 60125), ("opensmtpq", 60126))
OPENSMTPD_CHROOT = "/var/lib/opensmtpd/empty"
OPENSMTPD_SPOOL = "/var/spool/smtpd"
OPENSMTPD_USER_ID = 60127  # the lab's mail user: in the lab's passwd and shadow only


class OpenSmtpdLab(MailLab):
    """OpenSMTPD 6.8 (Debian's opensmtpd, unpacked): ``smtpd -F`` (foreground, syslog) on
    the submission port for IPv4 and IPv6, STARTTLS required before AUTH (OpenSMTPD offers
    AUTH only over TLS) with a fresh self-signed certificate; AUTH checks the system's
    accounts through PAM (Debian builds it with PAM, service ``smtpd``: pam_unix against the
    lab's shadow). Its compiled-in spool and chroot directories live under tmpfs covers of
    /var/spool and /var/lib; its users are in the lab's passwd only. Syslog ident
    ``smtpd``, facility mail.

    Debian 12's build cannot finish a handshake that uses its private key under OpenSSL 3
    (OpenSMTPD issues 1171, 1239: ``missing private key``), so the lab also allows
    anonymous ECDH (``smtp ciphers``) and the clients ask for it; the TLS session, and
    everything OpenSMTPD logs after it, are the same as with a certificate."""

    PREFIX = "bgosm"
    READY = "smtpd to listen on port 587"
    PORT = 587
    PROTOCOL = "starttls"
    SERVICE_LOG = "smtpd.log"  # unused: OpenSMTPD logs to syslog only
    SYSLOG_SELECTOR = "mail,auth,authpriv.*"
    LOG_TO = "syslog"
    DOMAIN = "mail.example.org"

    def __enter__(self) -> OpenSmtpdLab:
        require_unpacked(OPENSMTPD_BIN)
        super().__enter__()
        return self

    def _daemon_argv(self) -> list[str]:
        return [str(OPENSMTPD_BIN), "-F", "-f", f"{RUN}/smtpd.conf"]

    def _covers(self) -> list[str]:
        return ["/var/spool", "/var/lib"]

    def _run_dirs(self) -> list[tuple[str, str, int]]:
        return [(RUN, "0755", 0), ("/var/lib/opensmtpd", "0755", 0),
                (OPENSMTPD_CHROOT, "0755", 0), (OPENSMTPD_SPOOL, "0711", 0)]  # fmt: skip

    def _copies(self) -> list[tuple[str, str, str, int]]:
        return [("smtpd.conf", f"{RUN}/smtpd.conf", "0644", 0),
                ("cert.pem", f"{RUN}/cert.pem", "0644", 0),
                ("key.pem", f"{RUN}/key.pem", "0600", 0)]  # fmt: skip

    def _etc_binds(self) -> list[tuple[Path, str]]:
        etc = self.workdir / "etc"
        return [*super()._etc_binds(), (etc / "shadow", "/etc/shadow"),
                (etc / "pam.d", "/etc/pam.d")]  # fmt: skip

    def _write_service_config(self) -> None:
        work = self.workdir
        uid = OPENSMTPD_USER_ID
        users = "".join(
            f"{name}:x:{id_}:{id_}::{OPENSMTPD_CHROOT}:/usr/sbin/nologin\n"
            for name, id_ in OPENSMTPD_USERS
        )
        groups = "".join(f"{name}:x:{id_}:\n" for name, id_ in OPENSMTPD_USERS)
        self._lab_accounts(
            users + f"{self.user}:x:{uid}:{uid}::{RUN}:/bin/sh\n",
            groups + f"{self.user}:x:{uid}:\n",
        )
        etc = work / "etc"
        shadow = etc / "shadow"
        shadow.write_text(
            "root:*:19000:0:99999:7:::\n"
            f"{self.user}:{_sha512_crypt(self.password)}:19000:0:99999:7:::\n"
        )
        shadow.chmod(0o600)
        # Debian's common-auth/common-account, reduced to pam_unix; nothing else may log in.
        # nodelay: no 2 s pause after a wrong password (OpenSMTPD pauses on its own).
        pam = etc / "pam.d"
        pam.mkdir(exist_ok=True)
        (pam / "smtpd").write_text(
            "auth required pam_unix.so nodelay\naccount required pam_unix.so\n"
        )
        (pam / "other").write_text(
            "auth required pam_deny.so\naccount required pam_deny.so\n"
            "password required pam_deny.so\nsession required pam_deny.so\n"
        )
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", f"/CN={self.DOMAIN}", "-keyout", str(work / "key.pem"),
             "-out", str(work / "cert.pem")],
            capture_output=True, timeout=60, check=True,
        )  # fmt: skip
        # A listener with TLS needs a pki (loaded, though the anonymous handshake never uses
        # it); "smtp ciphers" adds anonymous ECDH to OpenSMTPD's default list (see above).
        # "auth" without a table: the system's accounts (PAM). Mail is relayed for
        # authenticated clients only (the tests never send any).
        pki = f"pki {self.DOMAIN}"
        listen = f"port {self.PORT} tls-require pki {self.DOMAIN} auth"
        (work / "smtpd.conf").write_text(
            f'{pki} cert "{RUN}/cert.pem"\n'
            f'{pki} key "{RUN}/key.pem"\n'
            'smtp ciphers "HIGH:!MD5:AECDH-AES256-SHA:@SECLEVEL=0"\n'
            f"listen on {self.server.ipv4} {listen}\n"
            f"listen on {self.server.ipv6} {listen}\n"
            'action "relay" relay\n'
            'match auth from any for any action "relay"\n'
        )


NGINX = "/usr/sbin/nginx"
NGINX_MAIL_MODULE = Path("/usr/lib/nginx/modules/ngx_mail_module.so")


class NginxMailLab(MailLab):
    """nginx's mail proxy (Debian's nginx and libnginx-mod-mail): IMAP on 143 and POP3 on
    110, every login checked by ``auth_http`` against a location of the same nginx that
    refuses them all (``Auth-Status: Invalid login or password``), as an auth server
    refuses a wrong password; the mail error log at level ``info`` (where nginx writes
    ``client login failed``), in nginx's own error-log format."""

    PREFIX = "bgngx"
    READY = "nginx to listen on port 143"
    PORT = 143
    POP3_PORT = 110
    PROTOCOL = "imap"
    SERVICE_LOG = "nginx-error.log"
    SYSLOG_SELECTOR = "mail.*"
    LOG_TO = "file"
    DIAGNOSED = ("nginx-error.log",)

    def __enter__(self) -> NginxMailLab:
        if not NGINX_MAIL_MODULE.is_file():
            raise RuntimeError(
                f"{NGINX_MAIL_MODULE} is missing: apt-get install nginx libnginx-mod-mail"
            )
        super().__enter__()
        return self

    def _daemon_argv(self) -> list[str]:
        return [NGINX, "-p", f"{RUN}/", "-c", f"{RUN}/nginx.conf", "-e", str(self.service_log)]

    def _run_dirs(self) -> list[tuple[str, str, int]]:
        return [(RUN, "0755", 0)]

    def _copies(self) -> list[tuple[str, str, str, int]]:
        return [("nginx.conf", f"{RUN}/nginx.conf", "0644", 0)]

    def _write_service_config(self) -> None:
        self._lab_accounts()
        log = self.service_log
        # Debian's nginx.conf mail example, with auth_http answered by nginx itself.
        (self.workdir / "nginx.conf").write_text(
            f"""\
load_module {NGINX_MAIL_MODULE};
user nobody nogroup;
worker_processes 1;
daemon off;
pid {RUN}/nginx.pid;
error_log {log} info;
events {{
    worker_connections 64;
}}
http {{
    access_log off;
    client_body_temp_path {RUN}/body;
    proxy_temp_path {RUN}/proxy;
    fastcgi_temp_path {RUN}/fastcgi;
    uwsgi_temp_path {RUN}/uwsgi;
    scgi_temp_path {RUN}/scgi;
    server {{
        listen 127.0.0.1:9000;
        location = /auth {{
            add_header Auth-Status "Invalid login or password" always;
            add_header Auth-Wait 1 always;
            return 204;
        }}
    }}
}}
mail {{
    server_name mail.example.org;
    auth_http 127.0.0.1:9000/auth;
    error_log {log} info;
    server {{
        listen {self.PORT};
        listen [::]:{self.PORT};
        protocol imap;
    }}
    server {{
        listen {self.POP3_PORT};
        listen [::]:{self.POP3_PORT};
        protocol pop3;
    }}
}}
"""
        )


NAMED = "/usr/sbin/named"
DIG = "/usr/bin/dig"


class BindLab(MailLab):
    """BIND 9.18's named (Debian's bind9): authoritative for ``example.org`` (anyone may query
    it) and ``internal.example.org`` (only localhost may), recursion for nobody (other names
    are refused: ``query (cache) … denied``), no zone transfers and no updates for anyone;
    ``named -f`` logs to syslog (facility daemon), as Debian's named does. Clients ask with
    ``dig`` over UDP or TCP."""

    PREFIX = "bgdns"
    READY = "named to listen on port 53"
    PORT = 53
    PROTOCOL = "dns"
    SERVICE_LOG = "named.log"  # unused: named logs to syslog
    SYSLOG_SELECTOR = "daemon.*"
    LOG_TO = "syslog"
    ZONE = "example.org"

    def __enter__(self) -> BindLab:
        if not Path(NAMED).is_file() or not Path(DIG).is_file():
            raise RuntimeError("named or dig is missing: apt-get install bind9 bind9-dnsutils")
        super().__enter__()
        return self

    def _daemon_argv(self) -> list[str]:
        return [NAMED, "-f", "-c", f"{RUN}/named.conf"]

    def _run_dirs(self) -> list[tuple[str, str, int]]:
        return [(RUN, "0755", 0)]

    def _copies(self) -> list[tuple[str, str, str, int]]:
        return [("named.conf", f"{RUN}/named.conf", "0644", 0),
                ("db.example.org", f"{RUN}/db.example.org", "0644", 0)]  # fmt: skip

    def _write_service_config(self) -> None:
        self._lab_accounts()
        server = self.server
        (self.workdir / "db.example.org").write_text(
            f"$TTL 300\n@ IN SOA ns.{self.ZONE}. hostmaster.{self.ZONE}. 1 3600 600 86400 300\n"
            f"@ IN NS ns.{self.ZONE}.\nns IN A {server.ipv4}\nns IN AAAA {server.ipv6}\n"
            f"www IN A {server.ipv4}\n"
        )
        # Debian's named.conf.options where it matters (logging to syslog by default), an
        # authoritative server: no recursion, no transfers, no updates.
        (self.workdir / "named.conf").write_text(
            f"""\
options {{
    directory "{RUN}";
    pid-file "{RUN}/named.pid";
    listen-on {{ {server.ipv4}; }};
    listen-on-v6 {{ {server.ipv6}; }};
    recursion yes;
    allow-recursion {{ none; }};
    allow-transfer {{ none; }};
    dnssec-validation no;
}};
controls {{ }};
zone "{self.ZONE}" {{
    type primary;
    file "{RUN}/db.example.org";
    allow-query {{ any; }};
    allow-update {{ none; }};
}};
zone "internal.{self.ZONE}" {{
    type primary;
    file "{RUN}/db.example.org";
    allow-query {{ 127.0.0.1; }};
}};
"""
        )

    def dig(self, from_host: Host | str, address: str, *query: str, tcp: bool = False) -> str:
        """``dig`` from ``from_host``: the answer's status (``NOERROR``, ``REFUSED``…), or
        ``unreachable`` when no answer came (1 s, one try)."""
        argv = [DIG, f"@{address}", "+time=1", "+tries=1", "+noall", "+comments"]
        argv += ["+tcp"] if tcp else []
        result = self._host(from_host).run([*argv, *query], check=False, timeout=15)
        for line in result.stdout.splitlines():
            if "status: " in line:
                status = line.split("status: ", 1)[1].split(",", 1)[0]
                self._log_client(f"dig {' '.join(query)} @{address} tcp={tcp}: {status}")
                return status
        self._log_client(f"dig {' '.join(query)} @{address} tcp={tcp}: {result.stdout!r}")
        if "Transfer failed" in result.stdout:
            return "REFUSED"
        return "unreachable"


SMBD = "/usr/sbin/smbd"
SMBCLIENT = "/usr/bin/smbclient"
SMBPASSWD = "/usr/bin/smbpasswd"


class SambaLab(MailLab):
    """Samba 4.17's smbd (Debian's samba), a standalone server on port 445 with one share
    and one user (the lab's ``nobody``, with a fresh Samba password in a tdbsam of the work
    directory); authentication failures logged to syslog (``logging = syslog@2``, the
    ``auth_audit`` class at level 2), as an administrator who wants them in syslog sets
    it. Clients run ``smbclient``."""

    PREFIX = "bgsmb"
    READY = "smbd to listen on port 445"
    PORT = 445
    PROTOCOL = "smb"
    SERVICE_LOG = "log.smbd"  # Samba's own log file (two lines a message), beside syslog
    SYSLOG_SELECTOR = "*.*"
    LOG_TO = "syslog"
    SMB_USER = "nobody"  # a unix account in the host's and the lab's passwd alike

    def __enter__(self) -> SambaLab:
        for program in (SMBD, SMBCLIENT, SMBPASSWD):
            if not Path(program).is_file():
                raise RuntimeError(f"{program} is missing: apt-get install samba smbclient")
        super().__enter__()
        return self

    def _daemon_argv(self) -> list[str]:
        return [SMBD, "--foreground", "--no-process-group", "-s", str(self.workdir / "smb.conf")]

    def _run_dirs(self) -> list[tuple[str, str, int]]:
        return [(RUN, "0755", 0), (f"{RUN}/share", "0755", 0)]

    def _write_service_config(self) -> None:
        work = self.workdir
        self._lab_accounts()
        state = work / "samba"
        for name in ("private", "lock", "state", "cache", "pid", "ncalrpc"):
            (state / name).mkdir(parents=True, exist_ok=True)
        conf = work / "smb.conf"
        conf.write_text(
            f"""\
[global]
    server role = standalone server
    workgroup = LAB
    netbios name = MAILLAB
    interfaces = {self.server.ipv4} {self.server.ipv6}
    bind interfaces only = yes
    smb ports = 445
    disable netbios = yes
    load printers = no
    printcap name = /dev/null
    passdb backend = tdbsam:{state}/private/passdb.tdb
    private dir = {state}/private
    lock directory = {state}/lock
    state directory = {state}/state
    cache directory = {state}/cache
    pid directory = {state}/pid
    ncalrpc dir = {state}/ncalrpc
    log file = {self.service_log}
    log level = 1 auth_audit:2 auth_json_audit:2 auth:2
    logging = syslog@2 file
    map to guest = never
[share]
    path = {RUN}/share
    read only = yes
"""
        )
        # The user's Samba password, set on the host with the lab's own passdb (smbpasswd
        # needs the unix account, which the host's passwd has too).
        subprocess.run(
            [SMBPASSWD, "-c", str(conf), "-a", "-s", self.SMB_USER],
            input=f"{self.password}\n{self.password}\n", text=True, capture_output=True,
            timeout=60, check=True,
        )  # fmt: skip
        self.user = self.SMB_USER

    def smb(self, from_host: Host | str, address: str, user: str, password: str) -> str:
        """``smbclient -L`` (list shares) from ``from_host`` as ``user``: ``accepted``,
        ``rejected`` (the server refused the login) or ``unreachable``."""
        argv = [SMBCLIENT, "-L", f"//{address}", "-U", f"LAB\\{user}%{password}", "-t", "5",
                "--option=client min protocol=SMB2", "-m", "SMB3"]  # fmt: skip
        if not user:
            argv[3:5] = ["-N"]
        result = self._host(from_host).run(argv, check=False, timeout=30)
        text = result.stdout + result.stderr
        # Over IPv6 the share list comes with "no workgroup available" (no NetBIOS) and a
        # failing exit status: the listed IPC$ share says the login worked.
        if result.returncode == 0 or "IPC$" in result.stdout:
            outcome = "accepted"
        elif "NT_STATUS_LOGON_FAILURE" in text or "NT_STATUS_ACCESS_DENIED" in text:
            outcome = "rejected"
        else:
            outcome = "unreachable"
        self._log_client(f"smbclient -L //{address} as {user!r}: {outcome} {text[-200:]!r}")
        return outcome
