"""A restart with the nftables sets still full (issue 18): a clean ``stop`` stamps the table
and the ledger, and the next start keeps the sets instead of reloading them -- unless
anything may have changed while the daemon was down (an admin's ``nft``, a ledger edit, a
crash, another jail layout); then the full reconcile runs. Either way the kernel ends with
exactly the ledger's active bans. Also: ban sets sized from the ledger, raised in the same
transaction as the bans that fill them, and knockers kept across a rebuild of the table.

Real parts: SQLite, nftables inside a ``netns.Lab``'s server namespace, and the real
``bruteguard run`` process there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bruteguard.enforce.nftables import NftablesEnforcer
from bruteguard.model import Ban
from bruteguard.store.sqlite import SqliteStore
from enforcekit import SSH, Jail, lab_fixture, set_up
from netns import Host, Lab
from test_daemon_scale import _config as _scale_config
from test_daemon_scale import _many as _bans
from test_enforce_nftables import elements

BIN = Path(sys.executable).with_name("bruteguard")
KEPT = "the firewall still holds the ledger's bans: not reloaded"

lab = lab_fixture("bgstamp")


def _config(tmp: Path, port: int = SSH) -> Path:
    return _scale_config(tmp, "nftables", port)


def _kernel(host: Host) -> set[str]:
    """Every ban element of jail sshd, written as the ledger writes its targets."""
    found = {e["val"] for name in ("sshd_v4", "sshd_v6") for e in elements(host, name)}
    listing = host.run(["nft", "-t", "list", "sets", "table", "inet", "bruteguard"]).stdout
    if "sshd_v6n64" in listing:
        found |= {f"{e['val']}/64" for e in elements(host, "sshd_v6n64")}
    return found


def _ledger(tmp: Path) -> set[str]:
    with SqliteStore(tmp / "bg.db") as store:
        return {ban.ip for ban in store.active_bans(time.time())}


class _Daemon:
    """``bruteguard run --verbose`` in the lab's server namespace; its log in ``tmp``."""

    def __init__(self, host: Host, config: Path, tmp: Path) -> None:
        self.host, self.config, self.log = host, config, tmp / "daemon.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> str:
        """Start it, wait until ``status`` answers; what it logged while starting."""
        before = self.log.read_text() if self.log.exists() else ""
        with self.log.open("ab") as out:
            self.process = self.host.popen(
                [str(BIN), "run", "--verbose", "--config", str(self.config)],
                stdout=out,
                stderr=out,
            )
        deadline = time.monotonic() + 60
        while self._cli("status").returncode:
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "no answer within 60 s:\n" + self.log.read_text()
            time.sleep(0.1)
        return self.log.read_text()[len(before) :]

    def stop(self) -> None:
        assert self._cli("stop").returncode == 0, self.log.read_text()
        assert self.process is not None and self.process.wait(timeout=30) == 0

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def _cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.host.run(
            [str(BIN), *args, "--config", str(self.config)], check=False, timeout=60
        )


@pytest.fixture
def started(lab: Lab, tmp_path: Path) -> tuple[_Daemon, Path]:
    """A daemon that started on a ledger of 500 bans (a full load) and stopped cleanly."""
    now = time.time()
    with SqliteStore(tmp_path / "bg.db") as store:
        store.add_bans(_bans(500, now))
    daemon = _Daemon(lab.server, _config(tmp_path), tmp_path)
    said = daemon.start()
    assert "reconciled 500 bans" in said and KEPT not in said
    daemon.stop()
    return daemon, tmp_path


@pytest.mark.netns
def test_after_a_clean_stop_the_next_start_keeps_the_sets(
    lab: Lab, started: tuple[_Daemon, Path]
) -> None:
    daemon, tmp = started
    said = daemon.start()
    try:
        assert KEPT in said and "nftables: reconciled" not in said
        assert _kernel(lab.server) == _ledger(tmp) != set()
        # Still sized and working: a ban after a kept start reaches the set.
        assert daemon._cli("ban", "192.0.2.99", "--force").returncode == 0
        assert "192.0.2.99" in _kernel(lab.server)
    finally:
        daemon.stop()
    # That ban changed the ledger while running; its stop stamped again: kept once more.
    said = daemon.start()
    daemon.stop()
    assert KEPT in said
    assert _kernel(lab.server) == _ledger(tmp)


def _flush_set(host: Host, tmp: Path) -> None:
    host.run(["nft", "flush", "set", "inet", "bruteguard", "sshd_v4"])


def _delete_element(host: Host, tmp: Path) -> None:
    host.run(["nft", "delete", "element", "inet", "bruteguard", "sshd_v4", "{ 10.0.0.1 }"])


def _other_table(host: Host, tmp: Path) -> None:
    """Not even bruteguard's table: any transaction may have touched it, so reload."""
    host.run(["nft", "add", "table", "inet", "admins_own"])


def _ledger_ban(host: Host, tmp: Path) -> None:
    now = time.time()
    with SqliteStore(tmp / "bg.db") as store:
        store.add_bans([Ban("192.0.2.77", "sshd", now, now + 3600, 0, "by hand, offline")])


def _ledger_lift(host: Host, tmp: Path) -> None:
    with SqliteStore(tmp / "bg.db") as store:
        store.lift_bans(["10.0.0.2"], time.time())


def _other_port(host: Host, tmp: Path) -> None:
    _config(tmp, port=2299)


@pytest.mark.netns
@pytest.mark.parametrize(
    "change",
    [_flush_set, _delete_element, _other_table, _ledger_ban, _ledger_lift, _other_port],
)
def test_any_change_while_down_brings_the_full_reconcile(
    lab: Lab, started: tuple[_Daemon, Path], change: Callable[[Host, Path], None]
) -> None:
    daemon, tmp = started
    change(lab.server, tmp)
    said = daemon.start()
    try:
        assert KEPT not in said and "nftables: reconciled" in said
        assert _kernel(lab.server) == _ledger(tmp)
        if change is _other_port:
            rules = lab.server.run(["nft", "list", "chain", "inet", "bruteguard", "input"]).stdout
            assert "dport 2299 " in rules and f"dport {SSH} " not in rules
    finally:
        daemon.stop()


@pytest.mark.netns
def test_a_killed_daemon_leaves_no_stamp(lab: Lab, started: tuple[_Daemon, Path]) -> None:
    daemon, tmp = started
    said = daemon.start()  # consumes the stamp of the clean stop
    assert KEPT in said
    daemon.kill()
    _delete_element(lab.server, tmp)
    said = daemon.start()
    try:
        assert KEPT not in said and "nftables: reconciled" in said
        assert _kernel(lab.server) == _ledger(tmp)
        assert "10.0.0.1" in _kernel(lab.server)
    finally:
        daemon.stop()


@dataclass(frozen=True)
class _KnockJail(Jail):
    knock: bool = True


def _sizes(host: Host) -> dict[str, int]:
    listing = host.run(["nft", "-t", "-j", "list", "sets", "table", "inet", "bruteguard"]).stdout
    sets = [item["set"] for item in json.loads(listing)["nftables"] if "set" in item]
    return {s["name"]: s["size"] for s in sets if s.get("table") == "bruteguard" and "size" in s}


@pytest.mark.netns
def test_sets_are_sized_from_the_ledger_and_raised_with_the_bans_that_fill_them(
    lab: Lab,
) -> None:
    enforcer = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
    enforcer.expect_bans({("sshd", "v4"): 40_000, ("sshd", "v6n64"): 10})
    enforcer.setup([Jail("sshd")])
    now = time.time()
    first = [b for b in _bans(50_000, now) if "/" not in b.ip]  # 40,000 addresses
    enforcer.reconcile(first, now)
    assert _sizes(lab.server)["sshd_v4"] == 131_072  # room for twice the ledger's count
    assert _sizes(lab.server)["sshd_v6"] == 65_536  # the least a ban set gets
    # 60,000 more: past three quarters of the size, raised in the same transaction.
    more = [
        Ban(str(ipaddress.IPv4Address(0x0B000000 + i)), "sshd", now, now + 3600)
        for i in range(60_000)
    ]
    enforcer.ban(more, now)
    assert _sizes(lab.server)["sshd_v4"] >= 2 * 100_000
    assert len(elements(lab.server, "sshd_v4")) == 100_000


@pytest.mark.netns
def test_a_rebuild_of_the_table_keeps_the_knockers_and_their_time(lab: Lab) -> None:
    enforcer = set_up(NftablesEnforcer, lab.server, [_KnockJail("sshd")])
    enforcer.open_for(["sshd"], "192.0.2.10", 600)
    enforcer.open_for(["sshd"], "2001:db8::a", 30)
    now = time.time()
    enforcer.reconcile([Ban("198.51.100.1", "sshd", now, now + 3600)], now)
    kept = {e["val"]: e.get("expires") for name in ("sshd_k4", "sshd_k6")
            for e in elements(lab.server, name)}  # fmt: skip
    assert set(kept) == {"192.0.2.10", "2001:db8::a"}
    assert 590 <= kept["192.0.2.10"] <= 600 and 20 <= kept["2001:db8::a"] <= 30
    assert [e["val"] for e in elements(lab.server, "sshd_v4")] == ["198.51.100.1"]


@pytest.mark.netns
def test_a_set_sized_too_small_by_the_ledgers_count_is_reloaded_unsized(
    lab: Lab, tmp_path: Path
) -> None:
    """The ledger counts ``0:0:0:0:0:ffff:10.0.0.1`` as IPv6, the firewall files it as
    10.0.0.1 in the IPv4 set: 70,000 of them overflow the 65,536 that set was given. The
    start still ends with every ban in the kernel."""
    from bruteguard.daemon import Daemon

    now = time.time()
    mapped = [
        Ban(f"0:0:0:0:0:ffff:{ipaddress.IPv4Address(0x0A000000 + i)}", "sshd", now, now + 3600)
        for i in range(70_000)
    ]
    daemon = Daemon(str(_config(tmp_path)))
    daemon.enforcers = [NftablesEnforcer(argv_prefix=lab.server.exec_prefix)]
    daemon.store.add_bans(mapped)
    daemon.detector = daemon._new_detector()
    try:
        asyncio.run(daemon._reconcile(daemon._rules()))
    finally:
        daemon.store.close()
    assert len(elements(lab.server, "sshd_v4")) == 70_000
