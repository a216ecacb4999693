"""PTR observations against real DNS: dnsmasq on loopback (records as the labs serve them),
and a scripted server playing an attacker's authoritative zone (answers that change from
one query to the next, negative answers with and without an SOA, silence)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from bruteguard.identity.names import PtrHistory
from bruteguard.identity.resolver import Resolver, normal_name
from dnskit import Answer, ScriptedDns

ATTACKER = "198.51.100.7"
INNOCENT = "203.0.113.50"
NO_PTR = "203.0.113.51"
ATTACKER6 = "2001:db8::7"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _observe(port: int, address: str, timeout: float = 2.0):
    return asyncio.run(Resolver(["127.0.0.1"], port, timeout).observe(address))


@pytest.fixture(scope="module")
def dnsmasq() -> Iterator[int]:
    """dnsmasq answering only its own records (TTL 600), NXDOMAIN for the rest, no SOA."""
    port = _free_udp_port()
    process = subprocess.Popen(
        [
            shutil.which("dnsmasq") or "/usr/sbin/dnsmasq",
            "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
            "--pid-file=", "--user=root", "--bind-interfaces", "--listen-address=127.0.0.1",
            f"--port={port}", "--local=/in-addr.arpa/", "--local=/ip6.arpa/",
            "--local-ttl=600",
            "--ptr-record=7.100.51.198.in-addr.arpa,nx.attacker.test",
            "--ptr-record=50.113.0.203.in-addr.arpa,Mail.Innocent.Test",
            "--ptr-record=50.113.0.203.in-addr.arpa,www.innocent.test",
            "--ptr-record=7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa,"
            "v6.attacker.test",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while _observe(port, ATTACKER, 0.5).names != {"nx.attacker.test"}:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"dnsmasq did not start: {process.communicate(timeout=5)[1]}")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_ptr_answer_with_its_ttl(dnsmasq: int) -> None:
    seen = _observe(dnsmasq, INNOCENT)
    names = {"mail.innocent.test", "www.innocent.test"}  # dnsmasq writes them in lower case
    assert (seen.ok, seen.names, seen.ttl) == (True, names, 600)
    assert seen.asked <= seen.answered and seen.valid_until == seen.answered + 600
    six = _observe(dnsmasq, ATTACKER6)
    assert (six.address, six.names) == (ATTACKER6, {"v6.attacker.test"})


def test_no_ptr_without_an_soa_has_no_ttl(dnsmasq: int) -> None:
    seen = _observe(dnsmasq, NO_PTR)
    assert (seen.ok, seen.names, seen.ttl) == (True, frozenset(), 0.0)


def test_a_negative_answer_is_cached_for_its_soa_minimum() -> None:
    script = {
        NO_PTR: [Answer(soa_minimum=300, ttl=3600)],
        INNOCENT: [Answer(soa_minimum=900, ttl=60)],
    }
    with ScriptedDns(script) as server:
        assert _observe(server.port, NO_PTR).ttl == 300
        assert _observe(server.port, INNOCENT).ttl == 60, "the smaller of SOA TTL and minimum"


def test_a_silent_server_is_a_failed_observation_within_the_timeout() -> None:
    with ScriptedDns({ATTACKER: [Answer(silent=True)]}) as server:
        started = time.monotonic()
        seen = _observe(server.port, ATTACKER, timeout=0.5)
        assert time.monotonic() - started < 2
    assert (seen.ok, seen.names) == (False, frozenset())


def test_a_huge_ttl_is_trusted_for_an_hour_at_most() -> None:
    with ScriptedDns({ATTACKER: [Answer(("a.test",), ttl=604800)]}) as server:
        assert _observe(server.port, ATTACKER).ttl == 3600


def test_a_zone_that_answers_each_query_differently_is_caught_by_the_history() -> None:
    """The flip: the first query (the service's, the attacker hopes) gets the innocent's
    name with TTL 0 so no cache keeps it; every later one another name with a long TTL."""
    script = {ATTACKER: [Answer(("mail.innocent.test",), ttl=0), Answer(("x.attacker.test",))]}
    history = PtrHistory()
    with ScriptedDns(script) as server:
        for _ in range(3):
            history.add(_observe(server.port, ATTACKER))
    assert server.asked[ATTACKER] == 3, "no answer was cached in bruteguard"
    assert history.unstable(ATTACKER, time.time())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mail.Example.TEST.", "mail.example.test"),
        ("nx-1.attacker.test", "nx-1.attacker.test"),
        ("a b.test", None),
        ("", None),
        ("x" * 300, None),
        ("a..b", None),
    ],
)
def test_normal_name(text: str, expected: str | None) -> None:
    assert normal_name(text) == expected
