"""The route enforcer with real blackhole routes and policy rules in a lab namespace.

A banned client's SYN still reaches the server, but the SYN-ACK has no route back: the
connection fails (by timeout), on every port, because a route knows nothing of ports.
"""

from __future__ import annotations

import json
import time

import pytest

from bruteguard.enforce.route import RTPROT_BRUTEGUARD, RouteEnforcer
from bruteguard.errors import EnforcerError
from enforcekit import BLOCKED, OPEN, SSH, WEB, Jail, ban, lab_fixture, reaches
from netns import Host, Lab

pytestmark = pytest.mark.netns


lab = lab_fixture("bgrt")


def jails(lab: Lab) -> list[Jail]:
    innocent = lab.clients["innocent"]
    return [Jail("sshd", allow=(f"{innocent.ipv4}/32", innocent.ipv6)), Jail("recidive", ())]


@pytest.fixture
def enforcer(lab: Lab) -> RouteEnforcer:
    enforcer = RouteEnforcer(netns=lab.server.name)
    enforcer.setup(jails(lab))
    return enforcer


def own_routes(host: Host) -> list[tuple[str, str]]:
    """(type, destination) of every route with bruteguard's protocol number, any table."""
    found = []
    for family in ("-4", "-6"):
        output = host.run(["ip", "-j", family, "route", "show", "table", "all"]).stdout
        for route in json.loads(output):
            if route.get("protocol") in (str(RTPROT_BRUTEGUARD), RTPROT_BRUTEGUARD):
                found.append((route.get("type", "unicast"), route["dst"]))
    return sorted(found)


def rules(host: Host) -> list[dict]:
    found = []
    for family in ("-4", "-6"):
        found += json.loads(host.run(["ip", "-j", family, "rule", "show"]).stdout)
    return found


def test_ban_blocks_every_port_and_unban_restores(lab: Lab, enforcer: RouteEnforcer) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    assert reaches(attacker, lab.server) == OPEN
    enforcer.ban([ban(attacker.ipv4), ban(attacker.ipv6)], time.time())
    assert reaches(attacker, lab.server) == BLOCKED
    assert reaches(attacker, lab.server, WEB) == BLOCKED
    assert reaches(innocent, lab.server) == OPEN
    assert own_routes(lab.server) == sorted(
        [("blackhole", attacker.ipv4), ("blackhole", attacker.ipv6),
         ("throw", innocent.ipv4), ("throw", innocent.ipv6)]
    )  # fmt: skip
    enforcer.unban([ban(attacker.ipv4), ban(attacker.ipv6), ban("203.0.113.7")])
    assert reaches(attacker, lab.server) == OPEN
    enforcer.unban([ban(attacker.ipv4)])  # again: missing is not an error


def test_network_ban_spares_the_allowed_host(lab: Lab, enforcer: RouteEnforcer) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    enforcer.ban([ban("192.0.2.0/24"), ban("2001:db8::/64")], time.time())
    assert reaches(attacker, lab.server) == BLOCKED
    assert reaches(innocent, lab.server) == OPEN
    # The allow-list is per jail: recidive has none, so its ban of the same net blocks both.
    enforcer.ban([ban("192.0.2.0/24", jail="recidive")], time.time())
    assert not innocent.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)
    assert innocent.tcp_connect(lab.server.ipv6, SSH, timeout=1.0)


def test_one_jails_unban_keeps_the_other_jails_ban(lab: Lab, enforcer: RouteEnforcer) -> None:
    attacker = lab.clients["attacker"]
    enforcer.ban([ban(attacker.ipv4), ban(attacker.ipv4, jail="recidive")], time.time())
    enforcer.unban([ban(attacker.ipv4)])
    assert not attacker.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)
    enforcer.unban([ban(attacker.ipv4, jail="recidive")])
    assert attacker.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)


def test_reconcile_replaces_own_routes_only(lab: Lab, enforcer: RouteEnforcer) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    lab.server.run(["ip", "route", "add", "blackhole", "203.0.113.0/24"])
    enforcer.ban([ban(attacker.ipv4), ban("198.51.100.0/24", jail="recidive")], time.time())
    enforcer.reconcile(
        [
            ban(attacker.ipv6),
            ban("2001:db8:5::/48", jail="recidive"),
            ban("198.51.100.9", -5, "sshd"),
        ],
        time.time(),
    )
    assert own_routes(lab.server) == sorted(
        [("blackhole", attacker.ipv6), ("blackhole", "2001:db8:5::/48"),
         ("throw", innocent.ipv4), ("throw", innocent.ipv6)]
    )  # fmt: skip
    assert reaches(attacker, lab.server) == {"v4": True, "v6": False}
    admin = lab.server.run(["ip", "route", "show", "203.0.113.0/24"]).stdout
    assert admin.startswith("blackhole 203.0.113.0/24")


def test_teardown_removes_own_routes_and_rules_only(lab: Lab, enforcer: RouteEnforcer) -> None:
    server, attacker = lab.server, lab.clients["attacker"]
    server.run(["ip", "route", "add", "blackhole", "203.0.113.0/24"])
    server.run(["ip", "rule", "add", "pref", str(enforcer.priority), "lookup", "100"])
    enforcer.ban([ban(attacker.ipv4), ban(attacker.ipv6)], time.time())
    ours = [rule for rule in rules(server) if rule.get("protocol") == str(RTPROT_BRUTEGUARD)]
    tables = {str(enforcer.table("sshd")), str(enforcer.table("recidive"))}
    assert len(ours) == 4 and {rule["table"] for rule in ours} == tables
    enforcer.teardown()
    assert own_routes(server) == []
    assert [r for r in rules(server) if r.get("protocol") == str(RTPROT_BRUTEGUARD)] == []
    assert any(rule.get("table") == "100" for rule in rules(server))
    admin = server.run(["ip", "route", "show", "203.0.113.0/24"]).stdout
    assert admin.startswith("blackhole 203.0.113.0/24")
    assert reaches(attacker, server) == OPEN
    enforcer.teardown()  # twice: nothing left, no error


def test_setup_is_idempotent_and_keeps_bans(lab: Lab, enforcer: RouteEnforcer) -> None:
    attacker = lab.clients["attacker"]
    enforcer.ban([ban(attacker.ipv4)], time.time())
    again = RouteEnforcer(netns=lab.server.name)
    again.setup([Jail("sshd"), Jail("recidive")])  # allow-list emptied: throws go
    ours = [rule for rule in rules(lab.server) if rule.get("protocol") == str(RTPROT_BRUTEGUARD)]
    assert len(ours) == 4
    assert own_routes(lab.server) == [("blackhole", attacker.ipv4)]
    assert enforcer.check() is None


def test_bad_input_is_refused_before_netlink(lab: Lab, enforcer: RouteEnforcer) -> None:
    with pytest.raises(EnforcerError, match="not an IP address"):
        enforcer.ban([ban("192.0.2.10"), ban("192.0.2.0/33")], time.time())
    with pytest.raises(EnforcerError, match="not set up"):
        enforcer.ban([ban("192.0.2.10", jail="web")], time.time())
    assert [kind for kind, _ in own_routes(lab.server)] == ["throw", "throw"]
    with pytest.raises(EnforcerError, match="route_priority"):
        RouteEnforcer(priority=32766)
