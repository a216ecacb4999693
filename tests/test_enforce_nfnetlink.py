"""Ban rounds of elements alone go to the kernel as one nfnetlink batch (``nfnetlink.py``),
not as an nft script: proven in a lab namespace by real connections and by what
``nft -j list set`` shows, and a refused batch applies nothing."""

from __future__ import annotations

import errno
import json
import socket
import time

import pytest

from bruteguard.enforce.nfnetlink import MOST_ELEMENTS, NetlinkRefused, SetElementChannel
from bruteguard.enforce.nftables import NftablesEnforcer
from bruteguard.errors import EnforcerError
from enforcekit import BLOCKED, OPEN, Jail, ban, lab_fixture, reaches, set_up
from netns import Host, Lab

JAILS = [Jail("sshd"), Jail("web-auth", (8443,))]

lab = lab_fixture("bgnl")


class _Scripts(NftablesEnforcer):
    """The real enforcer that also keeps every nft script it ran: a ban round that leaves
    none went as a netlink batch."""

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.scripts: list[str] = []

    def _run(self, script: str, **flags: bool) -> str:
        self.scripts.append(script)
        return super()._run(script, **flags)


@pytest.fixture
def enforcer(lab: Lab) -> _Scripts:
    made = set_up(_Scripts, lab.server, JAILS)
    made.scripts.clear()
    return made


def timeouts(host: Host, set_name: str) -> dict[str, int | None]:
    """The set's elements (their value) and the timeout each was given in seconds (None:
    none), as ``nft -j list set`` shows them."""
    output = host.run(["nft", "-j", "list", "set", "inet", "bruteguard", set_name]).stdout
    (found,) = [item["set"] for item in json.loads(output)["nftables"] if "set" in item]
    listed: dict[str, int | None] = {}
    for entry in found.get("elem", []):
        if isinstance(entry, dict):
            listed[entry["elem"]["val"]] = entry["elem"].get("timeout")
        else:
            listed[entry] = None
    return listed


@pytest.mark.netns
def test_a_ban_of_both_families_goes_as_a_batch_and_refuses_connections(
    lab: Lab, enforcer: _Scripts
) -> None:
    attacker = lab.clients["attacker"]
    enforcer.ban([ban(attacker.ipv4, 600), ban(attacker.ipv6, 900)], time.time())
    assert enforcer.scripts == []
    assert reaches(attacker, lab.server) == BLOCKED
    assert reaches(lab.clients["innocent"], lab.server) == OPEN
    assert timeouts(lab.server, "sshd_v4") == {attacker.ipv4: 600}
    assert timeouts(lab.server, "sshd_v6") == {attacker.ipv6: 900}


@pytest.mark.netns
def test_a_refresh_gives_an_element_its_new_timeout_both_ways(lab: Lab, enforcer: _Scripts) -> None:
    enforcer.ban([ban("203.0.113.5", 60), ban("2001:db8:5::5", 60)], time.time())
    enforcer.ban([ban("203.0.113.5", 7200), ban("2001:db8:5::5", 86400 * 3)], time.time())
    assert timeouts(lab.server, "sshd_v4") == {"203.0.113.5": 7200}
    assert timeouts(lab.server, "sshd_v6") == {"2001:db8:5::5": 86400 * 3}
    enforcer.ban([ban("203.0.113.5", 30)], time.time())
    assert timeouts(lab.server, "sshd_v4") == {"203.0.113.5": 30}
    assert enforcer.scripts == []


@pytest.mark.netns
def test_a_permanent_ban_is_an_element_without_timeout(lab: Lab, enforcer: _Scripts) -> None:
    now = time.time()
    enforcer.ban([ban("203.0.113.9", 60)], now)
    enforcer.ban([ban("203.0.113.9", float("inf"))], now)
    assert timeouts(lab.server, "sshd_v4") == {"203.0.113.9": None}
    assert enforcer.scripts == []


@pytest.mark.netns
def test_a_new_network_set_goes_as_a_script_and_the_next_network_as_a_batch(
    lab: Lab, enforcer: _Scripts
) -> None:
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    enforcer.ban([ban("2001:db8:100::/64", 600)], time.time())
    (script,) = enforcer.scripts
    assert "add set inet bruteguard sshd_v6n64" in script and "insert rule" in script
    enforcer.scripts.clear()
    enforcer.ban([ban("2001:db8::/64", 300)], time.time())  # every lab host's /64
    assert enforcer.scripts == []
    assert timeouts(lab.server, "sshd_v6n64") == {"2001:db8:100::": 600, "2001:db8::": 300}
    assert reaches(attacker, lab.server) == {"v4": True, "v6": False}
    assert reaches(innocent, lab.server) == {"v4": True, "v6": False}


@pytest.mark.netns
def test_a_round_too_big_for_one_send_goes_as_a_script(lab: Lab, enforcer: _Scripts) -> None:
    many = [ban(f"10.0.{i >> 8}.{i & 255}") for i in range(MOST_ELEMENTS + 1)]
    enforcer.ban(many, time.time())
    assert len(enforcer.scripts) == 1
    assert len(timeouts(lab.server, "sshd_v4")) == MOST_ELEMENTS + 1


@pytest.mark.netns
def test_a_refused_batch_applies_nothing_and_says_why(lab: Lab, enforcer: _Scripts) -> None:
    """Its first messages would apply (sshd_v4 exists), the last ones are refused (no such
    set): nfnetlink aborts the batch whole."""
    channel = SetElementChannel(lab.server.name)
    sets = {
        "sshd_v4": [(socket.inet_pton(socket.AF_INET, "203.0.113.7"), 60_000)],
        "no_such_set": [(socket.inet_pton(socket.AF_INET, "203.0.113.8"), 60_000)],
    }
    with pytest.raises(NetlinkRefused) as refused:
        channel.replace("bruteguard", sets)
    assert refused.value.errno == errno.ENOENT
    assert timeouts(lab.server, "sshd_v4") == {}
    # The channel opens a fresh socket after a failure and goes on.
    channel.replace("bruteguard", {"sshd_v4": sets["sshd_v4"]})
    assert timeouts(lab.server, "sshd_v4") == {"203.0.113.7": 60}
    channel.close()


@pytest.mark.netns
def test_a_ban_into_a_set_gone_raises_nfts_error_and_applies_nothing(
    lab: Lab, enforcer: _Scripts
) -> None:
    """An admin removed a set behind the daemon's back: the round raises the EnforcerError
    the script path raises (nft's own words, which the daemon logs), and the other jail's
    element is not added either."""
    lab.server.run(["nft", "flush", "chain", "inet", "bruteguard", "input"])
    lab.server.run(["nft", "delete", "set", "inet", "bruteguard", "web-auth_v4"])
    attacker = lab.clients["attacker"]
    round_ = [ban(attacker.ipv4), ban(attacker.ipv4, jail="web-auth")]
    with pytest.raises(EnforcerError, match=r"(?s)nft failed \(exit 1\).*web-auth_v4"):
        enforcer.ban(round_, time.time())
    assert len(enforcer.scripts) == 1  # the batch was refused, then the script said why
    assert timeouts(lab.server, "sshd_v4") == {}


@pytest.mark.netns
def test_the_command_path_never_opens_a_netlink_socket(lab: Lab) -> None:
    command = set_up(NftablesEnforcer, lab.server, JAILS, library=None)
    assert command._runner.netlink() is None
    attacker = lab.clients["attacker"]
    command.ban([ban(attacker.ipv4)], time.time())
    assert reaches(attacker, lab.server)["v4"] is False
