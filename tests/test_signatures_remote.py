"""Whole connections of the remote-access services, as their daemons really write them:
each attempt counts once, whatever else the connection logs (tests/data/signatures reads
each line alone).

The logs in tests/data/remote/ are real runs' lines (tests/remotelab.py), shortened to the
lines of interest and with the lab user renamed, or lines of other versions derived from
the source; each is fed as one log, replayed, with every built-in filter compiled, as a host
running all jails would.
"""

from __future__ import annotations

import calendar
from collections import Counter
from pathlib import Path

import pytest

from bruteguard.match.engine import Matcher
from bruteguard.match.signatures import FILTERS

DATA = Path(__file__).parent / "data" / "remote"
REFERENCE = float(calendar.timegm((2026, 12, 5, 0, 0, 0)))
ALL = Matcher({name: name for name in FILTERS})


def counts(name: str, jail: str) -> Counter[str]:
    """Attempts per address that ``jail`` counts in the log ``name``, read as one stream."""
    stream = ALL.stream(reference=REFERENCE)
    hits = stream.feed((DATA / name).read_bytes())
    assert stream.stats.match_errors == 0
    return Counter(hit[1] for hit in hits if hit[3] == jail)


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        # dropbear 2022.83 through syslog, one child (pid) per connection: two passwords,
        # an unknown user, root refused before its password (-w); an innocent's login
        ("dropbear-syslog.log", {"192.0.2.10": 4}),
        # -EF under systemd, every line under the listener's pid: one password and two
        # unknown-user connections (their exit lines confirm)
        ("dropbear-journal.log", {"192.0.2.10": 3}),
        # 2024.86 and later: the unknown user's client is named before the exit line
        ("dropbear-2024.86.log", {"2001:db8::66": 2}),
    ],
)
def test_dropbear_counts_each_attempt_once(log: str, expected: dict[str, int]) -> None:
    assert counts(log, "dropbear") == expected


def test_openvpn_counts_each_attempt_once() -> None:
    """A real OpenVPN 2.6.14 server's log: two refused passwords and a certificate of an
    unknown CA over IPv4, one of each over IPv6, the innocent's two logins; every client
    shares the server's one pid."""
    assert counts("openvpn-syslog.log", "openvpn") == {"192.0.2.10": 3, "2001:db8::a": 2}
