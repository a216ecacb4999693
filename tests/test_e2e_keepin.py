"""Keeping the admin in, against real OpenSSH and real nftables in namespaces (issue 21).

The lab's clients share 192.0.2.0/24 with the server: ``admin`` (192.0.2.10), ``attacker``
(.11) and ``innocent`` (.12). Judged by behaviour only: a closed port is a TCP connect that
fails, an open one a real login; a live session is an ssh command that prints its last
word after the ban landed.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bgdaemon import Bruteguard
from bruteguard.knock.keys import new_key, read_key
from bruteguard.knock.packet import sign
from e2e_lab import LabDaemons
from e2e_lab import refused as closed
from netns import Host
from sshlab import SSH_PORT, SshLab, poll_until, sshd_jail

pytestmark = pytest.mark.netns

MAXRETRY = 3
KNOCK_PORT = 62201
OPEN_FOR = 6  # seconds a knock lets new connections in: short, so the close is seen
SEND_SCRIPT = (
    "import socket, sys\n"
    "with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:\n"
    "    s.sendto(bytes.fromhex(sys.argv[1]), (sys.argv[2], int(sys.argv[3])))\n"
)


@pytest.fixture
def start_lab(lab_daemons: LabDaemons, tmp_path: Path) -> Callable[..., tuple[SshLab, Bruteguard]]:
    """An SshLab with admin, attacker and innocent, and bruteguard watching its auth.log
    with ``jail`` settings added to the sshd jail and ``settings`` to the file."""

    def start(jail: dict[str, Any] | None = None, **settings: Any) -> tuple[SshLab, Bruteguard]:
        ssh = SshLab(tmp_path / "sshlab", clients=("admin", "attacker", "innocent"))
        table = {**sshd_jail(ssh.auth_log, MAXRETRY, 300), **(jail or {})}
        return lab_daemons.start(ssh, {"sshd": table}, allow_admin=False, **settings)

    return start


def wait_in_log(daemon: Bruteguard, pattern: str, timeout: float = 10) -> None:
    poll_until(lambda: re.search(pattern, daemon.log()), timeout, pattern, daemon.log)


def wait_for_session(ssh: SshLab, daemon: Bruteguard) -> None:
    """Until sshd says the admin logged in (the session is then an authenticated one)."""
    accepted = r"^.* sshd\[\d+\]: Accepted password for \S+ from 192\.0\.2\.10 port"
    poll_until(lambda: ssh.find_lines(accepted), 15, "the admin's session", daemon.log)


def send_raw(client: Host, packet: bytes, server: str) -> None:
    client.run([sys.executable, "-c", SEND_SCRIPT, packet.hex(), server, str(KNOCK_PORT)])


def knock_lab(start_lab: Callable[..., tuple[SshLab, Bruteguard]], tmp_path: Path):
    key_file = tmp_path / "knock.key"
    new_key(str(key_file))
    ssh, daemon = start_lab(
        # The probes of the closed port are failures to sshd's filter: never ban for them.
        {"knock": True, "maxretry": 1000},
        knock={
            "key_file": str(key_file),
            "port": KNOCK_PORT,
            "open_for": f"{OPEN_FOR}s",
            "window": "60s",
        },
    )
    return ssh, daemon, key_file


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_a_signed_knock_opens_sshd_for_the_knocker_only_and_for_open_for(
    start_lab: Callable[..., tuple[SshLab, Bruteguard]],
    tmp_path: Path,
    bruteguard_exe: Path,
    family: str,
) -> None:
    ssh, daemon, key_file = knock_lab(start_lab, tmp_path)
    server = getattr(ssh.lab.server, family)
    admin, attacker = ssh.lab.clients["admin"], ssh.lab.clients["attacker"]
    assert closed(admin, server) and closed(attacker, server)  # closed to all
    knocked = time.monotonic()
    result = admin.run(
        [str(bruteguard_exe), "knock", server, "--key", str(key_file),
         "--knock-port", str(KNOCK_PORT)],
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert getattr(admin, family) in result.stdout  # the address it signed: its own
    poll_until(lambda: not closed(admin, server), 5, "the knock to open port 22", daemon.log)
    assert ssh.innocent_can_login(server, client="admin"), ssh.diagnostics()
    assert closed(attacker, server)  # opened for the knocker only
    session = ssh.open_session(admin, server, ["sleep", str(OPEN_FOR + 2), ";", "echo", "alive"])
    poll_until(lambda: closed(admin, server), OPEN_FOR + 10, "the port to close again", daemon.log)
    assert time.monotonic() - knocked >= OPEN_FOR - 0.5
    out, err = session.communicate(timeout=OPEN_FOR + 20)
    assert session.returncode == 0 and out.strip() == "alive", err  # outlived the knock
    assert daemon.bans() == []  # closed by the knock rule, not by a ban


def test_a_replayed_or_forged_or_redirected_knock_opens_nothing(
    start_lab: Callable[..., tuple[SshLab, Bruteguard]], tmp_path: Path
) -> None:
    ssh, daemon, key_file = knock_lab(start_lab, tmp_path)
    server = ssh.lab.server.ipv4
    admin, attacker = ssh.lab.clients["admin"], ssh.lab.clients["attacker"]
    key = read_key(str(key_file))
    forged = sign(bytes(32), "192.0.2.11", SSH_PORT, time.time())
    send_raw(attacker, forged, server)
    wait_in_log(daemon, r"knock from 192\.0\.2\.11 refused: bad signature")
    assert closed(attacker, server)
    good = sign(key, "192.0.2.10", SSH_PORT, time.time())
    send_raw(attacker, good, server)  # captured on the path, sent from elsewhere
    wait_in_log(daemon, r"knock from 192\.0\.2\.11 refused: signed for 192\.0\.2\.10")
    assert closed(attacker, server) and closed(admin, server)
    opened = time.monotonic()
    send_raw(admin, good, server)  # the real one, once: opens
    poll_until(lambda: not closed(admin, server), 5, "the knock to open port 22", daemon.log)
    poll_until(lambda: closed(admin, server), OPEN_FOR + 10, "the port to close", daemon.log)
    assert time.monotonic() - opened >= OPEN_FOR - 0.5
    send_raw(admin, good, server)  # the same packet again, within its time window
    wait_in_log(daemon, r"knock from 192\.0\.2\.10 refused: replayed")
    assert closed(admin, server)
    stale = sign(key, "192.0.2.10", SSH_PORT, time.time() - 3600)
    send_raw(admin, stale, server)
    wait_in_log(daemon, r"knock from 192\.0\.2\.10 refused: signed \+3600s")
    assert closed(admin, server)
    assert daemon.bans() == []  # closed by the knock rule, not by a ban


def test_an_allowed_admin_that_fails_ten_times_is_never_banned(
    start_lab: Callable[..., tuple[SshLab, Bruteguard]], tmp_path: Path
) -> None:
    allowed = tmp_path / "admins.txt"
    allowed.write_text("# the admin's laptop\n192.0.2.10\n")
    ssh, daemon = start_lab(ignoreip_file=[str(allowed)])
    server = ssh.lab.server.ipv4
    admin, attacker = ssh.lab.clients["admin"], ssh.lab.clients["attacker"]
    failed = r"^.* sshd\[\d+\]: Failed password for \S+ from 192\.0\.2\.10 port \d+ ssh2$"
    for attempt in range(1, 11):
        assert not ssh.ssh_password_attempt(admin, server, password="wrong-password")
        ssh.wait_for_log(failed, timeout=10, count=attempt)
    for _ in range(MAXRETRY):  # the jail works: the attacker's third failure bans
        assert not ssh.ssh_password_attempt(attacker, server, password="wrong-password")
    poll_until(lambda: closed(attacker, server), 20, "the attacker's ban", daemon.log)
    assert daemon.ban_of("192.0.2.10") is None
    assert ssh.innocent_can_login(server, client="admin"), ssh.diagnostics()


def test_a_network_ban_over_the_admins_24_leaves_an_allowed_admin_in(
    start_lab: Callable[..., tuple[SshLab, Bruteguard]], tmp_path: Path
) -> None:
    ssh, daemon = start_lab(ignoreip=["192.0.2.10"])
    server = ssh.lab.server.ipv4
    admin, attacker = ssh.lab.clients["admin"], ssh.lab.clients["attacker"]
    refused = daemon.cli("ban", "192.0.2.0/24", check=False)
    assert refused.returncode != 0 and "allow list" in refused.stderr, refused
    assert daemon.ban_of("192.0.2.0/24") is None
    session = ssh.open_session(admin, server, ["sleep", "8", ";", "echo", "alive"])
    wait_for_session(ssh, daemon)
    daemon.cli("ban", "192.0.2.0/24", "--force")
    assert daemon.ban_of("192.0.2.0/24") is not None
    poll_until(lambda: closed(attacker, server), 10, "the /24 ban", daemon.log)
    assert ssh.innocent_can_login(server, client="admin"), ssh.diagnostics()
    out, err = session.communicate(timeout=30)
    assert session.returncode == 0 and out.strip() == "alive", err


def test_the_lockout_guard_refuses_bans_over_a_live_admin_session(
    start_lab: Callable[..., tuple[SshLab, Bruteguard]],
) -> None:
    ssh, daemon = start_lab()
    server = ssh.lab.server.ipv4
    admin = ssh.lab.clients["admin"]
    session = ssh.open_session(admin, server, ["sleep", "25", ";", "echo", "alive"])
    wait_for_session(ssh, daemon)
    refused = daemon.cli("ban", "192.0.2.0/24", check=False)
    assert refused.returncode != 0 and "live SSH session" in refused.stderr, refused
    wait_in_log(daemon, r"lock-out guard: ban of 192\.0\.2\.0/24 by hand refused")
    # The admin mistypes a password MAXRETRY times in other windows: still not banned.
    for _ in range(MAXRETRY):
        assert not ssh.ssh_password_attempt(admin, server, password="wrong-password")
    wait_in_log(daemon, r"lock-out guard: ban of 192\.0\.2\.10 in sshd refused: 192\.0\.2\.10")
    assert daemon.ban_of("192.0.2.10") is None
    assert ssh.innocent_can_login(server, client="admin"), ssh.diagnostics()
    out, err = session.communicate(timeout=40)
    assert session.returncode == 0 and out.strip() == "alive", err
