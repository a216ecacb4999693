"""insight.summary (from a real SQLite ledger and a real replay) and insight.plots."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import msgspec
import pytest

from bruteguard.abuse.case import Case, CaseState
from bruteguard.abuse.contact import NetworkContact
from bruteguard.config import load_config
from bruteguard.insight import plots
from bruteguard.insight.summary import (
    Count,
    Timeline,
    bucket_for,
    from_ledger,
    network_of,
    scan,
)
from bruteguard.model import Ban, Failure
from bruteguard.store.cases import CaseBook
from bruteguard.store.sqlite import SqliteStore

HOSTILE = "<img src=x onerror=alert(1)>"
T0 = 1_700_000_000.0  # a fixed moment: the ledger's own times, not the clock's


class FixedGeo:
    """The documentation ranges have no country in any database: a fixed answer."""

    def locate(self, address: str) -> tuple[str, str]:
        return ("NL", "AS64500 Example") if address.startswith("198.51.100.") else ("DE", "")


@pytest.fixture
def ledger(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "ledger.db")
    failures = [
        Failure(T0 + i * 60, "198.51.100.7", "sshd", "root", f"line {i}") for i in range(30)
    ]
    failures += [
        Failure(T0 + 3600 + i, "198.51.100.9", "sshd", HOSTILE, f"hostile {i}") for i in range(5)
    ]
    failures += [
        Failure(T0 + 7200 + i, "2001:db8:1:2::5", "postfix", "admin", f"m {i}") for i in range(4)
    ]
    # one scanner line counted by two jails is stored once per jail: one attempt
    shared = Failure(T0 + 50, "198.51.100.7", "sshd", None, "Connection closed [preauth]")
    failures += [shared, msgspec.structs.replace(shared, jail="sshd-ddos")]
    store.add_failures(failures)
    store.add_bans(
        [
            Ban("198.51.100.7", "sshd", T0 + 300, T0 + 3900, 5, "5 failures", step=1),
            Ban("198.51.100.7", "sshd", T0 + 4000, T0 + 11200, 5, "5 failures", step=2),
            Ban("2001:db8:1:2::/64", "postfix", T0 + 7203, T0 + 9000, 4, "x", step=1),
        ]
    )
    book = CaseBook(store)
    contact = NetworkContact(
        "198.51.100.7", "198.51.100.0/24", HOSTILE, "NL", 64500, "ripe", None, None, "rdap", T0
    )
    book.cache_contact(contact, expires=T0 + 86400 * 365 * 100)
    book.open_case(Case(id="c1", state=CaseState.SENT, opened=T0, updated=T0, due=T0))
    book.open_case(Case(id="c2", state=CaseState.DRAFT, opened=T0, updated=T0, due=T0))
    book.open_case(Case(id="c3", state=CaseState.DRAFT, opened=T0, updated=T0, due=T0))
    yield store
    store.close()


def test_ledger_summary_counts_what_the_ledger_holds(ledger: SqliteStore) -> None:
    summary = from_ledger(ledger, until=T0 + 86400, geo=FixedGeo())
    assert summary.origin == "ledger"
    assert summary.failures == 40  # the shared line once
    assert summary.per_jail == {"postfix": 4, "sshd": 36, "sshd-ddos": 1}
    assert summary.addresses == 3
    assert sum(sum(t.counts) for t in summary.attempts) == 41
    assert {t.name: sum(t.counts) for t in summary.attempts} == summary.per_jail
    assert summary.top_addresses[0] == Count("198.51.100.7", 31)
    assert summary.top_networks[:2] == [
        Count("198.51.100.0/24", 36),
        Count("2001:db8:1:2::/64", 4),
    ]
    assert summary.top_owners == [Count(HOSTILE, 36)]  # from the RDAP cache, by network
    assert summary.top_countries == [Count("NL", 36), Count("DE", 4)]
    assert summary.top_asns == [Count("AS64500 Example", 36)]
    assert summary.users[0] == Count("root", 30)
    assert Count(HOSTILE, 5) in summary.users
    assert summary.bans == 3
    assert summary.ban_steps == [Count("1", 2), Count("2", 1)]
    assert {t.name: sum(t.counts) for t in summary.bans_over_time} == {"postfix": 1, "sshd": 2}
    assert summary.cases == [Count("draft", 2), Count("sent", 1)]
    # the attempts land in the buckets of their own times
    sshd = next(t for t in summary.attempts if t.name == "sshd")
    first = int((T0 - summary.start) // summary.bucket)
    assert sshd.counts[first] > 0
    assert summary.start <= T0 < summary.start + summary.bucket


def test_ledger_summary_since_leaves_older_out(ledger: SqliteStore) -> None:
    summary = from_ledger(ledger, since=T0 + 7000, until=T0 + 86400)
    assert summary.failures == 4
    assert summary.bans == 1
    assert summary.top_countries == []  # no geo given: no countries


def test_empty_ledger(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "empty.db") as store:
        summary = from_ledger(store, until=T0)
    assert summary.failures == 0 and summary.bans == 0 and summary.attempts == []


def test_scan_summary_equals_the_replay(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    lines = []
    for i in range(12):
        lines.append(
            f"Mar  3 10:{i:02d}:01 host sshd[{100 + i}]: Failed password for invalid user"
            f" guest{i % 3} from 203.0.113.{5 + i % 2} port 4{i:04d} ssh2"
        )
    log.write_text("\n".join(lines) + "\n")
    config = load_config(None)
    summary, replay = scan([str(log)], config, config.enabled_jails(), geo=FixedGeo())
    assert summary.origin == "scan"
    assert summary.lines == replay.lines == 12
    assert summary.failures == replay.failures == 12
    assert summary.per_jail == replay.per_jail
    assert summary.bans == len(replay.bans) > 0
    assert {t.name: sum(t.counts) for t in summary.attempts} == replay.per_jail
    assert {c.label: c.count for c in summary.top_addresses} == {
        o.address: o.count for o in replay.offenders.values()
    }
    assert sum(c.count for c in summary.users) == 12
    assert summary.top_countries == [Count("DE", 12)]


def test_bucket_widths_are_round_and_few() -> None:
    assert bucket_for(0, 3600) == 60
    assert bucket_for(0, 86400) == 900
    assert bucket_for(0, 30 * 86400) == 6 * 3600
    assert 365 * 86400 / bucket_for(0, 365 * 86400) <= 200


def test_network_of() -> None:
    assert network_of("192.0.2.77") == "192.0.2.0/24"
    assert network_of("2001:db8:5:6:7::1") == "2001:db8:5:6::/64"


def _text_of(svg: str) -> str:
    return "".join(ET.fromstring(svg).itertext())


def test_plots_are_valid_svg_and_escape_attacker_text() -> None:
    bars = plots.bar_chart(f"users {HOSTILE}", [Count(HOSTILE, 9), Count("root", 3)])
    tree = ET.fromstring(bars)  # well-formed XML: nothing broke out of its element
    assert tree.tag == "{http://www.w3.org/2000/svg}svg"
    assert not any(el.tag.endswith("img") for el in tree.iter())
    assert "<img" not in bars
    assert "&lt;img src=x onerror=alert(1)&gt;" in bars
    assert HOSTILE in _text_of(bars)  # shown as text
    line = plots.time_chart(HOSTILE, T0, 3600, [Timeline(HOSTILE, [1, 5, 2])])
    assert not any(el.tag.endswith("img") for el in ET.fromstring(line).iter())
    assert "<img" not in line


def test_bar_lengths_follow_counts() -> None:
    svg = plots.bar_chart("t", [Count("a", 10), Count("b", 5)])
    ns = "{http://www.w3.org/2000/svg}"
    widths = [float(r.get("width")) for r in ET.fromstring(svg).iter(f"{ns}rect")]
    assert widths[0] == pytest.approx(2 * widths[1], abs=1)


def test_labels_lose_control_characters() -> None:
    assert plots.label("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert len(plots.label("x" * 500)) == 48
