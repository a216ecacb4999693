"""Network escalation against the real daemon and real nftables, judged by connections.

The real ``bruteguard run`` runs in a lab's server namespace with the nftables enforcer and
follows a log file the test writes failure lines into (the lines name the lab's clients; no
service is needed to write them, the firewall is what is on trial). A TCP listener on port
22 stands in for sshd. Two IPv4 attackers of one small network get the network banned: a
bystander in it who never failed is refused too, while a partner in ``ignoreip`` inside the
same network still connects (allow wins). One IPv6 attacker gets its whole /64 banned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bgdaemon import Bruteguard
from e2e_lab import file_daemon, write_failure
from netns import Lab
from sshlab import poll_until

pytestmark = pytest.mark.netns

PORT = 22
# Clients get 192.0.2.10-13: the /29 192.0.2.8/29 holds them all and not the server (.1).
CLIENTS = ("attacker", "attacker2", "bystander", "partner")
# A second IPv6 network, away from the server's own /64, so that a /64 ban is allowed.
REMOTE_V6 = {"attacker": "2001:db8:1::a", "bystander": "2001:db8:1::c", "partner": "2001:db8:1::d"}
SERVER_REMOTE_V6 = "2001:db8:1:ffff::1"


@pytest.fixture
def lab(netns_root: None) -> Iterator[Lab]:
    with Lab(CLIENTS) as lab:
        lab.server.run(["ip", "addr", "add", f"{SERVER_REMOTE_V6}/48", "dev", "br0", "nodad"])
        for name, address in REMOTE_V6.items():
            lab.clients[name].run(["ip", "addr", "add", f"{address}/48", "dev", "eth0", "nodad"])
        lab.server.listen_tcp(PORT)
        yield lab


@pytest.fixture
def daemon(
    lab: Lab, tmp_path: Path, bruteguard_exe: Path, make_config: Callable[..., Path]
) -> Iterator[tuple[Bruteguard, Path]]:
    partner = lab.clients["partner"]
    sshd = {
        "maxretry": 1,
        "bantime": "300s",
        "subnet_maxretry": 2,
        "subnet_findtime": "1h",
        "ipv4_prefix": 29,
        "ignoreip": [partner.ipv4, REMOTE_V6["partner"]],
    }
    with file_daemon(lab.server, tmp_path, bruteguard_exe, make_config, sshd) as running:
        yield running


def test_two_banned_addresses_ban_their_network_and_allow_wins_inside_it(
    lab: Lab, daemon: tuple[Bruteguard, Path]
) -> None:
    bruteguard, log = daemon
    server = lab.server.ipv4
    attacker, attacker2 = lab.clients["attacker"], lab.clients["attacker2"]
    bystander, partner = lab.clients["bystander"], lab.clients["partner"]
    assert bystander.tcp_connect(server, PORT) and partner.tcp_connect(server, PORT)

    write_failure(log, attacker.ipv4, 1)
    poll_until(lambda: bruteguard.ban_of(attacker.ipv4), 15, "the first ban", bruteguard.log)
    assert bystander.tcp_connect(server, PORT), "one ban must not block the network yet"
    write_failure(log, attacker2.ipv4, 2)
    poll_until(lambda: bruteguard.ban_of("192.0.2.8/29"), 15, "the network ban", bruteguard.log)
    network = bruteguard.ban_of("192.0.2.8/29")
    assert network is not None and network["reason"].startswith("2 addresses of it banned")

    assert not attacker.tcp_connect(server, PORT)
    assert not bystander.tcp_connect(server, PORT), "the network ban must cover the bystander"
    assert partner.tcp_connect(server, PORT), "ignoreip inside a banned network must win"

    bruteguard.cli("unban", "192.0.2.8/29")
    poll_until(lambda: bystander.tcp_connect(server, PORT), 15, "the bystander to connect again")


def test_an_ipv6_attacker_is_banned_with_its_whole_64(
    lab: Lab, daemon: tuple[Bruteguard, Path]
) -> None:
    bruteguard, log = daemon
    bystander, partner = lab.clients["bystander"], lab.clients["partner"]
    assert bystander.tcp_connect(SERVER_REMOTE_V6, PORT)

    write_failure(log, REMOTE_V6["attacker"], 3)
    poll_until(lambda: bruteguard.ban_of("2001:db8:1::/64"), 15, "the /64 ban", bruteguard.log)
    assert not lab.clients["attacker"].tcp_connect(SERVER_REMOTE_V6, PORT)
    assert not bystander.tcp_connect(SERVER_REMOTE_V6, PORT), "the /64 covers its neighbour"
    assert partner.tcp_connect(SERVER_REMOTE_V6, PORT), "ignoreip inside the /64 must win"
