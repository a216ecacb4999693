"""The replay's fast path (``Detector.observe_jail``) decides exactly what the per-hit
path (``observe``) decides, on random attack histories: in order, out of order, spread over
several files, with bans already in force."""

from __future__ import annotations

import heapq
import operator
import random
from array import array

import pytest

from bruteguard import _windows
from bruteguard.config import JailConfig, config_from_dict, parse_networks
from bruteguard.detect import Detector, IgnoreList
from bruteguard.model import Ban

ADDRESSES = ["198.51.100.7", "203.0.113.9", "2001:db8::66"]


def jail(maxretry: int, findtime: int, bantime: int, factor: float = 1.0) -> JailConfig:
    table = {
        "maxretry": maxretry,
        "findtime": findtime,
        "bantime": bantime,
        "bantime_factor": factor,
        "maxtime": bantime * 10,
    }
    return config_from_dict({"jails": {"sshd": table}}).jails["sshd"]


def history(rng: random.Random, ordered: bool) -> list[float]:
    """Bursts and lulls, like a bot that is banned, waits and comes back."""
    moment, times = 0.0, []
    for _ in range(rng.randint(0, 60)):
        moment += rng.choice([0, 1, 5, 30, 200, 900, 4000])
        times.append(moment)
    if not ordered:
        for _ in range(len(times) // 4):
            i, j = rng.randrange(len(times)), rng.randrange(len(times))
            times[i], times[j] = times[j], times[i]
    return times


def per_hit(detector: Detector, address: str, times: list[float]) -> list[Ban]:
    return detector.observe([(moment, address, None, "sshd", "") for moment in times])


@pytest.mark.parametrize("seed", range(300))
def test_series_decides_like_hits(seed: int) -> None:
    rng = random.Random(seed)
    settings = jail(
        rng.randint(1, 6),
        rng.choice([10, 60, 600]),
        rng.choice([60, 3600]),
        rng.choice([1.0, 1.5, 2.0, 3.0]),  # growing ban times, capped at 10 times bantime
    )
    one, other = Detector([settings]), Detector([settings])
    for address in ADDRESSES:
        # Two "files" in a row: the second continues the state the first left.
        for part in (history(rng, rng.random() < 0.7), history(rng, rng.random() < 0.7)):
            series = {address: [array("d", part).tobytes(), {}]}
            assert other.observe_jail("sshd", series) == per_hit(one, address, part)


def test_series_respects_a_ban_in_force_and_the_ignore_list() -> None:
    settings = jail(3, 600, 3600)
    one, other = Detector([settings]), Detector([settings])
    earlier = Ban(ip="198.51.100.7", jail="sshd", start=0, until=1000, failures=3, reason="")
    one.remember_bans([earlier])
    other.remember_bans([earlier])
    times = [10.0, 20.0, 30.0, 1001.0, 1002.0, 1003.0]
    packed = array("d", times).tobytes()
    bans = other.observe_jail("sshd", {"198.51.100.7": [packed, {}]})
    assert bans == per_hit(one, "198.51.100.7", times)
    assert [ban.start for ban in bans] == [1003.0]
    assert other.observe_jail("sshd", {"127.0.0.1": [packed, {}]}) == []  # never banned
    assert other.ignored == len(times)  # …and counted as ignored, not as a window
    assert other.observe_jail("no-such-jail", {"198.51.100.7": [packed, {}]}) == []


@pytest.mark.parametrize("seed", range(40))
def test_a_whole_jails_series_decides_like_hits(seed: int) -> None:
    """``observe_jail`` (the replay's loop: ignore list, IPv6 prefixes) against hits."""
    rng = random.Random(seed)
    settings = jail(rng.randint(1, 4), 600, 3600, rng.choice([1.0, 2.0]))
    one, other = Detector([settings]), Detector([settings])
    addresses = [*ADDRESSES, "2001:db8::67", "2001:db8:1::5", "127.0.0.1"]
    series = {address: [array("d", history(rng, True)).tobytes(), {}] for address in addresses}
    # The log's order: by time (the addresses of one /64 interleave), not address by address.
    log = sorted(
        (
            (moment, address)
            for address, (packed, _) in series.items()
            for moment in array("d", packed)
        ),
        key=operator.itemgetter(0),
    )
    expected = one.observe([(moment, address, None, "sshd", "") for moment, address in log])
    got = other.observe_jail("sshd", series)
    order = operator.attrgetter("ip", "start")
    assert sorted(got, key=order) == sorted(expected, key=order)
    assert other.ignored == one.ignored


RULE = (3, 60.0, 3600.0, 1.0, 3600.0, 12)  # maxretry, findtime, bantime, factor, maxtime, keep


def packed(*times: float) -> bytes:
    return array("d", times).tobytes()


def test_decide_hands_back_what_it_cannot_decide_in_one_pass() -> None:
    counts: dict[str, int] = {}
    times: dict[str, list[float]] = {"203.0.113.9": [5.0]}
    banned: dict[str, float] = {}
    series = {
        "198.51.100.7": [packed(0.0, 1.0, 2.0, 3.0, 4000.0), {}],  # new, in order: decided
        "198.51.100.8": [packed(2.0, 1.0, 3.0), {}],  # out of order
        "203.0.113.9": [packed(6.0, 7.0), {}],  # known to the jail already
    }
    decided, ignored, deferred = _windows.decide(series, RULE, (counts, times, banned), None)
    assert decided == [("198.51.100.7", 0.0, 2.0, 3602.0, 1)]
    assert (ignored, [target for target, _ in deferred]) == (0, ["198.51.100.8", "203.0.113.9"])
    assert counts == {"198.51.100.7": 1}
    assert times["198.51.100.7"] == [4000.0]  # the attempt after the ban's end starts over
    assert banned == {}


def test_decide_screens_addresses_and_refuses_bad_input() -> None:
    ignore = IgnoreList(parse_networks(["192.0.2.0/24"]), ["198.51.100.1"])
    state: tuple[dict, dict, dict] = ({}, {}, {})
    series = {
        "192.0.2.5": [packed(1.0, 2.0), {}],
        "198.51.100.1": [packed(1.0), {}],
        "2001:db8::1": [packed(1.0, 2.0, 3.0), {}],
    }
    decided, ignored, deferred = _windows.decide(series, RULE, state, ignore.screen(True))
    assert (decided, ignored, deferred) == ([], 3, [("2001:db8::1", packed(1.0, 2.0, 3.0))])
    with pytest.raises(ValueError, match="not an IP address"):
        _windows.decide({"host.example": [b"", {}]}, RULE, state, ignore.screen(True))
    with pytest.raises(ValueError, match="not an IP address"):
        assert "host.example" in ignore
    with pytest.raises(ValueError, match="whole packed doubles"):
        _windows.decide({"198.51.100.9": [b"1234567", {}]}, RULE, state, None)
    with pytest.raises(ValueError, match="maxretry"):
        _windows.decide({}, (0, *RULE[1:]), state, None)
    with pytest.raises(ValueError, match="pairs"):
        _windows.in_networks("192.0.2.1", b"\xc0\x00\x02", b"")


def test_merge_keeps_each_parts_order_and_steps_through_time() -> None:
    """An IPv6 prefix's addresses' times, merged as ``heapq.merge`` does: in time order,
    each address's own order kept (a late line stays where it came), ties to the first."""
    rng = random.Random(7)
    for _ in range(500):
        parts = []
        for _ in range(rng.randint(0, 6)):
            times = [float(rng.randint(0, 40)) for _ in range(rng.randint(0, 8))]
            if rng.random() < 0.7:
                times.sort()
            parts.append(array("d", times).tobytes())
        views = [array("d", part) for part in parts]
        assert _windows.merge(parts) == array("d", heapq.merge(*views)).tobytes()
    assert _windows.merge([]) == b""
    with pytest.raises(ValueError, match="whole packed doubles"):
        _windows.merge([packed(1.0), b"1234567"])
