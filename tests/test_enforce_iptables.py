"""The plain iptables enforcer against real iptables in a lab namespace, proven by connections."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence

import pytest

from bruteguard.enforce._commands import run
from bruteguard.enforce.iptables import MAX_BANS_PER_JAIL, IptablesEnforcer
from bruteguard.errors import EnforcerError
from bruteguard.model import Ban
from enforcekit import (
    BLOCKED,
    JAILS_WITH_ALLOW,
    OPEN,
    SSH,
    WEB,
    CountingRunner,
    Jail,
    ban,
    ban_blocks_jail_ports_only,
    ban_without_ports_blocks_every_protocol,
    both,
    lab_fixture,
    reaches,
    set_up,
)
from netns import Host, Lab

pytestmark = pytest.mark.netns

ADMIN_PORT = 9
JAILS = JAILS_WITH_ALLOW


lab = lab_fixture("bgipt", ("attacker", "innocent", "allowed"))


@pytest.fixture
def enforcer(lab: Lab) -> IptablesEnforcer:
    return set_up(IptablesEnforcer, lab.server, JAILS)


def rules(host: Host) -> dict[str, str]:
    return {cmd: host.run([cmd, "-S"]).stdout for cmd in ("iptables", "ip6tables")}


def chain(host: Host, name: str = "BRUTEGUARD-sshd", cmd: str = "iptables") -> list[str]:
    """The chain's rules without its ``-N`` line."""
    return host.run([cmd, "-S", name]).stdout.splitlines()[1:]


def sources(host: Host, name: str = "BRUTEGUARD-sshd", cmd: str = "iptables") -> list[str]:
    """The banned sources of a jail chain, in rule order (allow RETURN rules left out)."""
    return [
        rule.split()[3] for rule in chain(host, name, cmd) if "-j RETURN" not in rule
    ]  # fmt: skip


def test_ban_blocks_on_jail_ports_only_and_unban_restores(
    lab: Lab, enforcer: IptablesEnforcer
) -> None:
    ban_blocks_jail_ports_only(lab, enforcer)
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    assert sources(lab.server) == [f"{attacker.ipv4}/32"]
    assert sources(lab.server, cmd="ip6tables") == [f"{attacker.ipv6}/128"]
    # Banned again: still one rule.
    enforcer.ban(both(attacker), time.time())
    assert sources(lab.server) == [f"{attacker.ipv4}/32"]
    # Banned in another jail (other port): sshd's port stays open for that client.
    enforcer.ban([ban(innocent.ipv4, jail="web-auth")], time.time())
    assert reaches(innocent, lab.server) == OPEN
    never_banned = [ban("203.0.113.77"), ban("2001:db8:1::77"), ban("198.51.100.0/24")]
    enforcer.unban([*both(attacker), *never_banned])
    assert reaches(attacker, lab.server) == OPEN
    assert sources(lab.server) == [] and sources(lab.server, cmd="ip6tables") == []
    assert sources(lab.server, "BRUTEGUARD-web-auth") == [f"{innocent.ipv4}/32"]
    enforcer.unban(never_banned)  # twice: still no error


def test_network_ban_blocks_the_subnet_but_allow_wins(lab: Lab, enforcer: IptablesEnforcer) -> None:
    attacker, innocent, allowed = (lab.clients[n] for n in ("attacker", "innocent", "allowed"))
    enforcer.ban([ban("192.0.2.0/24"), ban("2001:db8::/64")], time.time())
    assert reaches(attacker, lab.server) == BLOCKED
    assert reaches(innocent, lab.server) == BLOCKED
    assert reaches(allowed, lab.server) == OPEN
    enforcer.ban(both(allowed), time.time())
    assert reaches(allowed, lab.server) == OPEN
    # A jail that does not allow it blocks it.
    enforcer.ban([ban(allowed.ipv4, jail="recidive")], time.time())
    assert reaches(allowed, lab.server) == {"v4": False, "v6": True}
    assert chain(lab.server)[0] == "-A BRUTEGUARD-sshd -s 192.0.2.12/32 -j RETURN"
    enforcer.unban([ban("192.0.2.0/24"), ban("2001:db8::/64")])
    assert reaches(innocent, lab.server) == OPEN
    assert reaches(attacker, lab.server) == OPEN


def test_ended_ban_does_nothing_and_time_is_the_daemons_job(lab: Lab) -> None:
    runner = CountingRunner()
    enforcer = set_up(IptablesEnforcer, lab.server, JAILS, runner=runner)
    before = rules(lab.server)
    runner.calls.clear()
    attacker = lab.clients["attacker"]
    enforcer.ban([ban(attacker.ipv4, seconds=-1), ban(attacker.ipv6, seconds=0)], time.time())
    assert runner.calls == []
    assert rules(lab.server) == before
    # No kernel timeout: a 1 s ban holds until the daemon unbans it.
    enforcer.ban([ban(attacker.ipv4, seconds=1)], time.time())
    time.sleep(1.5)
    assert not attacker.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)
    assert not enforcer.expires
    enforcer.unban([ban(attacker.ipv4)])
    assert attacker.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)


def test_reconcile_replaces_everything(lab: Lab, enforcer: IptablesEnforcer) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    enforcer.ban([*both(attacker), ban("198.51.100.0/24"), ban("2001:db8:5::/48")], time.time())
    enforcer.ban([ban("203.0.113.4", jail="web-auth")], time.time())
    expired = ban("203.0.113.9", seconds=-5)
    wanted = [*both(innocent), ban("203.0.113.0/25", jail="recidive"), expired]
    enforcer.reconcile(wanted, time.time())
    assert reaches(attacker, lab.server) == OPEN
    assert reaches(innocent, lab.server) == BLOCKED
    assert sources(lab.server) == [f"{innocent.ipv4}/32"]
    assert sources(lab.server, cmd="ip6tables") == [f"{innocent.ipv6}/128"]
    assert sources(lab.server, "BRUTEGUARD-web-auth") == []
    assert sources(lab.server, "BRUTEGUARD-recidive") == ["203.0.113.0/25"]
    # Reconcile also puts back a jump rule someone removed.
    lab.server.run(["iptables", "-D", "INPUT", "-j", "BRUTEGUARD"])
    assert reaches(innocent, lab.server) == {"v4": True, "v6": False}
    enforcer.reconcile(wanted, time.time())
    assert reaches(innocent, lab.server) == BLOCKED


def test_empty_ports_block_every_port_and_protocol(lab: Lab, enforcer: IptablesEnforcer) -> None:
    ban_without_ports_blocks_every_protocol(lab, enforcer)


def test_teardown_leaves_exactly_the_admins_rules(lab: Lab) -> None:
    server = lab.server
    for cmd in ("iptables", "ip6tables"):
        server.run([cmd, "-A", "INPUT", "-p", "tcp", "--dport", str(ADMIN_PORT), "-j", "ACCEPT"])
        # A chain that only looks like ours (another prefix) must survive.
        server.run([cmd, "-N", "BRUTEGUARD2-sshd"])
        server.run([cmd, "-A", "BRUTEGUARD2-sshd", "-j", "RETURN"])
    before = rules(server)
    enforcer = set_up(IptablesEnforcer, server, JAILS)
    assert chain(server, "INPUT")[0] == "-A INPUT -j BRUTEGUARD", "the jump must come first"
    enforcer.ban([*both(lab.clients["attacker"]), ban("198.51.100.0/24")], time.time())
    enforcer.teardown()
    assert rules(server) == before
    assert reaches(lab.clients["attacker"], server) == OPEN
    enforcer.teardown()  # already gone: still fine
    assert rules(server) == before


def test_setup_again_keeps_bans_and_adds_nothing_twice(
    lab: Lab, enforcer: IptablesEnforcer
) -> None:
    attacker = lab.clients["attacker"]
    enforcer.ban([*both(attacker), ban("198.51.100.0/24")], time.time())
    before = rules(lab.server)
    again = IptablesEnforcer(argv_prefix=lab.server.exec_prefix)
    with pytest.raises(EnforcerError, match="setup"):
        again.reconcile([], time.time())
    again.setup(JAILS)
    again.setup(JAILS)
    assert rules(lab.server) == before
    assert before["iptables"].count("-A INPUT -j BRUTEGUARD\n") == 1
    assert reaches(attacker, lab.server) == BLOCKED
    # A changed allow list is rebuilt in front of the kept bans.
    attacker_allowed = (ipaddress.ip_network(attacker.ipv4),)
    again.setup([Jail("sshd", allow=attacker_allowed), *JAILS[1:]])
    assert chain(lab.server)[0] == f"-A BRUTEGUARD-sshd -s {attacker.ipv4}/32 -j RETURN"
    assert sources(lab.server) == [f"{attacker.ipv4}/32", "198.51.100.0/24"]
    assert reaches(attacker, lab.server) == {"v4": True, "v6": False}


def test_a_thousand_bans_are_one_restore(lab: Lab) -> None:
    runner = CountingRunner()
    enforcer = set_up(IptablesEnforcer, lab.server, JAILS, runner=runner)
    runner.calls.clear()
    attacker = lab.clients["attacker"]
    base = int(ipaddress.ip_address("198.18.0.0"))
    many = [ban(str(ipaddress.ip_address(base + i))) for i in range(999)] + [ban(attacker.ipv4)]
    enforcer.ban(many, time.time())
    assert runner.calls == [["iptables", "-S"], ["iptables-restore", "--noflush"]]
    assert len(sources(lab.server)) == 1000
    assert not attacker.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)
    runner.calls.clear()
    enforcer.unban(many[500:])
    assert runner.calls == [["iptables", "-S"], ["iptables-restore", "--noflush"]]
    assert len(sources(lab.server)) == 500
    assert attacker.tcp_connect(lab.server.ipv4, SSH, timeout=1.0)
    runner.calls.clear()
    enforcer.reconcile([*many, ban("2001:db8:9::/64")], time.time())
    assert runner.calls == [
        ["iptables", "-S"], ["iptables-restore", "--noflush"],
        ["ip6tables", "-S"], ["ip6tables-restore", "--noflush"],
    ]  # fmt: skip
    assert len(sources(lab.server)) == 1000


def test_more_than_the_limit_is_refused(lab: Lab, enforcer: IptablesEnforcer) -> None:
    base = int(ipaddress.ip_address("10.0.0.0"))
    now = time.time()
    too_many = [
        Ban(str(ipaddress.ip_address(base + i)), "sshd", now, now + 60)
        for i in range(MAX_BANS_PER_JAIL + 1)
    ]
    before = rules(lab.server)
    with pytest.raises(EnforcerError, match=r"at most 20,000 per jail.*ipset or nftables"):
        enforcer.ban(too_many, now)
    with pytest.raises(EnforcerError, match="at most 20,000"):
        enforcer.reconcile(too_many, now)
    assert rules(lab.server) == before


@pytest.mark.parametrize(
    "bad",
    [
        ban("192.0.2.10\n-F INPUT"),
        ban("not-an-address"),
        ban("192.0.2.0/33"),
        ban("192.0.2.10", jail="no such jail"),
        ban("192.0.2.10", jail="unknown"),
    ],
)
def test_invalid_bans_raise_before_anything_runs(lab: Lab, bad: Ban) -> None:
    runner = CountingRunner()
    enforcer = set_up(IptablesEnforcer, lab.server, JAILS, runner=runner)
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


def test_jail_names_must_fit_the_chain_limit(lab: Lab) -> None:
    enforcer = IptablesEnforcer(argv_prefix=lab.server.exec_prefix)
    with pytest.raises(EnforcerError, match=r"too long.*at most 17 characters"):
        enforcer.setup([Jail("a" * 18)])
    assert "BRUTEGUARD" not in rules(lab.server)["iptables"]
    enforcer.setup([Jail("a" * 17)])
    assert "-N BRUTEGUARD-" + "a" * 17 + "\n" in rules(lab.server)["ip6tables"]


def test_failed_setup_puts_the_chains_back(lab: Lab, enforcer: IptablesEnforcer) -> None:
    server = lab.server
    enforcer.ban([*both(lab.clients["attacker"]), ban("198.51.100.0/24")], time.time())
    before = rules(server)
    failing = IptablesEnforcer(
        argv_prefix=server.exec_prefix, runner=CountingRunner("ip6tables-restore")
    )
    changed = [Jail("sshd", ports=(22,)), Jail("extra", (25,))]
    with pytest.raises(EnforcerError, match="injected"):
        failing.setup(changed)  # IPv4 is committed, then IPv6 fails
    assert rules(server) == before
    assert reaches(lab.clients["attacker"], server) == BLOCKED


def test_missing_binary_and_missing_privilege_are_clear(lab: Lab) -> None:
    def renamed(
        prefix: Sequence[str], argv: Sequence[str], stdin: str | None, timeout: float, hint: str
    ) -> str:
        """The real runner, as on a host where iptables is not installed."""
        return run(prefix, ["bruteguard-no-" + argv[0], *argv[1:]], stdin, timeout, hint)

    missing = IptablesEnforcer(argv_prefix=lab.server.exec_prefix, runner=renamed)
    problem = missing.check()
    assert problem is not None and "install the Debian package iptables" in problem
    with pytest.raises(EnforcerError, match="install the Debian package iptables"):
        missing.setup(JAILS)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    unprivileged = IptablesEnforcer(argv_prefix=[*lab.server.exec_prefix, *nobody])
    assert "needs root" in (unprivileged.check() or "")
    with pytest.raises(EnforcerError, match=r"not permitted.*root"):
        unprivileged.setup(JAILS)
    assert "BRUTEGUARD" not in rules(lab.server)["iptables"]
    root = IptablesEnforcer(argv_prefix=lab.server.exec_prefix)
    assert root.check() is None and root.is_available()


def test_more_than_fifteen_ports_are_split_for_multiport(lab: Lab) -> None:
    enforcer = IptablesEnforcer(argv_prefix=lab.server.exec_prefix)
    ports = (*range(3000, 3019), SSH)  # 20 ports: multiport takes 15 per rule
    enforcer.setup([Jail("many", ports)])
    jumps = [rule for rule in chain(lab.server, "BRUTEGUARD") if "-j BRUTEGUARD-many" in rule]
    assert len(jumps) == 2
    attacker = lab.clients["attacker"]
    enforcer.ban(both(attacker, jail="many"), time.time())
    assert reaches(attacker, lab.server) == BLOCKED
    assert reaches(attacker, lab.server, WEB) == OPEN
