"""Sessions in the compiled pass: a service whose later lines carry only a session id
(OpenSMTPD) has them counted for the address its session's opening line named, keyed on
the id (not the syslog pid), and never for an address the client wrote."""

from __future__ import annotations

import calendar

import pytest

from bruteguard.match.engine import Matcher
from bruteguard.match.signature import Role, Signature

REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))
MATCHER = Matcher({"opensmtpd": "opensmtpd"})


def line(second: int, session: str, text: str, pid: int = 47) -> bytes:
    stamp = f"Dec  4 22:{second // 60:02d}:{second % 60:02d}"
    return f"{stamp} mail smtpd[{pid}]: {session} smtp {text}\n".encode()


def opened(second: int, session: str, address: str, pid: int = 47) -> bytes:
    return line(second, session, f"connected address={address} host=<unknown>", pid)


def refused(second: int, session: str, user: str = "bob") -> bytes:
    return line(second, session, f"authentication user={user} result=permfail") + line(
        second + 1,
        session,
        'failed-command command="AUTH PLAIN (...)" result="535 Authentication failed"',
    )


def addresses(data: bytes, collect: bool = False) -> list[str]:
    stream = MATCHER.stream(reference=REFERENCE)
    if collect:
        series = MATCHER.new_series()
        stream.collect(data, series)
        return sorted(
            address for address, (times, _) in series[0].items() for _ in range(len(times) // 8)
        )
    return sorted(hit[1] for hit in stream.feed(data))


def test_each_session_counts_for_its_own_opening_address() -> None:
    data = (
        opened(0, "00000000000000a1", "198.51.100.7")
        + opened(1, "00000000000000b2", "[2001:db8::66]")
        + refused(2, "00000000000000a1")
        + refused(4, "00000000000000b2")
        + refused(6, "00000000000000a1", "x\\040address=203.0.113.9")
    )
    expected = ["198.51.100.7", "198.51.100.7", "2001:db8::66"]
    assert addresses(data) == expected
    assert addresses(data, collect=True) == expected


def test_a_session_whose_opening_was_not_seen_counts_nothing() -> None:
    assert addresses(refused(0, "00000000000000c3")) == []
    # a session id that only differs in case is the same session
    assert addresses(opened(0, "00000000000000AB", "198.51.100.7") + refused(1, "00000000000000ab"))


def test_the_session_not_the_pid_tells_connections_apart() -> None:
    """Two sessions in one smtp process; the same session id under another pid (the
    process restarted) is still that session."""
    data = (
        opened(0, "1111111111111111", "198.51.100.7", pid=47)
        + opened(1, "2222222222222222", "192.0.2.11", pid=47)
        + refused(2, "1111111111111111")
        + line(4, "1111111111111111", "authentication user=x result=permfail", pid=48)
    )
    assert addresses(data) == ["198.51.100.7", "198.51.100.7"]
    data = (
        opened(0, "1111111111111111", "198.51.100.7", pid=47)
        + opened(1, "2222222222222222", "192.0.2.11", pid=47)
        + refused(2, "1111111111111111")
    )
    assert addresses(data) == ["198.51.100.7"]


def test_a_quiet_session_is_forgotten_after_ten_minutes() -> None:
    data = opened(0, "00000000000000d4", "198.51.100.7") + refused(11 * 60, "00000000000000d4")
    assert addresses(data) == []


def test_skim_learns_sessions_without_counting() -> None:
    stream = MATCHER.stream(reference=REFERENCE)
    stream.skim(opened(0, "00000000000000e5", "198.51.100.7") + refused(1, "00000000000000e5"))
    assert stream.feed(refused(3, "00000000000000e5"))[0][1] == "198.51.100.7"


def test_signatures_say_where_their_address_comes_from() -> None:
    with pytest.raises(ValueError, match="needs exactly one <HOST>"):
        Signature("x", Role.CONFIRM, "no address here")
    with pytest.raises(ValueError, match="needs exactly one <HOST>"):
        Signature("x", Role.OPEN, "<SESSION> opened")
    Signature("x", Role.OPEN, "opened from <HOST>")  # a connection's (pid's) first line
    Signature("x", Role.CLOSE, "closed, no client named")  # the pid's OPEN line names it
    with pytest.raises(ValueError, match="needs exactly one <HOST>"):
        Signature("x", Role.CONFIRM, "failed, no client named")
    with pytest.raises(ValueError, match="only a pid's CLOSE line settles"):
        Signature("x", Role.CONFIRM, "closed by <HOST>", settles=True)
    with pytest.raises(ValueError, match="a waiting line names its <HOST>"):
        Signature("x", Role.CLOSE, "refused, no client named", waits=True)
    with pytest.raises(ValueError, match="at most one <SESSION>"):
        Signature("x", Role.CONFIRM, "<SESSION> <SESSION> failed from <HOST>")
    Signature("x", Role.CONFIRM, "<SESSION> failed")


def test_a_repeated_user_must_repeat_exactly() -> None:
    """``<USER=>`` is the same text as the ``<USER>`` before it (Samba writes the client's
    names on both sides of the address): only the address between two equal copies counts."""
    signature = Signature("twice", Role.CONFIRM, r"u \[<USER>\] from <HOST> as \[<USER=>\]")
    with pytest.raises(ValueError, match="repeats an earlier <USER>"):
        Signature("x", Role.CONFIRM, r"<USER=> from <HOST> as <USER>")
    from bruteguard.match import engine

    layout, body = engine._body(signature)
    assert layout == ("<USER>", "<HOST>")
    assert body.endswith(r"as \[\g{-2}\]")
