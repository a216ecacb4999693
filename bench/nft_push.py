"""Time pushing 100,000 bans into the nftables enforcer, inside a throw-away namespace.

Why: after a restart (or a large attack) the daemon must get every ban into the kernel in
one go; ``DESIGN.md`` promises one transaction, and the floor is under 2 seconds for
100,000. The namespace is created here and always deleted, so the host's own firewall is
never touched.

    python bench/nft_push.py --bans 100000 --networks 200000

``--networks``: that many IPv6 /64 bans go in first, then 21 more are banned one by one;
the median of those must stay under 100 ms whatever the count.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _netns import exec_prefix, namespace
from bruteguard.config import config_from_dict
from bruteguard.enforce.nftables import NftablesEnforcer
from bruteguard.model import Ban
from gen_authlog import attacker_addresses

__all__ = ["count_elements", "main", "make_bans", "namespace", "write_report"]

FLOOR_SECONDS = 2.0
# One /64 ban must not depend on how many are banned (it used to re-read and rewrite the set:
# ~2 s with 20,000, 30 s with 200,000).
ONE_NETWORK_SECONDS = 0.1
ONE_BY_ONE = range(21)
TABLE = "bruteguard"


def count_elements(ns: str, table: str = TABLE) -> dict[str, int]:
    """Elements per set of ``inet <table>`` in namespace ``ns``, as the kernel lists them."""
    listing = subprocess.run(
        [*exec_prefix(ns), "nft", "-j", "list", "table", "inet", table],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    counts: dict[str, int] = {}
    for item in json.loads(listing.stdout)["nftables"]:
        if "set" in item:
            counts[item["set"]["name"]] = len(item["set"].get("elem", []))
    return counts


def make_bans(count: int, now: float, seed: int = 7) -> list[Ban]:
    """``count`` distinct attacker addresses (as the generator draws them: ~3% IPv6)."""
    rng = random.Random(seed)
    addresses: dict[str, None] = {}
    while len(addresses) < count:  # "::ffff:a.b.c.d" and "a.b.c.d" are one address
        for text in attacker_addresses(rng, count - len(addresses)):
            addresses[str(ipaddress.ip_address(text.removeprefix("::ffff:")))] = None
    return [Ban(ip, "sshd", now, now + rng.randint(600, 86400), failures=5) for ip in addresses]


def _ipv6_networks(count: int) -> list[ipaddress.IPv6Network]:
    """``count`` distinct /64s of 2001:db8::/32 (documentation space)."""
    base = int(ipaddress.IPv6Address("2001:db8:1::")) >> 64
    return [ipaddress.IPv6Network(((base + i) << 64, 64)) for i in range(count)]


def _timed(action: Callable[..., object], *args: object) -> float:
    began = time.perf_counter()
    action(*args)
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bans", type=int, default=100_000)
    parser.add_argument(
        "--networks", type=int, default=20_000, help="IPv6 /64 bans already in the set"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out/nft_push.json"))
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    now = time.time()
    bans = make_bans(args.bans, now)
    more = make_bans(1000, now, seed=8)
    jail = config_from_dict({}).jails["sshd"]
    timings: dict[str, float] = {}
    with namespace() as ns:
        enforcer = NftablesEnforcer(table=TABLE, argv_prefix=exec_prefix(ns))
        timings["setup"] = _timed(enforcer.setup, [jail])
        timings[f"ban {len(bans):,} into empty sets"] = _timed(enforcer.ban, bans, now)
        after_ban = count_elements(ns)
        timings["ban 1,000 more into full sets"] = _timed(enforcer.ban, more, now)
        timings[f"reconcile {len(bans):,} (restart)"] = _timed(enforcer.reconcile, bans, now)
        after_reconcile = count_elements(ns)
        networks = [
            Ban(str(net), "sshd", now, now + 3600, 5)
            for net in _ipv6_networks(args.networks + len(ONE_BY_ONE))
        ]
        step = f"ban {args.networks:,} /64s"
        timings[step] = _timed(enforcer.ban, networks[: args.networks], now)
        singles = sorted(_timed(enforcer.ban, [ban], now) for ban in networks[args.networks :])
        timings[f"one /64 among {args.networks:,} (median of {len(singles)})"] = singles[
            len(singles) // 2
        ]
        timings[f"one /64 among {args.networks:,} (slowest)"] = singles[-1]
        timings["teardown"] = _timed(enforcer.teardown)

    push = timings[f"ban {len(bans):,} into empty sets"]
    restart = timings[f"reconcile {len(bans):,} (restart)"]
    for step, seconds in timings.items():
        print(f"{step:<36} {seconds:>8.3f} s")
    print(f"elements after ban:       {after_ban}")
    print(f"elements after reconcile: {after_reconcile}")
    in_kernel = sum(after_ban.values())
    checks = {
        f"ban {len(bans):,} < {FLOOR_SECONDS:g} s": push < FLOOR_SECONDS,
        f"reconcile {len(bans):,} < {FLOOR_SECONDS:g} s": restart < FLOOR_SECONDS,
        f"all {len(bans):,} in the kernel": in_kernel == len(bans),
        "reconcile keeps exactly the store's bans": sum(after_reconcile.values()) == len(bans),
        f"one /64 ban among {args.networks:,} < {ONE_NETWORK_SECONDS * 1000:g} ms (median)": (
            singles[len(singles) // 2] < ONE_NETWORK_SECONDS
        ),
    }
    return write_report(
        args.out,
        checks,
        {
            "bans": len(bans),
            "seconds": {k: round(v, 4) for k, v in timings.items()},
            "elements_after_ban": after_ban,
            "elements_after_reconcile": after_reconcile,
        },
    )


def write_report(out: Path, checks: dict[str, bool], record: dict[str, object]) -> int:
    """Print PASS/FAIL per check, write ``record`` (with the time and the checks) as JSON
    to ``out``; the exit status: 1 if any check failed."""
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
    document = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **record, "checks": checks}
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"written: {out}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
