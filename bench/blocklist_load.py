"""Time loading a 1,000,000-address blocklist into the nftables enforcer, in a namespace.

Why: a public blocklist can hold a million addresses. ``load_blocklist`` streams it to
``nft`` in chunks, so it must load in under 10 s while bruteguard's own memory stays small
(< 300 MB peak RSS: the kernel holds the set, not Python), and a restart's ``reconcile`` of
100,000 bans must still take under 5 s and leave the blocklist alone.

The addresses are drawn from 10.0.0.0/8, 100.64.0.0/10 and fd00::/8 (private and shared
ranges: the documentation ranges are far too small for a million distinct addresses). They
are text only, put into a set in a throw-away namespace: no packet is ever sent to them.

    python bench/blocklist_load.py --entries 1000000
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from _netns import exec_prefix, namespace
from bruteguard.config import config_from_dict
from bruteguard.enforce.nftables import NftablesEnforcer
from nft_push import make_bans, write_report

__all__ = ["AddressSpace", "main", "scan_set"]

LOAD_FLOOR_SECONDS = 10.0
RSS_FLOOR_MB = 300.0
RECONCILE_FLOOR_SECONDS = 5.0
TABLE = "bruteguard"
NAME = "bench"
SAMPLES = 1000
SCAN_ATTEMPTS = 4


class AddressSpace:
    """``count`` distinct pseudo-random addresses of ``network``, computed, never stored.

    Member *i* is ``base + (a * i + c) mod size`` with ``a`` odd: a bijection of
    ``0 … size-1``, so the first ``count`` indices are distinct members and every index
    from ``count`` on is a sure non-member. Nothing but the generator's state is held.
    """

    def __init__(self, network: str, count: int, rng: random.Random) -> None:
        self.network = ipaddress.ip_network(network)
        self.size = self.network.num_addresses
        if count > self.size:
            raise ValueError(f"{network} has fewer than {count} addresses")
        self.count = count
        self.base = int(self.network.network_address)
        self.a = rng.randrange(1, self.size, 2)
        self.c = rng.randrange(self.size)
        self.make = ipaddress.IPv4Address if self.network.version == 4 else ipaddress.IPv6Address

    def address(self, index: int) -> str:
        return str(self.make(self.base + (self.a * index + self.c) % self.size))

    def members(self) -> Iterator[str]:
        return map(self.address, range(self.count))

    def sample(self, rng: random.Random, k: int, member: bool) -> list[str]:
        low, high = (0, self.count) if member else (self.count, self.size)
        picked: set[int] = set()
        while len(picked) < k:  # distinct indices (range(low, high) may be too big to sample)
            picked.add(rng.randrange(low, high))
        return [self.address(index) for index in sorted(picked)]


def scan_set(
    ns: str, set_name: str, table: str = f"{TABLE}_bl", wanted: frozenset[str] = frozenset()
) -> tuple[int, set[str]]:
    """(elements, which of ``wanted`` are among them), from the kernel's own listing.

    ``nft list set`` is read in blocks and split at the commas between elements: parsing
    the JSON of a million elements would cost this process hundreds of MB. (``nft get
    element`` is no faster here: nft 1.0.6 loads the whole set for every lookup, ~25 s at
    a million elements, and crashes when asked for 1,000 elements at once.)
    """
    argv = [*exec_prefix(ns), "nft", "list", "set", "inet", table, set_name]
    count, found = 0, set()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        pending, inside, done = "", False, False
        while block := process.stdout.read(1 << 20):
            if done:
                continue  # drain, so nft can exit
            pending += block
            if not inside:
                if "elements = {" not in pending:
                    pending = pending[-32:]
                    continue
                inside, pending = True, pending.split("elements = {", 1)[1]
            done = "}" in pending
            pieces = pending.split("}", 1)[0].split(",")
            pending = "" if done else pieces.pop()  # the last piece may go on in the next block
            for piece in pieces:
                value = piece.split(None, 1)[0] if piece.strip() else ""
                count += bool(value)
                if value in wanted:
                    found.add(value)
        if process.wait(timeout=300) != 0:
            raise RuntimeError(f"nft list set {set_name} failed")
    return count, found


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _timed(action: Callable[..., object], *args: object) -> tuple[float, object]:
    began = time.perf_counter()
    result = action(*args)
    return time.perf_counter() - began, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--bans", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=Path("bench/out/blocklist_load.json"))
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    rng = random.Random(args.seed)
    v6 = args.entries // 20
    v4_shared = min(args.entries // 4, 1 << 22)
    spaces = {
        "bl_bench_4": [
            AddressSpace("10.0.0.0/8", args.entries - v6 - v4_shared, rng),
            AddressSpace("100.64.0.0/10", v4_shared, rng),
        ],
        "bl_bench_6": [AddressSpace("fd00::/8", v6, rng)],
    }

    def entries() -> Iterator[str]:
        for group in spaces.values():
            for space in group:
                yield from space.members()

    now = time.time()
    until = now + 30 * 86400
    bans = make_bans(args.bans, now)
    jail = config_from_dict({}).jails["sshd"]
    rss_start = _peak_rss_mb()
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    found: dict[str, int] = {}
    with namespace("bg-blbench") as ns:
        enforcer = NftablesEnforcer(table=TABLE, argv_prefix=exec_prefix(ns))
        seconds["setup"], _ = _timed(enforcer.setup, [jail])
        load = f"load_blocklist {args.entries:,}"
        seconds[load], loaded = _timed(enforcer.load_blocklist, NAME, entries(), until, now)
        seconds[f"reload (replace) {args.entries:,}"], _ = _timed(
            enforcer.load_blocklist, NAME, entries(), until, time.time()
        )
        rss_loaded = _peak_rss_mb()  # before any checking below allocates anything
        for set_name, group in spaces.items():
            share = [max(1, SAMPLES * space.count // args.entries) for space in group]
            samples = list(zip(group, share, strict=True))
            members = frozenset(a for s, k in samples for a in s.sample(rng, k, True))
            others = frozenset(a for s, k in samples for a in s.sample(rng, k, False))
            # After a big insert the kernel grows the hash table in the background, and a
            # dump taken meanwhile lists some elements twice and others not at all (lookups
            # are unaffected): read the listing again until every sampled member is in it.
            attempts = 0
            while True:
                attempts += 1
                elements, hits = scan_set(ns, set_name, wanted=members | others)
                if members <= hits or attempts == SCAN_ATTEMPTS:
                    break
                time.sleep(2)
            found[f"{set_name} listings read"] = attempts
            counts[f"{set_name} after load"] = elements
            found[f"{set_name} members sampled"] = len(members)
            found[f"{set_name} members found"] = len(hits & members)
            found[f"{set_name} non-members sampled"] = len(others)
            found[f"{set_name} non-members found"] = len(hits & others)
        enforcer.ban(bans[:1000], now)
        restart = f"reconcile {len(bans):,} (restart)"
        fresh = NftablesEnforcer(table=TABLE, argv_prefix=exec_prefix(ns))
        fresh.setup([jail])
        seconds[restart], _ = _timed(fresh.reconcile, bans, time.time())
        for set_name in spaces:
            counts[f"{set_name} after reconcile"] = scan_set(ns, set_name)[0]
        counts["bans after reconcile"] = sum(
            scan_set(ns, set_name, TABLE)[0] for set_name in ("sshd_v4", "sshd_v6")
        )
        seconds["teardown"], _ = _timed(fresh.teardown)
    rss_end = _peak_rss_mb()

    for step, value in seconds.items():
        print(f"{step:<36} {value:>8.3f} s")
    print(f"entries loaded (returned):          {loaded:,}")
    for what, value in counts.items():
        print(f"elements {what + ':':<26} {value:,}")
    for what, value in found.items():
        print(f"lookup {what + ':':<28} {value:,}")
    print(
        f"peak RSS at start / loaded / end:   {rss_start:.1f} / {rss_loaded:.1f} / {rss_end:.1f} MB"
    )
    after_load = sum(counts[f"{set_name} after load"] for set_name in spaces)
    after_reconcile = sum(counts[f"{set_name} after reconcile"] for set_name in spaces)
    members_found = [k for k in found if k.endswith(" members found") and "non-" not in k]
    checks = {
        f"load {args.entries:,} < {LOAD_FLOOR_SECONDS:g} s": seconds[load] < LOAD_FLOOR_SECONDS,
        f"reload {args.entries:,} < {LOAD_FLOOR_SECONDS:g} s": (
            seconds[f"reload (replace) {args.entries:,}"] < LOAD_FLOOR_SECONDS
        ),
        f"peak RSS with the list loaded < {RSS_FLOOR_MB:g} MB": rss_loaded < RSS_FLOOR_MB,
        f"all {args.entries:,} in the kernel": after_load == loaded == args.entries,
        f"{SAMPLES:,} sampled members found": all(
            found[k] == found[k.replace(" found", " sampled")] for k in members_found
        ),
        f"{SAMPLES:,} sampled non-members not found": all(
            found[k] == 0 for k in found if k.endswith(" non-members found")
        ),
        f"{restart} < {RECONCILE_FLOOR_SECONDS:g} s": seconds[restart] < RECONCILE_FLOOR_SECONDS,
        "blocklist intact after reconcile": after_reconcile == args.entries,
        "reconcile holds exactly the bans": counts["bans after reconcile"] == len(bans),
    }
    return write_report(
        args.out,
        checks,
        {
            "entries": args.entries,
            "bans": len(bans),
            "seconds": {k: round(v, 4) for k, v in seconds.items()},
            "entries_loaded": loaded,
            "elements": counts,
            "lookups": found,
            "peak_rss_mb": {
                "start": round(rss_start, 1),
                "loaded": round(rss_loaded, 1),
                "end": round(rss_end, 1),
            },
        },
    )


if __name__ == "__main__":
    sys.exit(main())
