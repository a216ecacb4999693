"""The sshd catalogue through the real one-pass matcher: every sample, real OpenSSH logs, one
attempt counted once, and addresses that client-chosen text can never supply."""

from __future__ import annotations

import calendar
import ipaddress
import re
from collections import Counter
from pathlib import Path

import pytest

from bruteguard.match.engine import Hit, Matcher
from bruteguard.match.signature import Role
from bruteguard.match.signatures.sshd import PAM_UNIX_SIGNATURES, SIGNATURES

DATA = Path(__file__).parent / "data"
# Replayed logs take the year that puts their stamps just before the file's mtime.
REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))
MATCHER = Matcher({"sshd": "sshd"})
HEADER = "Nov 23 06:50:01 host sshd[1234]: "
A = "198.51.100.7"


def hits_of(text: str | bytes) -> list[Hit]:
    """Hits of ``text`` (whole lines) through a fresh stream, as a replayed file would give."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    return MATCHER.stream(reference=REFERENCE).feed(data)


def counts(text: str | bytes) -> Counter[str]:
    return Counter(address for _time, address, _user, _jail, _line in hits_of(text))


def line(message: str, pid: int = 1234, program: str = "sshd") -> str:
    return f"Nov 23 06:50:01 host {program}[{pid}]: {message}\n"


def canonical(text: str) -> str:
    """Independent of identity.py: IPv4-mapped → IPv4, IPv6 compressed."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


_TOKEN = re.compile(r"[0-9A-Fa-f:.]*[0-9A-Fa-f]")


def last_address(sample: str) -> tuple[int, int]:
    """Span of the last address-shaped token of a sample (the one sshd wrote; macOS's
    " via LOCAL-ADDRESS" after it is the server's)."""
    found: tuple[int, int] | None = None
    for match in _TOKEN.finditer(sample):
        if sample[: match.start()].endswith(" via "):
            continue
        try:
            ipaddress.ip_address(match.group())
        except ValueError:
            continue
        if "." in match.group() or ":" in match.group():
            found = match.span()
    assert found is not None, f"sample without an address: {sample!r}"
    return found


def samples(which) -> list:
    return [
        pytest.param(signature, sample, id=f"{signature.name}-{index}")
        for signature in SIGNATURES
        if which(signature)
        for index, sample in enumerate(signature.samples)
    ]


# Lines that count by themselves; the others are lines of a connection that count through
# another of its lines: a connection's opening, a line naming no client, a close that
# settles one, an attempt waiting for its verdict (tested below).
SAMPLES = samples(lambda s: s.keyed == 0 and not s.waits)
WAITING = samples(lambda s: s.waits)
OPENING = samples(lambda s: s.role is Role.OPEN)
ADDRESSLESS = samples(lambda s: s.keyed == 2 and s.role is not Role.OPEN)
SETTLING = samples(lambda s: s.settles)


def test_every_signature_has_samples() -> None:
    assert SIGNATURES
    assert all(signature.samples for signature in SIGNATURES)


@pytest.mark.parametrize(("signature", "sample"), SAMPLES)
@pytest.mark.parametrize(
    "header",
    [
        "Nov 23 06:50:01 host sshd[1234]: ",
        "Nov  3 06:50:01 host sshd-session[1234]: ",
        "Nov 23 06:50:01 sshd[1234]: ",
        "2026-11-23T06:50:01.123456+01:00 host sshd[1234]: ",
        "2026-11-23T06:50:01Z host sshd-session[1234]: ",
    ],
    ids=["syslog", "sshd-session", "no-hostname", "rfc3339", "rfc3339-z"],
)
def test_sample_counts_its_address(signature, sample: str, header: str) -> None:
    start, end = last_address(sample)
    expected = canonical(sample[start:end])
    hits = hits_of(header + sample + "\n")
    assert len(hits) == 1, (signature.name, header + sample, hits)
    assert hits[0][1] == expected
    assert hits[0][3] == "sshd"


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
    start, end = last_address(sample)
    hits = hits_of(HEADER + sample[:start] + written + sample[end:] + "\n")
    assert [hit[1] for hit in hits] == [expected], (signature.name, sample)


@pytest.mark.parametrize(("signature", "sample"), WAITING)
def test_waiting_sample_counts_through_its_connections_close(signature, sample: str) -> None:
    """A refusal another module or key may overturn counts nothing itself; the close of its
    connection counts the attempt for the address it named, a success nothing."""
    start, end = last_address(sample)
    written = sample[start:end]
    assert hits_of(HEADER + sample + "\n") == []
    close = f"{HEADER}Connection closed by authenticating user x {written} port 5 [preauth]\n"
    assert [hit[1] for hit in hits_of(HEADER + sample + "\n" + close)] == [canonical(written)]
    accepted = f"{HEADER}Accepted password for x from {written} port 5 ssh2\n"
    assert hits_of(HEADER + sample + "\n" + accepted) == []


@pytest.mark.parametrize(("signature", "sample"), OPENING)
def test_opening_sample_names_the_address_of_its_connections_later_lines(
    signature, sample: str
) -> None:
    start, end = last_address(sample.split(" port ")[0].split(";Remote: ")[-1] + " ")
    written = sample.split(" port ")[0].split(";Remote: ")[-1][start:end]
    later = f"{HEADER}Disconnecting: Too many authentication failures [preauth]\n"
    assert hits_of(HEADER + sample + "\n") == []
    assert [hit[1] for hit in hits_of(HEADER + sample + "\n" + later)] == [canonical(written)]
    # Another pid's line is another connection's.
    other = later.replace("sshd[1234]", "sshd[1235]")
    assert hits_of(HEADER + sample + "\n" + other) == []


@pytest.mark.parametrize(("signature", "sample"), ADDRESSLESS)
def test_addressless_sample_counts_for_its_connections_opening_address(
    signature, sample: str
) -> None:
    opening = f"{HEADER}Connection from {A} port 5000 on 192.0.2.9 port 22\n"
    assert hits_of(HEADER + sample + "\n") == []
    assert [hit[1] for hit in hits_of(opening + HEADER + sample + "\n")] == [A]
    # One connection counts once.
    assert counts(opening + (HEADER + sample + "\n") * 2) == {A: 1}


@pytest.mark.parametrize(("signature", "sample"), ADDRESSLESS)
def test_addressless_sample_never_takes_a_reused_pids_older_address(signature, sample: str) -> None:
    """A pid's older lines may be another connection's (the pid reused): only its opening
    line names the address of a line that names none; otherwise the pid's next line with
    an address does."""
    innocent = "203.0.113.9"
    earlier = f"{HEADER}Accepted publickey for alice from {innocent} port 4000 ssh2: RSA SHA256:k\n"
    assert counts(earlier + HEADER + sample + "\n") == {}
    closed = f"{HEADER}Connection closed by {A} port 5000 [preauth]\n"
    assert counts(earlier + HEADER + sample + "\n" + closed) == {A: 1}


@pytest.mark.parametrize(("signature", "sample"), SETTLING)
def test_settling_sample_counts_only_for_a_line_that_waited(signature, sample: str) -> None:
    start, end = last_address(sample)
    written = canonical(sample[start:end])
    waiting = f"{HEADER}error: kex_exchange_identification: Connection closed by remote host\n"
    assert hits_of(HEADER + sample + "\n") == []
    assert [hit[1] for hit in hits_of(waiting + HEADER + sample + "\n")] == [written]
    # OpenSSH 7.4 (VERBOSE) ends an innocent session with the same words.
    session = f"{HEADER}Accepted password for alice from {sample[start:end]} port 5 ssh2\n"
    assert hits_of(session + HEADER + sample + "\n") == []


def test_a_banner_exchange_failure_counts_once_per_connection() -> None:
    """OpenSSH 8.0+: kex_exchange_identification's error, then sshpkt_fatal's close."""
    text = line("error: kex_exchange_identification: read: Connection reset by peer") + line(
        f"Connection reset by {A} port 5000"
    )
    assert counts(text) == {A: 1}
    opened = line(f'Connection from {A} port 5000 on 192.0.2.9 port 22 rdomain ""') + text
    assert counts(opened) == {A: 1}


@pytest.mark.parametrize(
    "text",
    [
        # metalog (Gentoo): "[program] " after the stamp, no host, no pid
        f"Jun 25 23:53:34 [sshd] User root from {A} not allowed because not listed in AllowUsers",
        f"Mar  3 00:17:22 [sshd]: User root from {A} not allowed because not listed in AllowUsers",
        # Solaris syslogd: message id and facility.level
        f"Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] Failed keyboard-interactive"
        f" for <invalid username> from {A} port 42742 ssh2",
        # RFC 5424 with structured data whose quoted value holds an unescaped "]"
        '<38>1 2019-07-08T17:40:17.954167-04:00 host sshd 55555 - [timeQuality tzKnown="1"]'
        f'[x@123 test="[brackets]"] Failed unknown for invalid user redmond from {A} port 5 ssh2',
    ],
    ids=["metalog", "metalog-colon", "solaris", "rfc5424-quoted"],
)
def test_other_syslog_writers(text: str) -> None:
    assert counts(text + "\n") == {A: 1}


@pytest.mark.parametrize(("signature", "sample"), SAMPLES)
def test_sample_from_a_hostname_is_not_attributed(signature, sample: str) -> None:
    """UseDNS names are claims: the engine must not turn them into an address. A verdict or
    close that names a host is handed to the identity stage; an announcement that names one
    waits for the verdict (which sshd writes with the address) and counts nothing itself."""
    start, end = last_address(sample)
    stream = MATCHER.stream(reference=REFERENCE)
    text = HEADER + sample[:start] + "scanner.example.net" + sample[end:] + "\n"
    assert stream.feed(text.encode()) == []
    named = stream.take_named()
    if signature.role is Role.ANNOUNCE or "<ADDR>" in signature.message:
        # libwrap writes the address itself, never a name: a name there is not its line.
        assert (named, stream.stats.unattributed) == ([], 0)
    else:
        assert stream.stats.unattributed == 1
        assert [(hit[1], hit[3]) for hit in named] == [("scanner.example.net", "sshd")]
        assert named[0][4] == text.strip()
    assert stream.take_named() == []


def test_a_named_announcement_and_its_verdict_count_once_with_the_address() -> None:
    """sshd with UseDNS yes: pam's rhost= carries the name, "Failed password" the address."""
    stream = MATCHER.stream(reference=REFERENCE)
    pam = (
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh"
        " ruser= rhost=nx.attacker.test  user=root"
    )
    lines = [
        f"{HEADER}{pam}",
        f"{HEADER}Failed password for root from 198.51.100.7 port 4242 ssh2",
        f"{HEADER}{pam}",
        f"{HEADER}Failed password for root from 198.51.100.7 port 4242 ssh2",
        f"{HEADER}Connection closed by authenticating user root 198.51.100.7 port 4242 [preauth]",
    ]
    hits = stream.feed(("\n".join(lines) + "\n").encode())
    assert [hit[1] for hit in hits] == ["198.51.100.7", "198.51.100.7"]
    assert (stream.take_named(), stream.stats.unattributed) == ([], 0)


def test_break_in_lines_count_only_with_a_weight() -> None:
    """ "POSSIBLE BREAK-IN ATTEMPT!" says reverse DNS is broken: no failure unless a jail
    gives it a weight; then the address in brackets (never the PTR name) counts."""
    line = (
        f"{HEADER}reverse mapping checking getaddrinfo for mail.innocent.test [198.51.100.7]"
        " failed - POSSIBLE BREAK-IN ATTEMPT!\n"
    ).encode()
    assert Matcher({"sshd": "sshd"}).stream(reference=REFERENCE).feed(line) == []
    weighted = Matcher({"sshd": "sshd", "quiet": "sshd"}, {"sshd": 2})
    hits = weighted.stream(reference=REFERENCE).feed(line)
    assert [(hit[1], hit[3]) for hit in hits] == [("198.51.100.7", "sshd")] * 2
    framed = line.replace(b"mail.innocent.test", b"203.0.113.9")
    assert {hit[1] for hit in weighted.stream(reference=REFERENCE).feed(framed)} == {"198.51.100.7"}


# -- real logs -------------------------------------------------------------------------------

LOGS: dict[str, dict[str, int]] = {
    "openssh6_ubuntu1404.log": {
        "203.0.113.5": 1,  # Invalid user + pam + Failed password: one attempt
        "198.51.100.23": 6,  # root, six passwords (pam logs the first only)
        "192.0.2.200": 1,  # scanner: no identification string
        "198.51.100.99": 1,  # HTTP request to port 22
        "198.51.100.44": 2,  # AllowUsers refusal, two passwords
    },
    "openssh7_centos7.log": {
        "203.0.113.5": 1,
        "198.51.100.23": 6,  # one line + "message repeated 5 times"
        "192.0.2.200": 1,
        "198.51.100.99": 1,  # TLS client hello
        "203.0.113.66": 1,  # Unable to negotiate
        "198.51.100.31": 2,  # keyboard-interactive/pam, two tries
        "203.0.113.80": 1,  # jsch "Auth fail" disconnect
    },
    "openssh8_debian11.log": {
        "203.0.113.5": 2,
        "198.51.100.23": 6,
        "198.51.100.24": 4,  # two interleaved connections, two passwords each
        "203.0.113.9": 1,  # interleaved with them
        "203.0.113.70": 1,  # LoginGraceTime
        "203.0.113.71": 1,  # MAC error
        "203.0.113.66": 1,
        "198.51.100.99": 1,  # banner exchange: invalid format
        "192.0.2.30": 1,  # closed before its banner: 8.0+'s "Did not receive identification"
    },
    "openssh9_debian12.log": {
        "203.0.113.5": 1,
        "198.51.100.50": 1,
        "198.51.100.51": 1,
        "198.51.100.52": 1,  # Received disconnect + Disconnected: one connection
        "198.51.100.98": 1,
        "2001:db8::66": 4,  # pam + 1 line + "message repeated 3 times"
        "198.51.100.7": 1,  # written as ::ffff:198.51.100.7
        "203.0.113.66": 1,
        "203.0.113.70": 1,
    },
    "openssh98_sshd_session.log": {
        "203.0.113.5": 2,
        "2001:db8::77": 1,
        "198.51.100.70": 1,
    },
    # OpenSSH 6.x wrote these without " port N".
    "openssh6_scanners.log": {
        "203.0.113.77": 1,
        "203.0.113.78": 1,
        "203.0.113.79": 1,
    },
    # Real OpenSSH 9.2p1 (Debian 12, tests/sshlab.py), TrustedUserCAKeys, PermitRootLogin
    # no; LogLevel INFO (root) and VERBOSE (the rest).
    "openssh92_debian12_cert_root.log": {
        "198.51.100.60": 1,  # ROOT LOGIN REFUSED twice (monitor, [preauth] child): one
        "2001:db8::60": 1,
        "198.51.100.61": 1,  # VERBOSE: refusal, verdict, the child's copy: one; then a
        # connection offering an untrusted certificate and its plain key: it counts when it
        # ends without a key accepted, which the capture does not hold
        "203.0.113.21": 3,  # three connections, each an untrusted certificate + its key
        "203.0.113.22": 3,  # invalid user: no Failed publickey line, Invalid user counts
    },
    # Real OpenSSH 9.2p1, keyboard-interactive through PAM (Debian's stack, then one with
    # "auth required pam_unix.so" for Linux-PAM's "User not known …"). pam_unix writes from
    # sshd's PAM child, under another pid than sshd's own lines: paired by address, each
    # attempt counts once; the password attempt (pam in sshd's own process) once too.
    "openssh92_debian12_kbdint_pam.log": {
        "203.0.113.31": 1,
        "203.0.113.32": 1,
        "203.0.113.33": 1,
        "198.51.100.31": 1,
        "198.51.100.32": 1,
        "198.51.100.33": 1,
        "2001:db8::32": 1,
        "198.51.100.34": 1,
    },
    # RedHat-era, from OpenSSH 3.6.1/3.9 and Linux-PAM 0.75/0.77 sources (auth.c, auth-pam.c,
    # canohost.c; pam_unix support.c _log_err): "sshd(pam_unix)[pid]", tty=NODEVssh, sshd
    # writing "::ffff:ADDR" where pam has the plain address (same connection, one attempt).
    "openssh36_rhel3.log": {
        "203.0.113.5": 1,  # Illegal user + pam + Failed password for illegal user
        "198.51.100.23": 3,
        "198.51.100.77": 1,  # pam's rhost is the PTR name, the verdict has the address
        "198.51.100.44": 1,  # protocol 1
        "192.0.2.200": 1,
    },
    "openssh39_rhel4.log": {
        "203.0.113.5": 1,
        "198.51.100.23": 2,
        "198.51.100.44": 1,  # "User bob not allowed" had no address in 3.9
        "2001:db8::66": 1,
    },
}


@pytest.mark.parametrize("name", sorted(LOGS))
def test_real_log_counts_per_address(name: str) -> None:
    data = (DATA / "sshd" / name).read_bytes()
    stream = MATCHER.stream(reference=REFERENCE)
    hits = stream.feed(data)
    assert stream.stats.lines == data.count(b"\n")
    assert stream.stats.bad_time == 0
    assert dict(Counter(hit[1] for hit in hits)) == LOGS[name]


def test_keyboard_interactive_through_pam_counts_each_attempt_once() -> None:
    data = (DATA / "sshd" / "openssh92_debian12_kbdint_pam.log").read_bytes()
    assert set(counts(data).values()) == {1}


def pam_child(pid: int, address: str, user: str = "") -> str:
    suffix = f"  user={user}" if user else " "
    return (
        f"Nov 23 22:09:25 bastion sshd[{pid}]: pam_unix(sshd:auth): authentication failure;"
        f" logname= uid=0 euid=0 tty=ssh ruser= rhost={address}{suffix}\n"
    )


def sshd_says(pid: int, message: str) -> str:
    return f"Nov 23 22:09:27 bastion sshd[{pid}]: {message}\n"


def test_parallel_keyboard_interactive_attempts_each_count_once() -> None:
    """Two connections of one attacker, their PAM children's lines before either verdict:
    two attempts, two counts, whichever verdict comes first."""
    a = "198.51.100.7"
    data = (
        pam_child(102, a, "root")
        + pam_child(202, a, "admin")
        + sshd_says(200, f"error: PAM: Authentication failure for admin from {a}")
        + sshd_says(100, f"error: PAM: Authentication failure for root from {a}")
    )
    assert counts(data.encode()) == {a: 2}


def test_parallel_password_attempts_are_not_hidden_behind_an_invalid_user() -> None:
    """An attacker mixing an invalid user on one connection with password guesses on
    another: the guesses' pam lines are not PAM children of the invalid user's attempt
    (their pids go on to write their own verdicts), so every guess counts."""
    a = "198.51.100.7"
    data = sshd_says(100, f"Invalid user x from {a} port 5000")
    for pid in (200, 300, 400):
        data += pam_child(pid, a, "root") + sshd_says(
            pid, f"Failed password for root from {a} port {pid} ssh2"
        )
    data += sshd_says(100, f"Failed password for invalid user x from {a} port 5000 ssh2")
    assert counts(data.encode()) == {a: 4}


def test_a_pam_childs_line_counts_only_through_a_verdict() -> None:
    """pam_unix's line says pam_unix refused; the verdict (sshd's own, with the address
    sshd wrote) counts the attempt, whichever the child's pid and address."""
    data = pam_child(102, "198.51.100.7", "root") + sshd_says(
        100, "error: PAM: Authentication failure for root from 203.0.113.9"
    )
    assert counts(data.encode()) == {"203.0.113.9": 1}
    assert counts(pam_child(102, "198.51.100.7", "root").encode()) == {}


def test_pam_unix_refusal_a_later_module_overturns_counts_nothing() -> None:
    """pam_unix before pam_sss or pam_ldap (RHEL with SSSD, LDAP hosts): every directory
    user's login starts with pam_unix's refusal; the login succeeds."""
    data = (
        line(
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh"
            f" ruser= rhost={A}  user=rda"
        )
        + line(f"Accepted password for rda from {A} port 5000 ssh2")
        + line("pam_unix(sshd:session): session opened for user rda(uid=1000) by (uid=0)")
    )
    assert counts(data * 5) == {}


def test_pam_unix_refusal_then_the_connection_closes_counts_once() -> None:
    pam = (
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh"
        f" ruser= rhost={A}  user=root"
    )
    assert counts(line(pam) + line(f"Connection closed by {A} port 5000 [preauth]")) == {A: 1}


def test_a_valid_users_refused_keys_count_once_when_none_is_accepted() -> None:
    """An agent offers its keys in turn (sshd writes the refusals at INFO after MaxAuthTries
    / 2): a user whose last key is accepted made no failed attempt; a connection that ends
    with none accepted is one."""
    refused = "".join(
        line(f"Failed publickey for git from {A} port 5000 ssh2: RSA SHA256:k{n}") for n in range(3)
    )
    accepted = line(f"Accepted publickey for git from {A} port 5000 ssh2: RSA SHA256:k3")
    assert counts(refused + accepted) == {}
    closed = line(
        f"Disconnecting authenticating user git {A} port 5000: Too many authentication"
        " failures [preauth]"
    )
    assert counts(refused + closed) == {A: 1}
    # An invalid user's refused key is an attempt of its own.
    invalid = line(f"Failed publickey for invalid user git from {A} port 5000 ssh2: RSA SHA256:k")
    assert counts(invalid * 2) == {A: 2}


def test_every_real_log_is_checked() -> None:
    assert {path.name for path in (DATA / "sshd").glob("*.log")} == set(LOGS)


@pytest.mark.parametrize("name", sorted(LOGS))
def test_real_log_counts_do_not_depend_on_chunking(name: str) -> None:
    """A source hands lines over in arbitrary batches: the connection state must carry over."""
    data = (DATA / "sshd" / name).read_bytes()
    stream = MATCHER.stream(reference=REFERENCE)
    hits: list[Hit] = []
    for physical in data.splitlines(keepends=True):
        hits.extend(stream.feed(physical))
    assert hits == MATCHER.stream(reference=REFERENCE).feed(data)


def test_benign_lines_in_real_logs_never_count() -> None:
    for name in LOGS:
        found = counts((DATA / "sshd" / name).read_bytes())
        for address in ("192.0.2.10", "2001:db8::10", "192.0.2.1"):
            assert address not in found, (name, address)


# -- one attempt counts once -------------------------------------------------------------------


def test_invalid_user_pam_and_failed_password_are_one_attempt() -> None:
    text = (
        line(f"Invalid user x from {A} port 5000")
        + line(
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh"
            f" ruser= rhost={A} "
        )
        + line(f"Failed password for invalid user x from {A} port 5000 ssh2")
    )
    hits = hits_of(text)
    assert [(hit[1], hit[2]) for hit in hits] == [(A, "x")]


def test_two_passwords_in_one_connection_are_two_attempts() -> None:
    text = (
        line(f"Invalid user x from {A} port 5000")
        + line(f"Failed password for invalid user x from {A} port 5000 ssh2")
        + line(f"Failed password for invalid user x from {A} port 5000 ssh2")
    )
    assert counts(text) == {A: 2}


def test_a_connection_closed_before_authenticating_counts_once() -> None:
    assert counts(line(f"Connection closed by {A} port 5000 [preauth]")) == {A: 1}


def test_disconnect_after_a_counted_failure_adds_nothing() -> None:
    text = (
        line(f"Failed password for root from {A} port 5000 ssh2")
        + line(f"Received disconnect from {A} port 5000:11: Bye Bye [preauth]")
        + line(f"Disconnected from authenticating user root {A} port 5000 [preauth]")
        + line(f"Connection closed by authenticating user root {A} port 5000 [preauth]")
    )
    assert counts(text) == {A: 1}


def test_message_repeated_counts_each_repetition() -> None:
    text = line(f"message repeated 3 times: [ Failed password for root from {A} port 5000 ssh2]")
    hits = hits_of(text)
    assert [(hit[1], hit[2]) for hit in hits] == [(A, "root")] * 3


def test_message_repeated_after_the_announced_attempt() -> None:
    text = (
        line(
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh"
            f" ruser= rhost={A}  user=root"
        )
        + line(f"Failed password for root from {A} port 5000 ssh2")
        + line(f"message repeated 2 times: [ Failed password for root from {A} port 5000 ssh2]")
    )
    assert counts(text) == {A: 3}


def test_interleaved_connections_count_separately() -> None:
    other = "203.0.113.9"
    text = (
        line(f"Invalid user x from {A} port 5000", pid=10)
        + line(f"Invalid user y from {A} port 5001", pid=11)
        + line(f"Invalid user z from {other} port 6000", pid=12)
        + line(f"Failed password for invalid user x from {A} port 5000 ssh2", pid=10)
        + line(f"Failed password for invalid user z from {other} port 6000 ssh2", pid=12)
        + line(f"Failed password for invalid user y from {A} port 5001 ssh2", pid=11)
        + line(f"Connection closed by invalid user y {A} port 5001 [preauth]", pid=11)
        + line(f"Connection closed by {A} port 5002 [preauth]", pid=13)
    )
    assert counts(text) == {A: 3, other: 1}


def test_a_new_connection_reusing_an_old_pid_counts_again() -> None:
    """PIDs wrap: the same pid an hour later is another connection."""
    text = line(f"Failed password for root from {A} port 5000 ssh2", pid=77) + (
        f"Nov 23 07:50:01 host sshd[77]: Connection closed by {A} port 6000 [preauth]\n"
    )
    assert counts(text) == {A: 2}


ROOT_CERT = (
    "ssh2: ED25519-CERT SHA256:v973oRTTFazIsK93jOGdHMxJKEmaZUYVNv2bXWl8lGg ID root-cert"
    " (serial 7) CA ED25519 SHA256:tDYN1h3DYoE9brG/eW881mr5W6qve4Z2lNcBS5sbNHM"
)


@pytest.mark.parametrize("verbose", [False, True], ids=["info", "verbose"])
def test_root_login_refused_by_the_monitor_and_the_child_is_one_attempt(verbose: bool) -> None:
    """Real OpenSSH 9.2: the monitor's refusal, (VERBOSE: its verdict,) the child's copy."""
    text = line(f"ROOT LOGIN REFUSED FROM {A} port 5000")
    if verbose:
        text += line(f"Failed publickey for root from {A} port 5000 {ROOT_CERT}")
    text += (
        line(f"ROOT LOGIN REFUSED FROM {A} port 5000 [preauth]")
        + line("refusing previously-used ED25519 key [preauth]")
        + line(f"Connection closed by authenticating user root {A} port 5000 [preauth]")
    )
    assert counts(text) == {A: 1}
    # Two connections refused are two attempts.
    assert counts(text + text.replace("sshd[1234]", "sshd[1235]")) == {A: 2}


def test_ipv4_mapped_and_plain_address_of_one_connection_are_one_attempt() -> None:
    """OpenSSH 3.9 gave pam the plain address and wrote the IPv4-mapped one itself."""
    pam = f"authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost={A}  user=root"
    text = (
        line(pam, program="sshd(pam_unix)")
        + line(f"Failed password for root from ::ffff:{A} port 5000 ssh2")
        + line(f"Invalid user x from ::FFFF:{A}", pid=99)
        + line(f"Failed password for invalid user x from {A} port 5001 ssh2", pid=99)
    )
    assert counts(text) == {A: 2}


@pytest.mark.parametrize(
    ("signature", "sample"),
    [
        pytest.param(signature, sample, id=f"{signature.name}-{index}")
        for signature in PAM_UNIX_SIGNATURES
        for index, sample in enumerate(signature.samples)
    ],
)
def test_redhat_era_pam_unix_sample_counts_through_its_verdict(signature, sample: str) -> None:
    start, end = last_address(sample)
    assert hits_of(line(sample, program="sshd(pam_unix)")) == []
    # pam_unix runs in sshd's process: the verdict with the same pid is the same attempt.
    verdict = f"Failed password for root from {sample[start:end]} port 5 ssh2"
    hits = hits_of(line(sample, program="sshd(pam_unix)") + line(verdict))
    assert [(hit[1], hit[3]) for hit in hits] == [(canonical(sample[start:end]), "sshd")]


def test_roles_cover_every_role() -> None:
    assert {signature.role for signature in SIGNATURES} == set(Role)


# -- lines that must never count ---------------------------------------------------------------

H = "Nov 23 06:50:01 host "
NEVER = [
    f"{H}sudo:    alice : 3 incorrect password attempts ; TTY=pts/0 ; USER=root ;"
    f" COMMAND=/bin/sh from {A}",
    f"{H}sudo: pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0"
    f" tty=/dev/pts/0 ruser=alice rhost={A}  user=alice",
    f"{H}CRON[4321]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
    f"{H}myapp[1]: Failed password for root from {A} port 5000 ssh2",
    f"{H}myapp: Failed password for root from {A} port 5000 ssh2",
    f"{H}sshd2[1]: Failed password for root from {A} port 5000 ssh2",
    f"{H}dropbear[1]: Connection closed by {A} port 5000 [preauth]",
    f"{H}sshd[1]: Accepted publickey for deploy from {A} port 5000 ssh2:"
    " ED25519 SHA256:p9bX0h8JtI5Wq1nqz5cH0a7sVxkq1iYf7eQpKc3mF2w",
    f"{H}sshd[1]: Accepted password for deploy from {A} port 5000 ssh2",
    f"{H}sshd[1]: Disconnected from user deploy {A} port 5000",
    f"{H}sshd[1]: Received disconnect from {A} port 5000:11: disconnected by user",
    f"{H}sshd[1]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)",
    f"{H}sshd[1]: pam_unix(sshd:session): session closed for user deploy",
    f'{H}sshd[1]: Connection from {A} port 5000 on 192.0.2.1 port 22 rdomain ""',
    f"{H}sshd[1]: Postponed publickey for deploy from {A} port 5000 ssh2 [preauth]",
    f"{H}sshd[1]: Server listening on 0.0.0.0 port 22.",
    f"{H}sshd[1]: Received signal 15; terminating.",
    f"{H}sshd[1]: PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser="
    f" rhost={A}  user=root",
    f"{H}sshd[1]: input_userauth_request: invalid user admin [preauth]",
    f"{H}sshd[1]: Accepted publickey for deploy from {A} port 5000 ssh2: ED25519-CERT"
    " SHA256:3z5l6TMthUxu7FPeDVaIKDBPd0FIvIaJpu6BgEHJ8VM ID deploy (serial 1) CA ED25519"
    " SHA256:8NG18DA1I6XzbyiTuw+T3ng7i0vwDs6gcUS449vn5+8",
    f"{H}sshd[1]: refusing previously-used ED25519 key [preauth]",
    f"{H}sshd[1]: Postponed keyboard-interactive for invalid user bob from {A} port 5 ssh2"
    " [preauth]",
    f"{H}sshd[1]: error: PAM: Authentication service cannot retrieve authentication info for"
    f" bob from {A}",
    f"{H}sshd[1]: error: PAM: pam_setcred(): Failure setting user credentials",
    f"{H}sshd(pam_unix)[1]: check pass; user unknown",
    f"{H}sshd(pam_unix)[1]: 2 more authentication failures; logname= uid=0 euid=0"
    f" tty=NODEVssh ruser= rhost={A}  user=root",
    f"{H}sshd(pam_unix)[1]: session opened for user deploy by (uid=0)",
    f"{H}su(pam_unix)[1]: authentication failure; logname=alice uid=500 euid=0 tty= ruser=alice"
    f" rhost={A}  user=root",
]


@pytest.mark.parametrize("text", NEVER)
def test_line_never_counts(text: str) -> None:
    stream = MATCHER.stream(reference=REFERENCE)
    assert stream.feed((text + "\n").encode()) == []
    assert stream.stats.lines == 1


# -- hostile corpus ------------------------------------------------------------------------------

DECOYS = {"198.51.100.7", "203.0.113.9", "2001:db8::bad"}


def hostile_cases() -> list[tuple[str, str, bytes]]:
    cases = []
    for raw in (DATA / "hostile" / "sshd.txt").read_bytes().splitlines():
        if not raw or raw.startswith(b"#"):
            continue
        expected, why, text = raw.split(b"\t", 2)
        cases.append((expected.decode(), why.decode(), text))
    return cases


HOSTILE = hostile_cases()


def test_hostile_corpus_is_large_enough() -> None:
    assert len(HOSTILE) >= 40
    assert sum(expected == "none" for expected, _why, _text in HOSTILE) >= 5


@pytest.mark.parametrize(
    ("expected", "why", "text"), HOSTILE, ids=[f"{i:02d}" for i in range(len(HOSTILE))]
)
def test_hostile_line_reports_only_the_real_address(expected: str, why: str, text: bytes) -> None:
    stream = MATCHER.stream(reference=REFERENCE)
    hits = stream.feed(text + b"\n")
    addresses = {hit[1] for hit in hits}
    last = stream.last_match()
    if expected.startswith("waits:"):  # counts nothing; names the address for its verdict
        assert hits == [] and last is not None, why
        addresses, expected = {canonical(last[1])}, expected[6:]
    assert not addresses & DECOYS, why
    if expected == "none":
        assert hits == [], why
    else:
        assert addresses == {expected}, why


def test_hostile_corpus_as_one_log() -> None:
    """Fed as one file, the corpus still reports only real addresses."""
    text = b"\n".join(text for _e, _w, text in HOSTILE) + b"\n"
    stream = MATCHER.stream(reference=REFERENCE)
    hits = stream.feed(text)
    assert stream.stats.lines == len(HOSTILE)
    assert {hit[1] for hit in hits} == {
        e for e, _w, _t in HOSTILE if e != "none" and not e.startswith("waits:")
    }
