"""The nftables enforcer's two ways to nft: libnftables in this process and ``nft -f -``.

Both take the same scripts, so the same calls must leave the same ruleset; a host without
the library must still be protected, through the command, and say so in its log.
"""

from __future__ import annotations

import logging
import math
import re
import time

import pytest

from bruteguard.enforce.nftables import NftablesEnforcer
from bruteguard.enforce.nftexec import SPILL_BYTES, NftRunner
from bruteguard.errors import EnforcerError
from bruteguard.model import Ban
from enforcekit import BLOCKED, OPEN, Jail, lab_fixture, reaches
from netns import Host, Lab

lab = lab_fixture("bglib")

JAILS = [
    Jail("sshd", allow=("192.0.2.12", "2001:db8::c")),
    Jail("web-auth", (8443,), ratelimit=(4, 180.0)),
    Jail("recidive", ()),
]


def _ruleset(host: Host) -> str:
    """``nft list ruleset`` without what differs from one second to the next (the time an
    element has left, counters)."""
    text = host.run(["nft", "list", "ruleset"]).stdout
    text = re.sub(r" expires [0-9dhms]+", "", text)
    return re.sub(r"counter packets \d+ bytes \d+", "counter", text)


def _exercise(enforcer: NftablesEnforcer, now: float) -> None:
    """Every kind of change the daemon makes, in the order a day might bring them."""
    hour = now + 3600
    enforcer.setup(JAILS)
    bans = [
        Ban("203.0.113.7", "sshd", now, hour),
        Ban("2001:db8:7::/64", "sshd", now, hour),
        Ban("198.51.100.0/24", "web-auth", now, now + 600),
        Ban("203.0.113.9", "recidive", now, math.inf),
    ]
    enforcer.ban(bans, now)
    enforcer.ban([Ban("203.0.113.7", "sshd", now, now + 7200)], now)  # a longer ban again
    enforcer.unban([Ban("2001:db8:7::/64", "sshd", now, hour)])
    enforcer.load_blocklist("feed", ["192.0.2.128/25", "2001:db8:ff::1"], hour, now)
    enforcer.reconcile([*bans[2:], Ban("2001:db8:8::/64", "sshd", now, hour)], now)
    enforcer.setup(JAILS)  # a reload keeps the bans and the network set's rule


@pytest.mark.netns
def test_library_and_command_leave_the_same_ruleset(lab: Lab) -> None:
    now = time.time()
    in_process = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    assert in_process._runner.in_process
    _exercise(in_process, now)
    by_library = _ruleset(lab.server)
    assert "sshd_v6n64" in by_library and "bl_feed_4net" in by_library
    in_process.teardown()
    assert lab.server.run(["nft", "list", "ruleset"]).stdout == ""

    command = NftablesEnforcer(argv_prefix=lab.server.exec_prefix, library=None)
    assert not command._runner.in_process
    _exercise(command, now)
    assert _ruleset(lab.server) == by_library


@pytest.mark.netns
def test_in_process_bans_block_and_lift(lab: Lab) -> None:
    """The library path, which the namespace's own thread runs, changes the namespace's
    firewall (not this process's): a banned client is refused, an unbanned one gets in."""
    attacker = lab.clients["attacker"]
    enforcer = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    enforcer.setup(JAILS)
    now = time.time()
    bans = [Ban(attacker.ipv4, "sshd", now, now + 60), Ban(attacker.ipv6, "sshd", now, now + 60)]
    enforcer.ban(bans, now)
    assert reaches(attacker, lab.server) == BLOCKED
    enforcer.unban(bans)
    assert reaches(attacker, lab.server) == OPEN


@pytest.mark.netns
def test_missing_library_falls_back_to_the_command_and_says_so(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    attacker = lab.clients["attacker"]
    enforcer = NftablesEnforcer(
        argv_prefix=lab.server.exec_prefix, library="libnftables-missing-i18.so.1"
    )
    with caplog.at_level(logging.WARNING, logger="bruteguard.enforce.nftexec"):
        enforcer.setup(JAILS)
    (record,) = [r for r in caplog.records if "libnftables" in r.getMessage()]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "libnftables-missing-i18.so.1" in message and "running the nft command" in message
    assert not enforcer._runner.in_process
    now = time.time()
    enforcer.ban([Ban(attacker.ipv4, "sshd", now, now + 60)], now)
    assert reaches(attacker, lab.server)["v4"] is False


@pytest.mark.netns
def test_a_big_reconcile_goes_to_nft_and_a_bad_one_changes_nothing(lab: Lab) -> None:
    """Past SPILL_BYTES of script the transaction is streamed to ``nft -f -`` (nft's batch
    memory stays out of the daemon); an invalid ban anywhere in it applies nothing."""
    enforcer = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    enforcer.setup(JAILS)
    now = time.time()
    many = [Ban(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", "sshd", now, now + 60)
            for i in range(SPILL_BYTES // 20)]  # fmt: skip
    with enforcer._runner.transaction() as probe:
        probe.write([f"add element inet bruteguard sshd_v4 {{ {b.ip} }}" for b in many])
        assert probe.streamed  # and left unfinished: nothing applied
    enforcer.reconcile(many, now)
    listed = lab.server.run(["nft", "list", "set", "inet", "bruteguard", "sshd_v4"]).stdout
    assert listed.count(" timeout 1m") == len(many)
    before = _ruleset(lab.server)
    with pytest.raises(EnforcerError, match="not an IP address"):
        enforcer.reconcile([*many, Ban("not an address", "sshd", now, now + 60)], now)
    assert _ruleset(lab.server) == before


def test_only_a_namespace_prefix_keeps_the_library() -> None:
    """Another binary or a prefix that does more than enter a namespace (``setpriv``) is a
    request to run a command: the library is not even loaded."""
    assert NftRunner(argv_prefix=("ip", "netns", "exec", "x"))._wanted is not None
    assert NftRunner(argv_prefix=("/usr/sbin/ip", "netns", "exec", "x"))._wanted is not None
    assert NftRunner(argv_prefix=("ip", "netns", "exec", "x", "setpriv"))._wanted is None
    assert NftRunner(argv_prefix=("setpriv", "--reuid=65534"))._wanted is None
    assert NftRunner(nft="/opt/nft")._wanted is None
    assert NftRunner(library=None)._wanted is None
