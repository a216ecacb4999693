"""The nftables enforcer against real nftables in a lab namespace, proven by real connections."""

from __future__ import annotations

import ipaddress
import itertools
import json
import math
import random
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from bruteguard.config import config_from_dict
from bruteguard.enforce import describe_bans
from bruteguard.enforce.dryrun import DryRunEnforcer
from bruteguard.enforce.factory import make_enforcers
from bruteguard.enforce.nftables import NftablesEnforcer, _element, nft_duration, parse_target
from bruteguard.errors import ConfigError, EnforcerError
from bruteguard.model import Ban
from enforcekit import (
    BLOCKED,
    JAILS_WITH_ALLOW,
    OPEN,
    SSH,
    WEB,
    Jail,
    ban,
    ban_at,
    ban_blocks_jail_ports_only,
    ban_without_ports_blocks_every_protocol,
    lab_fixture,
    reaches,
    seconds_until_lifted,
    set_up,
)
from netns import Host, Lab

JAILS = [Jail("sshd"), Jail("web-auth", (8443,))]


lab = lab_fixture("bgnft")


@pytest.fixture
def enforcer(lab: Lab) -> NftablesEnforcer:
    return set_up(NftablesEnforcer, lab.server, JAILS)


def elements(host: Host, set_name: str, table: str = "bruteguard") -> list[dict]:
    """The set's elements as ``{"val": …, "timeout": …, "expires": …}`` (as far as known)."""
    output = host.run(["nft", "-j", "list", "set", "inet", table, set_name]).stdout
    found = [item["set"] for item in json.loads(output)["nftables"] if "set" in item]
    # nft -j writes an element without timeout as its bare value.
    return [
        entry["elem"] if isinstance(entry, dict) and "elem" in entry else {"val": entry}
        for entry in found[0].get("elem", [])
    ]


@pytest.mark.netns
def test_ban_blocks_attacker_on_jail_ports_only(lab: Lab, enforcer: NftablesEnforcer) -> None:
    ban_blocks_jail_ports_only(lab, enforcer)
    innocent = lab.clients["innocent"]
    # The same attacker in another jail's set does not change sshd's port.
    enforcer.ban([ban(innocent.ipv4, jail="web-auth")], time.time())
    assert reaches(innocent, lab.server) == OPEN


@pytest.mark.netns
@pytest.mark.parametrize("blocktype", ["reject", "drop"])
def test_jail_without_ports_blocks_every_port_and_protocol(lab: Lab, blocktype: str) -> None:
    enforcer = set_up(NftablesEnforcer, lab.server, JAILS_WITH_ALLOW, blocktype=blocktype)
    ban_without_ports_blocks_every_protocol(lab, enforcer)


@pytest.mark.netns
def test_unbanning_one_address_in_three_jails_says_so(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    """One address banned in three jails is three bans: the log names the address and the
    jails, never "unbanned 3 targets"."""
    enforcer = set_up(NftablesEnforcer, lab.server, JAILS_WITH_ALLOW)
    attacker = lab.clients["attacker"]
    everywhere = [ban(attacker.ipv4, jail=jail.name) for jail in JAILS_WITH_ALLOW]
    enforcer.ban(everywhere, time.time())
    caplog.set_level("INFO", logger="bruteguard.enforce.nftables")
    enforcer.unban(everywhere)
    assert "nftables: unbanned 192.0.2.10 in jails sshd, web-auth, recidive" in caplog.messages
    assert reaches(attacker, lab.server, WEB) == OPEN


def test_describe_bans_counts_addresses_not_jail_rows() -> None:
    bans = [ban_at("192.0.2.5", jail) for jail in ("sshd", "recidive")]
    assert describe_bans(bans) == "192.0.2.5 in jails sshd, recidive"
    bans += [ban_at("2001:db8::5"), ban_at("198.51.100.0/24", "recidive")]
    assert describe_bans(bans) == "2 addresses and 1 network in jails sshd, recidive"
    assert describe_bans([ban_at("198.51.100.0/24")]) == "198.51.100.0/24 in jail sshd"


@pytest.mark.netns
def test_unban_restores_and_ignores_missing(lab: Lab, enforcer: NftablesEnforcer) -> None:
    attacker = lab.clients["attacker"]
    enforcer.ban([ban(attacker.ipv4), ban(attacker.ipv6)], time.time())
    assert reaches(attacker, lab.server) == BLOCKED
    never_banned = [ban("203.0.113.77"), ban("2001:db8::77"), ban("198.51.100.0/24")]
    enforcer.unban([ban(attacker.ipv4), ban(attacker.ipv6), *never_banned])
    assert reaches(attacker, lab.server) == OPEN
    assert elements(lab.server, "sshd_v4") == []
    enforcer.unban(never_banned)  # twice: still no error


@pytest.mark.netns
def test_element_timeout_expiry_unbans(lab: Lab, enforcer: NftablesEnforcer) -> None:
    elapsed = seconds_until_lifted(enforcer, lab.clients["attacker"], lab.server)
    assert 1.5 < elapsed < 8


@pytest.mark.netns
def test_ban_again_refreshes_timeout_both_ways(lab: Lab, enforcer: NftablesEnforcer) -> None:
    attacker = lab.clients["attacker"]
    enforcer.ban([ban(attacker.ipv4, seconds=60)], time.time())
    enforcer.ban([ban(attacker.ipv4, seconds=7200), ban("203.0.113.5", seconds=30)], time.time())
    (longer, other) = sorted(elements(lab.server, "sshd_v4"), key=lambda e: e["val"])
    assert longer["val"] == attacker.ipv4 and 7100 < longer["timeout"] <= 7200
    assert other["val"] == "203.0.113.5"
    enforcer.ban([ban(attacker.ipv4, seconds=2)], time.time())
    (shorter,) = [e for e in elements(lab.server, "sshd_v4") if e["val"] == attacker.ipv4]
    assert shorter["timeout"] <= 2
    # Two bans for one address in one batch: the longer wins, nft sees one element.
    enforcer.ban([ban("203.0.113.6", seconds=50), ban("203.0.113.6", seconds=500)], time.time())
    (double,) = [e for e in elements(lab.server, "sshd_v4") if e["val"] == "203.0.113.6"]
    assert 400 < double["timeout"] <= 500


@pytest.mark.netns
def test_bans_longer_than_a_day_are_accepted(lab: Lab, enforcer: NftablesEnforcer) -> None:
    """nft refuses a time of more than 8 digits per unit ("100000000ms"): 27.7 hours."""
    attacker = lab.clients["attacker"]
    month = 30 * 86400
    enforcer.ban(
        [ban(attacker.ipv4, seconds=month), ban("198.51.100.0/24", seconds=month)], time.time()
    )
    ((element,),) = [elements(lab.server, "sshd_v4")]
    assert month - 100 < element["timeout"] <= month
    enforcer.reconcile([ban(attacker.ipv6, seconds=10 * 365 * 86400)], time.time())
    ((element,),) = [elements(lab.server, "sshd_v6")]
    assert 3649 * 86400 < element["timeout"] <= 3650 * 86400
    assert reaches(attacker, lab.server) == {"v4": True, "v6": False}
    enforcer.load_blocklist("month", [attacker.ipv4], time.time() + month, time.time())
    assert reaches(attacker, lab.server, WEB) == {"v4": False, "v6": True}


def test_nft_duration_splits_into_units() -> None:
    assert nft_duration(2_592_000_000) == "30d"
    assert nft_duration(93_784_005) == "1d2h3m4s5ms"
    assert nft_duration(1500) == "1s500ms"
    assert nft_duration(0) == "1ms"  # never "" (nft needs a time)


def _exact(text: object) -> tuple[int, str, int]:
    """What ``_element`` must answer: ``parse_target``'s reading of ``text``."""
    target = parse_target(text)  # type: ignore[arg-type]
    if target.network is None:
        return target.version, target.text, -1
    return target.version, str(target.network.network_address), target.network.prefixlen


def test_ledger_text_is_taken_as_it_is_only_when_it_is_canonical() -> None:
    """A restart's fast path (``_element``) answers exactly as ``parse_target`` for any text:
    the ledger's own string when it is canonical, anything odd (a hand-edited row) parsed
    or refused as before, so it can neither break a script nor enter one."""
    rng = random.Random(18)
    texts: list[object] = []
    for _ in range(500):
        v4 = ipaddress.IPv4Address(rng.getrandbits(32))
        v6 = ipaddress.IPv6Address(rng.getrandbits(128) >> rng.choice([0, 64, 100]))
        length4, length6 = rng.randrange(33), rng.randrange(129)
        texts += [str(v4), str(v6), f"{v4}/{length4}", f"{v6}/{length6}"]
        texts.append(str(ipaddress.ip_network(f"{v4}/{length4}", strict=False)))
        texts.append(str(ipaddress.ip_network(f"{v6}/{length6}", strict=False)))
    texts += [
        "::ffff:192.0.2.1", "::FFFF:192.0.2.1", "::ffff:c000:201", "::ffff:192.0.2.0/120",
        "2001:DB8::1", "2001:db8:0::1", "2001:0db8::1", "2001:db8::1/128", "192.0.2.1/32",
        "192.0.2.7/24", "192.0.2.0/024", "0.0.0.0/0", "::/0", "fd00::/64", "fd00::1/64",
        "192.0.2.01", "192.0.2", "192.0.2.1 ", " 192.0.2.1", "192.0.2.1\n", "192.0.2.1/33",
        "192.0.2.0/+24", "192.0.2.0/-1", "192.0.2.0/", "192.0.2.1 } ; flush ruleset", "",
        "fd00::/64/1", "fd00::/0064", "1.2.3.4/24/", "\u0661.2.3.4", None, 5, b"192.0.2.1",
    ]  # fmt: skip
    for text in texts:
        try:
            expected = _exact(text)
        except EnforcerError:
            with pytest.raises(EnforcerError):
                _element(text)  # type: ignore[arg-type]
            continue
        assert _element(text) == expected, text  # type: ignore[arg-type]
        if expected[1] == text:
            assert _element(text)[1] is text  # one string, shared with the ledger's row


@pytest.mark.netns
def test_reconcile_replaces_contents(lab: Lab, enforcer: NftablesEnforcer) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    enforcer.ban([ban(attacker.ipv4), ban(attacker.ipv6)], time.time())
    expired = ban("203.0.113.9", seconds=-5)
    enforcer.reconcile([ban(innocent.ipv4), ban(innocent.ipv6), expired], time.time())
    assert reaches(attacker, lab.server) == OPEN
    assert reaches(innocent, lab.server) == BLOCKED
    assert [e["val"] for e in elements(lab.server, "sshd_v4")] == [innocent.ipv4]


@pytest.mark.netns
def test_second_instance_setup_keeps_elements_and_rules(
    lab: Lab, enforcer: NftablesEnforcer
) -> None:
    attacker = lab.clients["attacker"]
    enforcer.ban([ban(attacker.ipv4)], time.time())
    chain = ["nft", "-j", "list", "chain", "inet", "bruteguard", "input"]

    def rule_count() -> int:
        items = json.loads(lab.server.run(chain).stdout)["nftables"]
        return sum("rule" in item for item in items)

    before = rule_count()
    again = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    with pytest.raises(EnforcerError, match="setup"):
        again.reconcile([], time.time())  # would wipe sets it does not know yet
    again.setup(JAILS)
    again.setup(JAILS)
    assert rule_count() == before == 2 * len(JAILS)
    assert not attacker.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)
    # A rule set for fewer jails drops the other jail's rules but keeps every element.
    again.setup(JAILS[:1])
    assert rule_count() == 2
    assert [e["val"] for e in elements(lab.server, "sshd_v4")] == [attacker.ipv4]


@pytest.mark.netns
def test_teardown_removes_only_its_own_table(lab: Lab, enforcer: NftablesEnforcer) -> None:
    admin_rules = (
        "add table inet admin\n"
        "add chain inet admin input { type filter hook input priority filter; policy accept; }\n"
        "add rule inet admin input tcp dport 9999 counter accept\n"
    )
    lab.server.run(["nft", "-f", "-"], input=admin_rules)
    admin_before = lab.server.run(["nft", "list", "table", "inet", "admin"]).stdout
    enforcer.ban([ban(lab.clients["attacker"].ipv4)], time.time())
    enforcer.teardown()
    tables = lab.server.run(["nft", "list", "tables"]).stdout.split("\n")
    assert "table inet admin" in tables
    assert "table inet bruteguard" not in tables
    assert "table inet bruteguard_bl" not in tables
    assert lab.server.run(["nft", "list", "table", "inet", "admin"]).stdout == admin_before
    assert reaches(lab.clients["attacker"], lab.server) == OPEN
    enforcer.teardown()  # already gone: still fine


@pytest.mark.netns
def test_cidr_bans_block_whole_networks(lab: Lab, enforcer: NftablesEnforcer) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    # Addresses banned first, then networks containing them: separate sets, no overlap error.
    enforcer.ban([ban(attacker.ipv4), ban(attacker.ipv6)], time.time())
    enforcer.ban([ban("192.0.2.0/24")], time.time())
    assert reaches(innocent, lab.server) == {"v4": False, "v6": True}
    enforcer.ban([ban("2001:db8::/64", seconds=60), ban("2001:db8::/48", seconds=30)], time.time())
    assert reaches(innocent, lab.server) == BLOCKED
    # Unbanning a network lifts that ban only; the daemon passes every overlapping one.
    enforcer.unban([ban("192.0.2.0/24"), ban("2001:db8::/48")])
    assert reaches(innocent, lab.server) == {"v4": True, "v6": False}
    enforcer.unban([ban("2001:db8::/64")])
    assert reaches(innocent, lab.server) == OPEN
    assert reaches(attacker, lab.server) == BLOCKED


@pytest.mark.netns
def test_nested_networks_each_keep_their_own_ban(lab: Lab, enforcer: NftablesEnforcer) -> None:
    """A /24 and a /28 inside it are two elements in two sets: the address stays banned
    while either covers it, whichever ends first."""
    attacker = lab.clients["attacker"]
    enforcer.ban([ban("192.0.2.0/24", seconds=2), ban("192.0.2.0/28", seconds=600)], time.time())
    enforcer.ban([ban("2001:db8::/48", seconds=600), ban("2001:db8::/64", seconds=2)], time.time())
    (outer,) = elements(lab.server, "sshd_v4n24")
    (inner,) = elements(lab.server, "sshd_v4n28")
    assert outer["val"] == inner["val"] == "192.0.2.0"
    assert outer["timeout"] <= 2 and 590 < inner["timeout"] <= 600
    time.sleep(3)
    assert elements(lab.server, "sshd_v4n24") == elements(lab.server, "sshd_v6n64") == []
    assert reaches(attacker, lab.server) == BLOCKED


def ipv6_networks(count: int, prefix: int = 64, base: str = "2001:db8:100::") -> list[str]:
    """``count`` distinct documentation networks of ``prefix`` bits, none holding a lab host."""
    start = int(ipaddress.ip_address(base)) >> (128 - prefix)
    return [
        str(ipaddress.IPv6Network(((start + i) << (128 - prefix), prefix))) for i in range(count)
    ]


class _WatchedNftables(NftablesEnforcer):
    """The real enforcer that also keeps every nft script it ran (and its output flags)."""

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.calls: list[tuple[dict[str, bool], str]] = []

    def _run(self, script: str, **flags: bool) -> str:
        self.calls.append((flags, script))
        return super()._run(script, **flags)


@pytest.mark.netns
def test_network_bans_among_thousands_change_only_their_elements(lab: Lab) -> None:
    """Adding and deleting /64s among 20,000: a ban of one more is a netlink batch (no nft
    run at all), an unban one small script, nothing read back, no interval set for nft to
    read before it adds, and the set holds exactly what is banned; connections follow."""
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    enforcer = set_up(_WatchedNftables, lab.server, JAILS)
    many = ipv6_networks(20_000)
    enforcer.ban([ban(network) for network in many], time.time())
    lab_net = "2001:db8::/64"  # every lab host's /64
    enforcer.calls.clear()
    enforcer.ban([ban(lab_net)], time.time())
    assert enforcer.calls == [], "elements alone: one netlink batch, no nft run"
    assert reaches(attacker, lab.server) == {"v4": True, "v6": False}
    assert reaches(innocent, lab.server) == {"v4": True, "v6": False}

    lifted = set(random.Random(18).sample(many, 5_000))
    enforcer.calls.clear()
    enforcer.unban([ban(network) for network in sorted(lifted)][:1])
    assert len(enforcer.calls) == 1 and len(enforcer.calls[0][1] or "") < 400
    enforcer.unban([ban(network) for network in sorted(lifted)] + [ban(lab_net)])
    assert reaches(attacker, lab.server) == OPEN
    expected = {network.split("/")[0] for network in many if network not in lifted}
    assert {e["val"] for e in elements(lab.server, "sshd_v6n64")} == expected
    listing = lab.server.run(["nft", "-t", "-j", "list", "sets", "table", "inet", "bruteguard"])
    interval_sets = {
        item["set"]["name"]
        for item in json.loads(listing.stdout)["nftables"]
        if "set" in item and "interval" in item["set"].get("flags", [])
        if item["set"]["table"] == "bruteguard"
    }
    assert interval_sets == {"sshd_a4", "sshd_a6", "web-auth_a4", "web-auth_a6"}

    # A restart: a new instance's setup keeps the network sets and their rules (once) ...
    again = set_up(_WatchedNftables, lab.server, JAILS)
    rules = lab.server.run(["nft", "list", "chain", "inet", "bruteguard", "input"]).stdout
    assert rules.count("@sshd_v6n64") == 1
    again.ban([ban(lab_net)], time.time())
    assert reaches(attacker, lab.server) == {"v4": True, "v6": False}
    rules = lab.server.run(["nft", "list", "chain", "inet", "bruteguard", "input"]).stdout
    assert rules.count("@sshd_v6n64") == 1
    # ... and reconcile from the ledger leaves exactly the ledger's bans.
    kept = many[:100]
    again.reconcile([ban(network) for network in kept] + [ban("198.51.100.0/24")], time.time())
    assert {e["val"] for e in elements(lab.server, "sshd_v6n64")} == {
        network.split("/")[0] for network in kept
    }
    assert [e["val"] for e in elements(lab.server, "sshd_v4n24")] == ["198.51.100.0"]
    assert reaches(attacker, lab.server) == OPEN
    again.ban([ban("192.0.2.0/24")], time.time())
    assert reaches(innocent, lab.server) == {"v4": False, "v6": True}


@pytest.mark.netns
def test_reconcile_100k_elements_is_fast(lab: Lab, enforcer: NftablesEnforcer) -> None:
    attacker = lab.clients["attacker"]
    now = time.time()
    base = int(ipaddress.ip_address("10.0.0.0"))
    bans = [
        Ban(str(ipaddress.ip_address(base + i)), "sshd", now, now + 3600) for i in range(99_999)
    ]
    bans.append(Ban(attacker.ipv4, "sshd", now, now + 3600))
    started = time.perf_counter()
    enforcer.reconcile(bans, now)
    first = time.perf_counter() - started
    started = time.perf_counter()
    enforcer.reconcile(bans, time.time())  # replacing 100k with 100k
    second = time.perf_counter() - started
    print(f"\n100k reconcile: into empty set {first:.2f}s, replacing 100k {second:.2f}s")
    assert len(elements(lab.server, "sshd_v4")) == 100_000
    assert not attacker.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)
    assert first < 2.0 and second < 2.0


@pytest.mark.netns
def test_drop_blocktype_silently_drops(lab: Lab) -> None:
    attacker = lab.clients["attacker"]
    enforcer = set_up(NftablesEnforcer, lab.server, JAILS, blocktype="drop")
    enforcer.ban([ban(attacker.ipv6)], time.time())
    started = time.monotonic()
    assert not attacker.tcp_connect(lab.server.ipv6, SSH, timeout=1.0)
    assert time.monotonic() - started >= 0.9, "drop must not answer (a refusal is reject)"
    assert attacker.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)
    rules = lab.server.run(["nft", "list", "chain", "inet", "bruteguard", "input"]).stdout
    assert " drop" in rules and "reject" not in rules


@pytest.mark.netns
@pytest.mark.parametrize(
    "bad",
    [
        ban("192.0.2.10 } ; flush ruleset ; add element inet bruteguard sshd_v4 { 1.2.3.4"),
        ban("not-an-address"),
        ban("192.0.2.0/33"),
        ban("192.0.2.10", jail="no such jail"),
        ban("192.0.2.10", jail="unknown"),
    ],
)
def test_invalid_bans_raise_before_anything_runs(
    lab: Lab, enforcer: NftablesEnforcer, bad: Ban
) -> None:
    attacker = lab.clients["attacker"]
    with pytest.raises(EnforcerError, match=r"not an IP address|cannot be used|not set up"):
        enforcer.ban([ban(attacker.ipv4), bad], time.time())
    with pytest.raises(EnforcerError):
        enforcer.reconcile([ban(attacker.ipv4), bad], time.time())
    with pytest.raises(EnforcerError):
        enforcer.unban([bad])
    assert reaches(attacker, lab.server) == OPEN
    assert elements(lab.server, "sshd_v4") == []


@pytest.mark.netns
@pytest.mark.parametrize("name", ["", "bad name", "1st", "-x", "a" * 31, "x;y", "é"])
def test_invalid_jail_or_table_names_are_refused(lab: Lab, name: str) -> None:
    enforcer = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    with pytest.raises(EnforcerError, match="cannot be used in nftables"):
        enforcer.setup([Jail(name)])
    with pytest.raises(EnforcerError, match="cannot be used in nftables"):
        NftablesEnforcer(table=name)
    tables = lab.server.run(["nft", "list", "tables"]).stdout
    assert tables == ""


@pytest.mark.netns
def test_missing_nft_binary_is_a_clear_error(lab: Lab) -> None:
    enforcer = NftablesEnforcer(nft="/nonexistent/nft", argv_prefix=lab.server.exec_prefix)
    with pytest.raises(EnforcerError, match=r"'/nonexistent/nft' not found.*nftables"):
        enforcer.setup(JAILS)
    problem = enforcer.check()
    assert problem is not None and "not found" in problem
    assert not enforcer.is_available()


@pytest.mark.netns
def test_without_privilege_is_a_clear_error_and_leaves_nothing(lab: Lab) -> None:
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    enforcer = NftablesEnforcer(argv_prefix=[*lab.server.exec_prefix, *nobody])
    with pytest.raises(EnforcerError, match=r"not permitted.*root"):
        enforcer.setup(JAILS)
    assert "not permitted" in (enforcer.check() or "")
    assert lab.server.run(["nft", "list", "tables"]).stdout == ""
    root = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    assert root.check() is None and root.is_available()


@pytest.mark.netns
def test_rejected_script_leaves_no_half_made_state(lab: Lab) -> None:
    # A set of the wrong type makes nft refuse setup's script part-way through.
    lab.server.run(
        ["nft", "-f", "-"],
        input="add table inet bruteguard\n"
        "add set inet bruteguard web-auth_v4 { type ipv6_addr; }\n",
    )
    before = lab.server.run(["nft", "list", "table", "inet", "bruteguard"]).stdout
    enforcer = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    with pytest.raises(EnforcerError, match=r"(?s)nft failed \(exit 1\).*web-auth_v4"):
        enforcer.setup(JAILS)
    assert lab.server.run(["nft", "list", "table", "inet", "bruteguard"]).stdout == before
    assert "sshd" not in before


def test_dry_run_keeps_the_view_a_firewall_would_have() -> None:
    dry = DryRunEnforcer()
    dry.setup(JAILS)
    now = time.time()
    dry.ban([ban("192.0.2.10"), ban("::ffff:192.0.2.11", seconds=2)], now)
    assert {b.ip for b in dry.active(now)} == {"192.0.2.10", "::ffff:192.0.2.11"}
    assert [b.ip for b in dry.active(now + 10)] == ["192.0.2.10"]
    dry.unban([ban("192.0.2.11"), ban("203.0.113.1")])
    assert [b.ip for b in dry.active(now)] == ["192.0.2.10"]
    dry.reconcile([ban("198.51.100.0/24")], now)
    assert [b.ip for b in dry.active(now)] == ["198.51.100.0/24"]
    with pytest.raises(EnforcerError):
        dry.ban([ban("192.0.2.10", jail="unknown")], now)
    dry.teardown()
    assert dry.active(now) == []
    assert [action for action, _ in dry.actions] == [
        "setup", "ban", "unban", "reconcile", "teardown"
    ]  # fmt: skip


def test_factory_builds_the_configured_enforcers() -> None:
    config = config_from_dict({"enforcers": ["nftables", "dry-run"], "nftables_table": "bg2"})
    nft, dry = make_enforcers(config)
    assert isinstance(nft, NftablesEnforcer) and nft.table == "bg2"
    assert isinstance(dry, DryRunEnforcer)
    with pytest.raises(ConfigError, match="nftables_table"):
        make_enforcers(config_from_dict({"nftables_table": "bad table"}))


# -- allow wins, kernel rate limit, blocklists -----------------------------------------------

# Fixed child scripts: addresses, ports and counts arrive as argv, never as code.
_BURST_SCRIPT = """
import socket, sys
results = []
for _ in range(int(sys.argv[3])):
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.0).close()
        results.append("1")
    except OSError:
        results.append("0")
print("".join(results))
"""

_PROBE_SCRIPT = """
import select, socket, sys, time
addr, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
probes = reached = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline and probes < 5000:
    if select.select([sys.stdin], [], [], 0)[0]:  # stdin closed: the test is done
        break
    probes += 1
    try:
        socket.create_connection((addr, port), timeout=0.2).close()
        reached += 1
    except OSError:
        pass
    time.sleep(0.005)
print(probes, reached)
"""


def burst(client: Host, addr: str, count: int, port: int = SSH) -> str:
    """``count`` connections back to back from one process: "1" each that worked, else "0"."""
    argv = [sys.executable, "-c", _BURST_SCRIPT, addr, str(port), str(count)]
    return client.run(argv, timeout=count * 2 + 10).stdout.strip()


def networks(*texts: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(text) for text in texts)


def table_objects(host: Host, table: str) -> dict[str, set[str]]:
    """Names of the sets and chains in ``inet <table>`` (empty if the table is gone)."""
    result = host.run(["nft", "-t", "-j", "list", "table", "inet", table], check=False)
    objects: dict[str, set[str]] = {"set": set(), "chain": set()}
    if result.returncode != 0:
        return objects
    for item in json.loads(result.stdout)["nftables"]:
        for kind in objects:
            if kind in item:
                objects[kind].add(item[kind]["name"])
    return objects


def blocklist_entries(count: int, seed: int = 1) -> list[str]:
    """``count`` distinct documentation addresses (not the lab's 192.0.2.0/24), some IPv6."""
    rng = random.Random(seed)
    pool = [f"198.51.100.{i}" for i in range(256)] + [f"203.0.113.{i}" for i in range(256)]
    pool += [f"2001:db8:ffff::{i:x}" for i in range(1, 200)]
    return rng.sample(pool, count)


def allowed_innocent(lab: Lab) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    innocent = lab.clients["innocent"]
    return networks(innocent.ipv4, innocent.ipv6)


@pytest.mark.netns
def test_allow_wins_inside_banned_networks_per_jail(lab: Lab) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    lab.server.listen_tcp(8443)
    enforcer = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    enforcer.setup([Jail("sshd", allow=allowed_innocent(lab)), Jail("web-auth", (8443,))])
    bans = [ban("192.0.2.0/24"), ban("2001:db8::/64"), ban(innocent.ipv4), ban(innocent.ipv6)]
    enforcer.ban(bans, time.time())
    assert reaches(attacker, lab.server) == BLOCKED
    assert reaches(innocent, lab.server) == OPEN  # inside both banned networks, yet allowed
    # sshd's allow list is sshd's own: web-auth still blocks the same client (per-rule
    # negation, not an early accept that would skip the other jails' rules too).
    enforcer.ban([ban("192.0.2.0/24", jail="web-auth")], time.time())
    assert not innocent.tcp_connect(lab.server.ipv4, 8443, timeout=1.0)
    assert innocent.tcp_connect(lab.server.ipv6, 8443, timeout=1.0)
    # reconcile rebuilds the table: the allow sets come back filled.
    enforcer.reconcile(bans, time.time())
    assert [e["val"] for e in elements(lab.server, "sshd_a4")] == [innocent.ipv4]
    assert reaches(attacker, lab.server) == BLOCKED
    assert reaches(innocent, lab.server) == OPEN
    # A new allow list replaces the old one on setup (a reload).
    enforcer.setup([Jail("sshd", allow=networks("203.0.113.0/24")), Jail("web-auth", (8443,))])
    assert reaches(innocent, lab.server) == BLOCKED


@pytest.mark.netns
def test_invalid_allow_entry_is_refused_before_anything_runs(lab: Lab) -> None:
    enforcer = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    with pytest.raises(EnforcerError, match=r"jail sshd: allow: .* not an IP address"):
        enforcer.setup([Jail("sshd", allow=("192.0.2.1 } ; flush ruleset",))])  # type: ignore[arg-type]
    assert lab.server.run(["nft", "list", "tables"]).stdout == ""


@pytest.mark.netns
def test_kernel_ratelimit_refuses_beyond_hits_per_window(lab: Lab) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    # The real config model: "3/3s" → JailConfig.rate == (3, 3.0); ignoreip → allow.
    config = config_from_dict(
        {"jails": {"sshd": {"port": [SSH], "ratelimit": "3/3s",
                            "ignoreip": [innocent.ipv4, innocent.ipv6]}}}
    )  # fmt: skip
    enforcer = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    enforcer.setup([config.jails["sshd"]])
    chain = lab.server.run(["nft", "list", "chain", "inet", "bruteguard", "input"]).stdout
    assert "limit rate over 1/second burst 3 packets" in chain
    # Three in a burst work, the fourth and fifth within the window are refused; each
    # family has its own per-source state.
    assert burst(attacker, lab.server.ipv4, 5) == "11100"
    assert burst(attacker, lab.server.ipv6, 5) == "11100"
    assert burst(attacker, lab.server.ipv4, 1, WEB) == "1"  # other ports are not limited
    assert burst(innocent, lab.server.ipv4, 8) == "11111111"  # allowed: exempt
    assert burst(innocent, lab.server.ipv6, 8) == "11111111"
    time.sleep(3.3)  # a whole window of quiet: the allowance is back in full
    assert burst(attacker, lab.server.ipv4, 5) == "11100"
    # A setup without the rate limit removes the rule (a reload); nothing is refused.
    enforcer.setup([Jail("sshd")])
    assert burst(attacker, lab.server.ipv4, 5) == "11111"


@pytest.mark.netns
def test_blocklist_blocks_every_port_and_allowed_sources_pass(lab: Lab) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    enforcer = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    enforcer.setup([Jail("sshd", allow=allowed_innocent(lab))])
    entries = [*blocklist_entries(300), "192.0.2.0/24", "2001:db8::/64", "::ffff:203.0.113.0/120"]
    now = time.time()
    assert enforcer.load_blocklist("drop-list", iter(entries), now + 3600, now) == 303
    for port in (SSH, WEB):
        assert reaches(attacker, lab.server, port) == BLOCKED
        assert reaches(innocent, lab.server, port) == OPEN  # a jail's allow is exempt
    hashed = elements(lab.server, "bl_drop-list_4", "bruteguard_bl")
    assert {e["val"] for e in hashed} == {x for x in entries[:300] if "." in x}
    assert all(3500 < e["expires"] <= 3600 for e in hashed)
    v6 = elements(lab.server, "bl_drop-list_6", "bruteguard_bl")
    assert len(v6) == sum(":" in x for x in entries[:300])
    nets = [e["val"] for e in elements(lab.server, "bl_drop-list_4net", "bruteguard_bl")]
    assert {f"{n['prefix']['addr']}/{n['prefix']['len']}" for n in nets} == {
        "192.0.2.0/24", "203.0.113.0/24"
    }  # fmt: skip


@pytest.mark.netns
def test_blocklist_reload_replaces_the_old_list_atomically(lab: Lab) -> None:
    attacker = lab.clients["attacker"]
    enforcer = set_up(NftablesEnforcer, lab.server, JAILS)
    now = time.time()
    first = [*blocklist_entries(200, seed=2), attacker.ipv4, attacker.ipv6]
    enforcer.load_blocklist("feed", first, math.inf, now)
    assert reaches(attacker, lab.server, WEB) == BLOCKED
    second = blocklist_entries(150, seed=3)
    assert enforcer.load_blocklist("feed", second, math.inf, now) == 150
    assert reaches(attacker, lab.server, WEB) == OPEN
    loaded = {
        e["val"]
        for set_name in ("bl_feed_4", "bl_feed_6")
        for e in elements(lab.server, set_name, "bruteguard_bl")
    }
    assert loaded == set(second)
    # A load that fails part-way (a bad entry after 10,000 good ones) applies nothing.
    bad = ["192.0.2.10 } ; flush ruleset ; add element inet x y { 1.2.3.4", "10.0.0.0/33"]
    for poison in bad:
        good = (f"10.{i >> 8 & 255}.{i & 255}.1" for i in range(10_000))
        with pytest.raises(EnforcerError, match="entry 10002 is not an IP address"):
            enforcer.load_blocklist("feed", [attacker.ipv4, *good, poison], math.inf, now)
        assert reaches(attacker, lab.server, WEB) == OPEN
        loaded = {e["val"] for e in elements(lab.server, "bl_feed_4", "bruteguard_bl")}
        assert loaded == {x for x in second if "." in x}

    # While a 100,000-entry list that blocks the attacker replaces another such list again
    # and again, not one probe of the attacker's gets through: no moment without a list.
    def big(seed: int) -> Iterable[str]:
        yield attacker.ipv4
        first = int(ipaddress.IPv4Address("10.0.0.0")) + (seed << 20)
        yield from (str(ipaddress.IPv4Address(first + i)) for i in range(100_000))

    enforcer.load_blocklist("feed", big(1), math.inf, now)
    probe = attacker.popen(
        [sys.executable, "-c", _PROBE_SCRIPT, lab.server.ipv4, str(WEB), "60"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.2)
    for seed in range(2, 6):
        enforcer.load_blocklist("feed", big(seed), math.inf, time.time())
    output, _ = probe.communicate(input="", timeout=30)  # closing stdin stops it
    probes, reached = map(int, output.split())
    assert probes > 20 and reached == 0
    assert len(elements(lab.server, "bl_feed_4", "bruteguard_bl")) == 100_001


@pytest.mark.netns
def test_drop_blocklist_removes_it_and_nothing_else(lab: Lab) -> None:
    attacker = lab.clients["attacker"]
    enforcer = set_up(NftablesEnforcer, lab.server, JAILS)
    now = time.time()
    enforcer.load_blocklist("one", ["192.0.2.0/24"], math.inf, now)
    enforcer.load_blocklist("two", ["2001:db8::/64"], math.inf, now)
    assert reaches(attacker, lab.server, WEB) == BLOCKED
    enforcer.drop_blocklist("one")
    assert reaches(attacker, lab.server, WEB) == {"v4": True, "v6": False}
    objects = table_objects(lab.server, "bruteguard_bl")
    assert not any(name.startswith("bl_one") for name in objects["set"] | objects["chain"])
    assert "bl_two" in objects["chain"]
    enforcer.drop_blocklist("one")  # gone already: still fine
    enforcer.drop_blocklist("never-loaded")
    enforcer.drop_blocklist("two")
    assert reaches(attacker, lab.server, WEB) == OPEN
    with pytest.raises(EnforcerError, match="blocklist name"):
        enforcer.drop_blocklist("x; flush ruleset")


@pytest.mark.netns
def test_reconcile_and_setup_keep_loaded_blocklists(lab: Lab, enforcer: NftablesEnforcer) -> None:
    attacker = lab.clients["attacker"]
    now = time.time()
    enforcer.load_blocklist("feed", ["192.0.2.0/24", "2001:db8::/64"], now + 600, now)
    enforcer.reconcile([ban("203.0.113.9")], time.time())
    assert reaches(attacker, lab.server, WEB) == BLOCKED
    restarted = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)  # a daemon restart
    restarted.setup(JAILS)
    restarted.reconcile([], time.time())
    assert reaches(attacker, lab.server, WEB) == BLOCKED
    assert [e["val"] for e in elements(lab.server, "sshd_v4")] == []


@pytest.mark.netns
def test_blocklist_times_out_as_a_whole(lab: Lab, enforcer: NftablesEnforcer) -> None:
    attacker = lab.clients["attacker"]
    now = time.time()
    assert enforcer.load_blocklist("short", [attacker.ipv4, "192.0.2.0/24"], now + 2, now) == 2
    started = time.monotonic()
    assert not attacker.tcp_connect(lab.server.ipv4, WEB, timeout=1.0)
    deadline = started + 8
    while time.monotonic() < deadline and not attacker.tcp_connect(lab.server.ipv4, WEB, 1.0):
        time.sleep(0.25)
    assert 1.5 < time.monotonic() - started < 8
    assert attacker.tcp_connect(lab.server.ipv4, WEB, timeout=1.0)
    # Already expired: nothing is loaded (and an older list of that name goes).
    assert enforcer.load_blocklist("short", [attacker.ipv4], now - 1, now) == 0
    assert "bl_short" not in table_objects(lab.server, "bruteguard_bl")["chain"]


@pytest.mark.netns
def test_teardown_removes_both_tables_and_keeps_the_admins(lab: Lab) -> None:
    admin_rules = (
        "add table inet admin\n"
        "add set inet admin bl_feed_4 { type ipv4_addr; }\n"
        "add chain inet admin input { type filter hook input priority filter; policy accept; }\n"
        "add rule inet admin input tcp dport 9999 counter accept\n"
    )
    lab.server.run(["nft", "-f", "-"], input=admin_rules)
    admin_before = lab.server.run(["nft", "list", "table", "inet", "admin"]).stdout
    attacker = lab.clients["attacker"]
    config = config_from_dict({"jails": {"sshd": {"port": [SSH], "ratelimit": "3/3s"}}})
    enforcer = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    enforcer.setup(list(config.jails.values()))
    enforcer.ban([ban(attacker.ipv4)], time.time())
    enforcer.load_blocklist("feed", ["192.0.2.0/24"], math.inf, time.time())
    enforcer.teardown()
    assert lab.server.run(["nft", "list", "tables"]).stdout.split("\n") == ["table inet admin", ""]
    assert lab.server.run(["nft", "list", "table", "inet", "admin"]).stdout == admin_before
    assert reaches(attacker, lab.server) == OPEN
    assert reaches(attacker, lab.server, WEB) == OPEN
    enforcer.teardown()  # already gone: still fine


@pytest.mark.netns
def test_streamed_reconcile_keeps_the_longer_ban_and_overlapping_networks(
    lab: Lab, enforcer: NftablesEnforcer
) -> None:
    """reconcile reads its bans once, as a stream: a target seen again (in another chunk)
    keeps the longer ban, and overlapping networks stay as they are, each in the hash set
    of its prefix length (element: the network's first address)."""
    now = time.time()
    base = int(ipaddress.ip_address("10.0.0.0"))
    filler = (Ban(str(ipaddress.ip_address(base + i)), "sshd", now, now + 600) for i in range(9000))
    enforcer.reconcile(
        itertools.chain(
            [Ban("203.0.113.5", "sshd", now, now + 100)],
            filler,  # past one chunk of 8,192: the first ban of .5 is written already
            [
                Ban("203.0.113.5", "sshd", now, now + 3000),
                Ban("203.0.113.5", "sshd", now, now + 50),
                Ban("198.51.100.0/24", "sshd", now, now + 3000),
                Ban("198.51.100.7/24", "sshd", now, now + 20),  # host bits: the same /24
                Ban("198.51.0.0/16", "sshd", now, now + 100),
                Ban("2001:db8:1::/64", "sshd", now, now + 3000),
            ],
        ),
        now,
    )
    addresses = {e["val"]: e["timeout"] for e in elements(lab.server, "sshd_v4")}
    assert len(addresses) == 9001
    assert 2900 < addresses["203.0.113.5"] <= 3000
    ((n24, t24),) = [(e["val"], e["timeout"]) for e in elements(lab.server, "sshd_v4n24")]
    assert n24 == "198.51.100.0" and 2900 < t24 <= 3000
    ((n16, t16),) = [(e["val"], e["timeout"]) for e in elements(lab.server, "sshd_v4n16")]
    assert n16 == "198.51.0.0" and t16 <= 100
    (v6,) = elements(lab.server, "sshd_v6n64")
    assert v6["val"] == "2001:db8:1::"
    inside = lab.server.run(["nft", "list", "chain", "inet", "bruteguard", "input"]).stdout
    assert "@sshd_v4n24" in inside and "@sshd_v4n16" in inside and "@sshd_v6n64" in inside


@dataclass(frozen=True)
class KnockJail(Jail):
    knock: bool = True


@pytest.mark.netns
def test_a_knock_jail_is_closed_but_to_its_allow_and_knock_sets_and_a_ban_still_wins(
    lab: Lab,
) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    jails = [KnockJail("sshd"), Jail("web-auth", (WEB,))]
    enforcer = set_up(NftablesEnforcer, lab.server, jails)
    assert reaches(attacker, lab.server) == BLOCKED and reaches(innocent, lab.server) == BLOCKED
    assert reaches(innocent, lab.server, WEB) == OPEN  # only the knock jail's ports close
    enforcer.open_for(["sshd"], attacker.ipv4, 4)
    enforcer.open_for(["sshd"], attacker.ipv6, 4)
    opened = time.monotonic()
    assert reaches(attacker, lab.server) == OPEN and reaches(innocent, lab.server) == BLOCKED
    # A new allow list (setup again) keeps who knocked, and lets the allowed in.
    enforcer.setup([KnockJail("sshd", allow=(innocent.ipv4, innocent.ipv6)), jails[1]])
    assert reaches(attacker, lab.server) == OPEN and reaches(innocent, lab.server) == OPEN
    enforcer.ban([ban(attacker.ipv4, 60)], time.time())
    assert reaches(attacker, lab.server) == {"v4": False, "v6": True}  # the ban wins
    while time.monotonic() - opened < 6 and reaches(attacker, lab.server)["v6"]:
        time.sleep(0.2)
    assert not reaches(attacker, lab.server)["v6"]  # the knock timed out
    assert time.monotonic() - opened >= 3.5
    with pytest.raises(EnforcerError, match="no knock set"):
        enforcer.open_for(["web-auth"], attacker.ipv4, 4)
