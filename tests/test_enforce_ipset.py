"""The ipset enforcer against real iptables and ipset in a lab namespace, proven by connections."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Sequence

import pytest

from bruteguard.enforce._commands import run
from bruteguard.enforce.ipset import MAX_TIMEOUT, IpsetEnforcer
from bruteguard.errors import EnforcerError
from bruteguard.model import Ban
from enforcekit import (
    BLOCKED,
    JAILS_WITH_ALLOW,
    OPEN,
    SSH,
    CountingRunner,
    Jail,
    ban,
    ban_blocks_jail_ports_only,
    ban_without_ports_blocks_every_protocol,
    both,
    lab_fixture,
    reaches,
    seconds_until_lifted,
    set_up,
)
from netns import Host, Lab

pytestmark = pytest.mark.netns

ADMIN_PORT = 9
JAILS = JAILS_WITH_ALLOW


lab = lab_fixture("bgips", ("attacker", "innocent", "allowed"))


@pytest.fixture
def enforcer(lab: Lab) -> IpsetEnforcer:
    return set_up(IpsetEnforcer, lab.server, JAILS)


_ENTRY = re.compile(r"\Aadd (?P<set>\S+) (?P<entry>\S+)(?: timeout (?P<timeout>\d+))?\Z")


def members(host: Host, set_name: str) -> dict[str, int | None]:
    """Entry → seconds left (None: no timeout), read with ``ipset save``."""
    found = {}
    for line in host.run(["ipset", "save", set_name]).stdout.splitlines():
        match = _ENTRY.match(line)
        if match:
            found[match["entry"]] = int(match["timeout"]) if match["timeout"] else None
    return found


def sets(host: Host) -> set[str]:
    return set(host.run(["ipset", "list", "-n"]).stdout.split())


def rules(host: Host) -> dict[str, str]:
    return {cmd: host.run([cmd, "-S"]).stdout for cmd in ("iptables", "ip6tables")}


def test_ban_blocks_on_jail_ports_only_and_unban_restores(
    lab: Lab, enforcer: IpsetEnforcer
) -> None:
    ban_blocks_jail_ports_only(lab, enforcer)
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    # Banned in another jail (other port): sshd's port stays open for that client.
    enforcer.ban([ban(innocent.ipv4, jail="web-auth")], time.time())
    assert reaches(innocent, lab.server) == OPEN
    never_banned = [ban("203.0.113.77"), ban("2001:db8:1::77"), ban("198.51.100.0/24")]
    enforcer.unban([*both(attacker), *never_banned])
    assert reaches(attacker, lab.server) == OPEN
    assert members(lab.server, "bruteguard-sshd-4") == {}
    assert members(lab.server, "bruteguard-sshd-6") == {}
    enforcer.unban(never_banned)  # twice: still no error


def test_network_ban_blocks_the_subnet_but_allow_wins(lab: Lab, enforcer: IpsetEnforcer) -> None:
    attacker, innocent, allowed = (lab.clients[n] for n in ("attacker", "innocent", "allowed"))
    enforcer.ban([ban("192.0.2.0/24"), ban("2001:db8::/64")], time.time())
    assert reaches(attacker, lab.server) == BLOCKED
    assert reaches(innocent, lab.server) == BLOCKED
    assert reaches(allowed, lab.server) == OPEN
    # Even banned by its own address, the allowed client is exempt from this jail.
    enforcer.ban(both(allowed), time.time())
    assert reaches(allowed, lab.server) == OPEN
    # ...but not from a jail that does not allow it.
    enforcer.ban([ban(allowed.ipv4, jail="recidive")], time.time())
    assert reaches(allowed, lab.server) == {"v4": False, "v6": True}
    enforcer.unban([ban("192.0.2.0/24"), ban("2001:db8::/64")])
    assert reaches(innocent, lab.server) == OPEN
    assert members(lab.server, "bruteguard-sshd-4a") == {"192.0.2.12": None}


def test_entry_timeout_expires_by_itself(lab: Lab, enforcer: IpsetEnforcer) -> None:
    elapsed = seconds_until_lifted(enforcer, lab.clients["attacker"], lab.server)
    assert 1.0 < elapsed < 8
    assert members(lab.server, "bruteguard-sshd-4") == {}


def test_ban_again_refreshes_timeout_and_long_bans_have_none(
    lab: Lab, enforcer: IpsetEnforcer
) -> None:
    attacker = lab.clients["attacker"]
    enforcer.ban([ban(attacker.ipv4, seconds=60)], time.time())
    enforcer.ban([ban(attacker.ipv4, seconds=7200)], time.time())
    assert 7100 < (members(lab.server, "bruteguard-sshd-4")[attacker.ipv4] or 0) <= 7200
    enforcer.ban([ban(attacker.ipv4, seconds=30)], time.time())
    assert (members(lab.server, "bruteguard-sshd-4")[attacker.ipv4] or 0) <= 30
    now = time.time()
    enforcer.ban(
        [
            Ban("203.0.113.5", "sshd", now, float("inf")),  # permanent
            Ban("203.0.113.6", "sshd", now, now + MAX_TIMEOUT + 100),  # beyond ipset's limit
            Ban("203.0.113.7", "sshd", now, now + 50),  # twice in one batch: longer wins
            Ban("203.0.113.7", "sshd", now, now + 500),
            Ban("203.0.113.8", "sshd", now - 100, now - 5),  # already over: left out
        ],
        now,
    )
    found = members(lab.server, "bruteguard-sshd-4")
    assert found["203.0.113.5"] == 0 and found["203.0.113.6"] == 0
    assert 400 < (found["203.0.113.7"] or 0) <= 500
    assert "203.0.113.8" not in found


def test_reconcile_replaces_everything(lab: Lab, enforcer: IpsetEnforcer) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    enforcer.ban([*both(attacker), ban("198.51.100.0/24"), ban("2001:db8:5::/48")], time.time())
    expired = ban("203.0.113.9", seconds=-5)
    wanted = [*both(innocent), ban("203.0.113.0/25", jail="web-auth"), expired]
    enforcer.reconcile(wanted, time.time())
    assert reaches(attacker, lab.server) == OPEN
    assert reaches(innocent, lab.server) == BLOCKED
    assert list(members(lab.server, "bruteguard-sshd-4")) == [innocent.ipv4]
    assert list(members(lab.server, "bruteguard-sshd-6")) == [innocent.ipv6]
    assert members(lab.server, "bruteguard-sshd-4n") == {}
    assert members(lab.server, "bruteguard-sshd-6n") == {}
    assert list(members(lab.server, "bruteguard-web-auth-4n")) == ["203.0.113.0/25"]
    assert "bruteguard.swap" not in sets(lab.server)
    # Allow sets are configuration, not bans: reconcile leaves them.
    assert list(members(lab.server, "bruteguard-sshd-6a")) == ["2001:db8::c"]


def test_empty_ports_block_every_port_and_protocol(lab: Lab, enforcer: IpsetEnforcer) -> None:
    ban_without_ports_blocks_every_protocol(lab, enforcer)


def test_teardown_leaves_exactly_the_admins_rules_and_sets(lab: Lab) -> None:
    server = lab.server
    for cmd in ("iptables", "ip6tables"):
        server.run([cmd, "-A", "INPUT", "-p", "tcp", "--dport", str(ADMIN_PORT), "-j", "ACCEPT"])
    # Sets that only look like ours must survive: another prefix, another shape.
    admin_sets = ["admin-list", "bruteguard2-sshd-4", "bruteguard-notes"]
    for name in admin_sets:
        server.run(["ipset", "create", name, "hash:ip"])
    before_rules, before_sets = rules(server), sets(server)
    enforcer = set_up(IpsetEnforcer, server, JAILS)
    first = server.run(["iptables", "-S", "INPUT"]).stdout.splitlines()
    assert first[1] == "-A INPUT -j BRUTEGUARD", "the jump must come before the admin's rules"
    enforcer.ban([*both(lab.clients["attacker"]), ban("198.51.100.0/24")], time.time())
    enforcer.teardown()
    assert rules(server) == before_rules
    assert sets(server) == before_sets == set(admin_sets)
    assert reaches(lab.clients["attacker"], server) == OPEN
    enforcer.teardown()  # already gone: still fine
    assert rules(server) == before_rules


def test_setup_again_keeps_bans_and_adds_nothing_twice(lab: Lab, enforcer: IpsetEnforcer) -> None:
    attacker = lab.clients["attacker"]
    enforcer.ban(both(attacker), time.time())
    before = rules(lab.server)
    again = IpsetEnforcer(argv_prefix=lab.server.exec_prefix)
    with pytest.raises(EnforcerError, match="setup"):
        again.reconcile([], time.time())  # would empty sets it does not know yet
    again.setup(JAILS)
    again.setup(JAILS)
    assert rules(lab.server) == before
    assert before["iptables"].count("-j BRUTEGUARD\n") == 1
    assert reaches(attacker, lab.server) == BLOCKED
    # Fewer jails: their jumps go, their chains and sets (and bans) stay until teardown.
    again.setup(JAILS[:1])
    assert "-j BRUTEGUARD-recidive" not in rules(lab.server)["iptables"]
    assert "bruteguard-recidive-4" in sets(lab.server)
    assert reaches(attacker, lab.server) == BLOCKED


def test_drop_blocktype_silently_drops(lab: Lab) -> None:
    attacker = lab.clients["attacker"]
    enforcer = set_up(IpsetEnforcer, lab.server, JAILS, blocktype="drop")
    enforcer.ban([ban(attacker.ipv6)], time.time())
    started = time.monotonic()
    assert not attacker.tcp_connect(lab.server.ipv6, SSH, timeout=1.0)
    assert time.monotonic() - started >= 0.9, "drop must not answer (a refusal is reject)"
    assert attacker.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)
    chains = rules(lab.server)["ip6tables"]
    assert "-j DROP" in chains and "REJECT" not in chains


def test_one_restore_per_call(lab: Lab) -> None:
    runner = CountingRunner()
    enforcer = set_up(IpsetEnforcer, lab.server, JAILS, runner=runner)
    runner.calls.clear()
    base = int(ipaddress.ip_address("198.18.0.0"))
    many = [ban(str(ipaddress.ip_address(base + i))) for i in range(1000)]
    enforcer.ban([*many, ban("2001:db8:7::/56")], time.time())
    enforcer.unban(many[:500])
    enforcer.reconcile(many, time.time())
    assert runner.calls == [["ipset", "-exist", "restore"]] * 3
    assert len(members(lab.server, "bruteguard-sshd-4")) == 1000
    runner.calls.clear()
    enforcer.ban([ban("203.0.113.1", seconds=-1)], time.time())
    assert runner.calls == [], "only ended bans: nothing to run"


@pytest.mark.parametrize(
    "bad",
    [
        ban("192.0.2.10\nflush"),
        ban("not-an-address"),
        ban("192.0.2.0/33"),
        ban("192.0.2.10", jail="no such jail"),
        ban("192.0.2.10", jail="unknown"),
    ],
)
def test_invalid_bans_raise_before_anything_runs(lab: Lab, bad: Ban) -> None:
    runner = CountingRunner()
    enforcer = set_up(IpsetEnforcer, lab.server, JAILS, runner=runner)
    runner.calls.clear()
    attacker = lab.clients["attacker"]
    with pytest.raises(EnforcerError, match=r"not an IP address|cannot be used|not set up"):
        enforcer.ban([ban(attacker.ipv4), bad], time.time())
    with pytest.raises(EnforcerError):
        enforcer.reconcile([ban(attacker.ipv4), bad], time.time())
    with pytest.raises(EnforcerError):
        enforcer.unban([bad])
    assert runner.calls == []
    assert reaches(attacker, lab.server) == OPEN


def test_jail_names_must_fit_ipset_and_chain_limits(lab: Lab) -> None:
    enforcer = IpsetEnforcer(argv_prefix=lab.server.exec_prefix)
    with pytest.raises(EnforcerError, match=r"too long.*at most 17 characters.*shorter prefix"):
        enforcer.setup([Jail("a" * 18)])
    assert sets(lab.server) == set()
    short = IpsetEnforcer("bg", argv_prefix=lab.server.exec_prefix)
    longest = "j" * 25  # "bg-" + 25 + "-4n": 31 characters, ipset's limit; "BG-" + 25: 28
    short.setup([Jail(longest)])
    assert f"bg-{longest}-4n" in sets(lab.server)
    with pytest.raises(EnforcerError, match="at most 25 characters"):
        short.setup([Jail(longest + "j")])
    for bad in ("", "bad name", "1st", "x-y", "input", "a" * 21):
        with pytest.raises(EnforcerError, match="prefix"):
            IpsetEnforcer(bad)


def test_failed_setup_removes_what_it_made(lab: Lab) -> None:
    server = lab.server
    # A set of the wrong type under one of our names makes the ipset step fail part-way.
    server.run(["ipset", "create", "bruteguard-web-auth-6n", "hash:ip", "family", "inet6"])
    before_rules, before_sets = rules(server), sets(server)
    enforcer = IpsetEnforcer(argv_prefix=server.exec_prefix)
    with pytest.raises(EnforcerError, match=r"ipset failed.*"):
        enforcer.setup(JAILS)
    assert sets(server) == before_sets == {"bruteguard-web-auth-6n"}
    assert rules(server) == before_rules
    # The IPv6 chains fail after IPv4's are in: IPv4 is put back as it was, with its bans.
    server.run(["ipset", "destroy", "bruteguard-web-auth-6n"])
    first = IpsetEnforcer(argv_prefix=server.exec_prefix)
    first.setup(JAILS[:1])
    first.ban(both(lab.clients["attacker"]), time.time())
    before_rules, before_sets = rules(server), sets(server)
    failing = IpsetEnforcer(
        argv_prefix=server.exec_prefix, runner=CountingRunner("ip6tables-restore")
    )
    with pytest.raises(EnforcerError, match="injected"):
        failing.setup(JAILS)
    assert rules(server) == before_rules
    assert sets(server) == before_sets
    assert reaches(lab.clients["attacker"], server) == BLOCKED


def test_missing_binary_and_missing_privilege_are_clear(lab: Lab) -> None:
    def renamed(
        prefix: Sequence[str], argv: Sequence[str], stdin: str | None, timeout: float, hint: str
    ) -> str:
        """The real runner, as on a host where ipset is not installed."""
        tool = "bruteguard-no-ipset" if argv[0] == "ipset" else argv[0]
        return run(prefix, [tool, *argv[1:]], stdin, timeout, hint)

    missing = IpsetEnforcer(argv_prefix=lab.server.exec_prefix, runner=renamed)
    problem = missing.check()
    assert problem is not None and "install the Debian package ipset" in problem
    with pytest.raises(EnforcerError, match="install the Debian package ipset"):
        missing.setup(JAILS)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    unprivileged = IpsetEnforcer(argv_prefix=[*lab.server.exec_prefix, *nobody])
    assert "needs root" in (unprivileged.check() or "")
    with pytest.raises(EnforcerError, match=r"not permitted.*root"):
        unprivileged.setup(JAILS)
    assert sets(lab.server) == set()
    assert "BRUTEGUARD" not in rules(lab.server)["iptables"]
    root = IpsetEnforcer(argv_prefix=lab.server.exec_prefix)
    assert root.check() is None and root.is_available()
