"""Attribution of failures that name a host, against a real DNS server (dnsmasq on loopback).

The zone is the attacker's: its PTR names have no A record, or an A record that points at an
innocent host. Only candidates (peers really connected) may ever be attributed, and DNS may
only tell candidates apart on evidence that points at one of them alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from bruteguard.identity.attribution import Attributor
from bruteguard.identity.resolver import Resolver, normal_name

ATTACKER = "198.51.100.7"
FRAMER = "198.51.100.8"  # its PTR names the innocent host, whose A record is real
TWIN = "198.51.100.9"  # the same PTR as ATTACKER: two connections, one name
CLIENT = "198.51.100.20"  # forward-confirmed: PTR and A agree
INNOCENT = "203.0.113.50"
ATTACKER6 = "2001:db8::7"

RECORDS = [
    f"--ptr-record={'.'.join(reversed(ATTACKER.split('.')))}.in-addr.arpa,nx.attacker.test",
    f"--ptr-record={'.'.join(reversed(TWIN.split('.')))}.in-addr.arpa,nx.attacker.test",
    f"--ptr-record={'.'.join(reversed(FRAMER.split('.')))}.in-addr.arpa,mail.innocent.test",
    f"--address=/mail.innocent.test/{INNOCENT}",
    f"--host-record=ok.client.test,{CLIENT}",
    "--ptr-record=7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa,"
    "v6.attacker.test",
]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _dnsmasq(records: list[str], zones: list[str], probe: tuple[str, str]) -> Iterator[int]:
    """dnsmasq on loopback answering only from ``records``: other names in ``zones`` are
    NXDOMAIN. Ready when the PTR of ``probe[0]`` is ``probe[1]``."""
    dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    port = _free_udp_port()
    process = subprocess.Popen(
        [
            dnsmasq,
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--user=root",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            f"--port={port}",
            *(f"--local=/{zone}/" for zone in zones),
            *records,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while asyncio.run(Resolver(["127.0.0.1"], port, 0.5).names(probe[0])) != {probe[1]}:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"dnsmasq did not start: {process.communicate(timeout=5)[1]}")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def dns_port() -> Iterator[int]:
    with _dnsmasq(
        RECORDS, ["test", "in-addr.arpa", "ip6.arpa"], (ATTACKER, "nx.attacker.test")
    ) as port:
        yield port


def _attribute(port: int, name: str, candidates: list[str], timeout: float = 2.0):
    resolver = Resolver(["127.0.0.1"], port, timeout)
    return asyncio.run(Attributor(resolver).attribute(name, candidates))


def test_a_sole_connection_is_the_client_whatever_dns_says(dns_port: int) -> None:
    verdict = _attribute(dns_port, "nx.attacker.test", [ATTACKER])
    assert (verdict.address, verdict.method) == (ATTACKER, "sole connection")
    # The name's A record points elsewhere: the connected peer is still the client.
    verdict = _attribute(dns_port, "mail.innocent.test", [FRAMER])
    assert verdict.address == FRAMER


def test_a_ptr_without_a_record_is_tied_to_its_connection_among_several(dns_port: int) -> None:
    verdict = _attribute(dns_port, "nx.attacker.test", [INNOCENT, ATTACKER, CLIENT])
    assert (verdict.address, verdict.method) == (ATTACKER, "reverse-matched")
    assert verdict.candidates == tuple(sorted([INNOCENT, ATTACKER, CLIENT]))


def test_a_name_pointing_at_a_connected_innocent_never_frames_it(dns_port: int) -> None:
    """The attacker's PTR names the innocent host, whose A record is real, and the innocent
    host is connected too: forward resolution alone would ban it."""
    verdict = _attribute(dns_port, "mail.innocent.test", [INNOCENT, FRAMER])
    assert verdict.address == FRAMER
    assert verdict.method == "reverse-matched"


def test_forward_confirmed_wins(dns_port: int) -> None:
    verdict = _attribute(dns_port, "OK.Client.Test.", [FRAMER, CLIENT, INNOCENT])
    assert (verdict.address, verdict.method) == (CLIENT, "forward-confirmed")


def test_ipv6_candidates(dns_port: int) -> None:
    verdict = _attribute(dns_port, "v6.attacker.test", [ATTACKER6, INNOCENT])
    assert (verdict.address, verdict.method) == (ATTACKER6, "reverse-matched")


@pytest.mark.parametrize(
    ("name", "candidates", "reason"),
    [
        ("nx.attacker.test", [ATTACKER, TWIN], "ambiguous: several connections have that PTR"),
        ("nx.attacker.test", [INNOCENT, CLIENT], "ambiguous: no connection has that PTR"),
        ("nx.attacker.test", [], "no connection to the service's ports"),
        ("bad name [x]", [ATTACKER, INNOCENT], "ambiguous: the logged name is not a DNS name"),
    ],
)
def test_no_unambiguous_evidence_means_unattributed(
    dns_port: int, name: str, candidates: list[str], reason: str
) -> None:
    verdict = _attribute(dns_port, name, candidates)
    assert (verdict.address, verdict.method) == (None, reason)
    assert verdict.candidates == tuple(sorted(candidates))


def test_a_dead_resolver_costs_at_most_its_timeout() -> None:
    """No DNS answer (a closed port) is an empty answer within the timeout, not a hang."""
    dead = _free_udp_port()
    started = time.monotonic()
    verdict = _attribute(dead, "nx.attacker.test", [ATTACKER, INNOCENT], timeout=0.5)
    assert verdict.address is None
    assert time.monotonic() - started < 3.0


def test_answers_are_cached(dns_port: int) -> None:
    resolver = Resolver(["127.0.0.1"], dns_port, 2.0)

    async def twice() -> tuple[frozenset[str], frozenset[str]]:
        return await resolver.addresses("mail.innocent.test"), await resolver.addresses(
            "mail.innocent.test"
        )

    first, second = asyncio.run(twice())
    assert first == second == {INNOCENT}
    assert resolver.queries == 2  # A and AAAA once each


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mail.Example.TEST.", "mail.example.test"),
        ("host", "host"),
        ("", None),
        ("two words", None),
        ("a..b", None),
        ("x" * 300, None),
    ],
)
def test_normal_name(text: str, expected: str | None) -> None:
    assert normal_name(text) == expected


SPOOFER = "198.51.100.11"  # its PTR is the text "203.0.113.50": the innocent's address


@pytest.fixture(scope="module")
def spoof_port() -> Iterator[int]:
    """A zone whose PTR spells another host's address, as pure-ftpd would then log it."""
    reverse = ".".join(reversed(SPOOFER.split("."))) + ".in-addr.arpa"
    with _dnsmasq(
        [f"--ptr-record={reverse},{INNOCENT}"], ["in-addr.arpa"], (SPOOFER, INNOCENT)
    ) as port:
        yield port


def test_a_ptr_that_spells_a_connected_innocents_address_frames_nobody(spoof_port: int) -> None:
    verdict = _attribute(spoof_port, INNOCENT, [INNOCENT, SPOOFER])
    assert (verdict.address, verdict.method) == (SPOOFER, "reverse-matched")
    verdict = _attribute(spoof_port, INNOCENT, [SPOOFER])
    assert (verdict.address, verdict.method) == (SPOOFER, "sole connection")


def test_a_logged_address_that_is_connected_and_spelled_by_no_ptr_is_taken(
    spoof_port: int,
) -> None:
    verdict = _attribute(spoof_port, ATTACKER, [ATTACKER, INNOCENT])
    assert (verdict.address, verdict.method) == (ATTACKER, "logged address, connected")
    verdict = _attribute(spoof_port, CLIENT, [ATTACKER, INNOCENT])
    assert verdict.address is None
