"""What PTR observations say about a logged name, and the verdict on a named line.

Values in, values out: observations as the resolver makes them (its DNS side is tested
against real servers in test_identity_resolver.py), connections as the book keeps them.
Every rule here is one an attacker who controls its reverse zone tries to bend.
"""

from __future__ import annotations

import pytest

from bruteguard.identity.attribution import MAX_CANDIDATES, attribute
from bruteguard.identity.connections import Connection
from bruteguard.identity.names import Fit, PtrHistory, PtrObservation, logged_texts
from bruteguard.match.signatures.pureftpd import as_written

T0 = 1_000_000.0
ATTACKER, OTHER_ATTACKER = "198.51.100.7", "198.51.100.8"
INNOCENT, BYSTANDER = "203.0.113.50", "203.0.113.60"
NAME = "mail.innocent.test"  # the innocent's own name, PTR and A agreeing
MIN_TTL = 10.0  # pure-ftpd: resolves within 5 s, + 5 s


def _seen(
    address: str,
    *names: str,
    at: float = T0,
    ttl: float = 600.0,
    ok: bool = True,
) -> PtrObservation:
    return PtrObservation(address, frozenset(names), ok, at, at + 0.01, ttl)


def _history(*observations: PtrObservation) -> PtrHistory:
    history = PtrHistory()
    for observation in observations:
        history.add(observation)
    return history


def _fit(history: PtrHistory, address: str, name: str = NAME, since: float = T0) -> Fit:
    return history.fit(address, name, since, T0 + 30, min_ttl=MIN_TTL, sanitize=as_written)


# -- what a service could have written ------------------------------------------------------


def test_logged_texts_follow_what_pure_ftpd_writes() -> None:
    assert logged_texts(_seen(ATTACKER, "Mail.Innocent.Test"), as_written) == {NAME}
    assert logged_texts(_seen(ATTACKER, "a b.test"), as_written) == {"a_b.test", ATTACKER}, (
        "a name the C library may refuse: the service may have written the address instead"
    )
    assert logged_texts(_seen(ATTACKER), as_written) == {ATTACKER}, "no PTR: the address"
    assert logged_texts(_seen(ATTACKER, "x.test", "y.test")) == {"x.test", "y.test"}


# -- fits, excluded, unknown ----------------------------------------------------------------


def test_a_ptr_that_is_the_name_fits_whatever_else_was_seen() -> None:
    history = _history(_seen(ATTACKER, "x.attacker.test"), _seen(ATTACKER, NAME, at=T0 + 5))
    assert _fit(history, ATTACKER) is Fit.FITS


def test_a_consistent_other_name_with_a_real_ttl_excludes() -> None:
    history = _history(_seen(INNOCENT, "host.innocent.test"), _seen(INNOCENT, "host.innocent.test"))
    assert _fit(history, INNOCENT) is Fit.EXCLUDED


@pytest.mark.parametrize(
    "observations",
    [
        pytest.param([], id="never-asked"),
        pytest.param([_seen(INNOCENT, ok=False)], id="lookup-failed"),
        pytest.param([_seen(INNOCENT, "h.test"), _seen(INNOCENT, ok=False, at=T0 + 1)],
                     id="then-failed"),
        pytest.param([_seen(INNOCENT, "h.test", ttl=0)], id="ttl-0"),
        pytest.param([_seen(INNOCENT, "h.test", ttl=MIN_TTL - 1)],
                     id="ttl-under-the-services-lookup"),
        pytest.param([_seen(INNOCENT, ttl=0)], id="nxdomain-without-soa"),
    ],
)  # fmt: skip
def test_what_cannot_be_trusted_to_exclude_is_unknown(observations: list[PtrObservation]) -> None:
    assert _fit(_history(*observations), INNOCENT) is Fit.UNKNOWN


def test_no_ptr_with_a_negative_ttl_excludes_for_a_name_but_fits_its_own_address() -> None:
    history = _history(_seen(INNOCENT, ttl=300))  # NXDOMAIN, SOA minimum 300
    assert _fit(history, INNOCENT) is Fit.EXCLUDED
    assert _fit(history, INNOCENT, name=INNOCENT) is Fit.FITS, "pure-ftpd wrote the address"


def test_an_address_that_answered_two_ways_is_unstable_for_a_day() -> None:
    """The flip: the attacker gives the service the innocent's name and bruteguard another.
    The first race it loses shows both answers; then it is never excluded again."""
    history = _history(_seen(ATTACKER, NAME, ttl=0), _seen(ATTACKER, "x.attacker.test", at=T0 + 1))
    assert history.unstable(ATTACKER, T0 + 2)
    later = T0 + 7200  # the disagreement has aged out of the history; the mark has not
    history.add(_seen(ATTACKER, "x.attacker.test", at=later))
    history.add(_seen(ATTACKER, "x.attacker.test", at=later + 1))
    assert _fit(history, ATTACKER, since=later) is Fit.UNKNOWN
    assert not history.unstable(ATTACKER, T0 + 86400 + 2)


def test_instability_is_remembered_per_ipv6_64() -> None:
    history = _history(_seen("2001:db8::7", "a.test"), _seen("2001:db8::7", "b.test", at=T0 + 1))
    assert history.unstable("2001:db8::ffff", T0 + 2), "the same /64, the same owner"
    assert not history.unstable("2001:db8:1::7", T0 + 2)


def test_an_answer_still_cached_when_the_connection_opened_counts() -> None:
    history = _history(_seen(INNOCENT, "host.innocent.test", at=T0 - 100))
    assert history.during(INNOCENT, T0)[0].answered == T0 - 100 + 0.01
    assert _fit(history, INNOCENT) is Fit.EXCLUDED
    expired = _history(_seen(INNOCENT, "host.innocent.test", at=T0 - 1000))
    assert _fit(expired, INNOCENT) is Fit.UNKNOWN


def test_current_is_what_the_resolver_still_caches() -> None:
    history = _history(_seen(INNOCENT, "h.test", ttl=60), _seen(INNOCENT, ok=False, at=T0 + 1))
    assert history.current(INNOCENT, T0 + 30) is not None
    assert history.current(INNOCENT, T0 + 61) is None
    assert history.current(ATTACKER, T0) is None


def test_history_is_bounded() -> None:
    history = PtrHistory(per_address=3, limit=5)
    for n in range(10):
        history.add(_seen(f"198.51.100.{n}", "a.test", at=T0 + n))
        history.add(_seen("203.0.113.1", "a.test", at=T0 + n))
    assert len(history) == 5
    assert len(history.during("203.0.113.1", T0)) == 3


# -- the verdict on a line ------------------------------------------------------------------


def _connection(address: str, opened: float = T0, closed: float | None = None) -> Connection:
    return Connection(address, 21, opened, assured=opened, closed=closed)


def _verdict(connections: list[Connection], history: PtrHistory, complete: bool = True):
    return attribute(
        NAME, connections, history, T0 + 30, complete=complete, min_ttl=MIN_TTL,
        sanitize=as_written,
    )  # fmt: skip


def test_the_one_real_connection_whose_ptr_is_the_name_is_the_client() -> None:
    history = _history(_seen(ATTACKER, NAME), _seen(INNOCENT, "host.innocent.test"))
    verdict = _verdict([_connection(ATTACKER), _connection(INNOCENT)], history)
    assert (verdict.address, verdict.candidates) == (ATTACKER, (ATTACKER, INNOCENT))


def test_a_copied_name_with_its_owner_connected_frames_nobody() -> None:
    """The attacker's PTR is the innocent's own, forward-confirmed name: both fit."""
    history = _history(_seen(ATTACKER, NAME), _seen(INNOCENT, NAME))
    verdict = _verdict([_connection(ATTACKER), _connection(INNOCENT)], history)
    assert verdict.address is None
    assert verdict.method == "ambiguous: several real connections have that PTR"


def test_a_copier_whose_ptr_cannot_be_trusted_keeps_the_owner_safe() -> None:
    """The flip seen once: the attacker is unknown, so the innocent's fit decides nothing."""
    history = _history(
        _seen(ATTACKER, NAME, ttl=0), _seen(ATTACKER, "x.attacker.test", at=T0 + 1),
        _seen(INNOCENT, NAME),
    )  # fmt: skip
    verdict = _verdict([_connection(ATTACKER), _connection(INNOCENT)], history)
    assert verdict.address is None
    assert verdict.method == "ambiguous: several real connections have that PTR"
    history = _history(_seen(ATTACKER, "x.test", ttl=0), _seen(INNOCENT, NAME))
    verdict = _verdict([_connection(ATTACKER), _connection(INNOCENT)], history)
    assert verdict.address is None
    assert verdict.method == "ambiguous: another real connection's PTR could not be trusted"


def test_several_connections_of_one_address_are_one_candidate() -> None:
    history = _history(_seen(ATTACKER, NAME), _seen(INNOCENT, "host.innocent.test"))
    connections = [_connection(ATTACKER), _connection(ATTACKER, T0 + 1), _connection(INNOCENT)]
    assert _verdict(connections, history).address == ATTACKER


def test_no_fit_means_nobody() -> None:
    history = _history(_seen(INNOCENT, "host.innocent.test"))
    verdict = _verdict([_connection(INNOCENT)], history)
    assert (verdict.address, verdict.method) == (None, "no real connection has that PTR")
    verdict = _verdict([_connection(INNOCENT)], _history())
    assert verdict.address is None and "could not be checked" in verdict.method
    verdict = _verdict([], _history())
    assert verdict.method == "no real connection to the service's ports"


def test_incomplete_evidence_means_nobody_even_with_a_fit() -> None:
    history = _history(_seen(INNOCENT, NAME))
    verdict = _verdict([_connection(INNOCENT)], history, complete=False)
    assert (verdict.address, verdict.candidates) == (None, (INNOCENT,))
    assert verdict.method == "connection evidence incomplete at that time"


def test_too_many_connections_are_not_looked_up() -> None:
    connections = [_connection(f"198.51.100.{n}") for n in range(MAX_CANDIDATES + 1)]
    verdict = _verdict(connections, _history(_seen("198.51.100.1", NAME)))
    assert (verdict.address, verdict.method) == (None, "ambiguous: too many connections")


def test_two_hosts_copying_a_connected_innocents_name_never_converge_on_it() -> None:
    """Why no line is decided from other lines: A fails while the innocent is connected,
    then B does. The one address in both lines' candidates is the innocent's."""
    history = _history(_seen(ATTACKER, NAME), _seen(OTHER_ATTACKER, NAME), _seen(INNOCENT, NAME))
    lines = [
        [_connection(ATTACKER), _connection(INNOCENT)],
        [_connection(OTHER_ATTACKER), _connection(INNOCENT)],
    ]
    assert [_verdict(line, history).address for line in lines] == [None, None]


# -- lines that name no client --------------------------------------------------------------


def test_the_one_connection_that_ended_with_the_line_is_its_client() -> None:
    from bruteguard.identity.attribution import attribute_ending

    prober = _connection(ATTACKER, T0 - 1, closed=T0 + 0.2)
    browser = _connection(INNOCENT, T0 - 30)  # a keep-alive connection, still open
    earlier = _connection(BYSTANDER, T0 - 20, closed=T0 - 5)
    verdict = attribute_ending([prober, browser, earlier], T0, complete=True)
    assert (verdict.address, verdict.method) == (
        ATTACKER, "the only real connection that ended with it",
    )  # fmt: skip
    both = attribute_ending(
        [prober, _connection(INNOCENT, T0 - 9, closed=T0 + 1)], T0, complete=True
    )
    assert (both.address, both.method) == (None, "ambiguous: several connections ended then")
    none = attribute_ending([browser, earlier], T0, complete=True)
    assert (none.address, none.method) == (None, "no real connection ended with it")
    gap = attribute_ending([prober], T0, complete=False)
    assert gap.address is None and gap.method == "connection evidence incomplete at that time"


def test_a_close_read_late_still_keeps_the_line_ambiguous() -> None:
    """The prober's close was read 5 s late (the daemon was busy): it may have ended with
    the line, so the innocent that closed then too is not the only candidate."""
    from bruteguard.identity.attribution import attribute_ending

    prober = Connection(ATTACKER, 21, T0 - 1, assured=T0 - 1, closed=T0 + 5, closing_since=T0 - 1)
    innocent = _connection(INNOCENT, T0 - 9, closed=T0 + 0.5)
    verdict = attribute_ending([prober, innocent], T0, complete=True)
    assert (verdict.address, verdict.method) == (None, "ambiguous: several connections ended then")
