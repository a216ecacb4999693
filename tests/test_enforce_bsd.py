"""The pf and ipfw enforcers, by the exact commands they would run.

pfctl and ipfw exist only on the BSDs (and macOS): they cannot run on this Linux test host,
so these tests inject a runner that records every argv (and stdin) instead of executing it,
and assert those lists exactly. This is the one place where the firewall is not real; the
commands were checked against pfctl(8)/pfctl_table.c (``-f -`` reads stdin, ``!`` negates)
and FreeBSD's ipfw tables.c (``add`` takes key/value pairs, ``-q`` tolerates existing and
missing keys). What does run for real: the default runner, which fails with a clear message
here because the tools are missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from bruteguard.enforce.ipfw import IpfwEnforcer
from bruteguard.enforce.pf import PfEnforcer
from bruteguard.errors import EnforcerError
from enforcekit import NOW, Jail
from enforcekit import ban_at as ban

JAILS = [Jail("sshd", allow=("198.51.100.7", "2001:db8:1::/64")), Jail("recidive", ports=())]


class Recorder:
    """Stands in for pfctl/ipfw: records (argv, stdin), answers ``-s Tables`` with a list."""

    def __init__(self, tables: str = "") -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.tables = tables

    def __call__(self, argv: Sequence[str], stdin: str | None) -> str:
        self.calls.append((list(argv), stdin))
        return self.tables if list(argv[1:]) == ["-s", "Tables"] else ""

    def take(self) -> list[tuple[list[str], str | None]]:
        calls, self.calls = self.calls, []
        return calls


def pf_table(table: str, command: str) -> list[str]:
    return ["pfctl", "-q", "-t", table, "-T", command, "-f", "-"]


# -- pf -------------------------------------------------------------------------------------


@pytest.fixture
def pf() -> tuple[PfEnforcer, Recorder]:
    runner = Recorder("bruteguard-sshd\nbruteguard-recidive\nadmin_spammers\n")
    enforcer = PfEnforcer(runner=runner)
    enforcer.setup(JAILS)
    return enforcer, runner


def test_pf_setup_lists_tables_and_adds_negated_allow_entries(pf: tuple[PfEnforcer, Recorder]):
    _, runner = pf
    assert runner.take() == [
        (["pfctl", "-s", "Tables"], None),
        (pf_table("bruteguard-sshd", "add"), "!198.51.100.7\n!2001:db8:1::/64\n"),
    ]


def test_pf_ban_is_one_pfctl_per_jail_with_every_address(pf: tuple[PfEnforcer, Recorder]):
    enforcer, runner = pf
    runner.take()
    enforcer.ban(
        [
            ban("203.0.113.9"),
            ban("::ffff:203.0.113.10"),  # IPv4-mapped → IPv4
            ban("2001:db8::7"),
            ban("198.51.100.0/24"),
            ban("2001:db8:1::5"),  # allowed in sshd: left out
            ban("203.0.113.11", until=NOW - 1),  # expired: left out
            ban("203.0.113.9", jail="recidive", until=math.inf),
        ],
        NOW,
    )
    assert runner.take() == [
        (pf_table("bruteguard-sshd", "add"), "203.0.113.9\n203.0.113.10\n2001:db8::7\n"
                                              "198.51.100.0/24\n"),
        (pf_table("bruteguard-recidive", "add"), "203.0.113.9\n"),
    ]  # fmt: skip


def test_pf_unban_reconcile_teardown(pf: tuple[PfEnforcer, Recorder]):
    enforcer, runner = pf
    runner.take()
    enforcer.unban([ban("203.0.113.9", until=NOW - 100), ban("2001:db8::/64", jail="recidive")])
    assert runner.take() == [
        (pf_table("bruteguard-sshd", "delete"), "203.0.113.9\n"),
        (pf_table("bruteguard-recidive", "delete"), "2001:db8::/64\n"),
    ]
    enforcer.reconcile([ban("203.0.113.9"), ban("203.0.113.8", until=NOW)], NOW)
    assert runner.take() == [
        (pf_table("bruteguard-sshd", "replace"), "203.0.113.9\n!198.51.100.7\n!2001:db8:1::/64\n"),
        (pf_table("bruteguard-recidive", "replace"), ""),
    ]
    enforcer.teardown()
    assert runner.take() == [
        (["pfctl", "-s", "Tables"], None),
        (["pfctl", "-q", "-t", "bruteguard-sshd", "-T", "flush"], None),
        (["pfctl", "-q", "-t", "bruteguard-recidive", "-T", "flush"], None),
    ]


def test_pf_refuses_bad_input_before_any_command(pf: tuple[PfEnforcer, Recorder]):
    enforcer, runner = pf
    runner.take()
    for ip in ["203.0.113.9\n198.51.100.1", "-f /etc/passwd", "!203.0.113.9", "<sshd>"]:
        with pytest.raises(EnforcerError, match="not an IP address"):
            enforcer.ban([ban("203.0.113.1"), ban(ip)], NOW)
    with pytest.raises(EnforcerError, match="not set up"):
        enforcer.ban([ban("203.0.113.1", jail="web")], NOW)
    assert runner.take() == []
    with pytest.raises(EnforcerError, match="longer than 31"):
        PfEnforcer(runner=runner).setup([Jail("a_very_long_jail_name_indeed")])
    with pytest.raises(EnforcerError, match="cannot be used"):
        PfEnforcer("bad prefix", runner=runner)


def test_pf_without_pfctl_says_so() -> None:
    message = PfEnforcer().check()
    assert message is not None and "pfctl" in message and "not found" in message


# -- ipfw -----------------------------------------------------------------------------------


@pytest.fixture
def ipfw() -> tuple[IpfwEnforcer, Recorder]:
    runner = Recorder()
    enforcer = IpfwEnforcer(table_base=1, tables={"recidive": 10}, runner=runner)
    enforcer.setup(JAILS)
    return enforcer, runner


def test_ipfw_setup_creates_tables_and_allow_entries(ipfw: tuple[IpfwEnforcer, Recorder]):
    enforcer, runner = ipfw
    assert runner.take() == [
        (["ipfw", "-q", "table", "1", "create", "type", "addr", "missing"], None),
        (["ipfw", "-q", "table", "1", "add", "198.51.100.7", "0", "2001:db8:1::/64", "0"], None),
        (["ipfw", "-q", "table", "10", "create", "type", "addr", "missing"], None),
    ]
    assert enforcer.table_numbers(["web", "sshd", "recidive", "imap"]) == {
        "imap": 1, "recidive": 10, "sshd": 2, "web": 3,
    }  # fmt: skip


def test_ipfw_ban_unban_in_chunks(ipfw: tuple[IpfwEnforcer, Recorder]):
    enforcer, runner = ipfw
    runner.take()
    enforcer.chunk = 2
    enforcer.ban(
        [
            ban("203.0.113.9"),
            ban("2001:db8::7"),
            ban("198.51.100.0/24"),
            ban("198.51.100.7"),  # allowed
            ban("203.0.113.9", jail="recidive"),
        ],
        NOW,
    )
    assert runner.take() == [
        (["ipfw", "-q", "table", "1", "add", "203.0.113.9", "1", "2001:db8::7", "1"], None),
        (["ipfw", "-q", "table", "1", "add", "198.51.100.0/24", "1"], None),
        (["ipfw", "-q", "table", "10", "add", "203.0.113.9", "1"], None),
    ]
    enforcer.unban([ban("203.0.113.9"), ban("2001:db8::7"), ban("198.51.100.0/24")])
    assert runner.take() == [
        (["ipfw", "-q", "table", "1", "delete", "203.0.113.9", "2001:db8::7"], None),
        (["ipfw", "-q", "table", "1", "delete", "198.51.100.0/24"], None),
    ]


def test_ipfw_reconcile_and_teardown(ipfw: tuple[IpfwEnforcer, Recorder]):
    enforcer, runner = ipfw
    runner.take()
    enforcer.reconcile([ban("203.0.113.9", jail="recidive"), ban("2001:db8::9", until=NOW)], NOW)
    assert runner.take() == [
        (["ipfw", "-q", "table", "1", "flush"], None),
        (["ipfw", "-q", "table", "1", "add", "198.51.100.7", "0", "2001:db8:1::/64", "0"], None),
        (["ipfw", "-q", "table", "10", "flush"], None),
        (["ipfw", "-q", "table", "10", "add", "203.0.113.9", "1"], None),
    ]
    enforcer.teardown()
    assert runner.take() == [
        (["ipfw", "-q", "table", "1", "flush"], None),
        (["ipfw", "-q", "table", "10", "flush"], None),
    ]


def test_ipfw_refuses_bad_input(ipfw: tuple[IpfwEnforcer, Recorder]):
    enforcer, runner = ipfw
    runner.take()
    with pytest.raises(EnforcerError, match="not an IP address"):
        enforcer.ban([ban("203.0.113.9"), ban("203.0.113.0/24 1 0.0.0.0/0")], NOW)
    assert runner.take() == []
    with pytest.raises(EnforcerError, match="table number"):
        IpfwEnforcer(tables={"sshd": 70000})
    with pytest.raises(EnforcerError, match="share one table"):
        IpfwEnforcer(tables={"sshd": 3, "web": 3})


def test_ipfw_without_ipfw_says_so() -> None:
    message = IpfwEnforcer().check()
    assert message is not None and "ipfw" in message and "not found" in message
