"""The knock packet, its key and the listener's checks, as values (no network)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bruteguard.errors import ConfigError
from bruteguard.knock.keys import new_key, read_key
from bruteguard.knock.listener import KnockListener
from bruteguard.knock.packet import PACKET_SIZE, KnockRefused, sign, verify
from bruteguard.knock.replay import ReplayCache

KEY = bytes(range(32))
NOW = 1_800_000_000.0


async def _never(_knock: object) -> None:  # the checks are judged, not the opening
    raise AssertionError("not reached")


def listener(now: float = NOW, ports: tuple[int, ...] = (22,)) -> KnockListener:
    return KnockListener(KEY, 60.0, ports, _never, clock=lambda: now)


def test_a_signed_packet_says_who_may_open_what() -> None:
    packet = sign(KEY, "192.0.2.10", 22, NOW)
    assert len(packet) == PACKET_SIZE
    knock = verify(KEY, packet, NOW + 5, 60)
    assert (knock.address, knock.port) == ("192.0.2.10", 22)
    v6 = verify(KEY, sign(KEY, "2001:db8::a", 2222, NOW), NOW, 60)
    assert (v6.address, v6.port) == ("2001:db8::a", 2222)


@pytest.mark.parametrize("offset", range(PACKET_SIZE))
def test_every_flipped_byte_is_refused(offset: int) -> None:
    packet = bytearray(sign(KEY, "192.0.2.10", 22, NOW))
    packet[offset] ^= 0x01
    with pytest.raises(KnockRefused):
        verify(KEY, bytes(packet), NOW, 60)


def test_another_key_short_long_and_old_packets_are_refused() -> None:
    packet = sign(KEY, "192.0.2.10", 22, NOW)
    with pytest.raises(KnockRefused, match="signature"):
        verify(bytes(32), packet, NOW, 60)
    for bad in (packet[:-1], packet + b"\0", b""):
        with pytest.raises(KnockRefused, match="bytes"):
            verify(KEY, bad, NOW, 60)
    with pytest.raises(KnockRefused, match="window"):
        verify(KEY, packet, NOW + 61, 60)
    with pytest.raises(KnockRefused, match="window"):
        verify(KEY, packet, NOW - 61, 60)  # signed by a clock too far ahead


def test_the_listener_opens_for_the_sender_only_once() -> None:
    checks = listener()
    packet = sign(KEY, "192.0.2.10", 22, NOW)
    with pytest.raises(KnockRefused, match="another address"):
        checks.check(packet, "192.0.2.11")  # a captured packet sent from elsewhere
    assert checks.check(packet, "192.0.2.10").address == "192.0.2.10"
    with pytest.raises(KnockRefused, match="replayed"):
        checks.check(packet, "192.0.2.10")
    with pytest.raises(KnockRefused, match="not behind a knock"):
        checks.check(sign(KEY, "192.0.2.10", 80, NOW), "192.0.2.10")


def test_a_packet_signed_before_the_listener_started_is_refused() -> None:
    """A restart forgets the nonces: packets from before it cannot be replayed after it."""
    packet = sign(KEY, "192.0.2.10", 22, NOW - 10)
    with pytest.raises(KnockRefused, match="replayed"):
        listener(NOW).check(packet, "192.0.2.10")


def test_the_replay_memory_is_bounded_by_the_window() -> None:
    cache = ReplayCache(60, started=0)
    for n in range(100):
        assert cache.use(n.to_bytes(16), NOW, NOW)
    assert not cache.use((5).to_bytes(16), NOW, NOW + 30)  # still inside its window
    assert cache.use(b"x" * 16, NOW + 500, NOW + 500)
    assert len(cache) == 1  # the rest expired with their window


def test_a_new_key_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "knock.key"
    old = os.umask(0)
    try:
        new_key(str(path))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = read_key(str(path))
    assert len(key) == 32
    with pytest.raises(ConfigError, match="exists"):
        new_key(str(path))
    assert read_key(str(path)) == key
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        read_key(str(path))
    path.chmod(0o600)
    path.write_text("not base64 at all\n")
    with pytest.raises(ConfigError, match="base64"):
        read_key(str(path))


def test_a_jail_behind_a_knock_needs_the_section_its_ports_and_nftables() -> None:
    from bruteguard.config import config_from_dict

    with pytest.raises(ConfigError, match=r"jails\.sshd\.knock: needs a \[knock\] section"):
        config_from_dict({"jails": {"sshd": {"knock": True}}})
    with pytest.raises(ConfigError, match="only the nftables enforcer"):
        config_from_dict(
            {"enforcers": ["iptables"], "knock": {}, "jails": {"sshd": {"knock": True}}}
        )
    with pytest.raises(ConfigError, match="no ports"):
        config_from_dict({"knock": {}, "jails": {"recidive": {"knock": True}}})
    with pytest.raises(ConfigError, match="key_file"):
        config_from_dict({"knock": {"key_file": "relative.key"}})
    config = config_from_dict({"knock": {"open_for": "2m"}, "jails": {"sshd": {"knock": True}}})
    assert config.knock is not None and config.knock.open_for == 120
