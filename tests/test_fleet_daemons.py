"""Two real ``bruteguard run`` processes (dry-run enforcers) sharing one PostgreSQL of the
test's own: a ban on A is applied on B with its origin, B's ignoreip wins over the fleet,
PostgreSQL stopped while A bans loses nothing and duplicates nothing, and A's unban reaches B.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bruteguard.cli import main
from enforcekit import SSH, listening_lab
from netns import Host
from pgkit import Cluster
from test_daemon import Daemon, _failure, _wait

BIN = Path(sys.executable).with_name("bruteguard")


class FleetDaemon(Daemon):
    """test_daemon's daemon with a ``[fleet]`` section and its own ``ignoreip``."""

    def __init__(self, tmp: Path, dsn: str, host: str, ignoreip: list[str]) -> None:
        tmp.mkdir()
        super().__init__(tmp)
        text = self.config.read_text()
        self.config.write_text(
            f"ignoreip = {ignoreip!r}\n".replace("'", '"')
            + text
            + f'[fleet]\ndsn = "{dsn}"\nhost = "{host}"\npublish_interval = "1s"\n'
        )

    def ban_of(self, ip: str) -> dict | None:
        return next((ban for ban in self.bans() if ban["ip"] == ip), None)

    def attack(self, ip: str) -> None:
        self.append("".join(_failure(4000 + n, ip) for n in range(3)))


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Cluster, str, FleetDaemon, FleetDaemon]]:
    cluster = Cluster()
    daemons: list[FleetDaemon] = []
    try:
        admin = cluster.dsn()
        assert main(["fleet", "init", "--dsn", admin]) == 0
        for host in ("a", "b"):
            assert main(["fleet", "add-host", host, "--dsn", admin]) == 0
        a = FleetDaemon(tmp_path / "a", cluster.dsn(user="a"), "a", [])
        b = FleetDaemon(tmp_path / "b", cluster.dsn(user="b"), "b", ["198.51.100.0/24"])
        daemons += [a, b]
        a.start()
        b.start()
        yield cluster, admin, a, b
    finally:
        for daemon in daemons:
            if daemon.process is not None and daemon.process.poll() is None:
                daemon.process.kill()
                daemon.process.wait(timeout=20)
        cluster.destroy()


def _fleet_rows(admin: str, ip: str) -> int:
    with psycopg.connect(admin) as conn:
        ((count,),) = conn.execute(
            "SELECT count(*) FROM bruteguard.bans WHERE abbrev(ip) = %s", (ip,)
        ).fetchall()
    return int(count)


def test_two_hosts_share_bans_through_an_outage(fleet) -> None:
    cluster, admin, a, b = fleet

    a.attack("203.0.113.50")
    assert _wait(lambda: a.ban_of("203.0.113.50"), 15, "A's own ban")["origin"] == ""
    shared = _wait(lambda: b.ban_of("203.0.113.50"), 15, "A's ban on B")
    assert shared["origin"] == "a" and shared["jail"] == "sshd"
    assert shared["reason"] == a.ban_of("203.0.113.50")["reason"]

    # B's ignoreip is honoured: the fleet ban before .51 is never applied on B
    a.attack("198.51.100.7")
    _wait(lambda: a.ban_of("198.51.100.7"), 15, "A's ban of an address B ignores")
    a.attack("203.0.113.51")
    _wait(lambda: b.ban_of("203.0.113.51"), 15, "the next fleet ban on B")
    assert b.ban_of("198.51.100.7") is None
    assert "not applied here" in b.errors()

    # PostgreSQL down while A bans: A protects itself at once; the queue drains when back
    cluster.stop()
    try:
        a.attack("203.0.113.52")
        _wait(lambda: a.ban_of("203.0.113.52"), 15, "A's ban during the outage")
        time.sleep(2)  # a publisher round or two fails meanwhile
        assert b.ban_of("203.0.113.52") is None
    finally:
        cluster.start()
    assert _wait(lambda: b.ban_of("203.0.113.52"), 30, "the queued ban on B")["origin"] == "a"
    for ip in ("203.0.113.50", "198.51.100.7", "203.0.113.51", "203.0.113.52"):
        assert _fleet_rows(admin, ip) == 1, ip

    # A's unban reaches B; B's own bans are B's
    b.attack("203.0.113.60")
    _wait(lambda: b.ban_of("203.0.113.60"), 15, "B's own ban")
    a.cli("unban", "203.0.113.50")
    _wait(lambda: b.ban_of("203.0.113.50") is None, 15, "A's unban on B")
    assert _wait(lambda: a.ban_of("203.0.113.60"), 15, "B's ban on A")["origin"] == "b"
    assert b.ban_of("203.0.113.60")["origin"] == ""

    # the fleet's view: its bans with their hosts, and every host's heartbeat and queue
    fleet_bans = json.loads(a.cli("bans", "--fleet", "--json").stdout)
    assert {(ban["ip"], ban["origin"]) for ban in fleet_bans} == {
        ("198.51.100.7", "a"),
        ("203.0.113.51", "a"),
        ("203.0.113.52", "a"),
        ("203.0.113.60", "b"),
    }
    status = json.loads(b.cli("fleet", "status", "--json").stdout)
    assert status["host"] == "b" and status["queue"] == {"bans": 0, "summaries": 0}
    assert {host["name"]: host["queue"] for host in status["hosts"]} == {"a": 0, "b": 0}
    assert all(host["lag"] < 30 for host in status["hosts"])

    # an agent may not lift the fleet's bans; an admin lifts them everywhere, origin included
    refused = a.cli("unban", "--fleet", "203.0.113.51", check=False)
    assert refused.returncode == 1 and "use --dsn with an admin" in refused.stderr
    assert main(["unban", "--fleet", "203.0.113.51", "--dsn", admin]) == 0
    _wait(lambda: a.ban_of("203.0.113.51") is None, 15, "the admin's unban on A")
    _wait(lambda: b.ban_of("203.0.113.51") is None, 15, "the admin's unban on B")

    # B offline while A bans: B catches up from its cursor when it starts again
    assert b.stop(signal.SIGTERM) == 0
    a.attack("203.0.113.53")
    _wait(lambda: _fleet_rows(admin, "203.0.113.53"), 15, "A's ban in the fleet")
    b.start()
    assert _wait(lambda: b.ban_of("203.0.113.53"), 15, "the catch-up on B")["origin"] == "a"
    assert b.ban_of("203.0.113.50") is None and b.ban_of("203.0.113.51") is None
    assert a.stop(signal.SIGTERM) == 0 and b.stop(signal.SIGTERM) == 0


class NamespacedFleetDaemon(FleetDaemon):
    """A fleet daemon with real nftables in a lab namespace (``host``), its sshd jail on the
    lab's SSH port; PostgreSQL reached through the cluster's unix socket (a file: the same
    in every network namespace)."""

    def __init__(self, tmp: Path, dsn: str, name: str, host: Host) -> None:
        super().__init__(tmp, dsn, name, [])
        self.host = host
        text = self.config.read_text().replace(
            'enforcers = ["dry-run"]', 'enforcers = ["nftables"]'
        )
        text = text.replace("[fleet]", f"port = [{SSH}]\n[fleet]")
        self.config.write_text(f'nftables_table = "bgfleet{os.getpid()}"\n' + text)

    def start(self, env: dict[str, str] | None = None) -> None:
        with open(self.tmp / "daemon.err", "ab") as stderr:
            self.process = self.host.popen(
                [str(BIN), "run", "--config", str(self.config)], stderr=stderr
            )
        _wait(lambda: self.cli("status", check=False).returncode == 0, 15, "status to answer")

    def teardown(self) -> None:
        self.cli("stop", "--unban", check=False)
        if self.process is not None:
            self.process.wait(timeout=20)


@pytest.mark.netns
def test_a_ban_on_one_host_refuses_the_attacker_on_another(tmp_path: Path) -> None:
    """A (dry-run, the decider) bans an attacker; B (real nftables in a namespace) refuses
    its connections; the admin's `unban --fleet` lets it in again."""
    cluster = Cluster()
    try:
        admin = cluster.dsn()
        assert main(["fleet", "init", "--dsn", admin]) == 0
        for name in ("a", "b"):
            assert main(["fleet", "add-host", name, "--dsn", admin]) == 0
        with listening_lab("bgflt", ("attacker", "innocent")) as lab:
            attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
            a = FleetDaemon(tmp_path / "a", cluster.dsn(user="a"), "a", [])
            b = NamespacedFleetDaemon(tmp_path / "b", cluster.socket_dsn(user="b"), "b", lab.server)
            try:
                a.start()
                b.start()
                assert attacker.tcp_connect(lab.server.ipv4, SSH)
                a.attack(attacker.ipv4)
                _wait(lambda: b.ban_of(attacker.ipv4), 15, "A's ban on B")
                _wait(
                    lambda: not attacker.tcp_connect(lab.server.ipv4, SSH, 1.0),
                    10,
                    "the attacker refused by B",
                )
                assert innocent.tcp_connect(lab.server.ipv4, SSH)
                assert main(["unban", "--fleet", attacker.ipv4, "--dsn", admin]) == 0
                _wait(
                    lambda: attacker.tcp_connect(lab.server.ipv4, SSH),
                    15,
                    "the attacker let in again",
                )
            finally:
                b.teardown()
                if a.process is not None:
                    a.process.kill()
                    a.process.wait(timeout=20)
    finally:
        cluster.destroy()
