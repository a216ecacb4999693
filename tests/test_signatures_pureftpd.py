"""The pure-ftpd catalogue through the real one-pass matcher: every sample in every frame and
address family, real pure-ftpd 1.0.50 logs, names handed on instead of counted, and the
address always taken from pure-ftpd's own prefix, never from the user name after it."""

from __future__ import annotations

import calendar
import ipaddress
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from bruteguard.match.engine import Hit, Matcher
from bruteguard.match.signature import Role
from bruteguard.match.signatures import get_filter
from bruteguard.match.signatures.pureftpd import SIGNATURES

DATA = Path(__file__).parent / "data" / "pureftpd"
REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))
JAIL = "pure-ftpd"
MATCHER = Matcher({JAIL: "pure-ftpd"})
HEADER = "Nov 23 06:50:01 host pure-ftpd[1234]: "
FAILED = "[WARNING] Authentication failed for user ["

# pure-ftpd's frame, written down here independently of the signatures: an optional rsyslog
# repeat wrapper, then "(ACCOUNT@HOST) [LEVEL] TEXT".
_FRAME = re.compile(
    r"^(?:message repeated (?P<times>\d+) times: \[ )?"
    r"\((?P<account>[^\s()]+)@(?P<host>[^)\s]+)\) (?P<rest>.*)$"
)


def hits_of(text: str | bytes, matcher: Matcher = MATCHER) -> list[Hit]:
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    return matcher.stream(reference=REFERENCE).feed(data)


def canonical(text: str) -> str:
    """Independent of identity.py: IPv4-mapped → IPv4, IPv6 compressed."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def parts(sample: str) -> tuple[int, tuple[int, int], str | None]:
    """(times the line counts, span of the host, the user name or None) of a sample."""
    frame = _FRAME.match(sample)
    assert frame is not None, sample
    rest = frame["rest"]
    if frame["times"]:
        assert rest.endswith("]"), sample
        rest = rest[:-1]
    user = rest[len(FAILED) : -1] if rest.startswith(FAILED) else None
    return int(frame["times"] or 1), frame.span("host"), user


SAMPLES = [
    pytest.param(signature, sample, id=f"{signature.name}-{index}")
    for signature in SIGNATURES
    for index, sample in enumerate(signature.samples)
]


def test_every_signature_has_samples() -> None:
    assert SIGNATURES
    assert all(signature.samples for signature in SIGNATURES)


def test_every_failure_is_a_verdict() -> None:
    """Each line is one attempt of its connection: nothing announces, nothing summarises."""
    assert {signature.role for signature in SIGNATURES} == {Role.CONFIRM}


def test_the_filter_is_registered_as_writing_ptr_text() -> None:
    service = get_filter("pure-ftpd")
    assert service.programs == ("pure-ftpd",)
    assert service.signatures == SIGNATURES
    assert service.ptr_hosts


@pytest.mark.parametrize(("signature", "sample"), SAMPLES)
@pytest.mark.parametrize(
    "header",
    [
        "Nov 23 06:50:01 host pure-ftpd[1234]: ",
        "Nov 23 06:50:01 host pure-ftpd: ",
        "Nov  3 06:50:01 pure-ftpd[1234]: ",
        "Nov  3 06:50:01 pure-ftpd: ",
        "2026-11-23T06:50:01.123456+01:00 host pure-ftpd[1234]: ",
        "2026-11-23T06:50:01Z host pure-ftpd: ",
    ],
    ids=["pid", "no-pid", "no-hostname", "no-hostname-no-pid", "rfc3339", "rfc3339-no-pid"],
)
def test_sample_counts_its_address_and_user(signature, sample: str, header: str) -> None:
    times, (start, end), user = parts(sample)
    hits = hits_of(header + sample + "\n")
    assert [(hit[1], hit[2], hit[3]) for hit in hits] == [
        (canonical(sample[start:end]), user or None, JAIL)
    ] * times, (signature.name, sample)


@pytest.mark.parametrize(("signature", "sample"), SAMPLES)
@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("203.0.113.44", "203.0.113.44"),
        ("2001:db8:0:0:0:0:0:44", "2001:db8::44"),
        ("2001:db8::66", "2001:db8::66"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
    ],
    ids=["ipv4", "ipv6-long", "ipv6", "ipv4-mapped"],
)
def test_sample_with_any_address_family(
    signature, sample: str, written: str, expected: str
) -> None:
    times, (start, end), _user = parts(sample)
    hits = hits_of(HEADER + sample[:start] + written + sample[end:] + "\n")
    assert [hit[1] for hit in hits] == [expected] * times, (signature.name, sample)


@pytest.mark.parametrize(("signature", "sample"), SAMPLES)
@pytest.mark.parametrize("header", [HEADER, "Nov 23 06:50:01 host pure-ftpd: "])
def test_sample_from_a_hostname_is_not_attributed(signature, sample: str, header: str) -> None:
    """pure-ftpd without -H writes the PTR name: a claim, handed to the identity stage."""
    times, (start, end), user = parts(sample)
    stream = MATCHER.stream(reference=REFERENCE)
    text = header + sample[:start] + "scanner.example.net" + sample[end:] + "\n"
    assert stream.feed(text.encode()) == []
    named = stream.take_named()
    assert stream.stats.unattributed == times
    assert [(hit[1], hit[2], hit[3], hit[4]) for hit in named] == [
        ("scanner.example.net", user or None, JAIL, text.strip())
    ] * times
    assert stream.take_named() == []


@pytest.mark.parametrize(("signature", "sample"), SAMPLES)
def test_a_build_without_ip_logging_counts_nothing(signature, sample: str) -> None:
    """Built with DONT_LOG_IP, pure-ftpd writes "?" as the host: nothing to attribute."""
    _times, (start, end), _user = parts(sample)
    stream = MATCHER.stream(reference=REFERENCE)
    assert stream.feed((HEADER + sample[:start] + "?" + sample[end:] + "\n").encode()) == []
    assert (stream.take_named(), stream.stats.unattributed) == ([], 0)


def test_live_an_address_is_a_ptr_claim_too() -> None:
    """Live, an address-looking host is still PTR text (a PTR record may read 192.0.2.11):
    the identity stage checks it against real connections before anyone is banned."""
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime()).encode()
    stream = MATCHER.stream()
    line = stamp + b" host pure-ftpd[7]: (?@198.51.100.7) " + FAILED.encode() + b"admin]\n"
    assert stream.feed(line) == []
    assert [(hit[1], hit[2], hit[3]) for hit in stream.take_named()] == [
        ("198.51.100.7", "admin", JAIL)
    ]


# -- user names are the client's; the address is pure-ftpd's ---------------------------------

A = "198.51.100.7"


@pytest.mark.parametrize(
    "user",
    [
        "admin",
        "",
        "x]",
        "x]]",
        "[x]",
        "a@b (c) [d]",
        f"x] (?@203.0.113.9) {FAILED}y",
        "x) [ERROR] Too many authentication failures",
        f"x#012Nov 23 06:50:01 host pure-ftpd[1]: (?@203.0.113.9) {FAILED}y",
        "root from 203.0.113.9 port 22 ssh2",
        "пользователь",
        "(?@203.0.113.9) " * 7,
    ],
)
@pytest.mark.parametrize("repeated", [0, 3])
def test_user_names_are_captured_whole_and_never_move_the_host(user: str, repeated: int) -> None:
    message = f"(?@{A}) {FAILED}{user}]"
    if repeated:
        message = f"message repeated {repeated} times: [ {message}]"
    hits = hits_of(f"{HEADER}{message}\n")
    assert [(hit[1], hit[2]) for hit in hits] == [(A, user or None)] * max(repeated, 1)


def test_non_utf8_user_names_are_kept_as_escapes() -> None:
    hits = hits_of(f"{HEADER}(?@{A}) {FAILED}".encode() + b"\xff\xfe]\n")
    assert [(hit[1], hit[2]) for hit in hits] == [(A, "\\xff\\xfe")]


def test_five_failures_then_too_many_are_six_attempts() -> None:
    """pure-ftpd logs the sixth failure as "Too many authentication failures" instead."""
    text = "".join(f"{HEADER}(?@{A}) {FAILED}u{n}]\n" for n in range(5))
    text += f"{HEADER}(?@{A}) [ERROR] Too many authentication failures\n"
    text += f"{HEADER}(?@{A}) [INFO] Logout.\n"
    assert Counter(hit[1] for hit in hits_of(text)) == {A: 6}


def test_interleaved_connections_without_pids_count_separately() -> None:
    other = "2001:db8::66"
    header = "Nov 23 06:50:01 host pure-ftpd: "
    text = "".join(
        f"{header}(?@{address}) {FAILED}admin]\n" for address in (A, other, A, other, other)
    )
    assert Counter(hit[1] for hit in hits_of(text)) == {A: 2, other: 3}


def test_sshd_and_pure_ftpd_jails_keep_their_own_lines() -> None:
    both = Matcher({"ssh": "sshd", "ftp": "pure-ftpd"})
    text = (
        f"{HEADER}(?@{A}) {FAILED}admin]\n"
        "Nov 23 06:50:02 host sshd[99]: Failed password for root from 203.0.113.5 port 22 ssh2\n"
    )
    hits = hits_of(text, both)
    assert [(hit[1], hit[3]) for hit in hits] == [(A, "ftp"), ("203.0.113.5", "ssh")]


# -- lines that must never count ---------------------------------------------------------------

H = "Nov 23 06:50:01 host "
NEVER = [
    f"{H}pure-ftpd[1]: (?@{A}) [INFO] New connection from {A}",
    f"{H}pure-ftpd[1]: (?@{A}) [INFO] Logout.",
    f"{H}pure-ftpd[1]: (?@{A}) [INFO] deploy is now logged in",
    f"{H}pure-ftpd[1]: (deploy@{A}) [NOTICE] /srv/ftp//a.txt uploaded  (12 bytes, 0.02KB/sec)",
    f"{H}pure-ftpd[1]: (?@{A}) [INFO] Timeout - try typing a little faster next time",
    f"{H}pure-ftpd[1]: (?@{A}) [DEBUG] Command [user] [admin]",
    f"{H}pure-ftpd[1]: (?@{A}) [DEBUG] Command [pass] [<*>]",
    f"{H}pure-ftpd[1]: (?@{A}) [WARNING] Can't login as [root]: account disabled (uid < 1000)",
    f"{H}pure-ftpd[1]: (?@{A}) [ERROR] Too many connections (3) from this IP: [{A}]",
    f"{H}pure-ftpd[1]: pam_unix(pure-ftpd:auth): authentication failure; logname= uid=0 euid=0"
    " tty=pure-ftpd ruser=admin rhost=",
    f"{H}pure-ftpd[1]: pam_unix(pure-ftpd:auth): check pass; user unknown",
    f"{H}pure-ftpd[1]: (?@{A}) [INFO] {FAILED}admin]",
    f"{H}pure-ftpd[1]: (?@{A}) [WARNING] Authentication failed for user admin",
    f"{H}pure-ftpd[1]: ?@{A} {FAILED}admin]",
    f"{H}pure-ftpd[1]: (?@{A}) {FAILED}admin",
    f"{H}pure-ftpd[1]: (?@{A}) [ERROR] Too many authentication failures!",
    f"{H}pure-ftpd[1]: (? @{A}) {FAILED}admin]",
    f"{H}pure-ftpd[1]:  (?@{A}) {FAILED}admin]",
    f"{H}pure-ftpd-wrapper[1]: (?@{A}) {FAILED}admin]",
    f"{H}pure-ftpd-control: (?@{A}) {FAILED}admin]",
    f"{H}proftpd[1]: (?@{A}) {FAILED}admin]",
    f"{H}myapp: pure-ftpd[1]: (?@{A}) {FAILED}admin]",
    f"Nov 23 06:50:01 myapp: pure-ftpd: (?@{A}) {FAILED}admin]",
]


@pytest.mark.parametrize("text", NEVER)
def test_line_never_counts(text: str) -> None:
    stream = MATCHER.stream(reference=REFERENCE)
    assert stream.feed((text + "\n").encode()) == []
    assert (stream.take_named(), stream.stats.unattributed, stream.stats.lines) == ([], 0, 1)


# -- real logs: pure-ftpd 1.0.50 (Debian), rsyslog, real clients in a network namespace -------

LOGS: dict[str, tuple[dict[str, int], dict[str, int]]] = {
    # -1 (pids): 2 failures over IPv6; one connection of 5 failures + "Too many" (its user
    # names include a forged failure, a name cut to 128 bytes, Cyrillic); a client whose
    # PTR is scanner.example.test (2 failures, handed on); then a good login.
    "pureftpd1050_syslog_pid.log": (
        {"2001:db8::a": 2, "192.0.2.10": 6},
        {"scanner.example.test": 2},
    ),
    # Without -1: no pids. Names with control bytes (written "_"), "#012", "@ ( ) [ ]",
    # invalid UTF-8.
    "pureftpd1050_syslog_nopid.log": (
        {"2001:db8::a": 2, "192.0.2.10": 4},
        {"scanner.example.test": 2},
    ),
    # RFC 3339 stamps; three parallel connections from 192.0.2.10 (3 + 2, and 2 over IPv6).
    "pureftpd1050_rfc3339.log": (
        {"192.0.2.10": 5, "2001:db8::a": 2},
        {"host-7.attacker.test": 1},
    ),
}


@pytest.mark.parametrize("name", sorted(LOGS))
def test_real_log_counts_per_address_and_name(name: str) -> None:
    data = (DATA / name).read_bytes()
    counted, named = LOGS[name]
    stream = MATCHER.stream(reference=REFERENCE)
    hits = stream.feed(data)
    assert stream.stats.lines == data.count(b"\n")
    assert stream.stats.bad_time == 0
    assert dict(Counter(hit[1] for hit in hits)) == counted
    assert dict(Counter(hit[1] for hit in stream.take_named())) == named
    assert stream.stats.unattributed == sum(named.values())


def test_every_real_log_is_checked() -> None:
    assert {path.name for path in DATA.glob("*.log")} == set(LOGS)


@pytest.mark.parametrize("name", sorted(LOGS))
def test_real_log_counts_do_not_depend_on_chunking(name: str) -> None:
    data = (DATA / name).read_bytes()
    stream = MATCHER.stream(reference=REFERENCE)
    hits: list[Hit] = []
    for physical in data.splitlines(keepends=True):
        hits.extend(stream.feed(physical))
    assert hits == MATCHER.stream(reference=REFERENCE).feed(data)


def test_real_log_user_names_are_the_clients() -> None:
    data = (DATA / "pureftpd1050_syslog_pid.log").read_bytes()
    users = [hit[2] for hit in hits_of(data) if hit[1] == "192.0.2.10"]
    assert users == [
        "admin",
        f"x] (?@203.0.113.9) {FAILED}y",
        "root",
        "пользователь",
        "a" * 128,  # pure-ftpd 1.0.50 keeps 128 bytes of a name
        None,  # "Too many authentication failures" names nobody
    ]
