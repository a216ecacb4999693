"""Addresses a service was told (cockpit's ForwardedForHeader): counted only as a real
connection's peer, never taken from the client's text.

cockpit-ws writes the last item of a configured forwarded-for header as PAM's rhost, and a
client that reaches cockpit-ws directly writes that header itself. The cockpit filter's
hosts therefore go, live, to the identity stage, which ties a line to the connection *from
that address* to the jail's ports, or to nobody: no DNS is asked, and no other connection
is ever taken instead.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from bruteguard.config import IdentityConfig, JailConfig, config_from_dict
from bruteguard.doctor import check_identity
from bruteguard.duration import Seconds
from bruteguard.identity.attribution import attribute_address
from bruteguard.identity.connections import Connection, ConnectionBook
from bruteguard.identity.conntrack import ConnEvent, EventKind
from bruteguard.identity.stage import IdentityStage
from bruteguard.match.engine import Hit, Matcher
from bruteguard.model import Unattributed
from conftest import only_these_jails

ATTACKER, INNOCENT = "198.51.100.7", "203.0.113.50"
SERVER = socket.inet_aton("192.0.2.1")
PORT = 9090
LINE = (
    "Dec  4 22:23:25 host cockpit-session: pam_unix(cockpit:auth): authentication failure;"
    " logname= uid=0 euid=0 tty= ruser= rhost={}  user=bob"
)


def _stage(clock: list[float]) -> IdentityStage:
    # A resolver that is never asked: nothing listens on port 9 of loopback.
    config = IdentityConfig(nameservers=["127.0.0.1"], dns_port=9, dns_timeout=Seconds(1.0))
    jail = JailConfig(name="cockpit", filter="cockpit", port=[PORT])
    stage = IdentityStage(config, [jail], firewall=False, clock=lambda: clock[0])
    stage.book = ConnectionBook(clock[0] - 60)
    return stage


def _connect(stage: IdentityStage, address: str, sport: int) -> None:
    stage.take([ConnEvent(EventKind.NEW, address, sport, SERVER, PORT, 8, 1)])
    stage.take([ConnEvent(EventKind.UPDATE, address, sport, SERVER, PORT, 14, 3)])


def _judge(rhost: str, connected: tuple[str, ...]) -> tuple[list[Hit], list[Unattributed], int]:
    """The live matcher's verdict on cockpit's line naming ``rhost`` while ``connected``
    clients have connections to 9090: (hits, unattributed, DNS queries made)."""
    clock = [time.time()]
    stage = _stage(clock)
    stream = Matcher({"cockpit": "cockpit"}).stream()  # live: hosts are claims
    line = LINE.format(rhost).replace("Dec  4 22:23:25", time.strftime("%b %e %H:%M:%S"))
    assert stream.feed(line.encode() + b"\n") == []
    named = stream.take_named()
    assert [(n[1], n[3]) for n in named] == [(rhost, "cockpit")]

    async def run() -> tuple[list[Hit], list[Unattributed]]:
        for sport, address in enumerate(connected, start=40001):
            _connect(stage, address, sport)
        got: list[tuple[list[Hit], list[Unattributed]]] = []
        done = asyncio.Event()

        async def deliver(hits: list[Hit], unattributed: list[Unattributed]) -> None:
            got.append((hits, unattributed))
            done.set()

        stage.submit(named, deliver)
        await asyncio.wait_for(done.wait(), 10)
        await stage.close()
        return got[0]

    hits, unattributed = asyncio.run(run())
    return hits, unattributed, stage.describe()["ptr_lookups"]


def test_the_address_of_a_real_connection_counts() -> None:
    hits, unattributed, asked = _judge(ATTACKER, (ATTACKER, INNOCENT))
    assert [(h[1], h[2], h[3]) for h in hits] == [(ATTACKER, "bob", "cockpit")]
    assert unattributed == []
    assert asked == 0, "an address is compared, never looked up"


def test_a_claimed_address_without_a_connection_bans_nobody() -> None:
    """The attacker, connected, sends ``X-Forwarded-For: INNOCENT``: the line names the
    innocent, who has no connection; the attacker is not taken instead either."""
    hits, unattributed, asked = _judge(INNOCENT, (ATTACKER,))
    assert hits == []
    [failure] = unattributed
    assert failure.name == INNOCENT
    assert failure.candidates == (ATTACKER,)
    assert failure.reason.startswith("no real connection from that address")
    assert asked == 0


def test_no_ptr_is_asked_for_new_connections() -> None:
    stage = _stage([time.time()])
    assert not stage._early_ports
    _connect(stage, ATTACKER, 40001)
    assert stage.describe()["ptr_lookups"] == 0


def test_attribute_address_compares_canonical_addresses_and_needs_complete_evidence() -> None:
    now = time.time()
    connection = Connection(ATTACKER, 40001, now - 1, assured=now - 1)
    verdict = attribute_address(f"::ffff:{ATTACKER}", [connection], complete=True)
    assert verdict.address == ATTACKER
    ipv6 = Connection("2001:db8::a", 40002, now - 1, assured=now - 1)
    assert attribute_address("2001:DB8::A", [ipv6], complete=True).address == "2001:db8::a"
    assert attribute_address(ATTACKER, [connection], complete=False).address is None
    assert attribute_address("unknown", [connection], complete=True).method == "not an address"


def test_doctor_checks_connection_tracking_for_cockpit_but_not_the_resolver(
    tmp_path: Path,
) -> None:
    """cockpit's hosts need real connections (conntrack) and never DNS."""
    config = config_from_dict(
        {
            "enforcers": ["dry-run"],
            "identity": {"conntrack": False},
            "jails": only_these_jails(
                {"sshd": {"enabled": False}, "cockpit": {"enabled": True, "logpath": ["/x"]}}
            ),
        }
    )
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("")
    found = {f.check: f.status for f in check_identity(config, resolv)}
    assert found == {"identity.conntrack": "problem"}
