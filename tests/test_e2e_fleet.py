"""Three hosts, one fleet, real parts: each host a network namespace with a real sshd (and
rsyslogd) and the real ``bruteguard run`` on real nftables; one PostgreSQL in the lab's
switch namespace, reached by every host over TCP on 192.0.2.1 with its own role and
password; an attacker and an intruder in namespaces of their own on the same bridge.

A ban is a refused connection (a TCP connect to port 22 that fails from the banned client),
an unban a real ssh login that works again, never only a row.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from bgdaemon import Bruteguard
from e2e_lab import refused
from netns import Host, Lab
from pgkit import Cluster
from sshlab import SshLab, poll_until, sshd_jail

pytestmark = pytest.mark.netns

HOSTS = ("host1", "host2", "host3")
MAXRETRY = 3  # a host's own jail: two failures on each host fire none of them
FLEET_MAXRETRY = 6  # the fleet's: two failures on each of the three hosts together
BANTIME = 600


class Site:
    """One fleet host as ``SshLab`` sees its lab: the namespace sshd runs in and the
    clients that reach it. The namespaces are the fleet lab's (it deletes them), so
    entering and closing a site does nothing of its own."""

    def __init__(self, server: Host, clients: dict[str, Host]) -> None:
        self.server = server
        self.clients = clients

    def __enter__(self) -> Site:
        return self

    def close(self) -> None:
        """Nothing to delete: sshd's launcher is stopped by the SshLab, the namespace by
        the fleet lab."""


def failed_password(ssh: SshLab, client: Host) -> str:
    return (
        rf"^.* sshd\[\d+\]: Failed password for {re.escape(ssh.user)} "
        rf"from {re.escape(client.ipv4)} port \d+ ssh2$"
    )


class FleetHost:
    """One host of the lab: its sshd, its bruteguard, its name in the fleet."""

    def __init__(self, name: str, host: Host, ssh: SshLab, daemon: Bruteguard) -> None:
        self.name = name
        self.host = host
        self.ssh = ssh
        self.daemon = daemon

    @property
    def addr(self) -> str:
        return self.host.ipv4

    def fail_logins(self, client: Host, count: int) -> None:
        """``count`` wrong passwords from ``client``, each seen by sshd (its own line)."""
        seen = len(self.ssh.find_lines(failed_password(self.ssh, client)))
        for attempt in range(1, count + 1):
            assert not self.ssh.ssh_password_attempt(client, self.addr, password="wrong")
            self.ssh.wait_for_log(failed_password(self.ssh, client), count=seen + attempt)

    def logs_in(self, client: str) -> bool:
        """The right password from ``client`` opens a session on this host."""
        return self.ssh.innocent_can_login(self.addr, client=client)

    def ban_of(self, ip: str) -> dict[str, Any] | None:
        return self.daemon.ban_of(ip)

    def bans_of(self, ip: str) -> list[dict[str, Any]]:
        return [ban for ban in self.daemon.bans() if ban["ip"] == ip]

    def details(self) -> str:
        return f"--- {self.name}:\n{self.ssh.diagnostics()}\n{self.daemon.log()}"


def _agent_password(admin: str, role: str, directory: Path) -> Path:
    """A fresh password for ``role``, set in PostgreSQL and kept in a 0600 file (never in
    a DSN, a command line or a log)."""
    password = secrets.token_urlsafe(18)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )
    path = directory / f"{role}.password"
    path.write_text(password + "\n", encoding="utf-8")
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def fleet_lab(
    netns_root: None,
    tmp_path: Path,
    bruteguard_exe: Path,
    make_config: Callable[..., Path],
):
    """The lab: the switch namespace (bridge, PostgreSQL on 192.0.2.1), three fleet hosts
    (192.0.2.10-12), the attacker (.13) and the intruder (.14). Yields (admin DSN, hosts,
    clients); every process and namespace is gone afterwards."""
    with (
        Lab(clients=(*HOSTS, "attacker", "intruder"), prefix="bgfl") as lab,
        contextlib.ExitStack() as stack,
    ):
        cluster = Cluster(namespace=lab.server)
        stack.callback(cluster.destroy)
        admin = cluster.socket_dsn()
        _run_admin(bruteguard_exe, "fleet", "init", "--dsn", admin)
        clients = {name: lab.clients[name] for name in ("attacker", "intruder")}
        hosts: list[FleetHost] = []
        for name in HOSTS:
            _run_admin(bruteguard_exe, "fleet", "add-host", name, "--dsn", admin)
            password_file = _agent_password(admin, name, tmp_path)
            ssh = SshLab(tmp_path / f"{name}-sshd")
            ssh.lab = Site(lab.clients[name], clients)  # type: ignore[assignment]
            stack.enter_context(ssh)
            jail = {**sshd_jail(ssh.auth_log, MAXRETRY, BANTIME), "fleet_maxretry": FLEET_MAXRETRY}
            config = make_config(
                name=f"{name}.toml",
                store=tmp_path / f"{name}.db",
                socket=tmp_path / f"{name}.sock",
                jails={"sshd": jail},
                fleet={
                    "dsn": cluster.dsn(user=name),
                    "password_file": str(password_file),
                    "host": name,
                    "publish_interval": "1s",
                },
            )
            daemon = Bruteguard(bruteguard_exe, config, lab.clients[name], tmp_path / f"{name}.log")
            daemon.start()
            stack.callback(_stop, daemon)
            hosts.append(FleetHost(name, lab.clients[name], ssh, daemon))
        yield admin, hosts, clients


def _run_admin(exe: Path, *args: str) -> str:
    """The real ``bruteguard`` as the admin (on the database's unix socket)."""
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"bruteguard {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def _stop(daemon: Bruteguard) -> None:
    if daemon.process is not None and daemon.process.poll() is None:
        daemon.kill()


def _on_all(hosts: list[FleetHost], work: Callable[[FleetHost], object]) -> list[object]:
    """``work`` on every host at once (ssh's failed logins take seconds each)."""
    with ThreadPoolExecutor(len(hosts)) as pool:
        return list(pool.map(work, hosts))


def test_three_hosts_ban_together_and_an_admin_lifts_it_everywhere(
    fleet_lab, bruteguard_exe: Path
) -> None:
    admin, hosts, clients = fleet_lab
    attacker, intruder = clients["attacker"], clients["intruder"]
    host1, host2, host3 = hosts

    def everywhere(what: str, probe: Callable[[FleetHost], object], timeout: float) -> None:
        for host in hosts:
            poll_until(lambda h=host: probe(h), timeout, f"{what} on {host.name}", host.details)

    # (a) two wrong passwords on each host: no host's jail fires (maxretry 3), the fleet's
    # does (6 failures from 3 hosts), on all three
    _on_all(hosts, lambda host: host.fail_logins(attacker, 2))
    everywhere("the fleet's ban of the attacker", lambda h: h.ban_of(attacker.ipv4), 30)
    everywhere("the attacker refused", lambda h: refused(attacker, h.addr), 10)
    for host in hosts:
        (ban,) = host.bans_of(attacker.ipv4)  # one ban: the fleet's, no local one
        assert ban["origin"] == "fleet" and ban["jail"] == "sshd", ban
        assert ban["reason"] == "fleet threshold: 6 failures from 3 hosts in 3600 s", ban
    assert host3.logs_in("intruder"), host3.details()  # a ban of one address, not a lockout
    status = json.loads(host2.daemon.cli("fleet", "status", "--json").stdout)
    assert [h["name"] for h in status["hosts"]] == list(HOSTS)
    assert status["leader"] in HOSTS
    assert _fleet_bans(admin, attacker.ipv4) == [("fleet", False)]

    # (b) the intruder's three wrong passwords on host1 fire host1's own jail: hosts 2 and 3
    # refuse it too
    host1.fail_logins(intruder, 3)
    own = poll_until(lambda: host1.ban_of(intruder.ipv4), 15, "host1's own ban", host1.details)
    assert own["origin"] == "" and own["reason"].startswith("3 failures"), own
    everywhere("the intruder refused", lambda h: refused(intruder, h.addr), 20)
    for host in (host2, host3):
        assert host.ban_of(intruder.ipv4)["origin"] == "host1"
    assert _fleet_bans(admin, intruder.ipv4) == [("host1", False)]

    # (c) the admin's `unban --fleet` lifts both everywhere: ssh logins work again on all three
    for client in (attacker, intruder):
        out = _run_admin(bruteguard_exe, "unban", "--fleet", client.ipv4, "--dsn", admin)
        assert out.startswith("lifted 1 fleet bans"), out
    for name in ("attacker", "intruder"):
        everywhere(f"the {name} let in again", lambda h, n=name: h.logs_in(n), 20)
    for host in hosts:
        assert host.ban_of(attacker.ipv4) is None and host.ban_of(intruder.ipv4) is None
    assert _fleet_bans(admin, attacker.ipv4) == [("fleet", True)]


def _fleet_bans(admin: str, ip: str) -> list[tuple[str, bool]]:
    """(deciding host, lifted) of every fleet row for ``ip``."""
    with psycopg.connect(admin) as conn:
        return [
            (host, bool(lifted))
            for host, lifted in conn.execute(
                "SELECT h.name, b.lifted IS NOT NULL FROM bruteguard.bans b"
                " JOIN bruteguard.hosts h ON h.id = b.host_id WHERE b.ip = %s::inet"
                " ORDER BY b.id",
                (ip,),
            )
        ]
