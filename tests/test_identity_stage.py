"""The daemon's identity stage with real sockets on loopback and a DNS server that never answers.

Evidence is read from this host's real socket table (clients bound to 127.0.0.2 and
127.0.0.3 connected to a listener), so these tests need no namespace; no firewall rule is
installed (``firewall=False``, as with the dry-run enforcer).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator

from bruteguard.config import IdentityConfig, JailConfig, Seconds
from bruteguard.identity.stage import IdentityStage
from bruteguard.match.engine import Hit
from bruteguard.model import Unattributed


@contextlib.contextmanager
def _connected(*clients: str) -> Iterator[int]:
    """A listener on 127.0.0.1 with one accepted connection from each client address."""
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(socket.socket())
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        for address in clients:
            client = stack.enter_context(socket.socket())
            client.bind((address, 0))
            client.connect(("127.0.0.1", port))
            stack.enter_context(server.accept()[0])
        yield port


@contextlib.contextmanager
def _silent_dns() -> Iterator[int]:
    """A UDP port that receives queries and never answers: the slowest DNS there is."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        yield sink.getsockname()[1]


def _stage(port: int, dns_port: int) -> IdentityStage:
    config = IdentityConfig(nameservers=["127.0.0.1"], dns_port=dns_port, dns_timeout=Seconds(1.0))
    jail = JailConfig(name="ftp", filter="pure-ftpd", port=[port])
    return IdentityStage(config, [jail], firewall=False)


async def _run(
    stage: IdentityStage, name: str, moment: float | None = None
) -> tuple[float, float, list[Hit], list[Unattributed]]:
    """Submit one named failure: how long ``submit`` took, how long until delivery, and
    what was delivered."""
    delivered = asyncio.Event()
    got: tuple[list[Hit], list[Unattributed]] = ([], [])

    async def deliver(hits: list[Hit], unattributed: list[Unattributed]) -> None:
        nonlocal got
        got = (hits, unattributed)
        delivered.set()

    started = time.monotonic()
    line = f"pure-ftpd: (?@{name}) [WARNING] Authentication failed for user [x]"
    stage.submit([(moment or time.time(), name, "x", "ftp", line)], deliver)
    submitted = time.monotonic() - started
    await asyncio.wait_for(delivered.wait(), timeout=10)
    took = time.monotonic() - started
    await stage.close()
    return submitted, took, *got


def test_a_sole_connection_is_attributed_without_dns() -> None:
    with _connected("127.0.0.2") as port, _silent_dns() as dns_port:
        _, took, hits, unattributed = asyncio.run(_run(_stage(port, dns_port), "nx.attacker.test"))
    assert [(hit[1], hit[2], hit[3]) for hit in hits] == [("127.0.0.2", "x", "ftp")]
    assert unattributed == []
    assert took < 0.5  # the silent DNS server was never asked


def test_dns_runs_in_the_background_and_a_silent_server_means_unattributed() -> None:
    """Two peers connected: DNS must tell them apart, and it never answers. ``submit``
    returns at once (lines with addresses keep flowing); the verdict comes after the
    timeout, with both candidates recorded."""
    with _connected("127.0.0.2", "127.0.0.3") as port, _silent_dns() as dns_port:
        submitted, took, hits, unattributed = asyncio.run(
            _run(_stage(port, dns_port), "nx.attacker.test")
        )
    assert submitted < 0.05
    assert 0.9 < took < 5.0
    assert hits == []
    [failure] = unattributed
    assert failure.candidates == ("127.0.0.2", "127.0.0.3")
    assert failure.reason == "ambiguous: no connection has that PTR"
    assert (failure.name, failure.jail, failure.user) == ("nx.attacker.test", "ftp", "x")


def test_a_line_older_than_the_window_is_not_tied_to_todays_connections() -> None:
    with _connected("127.0.0.2") as port, _silent_dns() as dns_port:
        _, _, hits, unattributed = asyncio.run(
            _run(_stage(port, dns_port), "nx.attacker.test", moment=time.time() - 3600)
        )
    assert hits == []
    assert [u.reason for u in unattributed] == [
        "too old to tie to a connection (replayed or delayed line)"
    ]
    assert unattributed[0].candidates == ()


def test_no_connection_on_the_jails_port_means_unattributed() -> None:
    with _connected("127.0.0.2") as port, _silent_dns() as dns_port:
        other = port + 1 if port < 65535 else port - 1
        _, _, hits, unattributed = asyncio.run(_run(_stage(other, dns_port), "nx.attacker.test"))
    assert hits == []
    assert [u.reason for u in unattributed] == ["no connection to the service's ports"]
