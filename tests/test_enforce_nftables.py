"""The nftables enforcer against real nftables in a lab namespace, proven by real connections."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bruteguard.config import config_from_dict
from bruteguard.enforce.dryrun import DryRunEnforcer
from bruteguard.enforce.factory import make_enforcers
from bruteguard.enforce.nftables import NftablesEnforcer, disjoint_pieces
from bruteguard.errors import ConfigError, EnforcerError
from bruteguard.model import Ban
from netns import Host, Lab, require_root_netns

SSH = 2222  # protected by the jail
WEB = 8080  # not in the jail: must stay reachable for banned clients


@dataclass(frozen=True)
class Jail:
    name: str
    ports: tuple[int, ...] = (SSH,)
    protocol: str = "tcp"


JAILS = [Jail("sshd"), Jail("web-auth", (8443,))]


@pytest.fixture
def lab() -> Iterator[Lab]:
    require_root_netns()
    with Lab(prefix="bgnft") as lab:
        lab.server.listen_tcp(SSH)
        lab.server.listen_tcp(WEB)
        yield lab


@pytest.fixture
def enforcer(lab: Lab) -> NftablesEnforcer:
    enforcer = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    enforcer.setup(JAILS)
    return enforcer


def ban(ip: str, seconds: float = 3600, jail: str = "sshd") -> Ban:
    now = time.time()
    return Ban(ip=ip, jail=jail, start=now, until=now + seconds)


def reaches(client: Host, server: Host, port: int = SSH) -> dict[str, bool]:
    return {
        "v4": client.tcp_connect(server.ipv4, port, timeout=1.0),
        "v6": client.tcp_connect(server.ipv6, port, timeout=1.0),
    }


BLOCKED = {"v4": False, "v6": False}
OPEN = {"v4": True, "v6": True}


def elements(host: Host, set_name: str, table: str = "bruteguard") -> list[dict]:
    output = host.run(["nft", "-j", "list", "set", "inet", table, set_name]).stdout
    found = [item["set"] for item in json.loads(output)["nftables"] if "set" in item]
    return [entry["elem"] for entry in found[0].get("elem", [])]


def test_ban_blocks_attacker_on_jail_ports_only(lab: Lab, enforcer: NftablesEnforcer) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    assert reaches(attacker, lab.server) == OPEN
    enforcer.ban([ban(attacker.ipv4), ban(attacker.ipv6)], time.time())
    started = time.monotonic()
    assert reaches(attacker, lab.server) == BLOCKED
    assert time.monotonic() - started < 1.5, "reject must refuse at once, not time out"
    assert reaches(innocent, lab.server) == OPEN
    assert reaches(attacker, lab.server, WEB) == OPEN
    # The same attacker in another jail's set does not change sshd's port.
    enforcer.ban([ban(innocent.ipv4, jail="web-auth")], time.time())
    assert reaches(innocent, lab.server) == OPEN


def test_unban_restores_and_ignores_missing(lab: Lab, enforcer: NftablesEnforcer) -> None:
    attacker = lab.clients["attacker"]
    enforcer.ban([ban(attacker.ipv4), ban(attacker.ipv6)], time.time())
    assert reaches(attacker, lab.server) == BLOCKED
    never_banned = [ban("203.0.113.77"), ban("2001:db8::77"), ban("198.51.100.0/24")]
    enforcer.unban([ban(attacker.ipv4), ban(attacker.ipv6), *never_banned])
    assert reaches(attacker, lab.server) == OPEN
    assert elements(lab.server, "sshd_v4") == []
    enforcer.unban(never_banned)  # twice: still no error


def test_element_timeout_expiry_unbans(lab: Lab, enforcer: NftablesEnforcer) -> None:
    attacker = lab.clients["attacker"]
    enforcer.ban([ban(attacker.ipv4, seconds=2)], time.time())
    started = time.monotonic()
    assert not attacker.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)
    deadline = started + 8
    while time.monotonic() < deadline and not attacker.tcp_connect(lab.server.ipv4, SSH, 1.0):
        time.sleep(0.25)
    elapsed = time.monotonic() - started
    assert attacker.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)
    assert 1.5 < elapsed < 8


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


def test_reconcile_replaces_contents(lab: Lab, enforcer: NftablesEnforcer) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    enforcer.ban([ban(attacker.ipv4), ban(attacker.ipv6)], time.time())
    expired = ban("203.0.113.9", seconds=-5)
    enforcer.reconcile([ban(innocent.ipv4), ban(innocent.ipv6), expired], time.time())
    assert reaches(attacker, lab.server) == OPEN
    assert reaches(innocent, lab.server) == BLOCKED
    assert [e["val"] for e in elements(lab.server, "sshd_v4")] == [innocent.ipv4]


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
    assert rule_count() == before == 4 * len(JAILS)
    assert not attacker.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)
    # A rule set for fewer jails drops the other jail's rules but keeps every element.
    again.setup(JAILS[:1])
    assert rule_count() == 4
    assert [e["val"] for e in elements(lab.server, "sshd_v4")] == [attacker.ipv4]


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
    assert lab.server.run(["nft", "list", "table", "inet", "admin"]).stdout == admin_before
    assert reaches(lab.clients["attacker"], lab.server) == OPEN
    enforcer.teardown()  # already gone: still fine


def test_cidr_bans_block_whole_networks(lab: Lab, enforcer: NftablesEnforcer) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    # Addresses banned first, then networks containing them: separate sets, no overlap error.
    enforcer.ban([ban(attacker.ipv4), ban(attacker.ipv6)], time.time())
    enforcer.ban([ban("192.0.2.0/24")], time.time())
    assert reaches(innocent, lab.server) == {"v4": False, "v6": True}
    enforcer.ban([ban("2001:db8::/64", seconds=60), ban("2001:db8::/48", seconds=30)], time.time())
    assert reaches(innocent, lab.server) == BLOCKED
    enforcer.unban([ban("192.0.2.0/24"), ban("2001:db8::/48")])
    assert reaches(innocent, lab.server) == OPEN
    assert reaches(attacker, lab.server) == BLOCKED


def test_overlapping_networks_keep_the_longest_ban(lab: Lab, enforcer: NftablesEnforcer) -> None:
    enforcer.ban([ban("198.51.100.0/24", seconds=3000)], time.time())
    enforcer.ban([ban("198.51.0.0/16", seconds=100)], time.time())
    pieces = {
        ipaddress.ip_network(
            f"{e['val']['prefix']['addr']}/{e['val']['prefix']['len']}"
            if isinstance(e["val"], dict)
            else e["val"]
        ): e["timeout"]
        for e in elements(lab.server, "sshd_v4net")
    }
    assert sum(net.num_addresses for net in pieces) == 65536
    assert 2900 < pieces[ipaddress.ip_network("198.51.100.0/24")] <= 3000
    assert all(t <= 100 for net, t in pieces.items() if net.prefixlen != 24)


def test_disjoint_pieces_take_the_longest_covering_ban() -> None:
    net = ipaddress.ip_network
    pieces = dict(disjoint_pieces({net("10.0.0.0/8"): 10.0, net("10.1.0.0/16"): 99.0}))
    assert pieces[net("10.1.0.0/16")] == 99.0
    assert sum(n.num_addresses for n in pieces) == 2**24
    assert {t for n, t in pieces.items() if n != net("10.1.0.0/16")} == {10.0}
    inner_shorter = disjoint_pieces({net("10.0.0.0/8"): 99.0, net("10.1.0.0/16"): 10.0})
    assert inner_shorter == [(net("10.0.0.0/8"), 99.0)]


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


def test_drop_blocktype_silently_drops(lab: Lab) -> None:
    attacker = lab.clients["attacker"]
    enforcer = NftablesEnforcer(blocktype="drop", argv_prefix=lab.server.exec_prefix)
    enforcer.setup(JAILS)
    enforcer.ban([ban(attacker.ipv6)], time.time())
    started = time.monotonic()
    assert not attacker.tcp_connect(lab.server.ipv6, SSH, timeout=1.0)
    assert time.monotonic() - started >= 0.9, "drop must not answer (a refusal is reject)"
    assert attacker.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)
    rules = lab.server.run(["nft", "list", "chain", "inet", "bruteguard", "input"]).stdout
    assert " drop" in rules and "reject" not in rules


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


@pytest.mark.parametrize("name", ["", "bad name", "1st", "-x", "a" * 31, "x;y", "é"])
def test_invalid_jail_or_table_names_are_refused(lab: Lab, name: str) -> None:
    enforcer = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    with pytest.raises(EnforcerError, match="cannot be used in nftables"):
        enforcer.setup([Jail(name)])
    with pytest.raises(EnforcerError, match="cannot be used in nftables"):
        NftablesEnforcer(table=name)
    tables = lab.server.run(["nft", "list", "tables"]).stdout
    assert tables == ""


def test_missing_nft_binary_is_a_clear_error(lab: Lab) -> None:
    enforcer = NftablesEnforcer(nft="/nonexistent/nft", argv_prefix=lab.server.exec_prefix)
    with pytest.raises(EnforcerError, match=r"'/nonexistent/nft' not found.*nftables"):
        enforcer.setup(JAILS)
    problem = enforcer.check()
    assert problem is not None and "not found" in problem
    assert not enforcer.is_available()


def test_without_privilege_is_a_clear_error_and_leaves_nothing(lab: Lab) -> None:
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    enforcer = NftablesEnforcer(argv_prefix=[*lab.server.exec_prefix, *nobody])
    with pytest.raises(EnforcerError, match=r"not permitted.*root"):
        enforcer.setup(JAILS)
    assert "not permitted" in (enforcer.check() or "")
    assert lab.server.run(["nft", "list", "tables"]).stdout == ""
    root = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    assert root.check() is None and root.is_available()


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
