"""The daemon with many bans (issue 18): a restart leaves exactly the ledger's active bans in
the firewall (read once, streamed to nft), expired bans are found through the ledger's index
on their end and lifted from firewalls without timeouts, and ``stop`` keeps the bans while
``stop --unban`` lifts them all before it answers.

Real parts: SQLite, nftables and iptables inside the namespaces of a ``netns.Lab``; the
daemon's own methods are driven with chosen times (its housekeeping clock), and the last
test runs the real ``bruteguard run`` process inside the lab's server namespace.
"""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bruteguard.config import BUILTIN_JAILS
from bruteguard.daemon import Daemon
from bruteguard.enforce.dryrun import DryRunEnforcer
from bruteguard.enforce.iptables import IptablesEnforcer
from bruteguard.enforce.nftables import NftablesEnforcer
from bruteguard.model import Ban
from enforcekit import OPEN, SSH, lab_fixture, reaches, set_up
from netns import Lab
from test_enforce_nftables import elements

BIN = Path(sys.executable).with_name("bruteguard")
BLOCKED = {"v4": False, "v6": False}

lab = lab_fixture("bgscale")


def _config(tmp: Path, enforcer: str, port: int = SSH) -> Path:
    """A daemon config: jail sshd on ``port`` (the lab's SSH port), every other built-in
    jail off."""
    log = tmp / "auth.log"
    log.touch()
    config = tmp / "bg.toml"
    config.write_text(
        f'store = "{tmp}/bg.db"\nsocket = "{tmp}/bg.sock"\nenforcers = ["{enforcer}"]\n'
        f'[jails.sshd]\nbackend = "file"\nlogpath = ["{log}"]\nport = [{port}]\n'
        'maxretry = 3\nbantime = "1h"\n'
        + "".join(f"[jails.{name}]\nenabled = false\n" for name in BUILTIN_JAILS if name != "sshd")
    )
    return config


def _many(count: int, now: float) -> list[Ban]:
    """``count`` active bans: four in five IPv4 addresses of 10/8, the rest IPv6 /64s."""
    bans = []
    for index in range(count):
        if index % 5:
            target = str(ipaddress.IPv4Address(0x0A000000 + index))
        else:
            target = f"{ipaddress.IPv6Address((0xFD00 << 112) + (index << 64))}/64"
        bans.append(Ban(target, "sshd", now - 60, now + 3600 + index, 3, "3 failures in 1m"))
    return bans


@pytest.mark.netns
def test_a_restart_leaves_exactly_the_ledgers_active_bans_in_the_set(
    lab: Lab, tmp_path: Path
) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    daemon = Daemon(str(_config(tmp_path, "nftables")))
    nft = set_up(NftablesEnforcer, lab.server, daemon.config.enabled_jails())
    dry = DryRunEnforcer()  # a second enforcer (no streaming): it gets a second read
    daemon.enforcers = [nft, dry]
    now = time.time()
    # In the firewall from before, not in the ledger: the restart must drop it.
    nft.ban([Ban(innocent.ipv4, "sshd", now, now + 3600)], now)
    many = _many(20_000, now)
    daemon.store.add_bans(
        [
            *many,
            Ban(attacker.ipv4, "sshd", now - 60, now + 600, 3, "3 failures in 1m"),
            Ban(attacker.ipv6, "sshd", now - 60, now + 600, 3, "3 failures in 1m"),
            Ban(innocent.ipv6, "sshd", now - 7200, now - 3600, 3, "ran out an hour ago"),
            Ban(innocent.ipv4, "sshd", now - 60, now + 600, 3, "lifted below"),
        ]
    )
    daemon.store.lift_bans([innocent.ipv4], now)
    daemon.detector = daemon._new_detector()
    try:
        asyncio.run(daemon._reconcile(daemon.config.enabled_jails()))
        in_set = {e["val"] for e in elements(lab.server, "sshd_v4")}
        in_set |= {e["val"] for e in elements(lab.server, "sshd_v6")}
        networks = elements(lab.server, "sshd_v6n64")
        assert in_set == {b.ip for b in many if "/" not in b.ip} | {attacker.ipv4, attacker.ipv6}
        wanted = {b.ip for b in many if "/" in b.ip}
        assert {f"{e['val']}/64" for e in networks} == wanted
        assert {ip for _, ip in dry._bans} == in_set | wanted
        assert reaches(attacker, lab.server) == BLOCKED
        assert reaches(innocent, lab.server) == OPEN
        # The detector read the same pages: a banned address is not decided again.
        failures = [(now, attacker.ipv4, "root", "sshd", "")] * 3
        assert daemon.detector.observe(failures) == []
        fresh = [(now, "198.51.100.77", "root", "sshd", "")] * 3
        assert [b.ip for b in daemon.detector.observe(fresh)] == ["198.51.100.77"]
    finally:
        daemon.store.close()


def _uncounted(shapes: dict[tuple[str, str], int]) -> Any:
    """A ledger count that left the sshd bans out: fault injection, as no real ledger row is
    known to be counted in another shape than nftables files it (the daemon guards against
    it all the same)."""

    def count(now: float) -> dict[tuple[str, str], int]:
        return shapes

    return count


@pytest.mark.netns
def test_a_set_sized_too_small_is_reloaded_unsized_at_start_and_by_housekeeping(
    lab: Lab, tmp_path: Path
) -> None:
    """A set is declared with room for the bans the ledger counted; if it counted fewer
    than the firewall files there, the set refuses elements (ENFILE). The daemon then
    reloads that firewall from a fresh read, unsized: at start, and at housekeeping after a
    firewall failed. The bans all reach the kernel, and the detector still learned them."""
    attacker = lab.clients["attacker"]
    daemon = Daemon(str(_config(tmp_path, "nftables")))
    now = time.time()
    more_than_a_set_of_65536 = [
        Ban(str(ipaddress.IPv4Address(0x0A000000 + i)), "sshd", now - 60, now + 3600, 3, "x")
        for i in range(65_536 + 300)
    ]
    daemon.store.add_bans(
        [*more_than_a_set_of_65536, Ban(attacker.ipv4, "sshd", now - 60, now + 600, 3, "x")]
    )
    daemon.store.active_ban_shapes = _uncounted({})  # type: ignore[method-assign]
    wanted = {b.ip for b in more_than_a_set_of_65536} | {attacker.ipv4}
    daemon.detector = daemon._new_detector()
    try:
        for reload in ("start", "housekeeping"):
            nft = NftablesEnforcer(argv_prefix=lab.server.exec_prefix)
            daemon.enforcers = [nft]
            if reload == "start":
                asyncio.run(daemon._reconcile(daemon.config.enabled_jails()))
            else:
                nft.teardown()
                nft.setup(daemon.config.enabled_jails())
                daemon._needs_reconcile = True
                asyncio.run(daemon._reload_firewalls(time.time()))
                assert not daemon._needs_reconcile
            assert {e["val"] for e in elements(lab.server, "sshd_v4")} == wanted, reload
            assert reaches(attacker, lab.server)["v4"] is False, reload
        failures = [(now, attacker.ipv4, "root", "sshd", "")] * 3
        assert daemon.detector.observe(failures) == []  # learned at start: banned already
    finally:
        daemon.store.close()


@pytest.mark.netns
def test_housekeeping_lifts_what_expired_through_the_index_on_the_ban_end(
    lab: Lab, tmp_path: Path
) -> None:
    """iptables has no timeouts: the daemon tells it, at its housekeeping time, which bans
    ran out; a ban renewed in the same jail stays."""
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    daemon = Daemon(str(_config(tmp_path, "iptables")))
    iptables = set_up(IptablesEnforcer, lab.server, daemon.config.enabled_jails())
    daemon.enforcers = [iptables]
    t0 = time.time()
    daemon._expiry_checked = t0
    first = [
        Ban(attacker.ipv4, "sshd", t0, t0 + 60, 3, "3 failures in 1m"),
        Ban(attacker.ipv6, "sshd", t0, t0 + 60, 3, "3 failures in 1m"),
        Ban(innocent.ipv4, "sshd", t0, t0 + 60, 3, "3 failures in 1m"),
    ]
    renewed = Ban(innocent.ipv4, "sshd", t0 + 50, t0 + 3600, 3, "back again")

    async def scenario() -> list[dict[str, bool]]:
        await daemon._apply(first, announce=False)
        await daemon._apply([renewed], announce=False)
        seen = []
        await daemon._unban_expired(t0 + 30)  # nothing has run out yet
        seen.append(reaches(attacker, lab.server))
        await daemon._unban_expired(t0 + 61)
        seen.append(reaches(attacker, lab.server))
        seen.append(reaches(innocent, lab.server))
        return seen

    try:
        still, lifted, renewed_one = asyncio.run(scenario())
    finally:
        daemon.store.close()
    assert still == BLOCKED
    assert lifted == OPEN
    assert renewed_one == {"v4": False, "v6": True}


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.mark.netns
def test_stop_keeps_the_bans_and_stop_unban_has_lifted_them_when_it_answers(
    lab: Lab, tmp_path: Path
) -> None:
    attacker = lab.clients["attacker"]
    config = _config(tmp_path, "nftables")
    now = time.time()
    many = _many(5_000, now)
    held = Ban(attacker.ipv4, "sshd", now - 60, now + 3600, 3, "3 failures in 1m")
    from bruteguard.store.sqlite import SqliteStore

    with SqliteStore(tmp_path / "bg.db") as store:
        store.add_bans([*many, held])
    for unban in (False, True):
        with (tmp_path / "daemon.err").open("ab") as err:
            daemon = lab.server.popen([str(BIN), "run", "--config", str(config)], stderr=err)
        deadline = time.monotonic() + 60
        while subprocess.run(
            [str(BIN), "status", "--config", str(config)], capture_output=True, check=False
        ).returncode:
            assert daemon.poll() is None, (tmp_path / "daemon.err").read_text()
            assert time.monotonic() < deadline, "the daemon did not answer within 60 s"
            time.sleep(0.1)
        assert len(elements(lab.server, "sshd_v4")) == 4_001
        said = _cli(config, "stop", *(["--unban"] if unban else [])).stdout
        if not unban:
            assert said.startswith("stopped; bans stay in force")
            assert daemon.wait(timeout=20) == 0
            assert len(elements(lab.server, "sshd_v4")) == 4_001
            assert len(elements(lab.server, "sshd_v6n64")) == 1_000
            assert reaches(attacker, lab.server) == {"v4": False, "v6": True}
    # It answered only once the firewall was done: the table is gone already.
    assert said.startswith("stopped and lifted every ban")
    listing = lab.server.run(["nft", "list", "tables"]).stdout
    assert "inet bruteguard\n" not in listing
    assert daemon.wait(timeout=20) == 0
    assert reaches(attacker, lab.server) == OPEN
    with SqliteStore(tmp_path / "bg.db") as store:
        assert store.active_bans(time.time()) == []
