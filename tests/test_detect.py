"""The detector: ``maxretry`` failures within ``findtime`` → a ban for ``bantime``, never the
host, loopback or ``ignoreip``. Values in, values out: hits are ``(time, ip, user, jail, line)``.
"""

from __future__ import annotations

import ipaddress

import pytest

from bruteguard.config import JailConfig, config_from_dict, parse_networks
from bruteguard.detect import _SWEEP_SLICE, Detector, IgnoreList
from bruteguard.identity import canonical_address
from bruteguard.match.engine import Hit
from bruteguard.model import Ban

ATTACKER = "203.0.113.5"
OTHER = "198.51.100.23"
ATTACKER6 = "2001:db8:bad::5"


def jail(name: str = "sshd", **settings: object) -> JailConfig:
    """A jail as the config loader makes it (maxretry 3, findtime 60s, bantime 1h unless told)."""
    table = {"filter": "sshd", "maxretry": 3, "findtime": "60s", "bantime": "1h", **settings}
    return config_from_dict({"jails": {name: table}}).jails[name]


def hits(address: str, *times: float, jail_name: str = "sshd") -> list[Hit]:
    return [(float(moment), address, "root", jail_name, "") for moment in times]


def one_by_one(detector: Detector, batch: list[Hit]) -> list[Ban]:
    """Feed hits one ``observe`` call each, as a live daemon does line by line."""
    return [ban for hit in batch for ban in detector.observe([hit])]


# -- the window ----------------------------------------------------------------------------


def test_maxretry_failures_within_findtime_ban_for_bantime() -> None:
    detector = Detector([jail()])
    bans = detector.observe(hits(ATTACKER, 100, 120, 150))
    assert len(bans) == 1
    ban = bans[0]
    assert (ban.ip, ban.jail, ban.start, ban.until) == (ATTACKER, "sshd", 150.0, 150.0 + 3600)
    assert ban.failures == 3


def test_fewer_than_maxretry_do_not_ban() -> None:
    detector = Detector([jail()])
    assert detector.observe(hits(ATTACKER, 100, 120)) == []
    assert one_by_one(detector, hits(OTHER, 100, 101)) == []


def test_failures_spread_beyond_findtime_do_not_ban() -> None:
    detector = Detector([jail()])
    assert detector.observe(hits(ATTACKER, 0, 31, 61, 92, 123, 154)) == []


def test_the_window_slides() -> None:
    detector = Detector([jail()])
    bans = one_by_one(detector, hits(ATTACKER, 0, 100, 200, 230, 240))
    assert [(ban.start, ban.until) for ban in bans] == [(240.0, 240.0 + 3600)]


def test_each_detector_counts_from_its_own_settings() -> None:
    detector = Detector([jail(maxretry=5, findtime="10m", bantime="7d")])
    assert detector.observe(hits(ATTACKER, 0, 100, 200, 300)) == []
    (ban,) = detector.observe(hits(ATTACKER, 599))
    assert (ban.start, ban.until, ban.failures) == (599.0, 599.0 + 7 * 86400, 5)


def test_ipv6_attacker_is_banned_with_its_prefix() -> None:
    """An IPv6 attacker owns a /64 at least: rotating through it must not reset the count."""
    detector = Detector([jail()])
    rotating = ["2001:db8:bad::5", "2001:db8:bad::6", "2001:db8:bad:0:ffff::1"]
    (ban,) = detector.observe([hits(a, t)[0] for a, t in zip(rotating, (1, 2, 3), strict=True)])
    assert ban.ip == "2001:db8:bad::/64"
    assert detector.observe(hits("2001:db8:bad:1::5", 4, 5)) == []  # another /64


def test_ipv6_per_address_when_the_prefix_is_128() -> None:
    detector = Detector([jail(ipv6_prefix=128)])
    (ban,) = detector.observe(hits(ATTACKER6, 1, 2, 3))
    assert ban.ip == ATTACKER6


def test_mapped_and_plain_ipv4_are_one_attacker() -> None:
    # The matcher hands the detector canonical addresses; ::ffff:203.0.113.5 is 203.0.113.5.
    detector = Detector([jail()])
    texts = ["::ffff:203.0.113.5", "203.0.113.5", "::FFFF:cb00:7105"]
    batch = [(10.0 + n, canonical_address(text), None, "sshd", "") for n, text in enumerate(texts)]
    (ban,) = detector.observe(batch)
    assert ban.ip == ATTACKER


# -- after a ban -----------------------------------------------------------------------------


def test_lines_during_a_ban_do_not_ban_again_nor_count_later() -> None:
    detector = Detector([jail()])
    (ban,) = detector.observe(hits(ATTACKER, 0, 1, 2))
    # The banned client's last connections still write lines: no second ban for them.
    assert detector.observe(hits(ATTACKER, 3, 4, 5, 1000, 3601)) == []
    # After the ban, two fresh failures are not three.
    assert detector.observe(hits(ATTACKER, ban.until + 10, ban.until + 20)) == []


def test_after_a_ban_expires_the_address_can_be_banned_again() -> None:
    detector = Detector([jail()])
    (first,) = detector.observe(hits(ATTACKER, 0, 1, 2))
    again = first.until + 5
    (second,) = detector.observe(hits(ATTACKER, again, again + 1, again + 2))
    assert (second.start, second.until) == (again + 2, again + 2 + 2 * 3600)  # it grew
    assert (first.step, second.step) == (1, 2)


# -- independence ----------------------------------------------------------------------------


def test_addresses_are_counted_apart() -> None:
    detector = Detector([jail()])
    batch = hits(ATTACKER, 0, 2, 4) + hits(OTHER, 1, 3)
    batch.sort()
    assert [ban.ip for ban in detector.observe(batch)] == [ATTACKER]


def test_jails_are_independent() -> None:
    detector = Detector([jail("sshd"), jail("ssh-strict", maxretry=2)])
    batch = hits(ATTACKER, 0, 1) + hits(ATTACKER, 2, jail_name="ssh-strict")
    assert detector.observe(batch) == []  # two in one jail, one in the other
    (ban,) = detector.observe(hits(ATTACKER, 3, jail_name="ssh-strict"))
    assert (ban.jail, ban.start) == ("ssh-strict", 3.0)
    # A ban in one jail does not end the count in the other.
    (ban,) = detector.observe(hits(ATTACKER, 4))
    assert (ban.jail, ban.start) == ("sshd", 4.0)


def test_hits_for_a_jail_the_detector_does_not_run_are_ignored() -> None:
    detector = Detector([jail("sshd")])
    assert detector.observe(hits(ATTACKER, 0, 1, 2, 3, jail_name="postfix")) == []
    assert detector.observe(hits(ATTACKER, 4, 5)) == []


# -- never banned ----------------------------------------------------------------------------

MANY = tuple(range(50))


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "0.0.0.0", "::"])
def test_loopback_and_unspecified_are_never_banned(address: str) -> None:
    detector = Detector([jail()])
    assert detector.observe(hits(address, *MANY)) == []


def test_own_addresses_are_never_banned() -> None:
    own = ["192.0.2.10", "2001:db8::10"]
    detector = Detector([jail()], own_addresses=own)
    for address in own:
        assert detector.observe(hits(address, *MANY)) == []
    (ban,) = detector.observe(hits("192.0.2.11", 0, 1, 2))  # a neighbour is not us
    assert ban.ip == "192.0.2.11"


@pytest.mark.parametrize(
    ("ignoreip", "spared", "banned"),
    [
        (["203.0.113.5"], "203.0.113.5", "203.0.113.6"),
        (["203.0.113.0/25"], "203.0.113.127", "203.0.113.128"),
        (["2001:db8:bad::5"], "2001:db8:bad::5", "2001:db8:bad::6"),
        (["2001:db8:bad::/48"], "2001:db8:bad:ffff::1", "2001:db8:bae::1"),
        (["::ffff:203.0.113.0/120"], "203.0.113.200", "203.0.114.1"),  # written the mapped way
    ],
)
def test_ignoreip_addresses_and_networks_are_never_banned(
    ignoreip: list[str], spared: str, banned: str
) -> None:
    for detector in (
        Detector([jail(ignoreip=ignoreip)]),  # the jail's own ignoreip
        Detector([jail()], global_ignore=parse_networks(ignoreip)),  # the global one
    ):
        assert detector.observe(hits(spared, *MANY)) == []
        (ban,) = detector.observe(hits(banned, 0, 1, 2))
        # The address, or for IPv6 its /64.
        expected = (
            str(ipaddress.ip_network((banned, 64), strict=False)) if ":" in banned else banned
        )
        assert ban.ip == expected


def test_ignoreip_of_one_jail_does_not_spare_in_another() -> None:
    detector = Detector([jail("sshd", ignoreip=["203.0.113.0/24"]), jail("ssh-strict")])
    assert detector.observe(hits(ATTACKER, 0, 1, 2)) == []
    (ban,) = detector.observe(hits(ATTACKER, 0, 1, 2, jail_name="ssh-strict"))
    assert ban.jail == "ssh-strict"


def test_ignore_list() -> None:
    ignore = IgnoreList(parse_networks(["192.0.2.0/24", "2001:db8::/32"]), ["198.51.100.1"])
    for address in ["192.0.2.99", "2001:db8:1::1", "198.51.100.1", "127.0.0.1", "::1"]:
        assert address in ignore
    for address in ["198.51.100.2", "203.0.113.1", "2001:db9::1"]:
        assert address not in ignore
    assert "192.0.2.99" in ignore  # the cached verdict is the same


# -- state from outside: remembered bans, unban, expiry ----------------------------------------


def test_remembered_bans_are_not_decided_again() -> None:
    detector = Detector([jail()])
    detector.observe(hits(ATTACKER, 0, 1))  # counting has begun
    detector.remember_bans([Ban(ip=ATTACKER, jail="sshd", start=5, until=1000)])
    assert detector.observe(hits(ATTACKER, 10, 11, 12)) == []
    # The partial window from before the ban is gone: after it, counting starts afresh.
    assert detector.observe(hits(ATTACKER, 1000)) == []
    (ban,) = detector.observe(hits(ATTACKER, 1001, 1002))
    assert ban.start == 1002.0


def test_remembered_ban_of_another_jail_does_not_suppress() -> None:
    detector = Detector([jail("sshd"), jail("ssh-strict")])
    detector.remember_bans(
        [
            Ban(ip=ATTACKER, jail="ssh-strict", start=0, until=1000),
            Ban(ip=ATTACKER, jail="no-such-jail", start=0, until=1000),
        ]
    )
    (ban,) = detector.observe(hits(ATTACKER, 1, 2, 3))
    assert ban.jail == "sshd"


def test_forget_gives_a_clean_slate() -> None:
    detector = Detector([jail()])
    detector.observe(hits(ATTACKER, 0, 1))
    detector.forget(ATTACKER)
    assert detector.observe(hits(ATTACKER, 2)) == []  # the two before are forgotten
    (ban,) = detector.observe(hits(ATTACKER, 3, 4))
    # Unbanned by hand: the next offence is decided anew, even before the old until.
    detector.forget(ATTACKER)
    (again,) = detector.observe(hits(ATTACKER, 10, 11, 12))
    assert again.start == 12.0 < ban.until


def test_expire_drops_stale_windows_only() -> None:
    # A late line (out of order) would complete a window; after expire() dropped that window
    # as stale, it cannot.
    fresh, stale = Detector([jail()]), Detector([jail()])
    for detector in (fresh, stale):
        detector.observe(hits(ATTACKER, 0, 10))
    fresh.expire(now=30)  # last failure 10 ≥ 30 - findtime: kept
    stale.expire(now=200)  # last failure 10 < 200 - findtime: dropped
    assert [ban.ip for ban in fresh.observe(hits(ATTACKER, 15))] == [ATTACKER]
    assert stale.observe(hits(ATTACKER, 15)) == []


def test_expire_drops_bans_that_ended() -> None:
    detector = Detector([jail()])
    detector.remember_bans([Ban(ip=ATTACKER, jail="sshd", start=0, until=100)])
    detector.expire(now=99)
    assert detector.observe(hits(ATTACKER, 50, 51, 52)) == []  # still banned at 50
    detector.expire(now=100)
    (ban,) = detector.observe(hits(ATTACKER, 60, 61, 62))
    assert ban.start == 62.0


def test_expire_forgets_ended_bans_a_slice_per_run() -> None:
    """With a million bans in force a walk of all of them stalled every run: each run
    checks one slice, so the ended ones are all forgotten after a few runs, and a ban in
    force is never forgotten."""
    detector = Detector([jail()])
    ended = [Ban(f"10.{i >> 16}.{i >> 8 & 255}.{i & 255}", "sshd", 0, 100) for i in range(120_000)]
    detector.remember_bans([Ban(ATTACKER, "sshd", 0, 10_000), *ended])
    banned = detector._windows["sshd"].banned_until
    detector.expire(now=500)
    assert len(banned) == 120_001 - _SWEEP_SLICE
    runs = 1
    while len(banned) > 1:
        detector.expire(now=500)
        runs += 1
    assert runs == -(-120_001 // _SWEEP_SLICE) and list(banned) == [ATTACKER]
    assert detector.observe(hits(ATTACKER, 600, 601, 602)) == []  # still banned


# -- lines out of order ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "times",
    [(30, 0, 50), (50, 30, 0), (0, 50, 30), (0, 5, 40, 30, 20)],
    ids=["middle-first", "reversed", "late-middle", "shuffled"],
)
def test_out_of_order_window_bans(times: tuple[int, ...]) -> None:
    detector = Detector([jail()])
    bans = one_by_one(detector, hits(ATTACKER, *times))
    assert [ban.ip for ban in bans] == [ATTACKER]


@pytest.mark.parametrize("times", [(0, 70, 30), (70, 0, 35), (100, 0, 50, 160)])
def test_out_of_order_span_beyond_findtime_does_not_ban(times: tuple[int, ...]) -> None:
    detector = Detector([jail()])
    assert one_by_one(detector, hits(ATTACKER, *times)) == []


def test_late_lines_complete_an_old_window() -> None:
    # Two sources (journal and a file, or remote syslog) interleave: a burst at 0-20 reaches
    # us after a later failure at 500. 0, 10, 20 are three failures within 60 s and must ban,
    # whatever else arrived in between.
    detector = Detector([jail()])
    bans = one_by_one(detector, hits(ATTACKER, 0, 10, 500, 20))
    assert [ban.ip for ban in bans] == [ATTACKER]
    assert bans[0].until == bans[0].start + 3600 >= 20 + 3600


# -- escalation ------------------------------------------------------------------------------


def test_ban_times_grow_by_the_factor_up_to_maxtime() -> None:
    detector = Detector([jail(bantime="1h", bantime_factor=3, maxtime="10h")])
    lengths, moment = [], 0.0
    for _ in range(5):
        (ban,) = detector.observe(hits(ATTACKER, moment, moment + 1, moment + 2))
        lengths.append((ban.step, ban.until - ban.start))
        moment = ban.until + 1
    assert lengths == [(1, 3600), (2, 3 * 3600), (3, 9 * 3600), (4, 10 * 3600), (5, 10 * 3600)]


def test_growth_resumes_from_the_stores_counts() -> None:
    detector = Detector([jail(bantime="1h")])
    detector.remember_history({("sshd", ATTACKER): 2, ("other", ATTACKER): 9})
    (ban,) = detector.observe(hits(ATTACKER, 0, 1, 2))
    assert (ban.step, ban.until) == (3, 2 + 4 * 3600)


def test_a_factor_of_one_keeps_bantime() -> None:
    detector = Detector([jail(bantime_factor=1)])
    (first,) = detector.observe(hits(ATTACKER, 0, 1, 2))
    (second,) = detector.observe(hits(ATTACKER, first.until + 1, first.until + 2, first.until + 3))
    assert second.until - second.start == first.until - first.start == 3600


def _neighbours(count: int, network: str = "198.51.100") -> list[str]:
    return [f"{network}.{10 + index}" for index in range(count)]


def test_enough_banned_addresses_of_one_ipv4_network_ban_the_network() -> None:
    detector = Detector([jail(subnet_maxretry=3, subnet_findtime="1h")])
    bans = []
    for index, address in enumerate(_neighbours(3)):
        bans += detector.observe(hits(address, 100 * index, 100 * index + 1, 100 * index + 2))
    assert [b.ip for b in bans] == [*_neighbours(3), "198.51.100.0/24"]
    network = bans[-1]
    assert (network.jail, network.start, network.until) == ("sshd", 202.0, 202.0 + 3600)
    assert network.reason == "3 addresses of it banned in 3m20s"
    # Another /24, or the same addresses again, do not make a second network ban.
    assert [b.ip for b in detector.observe(hits("198.51.101.7", 300, 301, 302))] == ["198.51.101.7"]


def test_network_bans_need_the_addresses_within_subnet_findtime() -> None:
    detector = Detector([jail(subnet_maxretry=3, subnet_findtime="10m")])
    bans = []
    for index, address in enumerate(_neighbours(3)):
        moment = 400.0 * index  # 0, 400, 800: the first is 800 s before the third
        bans += detector.observe(hits(address, moment, moment + 1, moment + 2))
    assert "198.51.100.0/24" not in [b.ip for b in bans]


def test_a_network_holding_this_hosts_address_is_never_banned() -> None:
    detector = Detector([jail(subnet_maxretry=2)], own_addresses=["198.51.100.1"])
    bans = []
    for index, address in enumerate(_neighbours(2)):
        bans += detector.observe(hits(address, 10 * index, 10 * index + 1, 10 * index + 2))
    assert [b.ip for b in bans] == _neighbours(2)


def test_subnet_maxretry_zero_never_bans_networks() -> None:
    detector = Detector([jail(subnet_maxretry=0)])
    bans = []
    for index, address in enumerate(_neighbours(8)):
        bans += detector.observe(hits(address, 10 * index, 10 * index + 1, 10 * index + 2))
    assert [b.ip for b in bans] == _neighbours(8)


def _recidive_detector(**settings: object) -> Detector:
    sshd = {
        "maxretry": 1,
        "findtime": "60s",
        "bantime": "10m",
        "bantime_factor": 1,
        "subnet_maxretry": 0,
    }
    config = config_from_dict({"jails": {"sshd": sshd, "recidive": settings}})
    return Detector(config.enabled_jails())


def test_recidive_bans_repeat_offenders_for_a_week_on_every_port() -> None:
    detector = _recidive_detector()
    bans = []
    for round_ in range(5):
        moment = round_ * 3600.0  # banned for 10 minutes, back an hour later
        bans += detector.observe(hits(ATTACKER, moment))
    assert [(b.jail, b.ip) for b in bans] == [("sshd", ATTACKER)] * 5 + [("recidive", ATTACKER)]
    recidive = bans[-1]
    assert (recidive.start, recidive.until) == (4 * 3600.0, 4 * 3600.0 + 7 * 86400)
    assert recidive.reason == "5 bans in 4h"


def test_recidive_counts_bans_within_its_findtime_only() -> None:
    detector = _recidive_detector(maxretry=3, findtime="1d")
    bans = []
    for moment in (0.0, 2 * 86400, 4 * 86400, 6 * 86400):  # two days apart
        bans += detector.observe(hits(ATTACKER, moment))
    assert {b.jail for b in bans} == {"sshd"}


def test_recidive_is_primed_from_the_store() -> None:
    """After a restart the bans already in the store still count toward recidive."""
    earlier = [
        Ban(ATTACKER, "sshd", moment, moment + 600, 1, "1 failure in 1s")
        for moment in (0.0, 3600.0, 7200.0, 10800.0)
    ]
    detector = _recidive_detector()
    detector.prime_recidive({ATTACKER: [ban.start for ban in earlier]})
    bans = detector.observe(hits(ATTACKER, 14400.0))
    assert [b.jail for b in bans] == ["sshd", "recidive"]
    assert bans[-1].step == 1


def test_priming_recidive_per_target_decides_as_stepping_every_ban_did() -> None:
    """A target short of maxretry is primed in one go, one past it ban by ban: either way
    the next ban of each completes recidive exactly when a never-stopped daemon would."""
    short, over, banned = "198.51.100.4", "198.51.100.5", "198.51.100.6"
    lived = _recidive_detector()
    made = [*lived.observe(hits(short, 0.0, 3600.0))]
    made += lived.observe(hits(over, *range(0, 6 * 3600, 3600)))
    assert [b.ip for b in made if b.jail == "recidive"] == [over]
    history = {
        short: [3600.0, 0.0],  # in any order
        over: [float(moment) for moment in range(0, 6 * 3600, 3600)],
        banned: [100.0],
        "198.51.100.8": [7000.0],  # one ban: taken as it is
    }
    primed = _recidive_detector()
    # What the store says is banned now: the recidive bans made, and one from before.
    primed.remember_bans([b for b in made if b.jail == "recidive"])
    primed.remember_bans([Ban(banned, "recidive", 50.0, 50.0 + 7 * 86400, 5, "5 bans in 4h")])
    primed.prime_recidive(history)
    for moment in (7 * 3600.0, 8 * 3600.0, 9 * 3600.0):
        for address in (short, over):
            expected = [(b.jail, b.ip) for b in lived.observe(hits(address, moment))]
            assert [(b.jail, b.ip) for b in primed.observe(hits(address, moment))] == expected
    # Still banned by recidive: a new ban in sshd is no second recidive ban.
    assert [b.jail for b in primed.observe(hits(banned, 10 * 3600.0))] == ["sshd"]


def test_recidive_ignores_bans_made_by_hand() -> None:
    detector = _recidive_detector(maxretry=2)
    by_hand = [Ban(ATTACKER, "sshd", moment, moment + 60, 0, "by hand") for moment in (0, 10)]
    assert detector.escalate(by_hand) == []


def test_an_ipv6_prefix_this_host_lives_in_is_never_banned_whole() -> None:
    """Attackers on this host's own LAN /64 are banned one address at a time."""
    detector = Detector([jail()], own_addresses=["2001:db8:bad::1"])
    (ban,) = detector.observe(hits("2001:db8:bad::5", 1, 2, 3))
    assert ban.ip == "2001:db8:bad::5"
    (other,) = detector.observe(hits("2001:db8:cafe::5", 1, 2, 3))
    assert other.ip == "2001:db8:cafe::/64"


def test_a_restart_after_an_unban_keeps_the_ban_lifted() -> None:
    """The store lifted the ban at 130 (``unban``, ``stop --unban``): the replay of the
    failures that made it must not revive it, so new failures ban again at once (not only
    after the lifted ban's old end)."""
    detector = Detector([jail()])
    detector.remember_bans([])  # the store: no ban in force
    detector.prime(hits(ATTACKER, 100, 110, 120), lifts=[(ATTACKER, 130.0)])
    bans = detector.observe(hits(ATTACKER, 200, 210, 220))
    assert [(ban.ip, ban.start) for ban in bans] == [(ATTACKER, 220.0)]


def test_a_restart_counts_failures_after_a_lift_and_ignores_late_lines_before_it() -> None:
    detector = Detector([jail()])
    detector.prime(hits(ATTACKER, 100, 110, 120, 140, 150), lifts=[(ATTACKER, 130.0)])
    assert detector.observe(hits(ATTACKER, 125)) == []  # banned when it was written
    (ban,) = detector.observe(hits(ATTACKER, 160))  # the third since the lift
    assert (ban.start, ban.reason) == (160.0, "3 failures in 20s")


def test_a_restart_keeps_the_bans_the_store_holds() -> None:
    detector = Detector([jail()])
    detector.remember_bans([Ban(ATTACKER, "sshd", 120, 120 + 3600, 3, "3 failures in 20s")])
    detector.prime(hits(ATTACKER, 100, 110, 120))
    assert detector.observe(hits(ATTACKER, 200, 210, 220)) == []  # still banned
    assert [ban.start for ban in detector.observe(hits(ATTACKER, 3730, 3731, 3732))] == [3732.0]
