"""The whole product against real OpenSSH: failed logins in auth.log become firewall bans.

Each test builds an ``SshLab`` (sshd + rsyslogd in the server namespace, an attacker and an
innocent client), starts the real ``bruteguard run`` in the server namespace tailing the
real auth.log with the nftables enforcer, and judges by behaviour: a ban is a TCP connect
to port 22 that fails from the attacker while the innocent client still logs in.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bgdaemon import Bruteguard
from e2e_lab import FAMILIES, LabDaemons, address, processes_mentioning, refused
from netns import Host, existing_namespaces
from sshlab import SSH_PORT, SshLab, Timestamps, poll_until, sshd_jail, user_exists

pytestmark = pytest.mark.netns

MAXRETRY = 3
SHORT_BANTIME = 12  # seconds: long enough to look at the ban, short enough to wait out
LONG_BANTIME = 300  # seconds: a ban that must not expire while a test restarts the daemon


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def start_lab(lab_daemons: LabDaemons, tmp_path: Path) -> Callable[..., tuple[SshLab, Bruteguard]]:
    """Start an SshLab and bruteguard watching its auth.log; everything stops afterwards."""

    def start(
        bantime: int, timestamps: Timestamps = "traditional", extra_config: str = ""
    ) -> tuple[SshLab, Bruteguard]:
        ssh = SshLab(tmp_path / "sshlab", timestamps=timestamps, extra_config=extra_config)
        jail = sshd_jail(ssh.auth_log, MAXRETRY, bantime)
        return lab_daemons.start(ssh, {"sshd": jail})

    return start


def addresses(ssh: SshLab, family: str) -> tuple[str, str]:
    """(server address, attacker address) of ``family``."""
    return address(ssh.lab.server, family), address(ssh.lab.clients["attacker"], family)


def fail_logins_until_banned(ssh: SshLab, daemon: Bruteguard, family: str) -> dict[str, Any]:
    """MAXRETRY wrong passwords from the attacker; return the ban once the firewall holds it.

    The MAXRETRY-th attempt must still reach sshd (its ``Failed password`` line proves it):
    a ban before maxretry failures would be wrong too.
    """
    server, attacker_ip = addresses(ssh, family)
    attacker = ssh.lab.clients["attacker"]
    failed = (
        rf"^.* sshd\[\d+\]: Failed password for {re.escape(ssh.user)} "
        rf"from {re.escape(attacker_ip)} port \d+ ssh2$"
    )
    for attempt in range(1, MAXRETRY + 1):
        assert not ssh.ssh_password_attempt(attacker, server, password="wrong-password")
        ssh.wait_for_log(failed, timeout=10, count=attempt)
    ban = poll_until(
        lambda: daemon.ban_of(attacker_ip), 15, f"`bans --json` to list {attacker_ip}", daemon.log
    )
    assert ban["jail"] == "sshd", ban
    poll_until(
        lambda: refused(attacker, server), 10, f"the firewall to drop {attacker_ip}", daemon.log
    )
    return ban


def host_dev_log() -> object:
    """The host's /dev/log (its identity, or None): a lab must neither replace nor add it."""
    try:
        stat = os.lstat("/dev/log")
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino)


def test_sshlab_is_real_sshd_and_syslog_and_leaves_nothing_behind(
    netns_root: None, tmp_path: Path
) -> None:
    workdir = tmp_path / "sshlab"
    before = host_dev_log()
    with SshLab(workdir) as ssh:
        names = set(ssh.lab.namespaces)
        assert user_exists(ssh.user)
        server, attacker_ip = addresses(ssh, "ipv6")
        attacker = ssh.lab.clients["attacker"]
        assert not ssh.ssh_password_attempt(attacker, server, password="wrong-password")
        assert ssh.innocent_can_login(server), ssh.diagnostics()
        ssh.wait_for_log(
            rf"^[A-Z][a-z]{{2}} [ \d]\d \d\d:\d\d:\d\d \S+ sshd\[\d+\]: "
            rf"Failed password for {ssh.user} from {re.escape(attacker_ip)} port \d+ ssh2$"
        )
        innocent_ip = re.escape(ssh.lab.clients["innocent"].ipv6)
        ssh.wait_for_log(rf"^.* sshd\[\d+\]: Accepted password for {ssh.user} from {innocent_ip} ")
        assert processes_mentioning(str(workdir))
        assert host_dev_log() == before, "the lab's /dev/log leaked onto the host"
    assert not processes_mentioning(str(workdir)), "sshd or rsyslogd outlived the lab"
    assert not names & existing_namespaces()
    assert host_dev_log() == before, "the lab changed the host's /dev/log"
    assert not user_exists(ssh.user), "the lab left its user behind"


def test_failed_passwords_ban_the_attacker_until_bantime(start_lab, family: str) -> None:
    ssh, daemon = start_lab(bantime=SHORT_BANTIME)
    server, attacker_ip = addresses(ssh, family)
    attacker = ssh.lab.clients["attacker"]

    ban = fail_logins_until_banned(ssh, daemon, family)

    assert refused(attacker, server)
    assert ssh.innocent_can_login(server), f"{ssh.diagnostics()}\n{daemon.log()}"
    assert ban["until"] - ban["start"] == pytest.approx(SHORT_BANTIME, abs=1), ban

    poll_until(
        lambda: attacker.tcp_connect(server, SSH_PORT, timeout=1.5),
        SHORT_BANTIME + 20,
        f"the ban of {attacker_ip} to expire",
        daemon.log,
    )
    assert time.time() >= ban["until"] - 1.5, "the ban lifted before its bantime was over"
    poll_until(
        lambda: daemon.ban_of(attacker_ip) is None,
        10,
        "the expired ban to leave `bans`",
        daemon.log,
    )
    assert daemon.process is not None and daemon.process.poll() is None, daemon.log()


def test_ban_survives_sigkill_and_is_restored_from_the_store(start_lab, family: str) -> None:
    ssh, daemon = start_lab(bantime=LONG_BANTIME)
    server, attacker_ip = addresses(ssh, family)
    attacker = ssh.lab.clients["attacker"]
    ban = fail_logins_until_banned(ssh, daemon, family)

    daemon.kill()
    assert refused(attacker, server), "a crash of bruteguard lifted the ban"

    # Simulate a reboot: the kernel forgets the firewall, and auth.log no longer holds the
    # failures (truncated, as logrotate's copytruncate does). Only the store knows the ban.
    # rsyslog must have written the line about that connection before the log is emptied,
    # or the line would land in the emptied log: count on a fresh one, not any old one.
    closed = rf"^.* sshd\[\d+\]: Connection closed by {re.escape(attacker_ip)} port \d+$"
    seen = len(ssh.find_lines(closed))
    ssh.lab.server.run(["nft", "delete", "table", "inet", "bruteguard"])
    poll_until(lambda: not refused(attacker, server), 5, "the attacker to get through")
    ssh.wait_for_log(closed, count=seen + 1)
    ssh.auth_log.write_bytes(b"")

    daemon.start()
    poll_until(
        lambda: refused(attacker, server),
        5,
        f"the restarted daemon to restore the ban of {attacker_ip} from its store",
        daemon.log,
    )
    restored = daemon.ban_of(attacker_ip)
    assert restored is not None, daemon.log()
    assert restored["until"] == pytest.approx(ban["until"], abs=1), restored
    assert ssh.innocent_can_login(server), f"{ssh.diagnostics()}\n{daemon.log()}"


def test_sigterm_keeps_the_ban_and_stop_unban_lifts_it(start_lab, family: str) -> None:
    ssh, daemon = start_lab(bantime=LONG_BANTIME)
    server, attacker_ip = addresses(ssh, family)
    attacker = ssh.lab.clients["attacker"]
    fail_logins_until_banned(ssh, daemon, family)

    assert daemon.terminate() == 0, daemon.log()
    assert refused(attacker, server), "stopping bruteguard with SIGTERM lifted the ban"

    daemon.start()
    daemon.cli("stop", "--unban")
    assert daemon.process is not None
    assert daemon.process.wait(timeout=20) == 0, daemon.log()
    poll_until(
        lambda: not refused(attacker, server),
        5,
        f"`stop --unban` to lift the ban of {attacker_ip}",
        daemon.log,
    )


def test_after_stop_unban_and_a_restart_new_failures_ban_again(start_lab, family: str) -> None:
    """The failures that made the lifted ban are still in the store and are replayed on
    start: they must not revive it, or the attacker could fail on until its old end."""
    ssh, daemon = start_lab(bantime=LONG_BANTIME)
    server, attacker_ip = addresses(ssh, family)
    attacker = ssh.lab.clients["attacker"]
    first = fail_logins_until_banned(ssh, daemon, family)

    daemon.cli("stop", "--unban")
    assert daemon.process is not None
    assert daemon.process.wait(timeout=20) == 0, daemon.log()
    # The ban froze the last attempt's connection; once lifted, sshd logs its end. That
    # line comes after the lift and may count once (written in the lift's second, it is
    # ignored): so the new ban needs MAXRETRY - 1 or MAXRETRY new failed passwords.
    ended = (
        rf"^.* sshd\[\d+\]: Connection (?:closed|reset) by (?:authenticating user \S+ )?"
        rf"{re.escape(attacker_ip)} port \d+(?: \[preauth\])?$"
    )
    ssh.wait_for_log(ended, timeout=20, count=MAXRETRY)

    daemon.start()
    assert daemon.ban_of(attacker_ip) is None, daemon.log()
    # No bare TCP probe until the end: sshd logs a connection closed before its banner,
    # and those lines count too. Each attempt's own ``Failed password`` line proves it got
    # through the firewall.
    failed = (
        rf"^.* sshd\[\d+\]: Failed password for {re.escape(ssh.user)} "
        rf"from {re.escape(attacker_ip)} port \d+ ssh2$"
    )
    seen = len(ssh.find_lines(failed))

    def counted() -> int:
        """Failures the restarted daemon has read: its counter moves in the same step as
        its decision on them, so a ban they made is listed by then."""
        status = json.loads(daemon.cli("status", "--json").stdout)
        return sum(jail["failures"] for jail in status["jails"] if jail["name"] == "sshd")

    attempts = 0
    while attempts < MAXRETRY and daemon.ban_of(attacker_ip) is None:
        attempts += 1
        assert not ssh.ssh_password_attempt(attacker, server, password="wrong-password")
        ssh.wait_for_log(failed, timeout=10, count=seen + attempts)
        poll_until(lambda n=attempts: counted() >= n, 10, "the daemon to count it", daemon.log)
    assert attempts >= MAXRETRY - 1, f"banned again after {attempts} new failures"
    poll_until(
        lambda: refused(attacker, server),
        10,
        f"the restarted daemon to ban {attacker_ip} again",
        daemon.log,
    )
    again = daemon.ban_of(attacker_ip)
    assert again is not None and again["start"] > first["start"], again
    assert ssh.innocent_can_login(server), f"{ssh.diagnostics()}\n{daemon.log()}"


def test_rfc3339_syslog_timestamps_are_read_too(start_lab) -> None:
    ssh, daemon = start_lab(bantime=LONG_BANTIME, timestamps="rfc3339")
    assert ssh.find_lines(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d \S+ sshd\[")
    server, _ = addresses(ssh, "ipv4")
    fail_logins_until_banned(ssh, daemon, "ipv4")
    assert refused(ssh.lab.clients["attacker"], server)
    assert ssh.innocent_can_login(server), f"{ssh.diagnostics()}\n{daemon.log()}"


def keygen(*argv: str) -> None:
    subprocess.run(["ssh-keygen", "-q", *argv], capture_output=True, timeout=60, check=True)


def certificate_attempt(ssh: SshLab, client: Host, addr: str, user: str, key: Path) -> bool:
    """One publickey login with ``key``'s certificate (ssh offers it, then the plain key):
    True if it worked."""
    argv = [
        "ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "IdentitiesOnly=yes", "-o", "PreferredAuthentications=publickey",
        "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
        "-i", str(key), "-o", f"CertificateFile={key}-cert.pub",
        "-p", str(SSH_PORT), "-l", user, "--", addr, "true",
    ]  # fmt: skip
    return client.run(argv, check=False, timeout=20).returncode == 0


def counted(daemon: Bruteguard) -> int:
    """The failures the daemon has counted in the sshd jail (``status --json``)."""
    status = json.loads(daemon.cli("status", "--json").stdout)
    return next(jail["failures"] for jail in status["jails"] if jail["name"] == "sshd")


def test_certificates_and_refused_root_logins_count_once_each(start_lab, tmp_path: Path) -> None:
    """The real sshd with a trusted user CA, ``PermitRootLogin no`` and ``LogLevel
    VERBOSE``: a root certificate from the trusted CA is refused (``ROOT LOGIN REFUSED``,
    written twice, and ``Failed publickey … ED25519-CERT …``): one attempt. A certificate
    from an unknown CA fails (``Failed publickey … ED25519-CERT … ID … CA …``), then the
    plain key ssh offers next: a valid user's refused keys, one attempt when the connection
    ends with none accepted. The third attempt bans; the innocent still logs in."""
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("trusted-ca", "unknown-ca", "root", "user"):
        keygen("-t", "ed25519", "-N", "", "-C", name, "-f", str(keys / name))
    keygen("-s", str(keys / "trusted-ca"), "-I", "root-cert", "-n", "root", "-z", "7",
           str(keys / "root.pub"))  # fmt: skip
    ssh, daemon = start_lab(
        bantime=LONG_BANTIME,
        extra_config=(
            f"TrustedUserCAKeys {keys / 'trusted-ca.pub'}\n"
            "PubkeyAuthentication yes\nPermitRootLogin no\nLogLevel VERBOSE\nAllowUsers root\n"
        ),
    )
    keygen("-s", str(keys / "unknown-ca"), "-I", f"{ssh.user}@lab", "-n", ssh.user, "-z", "1",
           str(keys / "user.pub"))  # fmt: skip
    server, attacker_ip = addresses(ssh, "ipv4")
    attacker = ssh.lab.clients["attacker"]
    address = re.escape(attacker_ip)

    assert not certificate_attempt(ssh, attacker, server, "root", keys / "root")
    ssh.wait_for_log(rf"^.* sshd\[\d+\]: ROOT LOGIN REFUSED FROM {address} port \d+ \[preauth\]$")
    ssh.wait_for_log(rf"^.* sshd\[\d+\]: Connection closed by authenticating user root {address} ")
    refusals = ssh.find_lines(rf"^.* sshd\[\d+\]: ROOT LOGIN REFUSED FROM {address} port \d+")
    assert len(refusals) == 2, ssh.diagnostics()  # the monitor's and the child's
    poll_until(lambda: counted(daemon) >= 1, 10, "the refused root login counted", daemon.log)
    time.sleep(1.5)  # the daemon reads on: still one attempt, no ban
    assert counted(daemon) == 1, daemon.log()
    assert daemon.ban_of(attacker_ip) is None, daemon.log()

    assert not certificate_attempt(ssh, attacker, server, ssh.user, keys / "user")
    ssh.wait_for_log(
        rf"^.* sshd\[\d+\]: Failed publickey for {ssh.user} from {address} port \d+ ssh2:"
        rf" ED25519-CERT SHA256:\S+ ID {re.escape(ssh.user)}@lab \(serial 1\) CA ED25519"
        rf" SHA256:\S+$"
    )
    poll_until(lambda: counted(daemon) >= 2, 10, "the refused keys' connection counted", daemon.log)
    time.sleep(1.5)  # the certificate and the plain key: one connection, one attempt
    assert counted(daemon) == 2, daemon.log()
    assert not certificate_attempt(ssh, attacker, server, ssh.user, keys / "user")
    ban = poll_until(lambda: daemon.ban_of(attacker_ip), 15, f"a ban of {attacker_ip}", daemon.log)
    assert ban["jail"] == "sshd", ban
    poll_until(lambda: refused(attacker, server), 10, "the firewall to drop the attacker")
    assert counted(daemon) == MAXRETRY, daemon.log()
    assert ssh.innocent_can_login(server), f"{ssh.diagnostics()}\n{daemon.log()}"
