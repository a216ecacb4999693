"""The address a firewall needs, from the ``<HOST>`` text of a line; anything else is not one."""

from __future__ import annotations

import time

import pytest

from bruteguard.detect import IgnoreList
from bruteguard.identity import address_from_log, canonical_address


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("203.0.113.254", "203.0.113.254"),
        (" 198.51.100.7\n", "198.51.100.7"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::1", "::1"),
        # IPv4-mapped IPv6 is the IPv4 address, however it is written.
        ("::ffff:125.208.21.3", "125.208.21.3"),
        ("::FFFF:125.208.21.3", "125.208.21.3"),
        ("::ffff:7dd0:1503", "125.208.21.3"),
        ("0:0:0:0:0:ffff:125.208.21.3", "125.208.21.3"),
        ("[::ffff:125.208.21.3]", "125.208.21.3"),
        # sshd and others bracket IPv6; zone ids are local detail.
        ("[2001:db8::7]", "2001:db8::7"),
        ("fe80::1%eth0", "fe80::1"),
        ("[fe80::1%eth0]", "fe80::1"),
    ],
)
def test_canonical_forms(text: str, address: str) -> None:
    assert canonical_address(text) == address


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "[]",
        "%eth0",
        "host.example.com",
        "localhost",
        "192.0.2.1.example.com",
        "192.0.2.256",
        "192.0.2",
        "01.2.3.4",  # leading zeros: octal to some parsers, so ambiguous
        "192.0.2.1/24",
        "192.0.2.1:22",
        "[2001:db8::1]:22",
        "2001:db8:::1",
        "2001:db8::g",
        "\u0661\u0669\u0662.0.2.1",  # Arabic-Indic digits
        "\uff12\uff10\uff10\uff11:db8::1",  # full-width digits
        "192.0.2.1\x00",
        "x from 203.0.113.9",
    ],
)
def test_text_that_is_not_an_address(text: str) -> None:
    assert canonical_address(text) is None


@pytest.mark.parametrize("junk", ["1" * 100_000, ":" * 100_000, "a:" * 50_000, "9." * 50_000])
def test_very_long_input_is_rejected_quickly(junk: str) -> None:
    started = time.perf_counter()
    assert canonical_address(junk) is None
    assert time.perf_counter() - started < 0.05


def test_longest_real_spelling_still_fits() -> None:
    text = "[0000:0000:0000:0000:0000:ffff:125.208.21.3%enp0s31f6xyzw]"  # 15-byte ifname
    assert canonical_address(text) == "125.208.21.3"


def test_address_from_log_agrees_with_canonical_address_and_bounds_input() -> None:
    assert address_from_log(b"::ffff:198.51.100.7") == "198.51.100.7"
    assert address_from_log(b"::ffff:198.51.100.7") == "198.51.100.7"  # same answer again
    assert address_from_log(b"2001:DB8::5") == "2001:db8::5"
    assert address_from_log(b"attacker.example.net") is None
    assert address_from_log(b"\xff\xfe192.0.2.1") is None
    assert address_from_log(b"1" * 10_000) is None


@pytest.mark.parametrize(
    ("address", "never"),
    [
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("::1", True),
        ("0.0.0.0", True),
        ("::", True),
        ("224.0.0.1", True),
        ("ff02::1", True),
        ("192.0.2.1", False),
        ("2001:db8::1", False),
    ],
)
def test_never_banned(address: str, never: bool) -> None:
    assert (address in IgnoreList()) is never
