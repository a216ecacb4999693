"""Write a realistic, reproducible auth.log for benchmarks: mostly brute-force chatter.

Why a generator: real logs hold real people's addresses and cannot be shipped, and a
benchmark must be repeatable. The same ``--seed`` and ``--lines`` give the same bytes.

Each attacking connection writes the sequence OpenSSH 9.x (Debian 12: 9.2p1) and pam_unix
really write, under one pid, as Debian's rsyslog files it; connections interleave by time.
About 20,000 attacker addresses (random public-looking IPv4, some IPv6 and some logged as
IPv4-mapped ``::ffff:a.b.c.d``) get a Zipf-like share of connections, in bursts over weeks.
Benign lines (CRON, systemd-logind, a deploy user's key logins, sudo) are mixed in.
It is a file: no traffic is sent to any of the addresses.

    python bench/gen_authlog.py --lines 1000000 --out bench/data/auth.log

Issue 18's second log (40 % IPv6 attackers, RFC 3339 stamps, OpenSSH 9.8's sshd-session):

    python bench/gen_authlog.py --lines 1000000 --ipv6 0.4 --format rfc3339 \
        --program sshd-session --out bench/data/auth-v6.log
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import ipaddress
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["generate", "main"]

Line = tuple[float, str, int, str]  # (time, program, pid, message)

# Networks no attacker address is drawn from: private, loopback, shared, link-local,
# documentation, benchmarking, multicast and reserved space (it must look public).
_EXCLUDED_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/3",
    )
]
_EXCLUDED_RANGES = [(int(n.network_address), int(n.broadcast_address)) for n in _EXCLUDED_V4]
# fmt: off
# Real allocated IPv6 prefixes that show up in attack logs (hosting and access networks).
_V6_PREFIXES = (0x2001_0470, 0x2001_41D0, 0x2400_CB00, 0x2404_6800, 0x2A01_04F8, 0x2A03_B0C0,
                0x240E_0000, 0x2409_8A00, 0x2604_A880, 0x2607_F8B0, 0x2A0C_9A40, 0x2A10_CC40)

# User names attackers try, roughly by popularity; "" is a real (empty) attempt.
_INVALID_USERS = (
    "admin", "user", "test", "ubuntu", "oracle", "postgres", "git", "ftpuser", "pi", "guest",
    "support", "hadoop", "ftp", "jenkins", "ubnt", "debian", "centos", "minecraft", "steam",
    "es", "elastic", "mysql", "nagios", "tomcat", "www", "web", "dev", "testuser", "server",
    "sysadmin", "administrator", "user1", "test1", "vagrant", "docker", "ansible", "odoo",
    "sol", "solana", "validator", "node", "zabbix", "ts3", "teamspeak", "gitlab", "nginx",
    "apache", "backup", "ec2-user", "azureuser", "mother", "student", "demo", "alex", "john",
    "oscar", "dspace", "frappe", "kafka", "redis", "mongodb", "sftp", "upload", "webadmin",
    "1234", "0", "", "default", "operator", "service", "Admin", "root1", "rootadmin",
)
_VALID_USERS = ("root", "root", "root", "root", "deploy", "www-data", "backup")
# fmt: on
_BYE = (
    "Bye Bye",
    "Bye Bye",
    "Normal Shutdown, Thank you for playing",
    "Client disconnecting normally",
)
_KEX_OFFERS = (
    "diffie-hellman-group14-sha1,diffie-hellman-group-exchange-sha1,diffie-hellman-group1-sha1",
    "diffie-hellman-group1-sha1,diffie-hellman-group14-sha1",
    "diffie-hellman-group-exchange-sha1,diffie-hellman-group1-sha1",
)
_HOSTKEY_OFFERS = ("ssh-rsa,ssh-dss", "ssh-dss", "ssh-rsa")
_BAD_BANNERS = ("GET / HTTP/1.1", "\\026\\003\\001", "SSH-2.0-Go", "MGLNDD_203.0.113.1_22")
_ADMIN_ADDRESSES = ("192.0.2.10", "192.0.2.44", "2001:db8:100::5")
_CRON_JOBS = (
    (
        300,
        "[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then "
        "/usr/lib/php/sessionclean; fi",
    ),
    (3600, "cd / && run-parts --report /etc/cron.hourly"),
    (600, "command -v debian-sa1 > /dev/null && debian-sa1 1 1"),
)
_SUDO_COMMANDS = (
    "/usr/bin/systemctl restart nginx",
    "/usr/bin/apt-get update",
    "/usr/bin/journalctl -u ssh -n 200",
    "/usr/bin/tail -n 100 /var/log/auth.log",
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _public_v4(rng: random.Random) -> int:
    while True:
        value = rng.getrandbits(32)
        if not any(low <= value <= high for low, high in _EXCLUDED_RANGES):
            return value


def attacker_addresses(rng: random.Random, count: int, ipv6: float = 0.03) -> list[str]:
    """Distinct public-looking addresses as sshd logs them; some share a /24 (botnets).

    ``ipv6`` is the share of IPv6 attackers; 2 % of all are IPv4 logged IPv4-mapped."""
    seen: set[str] = set()
    out: list[str] = []
    v4: list[int] = []
    while len(out) < count:
        roll = rng.random()
        if roll < ipv6:
            text = str(
                ipaddress.IPv6Address(
                    (rng.choice(_V6_PREFIXES) << 96) | rng.getrandbits(64 + 16 * rng.randint(0, 1))
                )
            )
        else:
            if v4 and roll < ipv6 + 0.12:  # a neighbour of an earlier attacker: same hoster's /24
                value = (rng.choice(v4) & 0xFFFFFF00) | rng.randint(1, 254)
            else:
                value = _public_v4(rng)
            v4.append(value)
            text = str(ipaddress.IPv4Address(value))
            if roll > 0.98:  # sshd on a dual-stack socket logs the IPv4-mapped form
                text = "::ffff:" + text
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


class _Connections:
    """Builds the lines of one connection: (offset seconds, message) pairs, sshd's order."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def _pam_fail(self, ip: str, user: str | None) -> str:
        tail = f"  user={user}" if user else ""
        return (
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
            f"ruser= rhost={ip}{tail}"
        )

    def _more(self, count: int, ip: str, user: str | None) -> str:
        tail = f"  user={user}" if user else ""
        return (
            f"PAM {count} more authentication failures; logname= uid=0 euid=0 tty=ssh "
            f"ruser= rhost={ip}{tail}"
        )

    def invalid_user(self, ip: str, port: int) -> list[tuple[float, str]]:
        rng = self.rng
        user = rng.choice(_INVALID_USERS)
        tries = 1 if rng.random() < 0.8 else rng.randint(2, 3)
        t = rng.uniform(0.05, 0.6)
        out = [(0.0, f"Invalid user {user} from {ip} port {port}")]
        for attempt in range(tries):
            out.append((t, "pam_unix(sshd:auth): check pass; user unknown"))
            if attempt == 0:
                out.append((t, self._pam_fail(ip, None)))
            t += rng.uniform(1.8, 3.2)  # pam_unix's failure delay
            out.append((t, f"Failed password for invalid user {user} from {ip} port {port} ssh2"))
            t += rng.uniform(0.05, 0.5)
        if rng.random() < 0.7:
            out.append(
                (t, f"Received disconnect from {ip} port {port}:11: {rng.choice(_BYE)} [preauth]")
            )
            out.append((t, f"Disconnected from invalid user {user} {ip} port {port} [preauth]"))
        else:
            out.append((t, f"Connection closed by invalid user {user} {ip} port {port} [preauth]"))
        if tries > 1:
            out.append((t, self._more(tries - 1, ip, None)))
        return out

    def valid_user(self, ip: str, port: int) -> list[tuple[float, str]]:
        rng = self.rng
        user = rng.choice(_VALID_USERS)
        tries = rng.choice((1, 1, 1, 2, 3, 6, 6))
        t = rng.uniform(0.05, 0.6)
        out = [(t, self._pam_fail(ip, user))]
        for _ in range(tries):
            t += rng.uniform(1.8, 3.2)
            out.append((t, f"Failed password for {user} from {ip} port {port} ssh2"))
        t += rng.uniform(0.05, 0.5)
        if tries == 6:  # MaxAuthTries 6
            out.append(
                (
                    t,
                    f"error: maximum authentication attempts exceeded for {user} from "
                    f"{ip} port {port} ssh2 [preauth]",
                )
            )
            out.append(
                (
                    t,
                    f"Disconnecting authenticating user {user} {ip} port {port}: "
                    "Too many authentication failures [preauth]",
                )
            )
        elif rng.random() < 0.5:
            out.append(
                (t, f"Connection closed by authenticating user {user} {ip} port {port} [preauth]")
            )
        else:
            out.append(
                (t, f"Received disconnect from {ip} port {port}:11: {rng.choice(_BYE)} [preauth]")
            )
            out.append(
                (t, f"Disconnected from authenticating user {user} {ip} port {port} [preauth]")
            )
        if tries > 1:
            out.append((t, self._more(tries - 1, ip, user)))
        return out

    def probe(self, ip: str, port: int) -> list[tuple[float, str]]:
        """A user name tried with no password (key-only bots): no failure counted by sshd."""
        rng = self.rng
        user = rng.choice(_INVALID_USERS)
        t = rng.uniform(0.1, 1.0)
        if rng.random() < 0.5:
            return [
                (0.0, f"Invalid user {user} from {ip} port {port}"),
                (t, f"Connection closed by invalid user {user} {ip} port {port} [preauth]"),
            ]
        return [(t, f"Connection closed by authenticating user root {ip} port {port} [preauth]")]

    def scan(self, ip: str, port: int) -> list[tuple[float, str]]:
        rng = self.rng
        kind = rng.randrange(7)
        t = rng.uniform(0.01, 0.3)
        if kind == 0:
            return [(t * 30, f"Did not receive identification string from {ip} port {port}")]
        if kind == 1:
            return [
                (t, "error: kex_exchange_identification: Connection closed by remote host"),
                (t, f"Connection closed by {ip} port {port}"),
            ]
        if kind == 2:
            return [
                (t, "error: kex_exchange_identification: read: Connection reset by peer"),
                (t, f"Connection reset by {ip} port {port}"),
            ]
        if kind == 3:
            return [
                (
                    t,
                    f"Unable to negotiate with {ip} port {port}: no matching key exchange "
                    f"method found. Their offer: {rng.choice(_KEX_OFFERS)} [preauth]",
                )
            ]
        if kind == 4:
            return [
                (
                    t,
                    f"Unable to negotiate with {ip} port {port}: no matching host key type "
                    f"found. Their offer: {rng.choice(_HOSTKEY_OFFERS)} [preauth]",
                )
            ]
        if kind == 5:
            banner = rng.choice(_BAD_BANNERS)
            return [
                (
                    t,
                    "error: kex_exchange_identification: client sent invalid protocol "
                    f'identifier "{banner}"',
                ),
                (t, f"banner exchange: Connection from {ip} port {port}: invalid format"),
            ]
        return [(t, f"Connection closed by {ip} port {port} [preauth]")]


# Per-attacker habits: (weight, [(weight, connection kind)]).
_PERSONALITIES = (
    (0.45, ((0.80, "invalid_user"), (0.12, "valid_user"), (0.08, "probe"))),
    (0.30, ((0.85, "valid_user"), (0.10, "invalid_user"), (0.05, "probe"))),
    (0.25, ((0.85, "scan"), (0.15, "probe"))),
)


class _Clock:
    """Formats the line prefix; the seconds part is cached since most lines share it."""

    def __init__(self, fmt: str, host: str) -> None:
        self.fmt, self.host = fmt, host
        self._second = -1
        self._text = ""

    def prefix(self, when: float) -> str:
        second = int(when)
        if second != self._second:
            self._second = second
            moment = datetime.fromtimestamp(second, UTC)
            if self.fmt == "syslog":
                self._text = (
                    f"{_MONTHS[moment.month - 1]} {moment.day:2d} "
                    f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
                )
            else:
                self._text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if self.fmt == "syslog":
            return f"{self._text} {self.host} "
        return f"{self._text}.{int((when - second) * 1e6):06d}+00:00 {self.host} "


def _zipf_cum_weights(count: int, exponent: float) -> list[float]:
    total = 0.0
    cum: list[float] = []
    for rank in range(1, count + 1):
        total += rank**-exponent
        cum.append(total)
    return cum


def _attack_connections(
    rng: random.Random, addresses: list[str], start: float, span: float, connections: int
) -> list[tuple[float, int]]:
    """(start time, attacker index) of every attacking connection, sorted by time.

    Every address appears at least once; the rest go Zipf-like to a few heavy hitters.
    A connection comes as part of a burst: one campaign of an attacker, seconds apart.
    """
    count = len(addresses)
    extra = rng.choices(
        range(count), cum_weights=_zipf_cum_weights(count, 1.05), k=max(0, connections - count)
    )
    per_attacker = [1] * count
    for index in extra:
        per_attacker[index] += 1
    starts: list[tuple[float, int]] = []
    for index, total in enumerate(per_attacker):
        left = total
        while left:
            burst = min(left, 1 + int(rng.paretovariate(1.3)) * rng.randint(1, 8))
            left -= burst
            t = start + _diurnal(rng) * span
            gap = rng.choice((0.3, 2.0, 8.0, 30.0))  # parallel bots ... slow drip
            for _ in range(burst):
                starts.append((t, index))
                t += rng.expovariate(1.0 / gap)
    starts.sort()
    return starts


def _diurnal(rng: random.Random) -> float:
    """A fraction of the span, slightly favouring some hours of the day (bots follow clocks)."""
    while True:
        fraction = rng.random()
        hour = (fraction * 1e6) % 24
        if rng.random() < 0.65 + 0.35 * abs(12 - hour) / 12:
            return fraction


def _benign(rng: random.Random, start: float, span: float) -> Iterator[tuple[float, list[Line]]]:
    """CRON jobs, key logins by an admin with sudo and logind sessions, in time order."""
    events: list[tuple[float, list[Line]]] = []
    pid = 700_000
    for period, command in _CRON_JOBS:
        t = start + rng.uniform(0, period) // 60 * 60
        while t < start + span:
            pid += rng.randint(1, 50)
            events.append(
                (
                    t,
                    [
                        (
                            t,
                            "CRON",
                            pid,
                            "pam_unix(cron:session): session opened for user root(uid=0) "
                            "by (uid=0)",
                        ),
                        (t, "CRON", pid, f"(root) CMD ({command})"),
                        (
                            t + rng.uniform(0.1, 2),
                            "CRON",
                            pid,
                            "pam_unix(cron:session): session closed for user root",
                        ),
                    ],
                )
            )
            t += period
    session = 100
    t = start + rng.uniform(1800, 7200)
    while t < start + span:
        pid += rng.randint(1, 50)
        session += 1
        events.append((t, _login(rng, t, pid, session)))
        t += rng.expovariate(1 / 14400)
    events.sort(key=lambda event: event[0])
    yield from events


def _login(rng: random.Random, t: float, pid: int, session: int) -> list[Line]:
    ip = rng.choice(_ADMIN_ADDRESSES)
    port = rng.randint(32768, 60999)
    key = "".join(
        rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        for _ in range(43)
    )
    end = t + rng.uniform(30, 1800)
    sudo_at = t + rng.uniform(5, end - t)
    command = rng.choice(_SUDO_COMMANDS)
    return [
        (
            t,
            "sshd",
            pid,
            f"Accepted publickey for deploy from {ip} port {port} ssh2: ED25519 SHA256:{key}",
        ),
        (
            t,
            "sshd",
            pid,
            "pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)",
        ),
        (t, "systemd-logind", 612, f"New session {session} of user deploy."),
        (
            sudo_at,
            "sudo",
            pid + 9,
            f"  deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND={command}",
        ),
        (
            sudo_at,
            "sudo",
            pid + 9,
            "pam_unix(sudo:session): session opened for user root(uid=0) by deploy(uid=1000)",
        ),
        (sudo_at + 1, "sudo", pid + 9, "pam_unix(sudo:session): session closed for user root"),
        (
            end,
            "sshd",
            pid + 2,
            f"Received disconnect from {ip} port {port}:11: disconnected by user",
        ),
        (end, "sshd", pid + 2, f"Disconnected from user deploy {ip} port {port}"),
        (end, "sshd", pid, "pam_unix(sshd:session): session closed for user deploy"),
        (
            end,
            "systemd-logind",
            612,
            f"Session {session} logged out. Waiting for processes to exit.",
        ),
        (end, "systemd-logind", 612, f"Removed session {session}."),
    ]


def generate(
    lines: int,
    out: Path,
    *,
    seed: int = 1,
    fmt: str = "syslog",
    attackers: int = 20_000,
    per_day: int = 40_000,
    host: str = "web1",
    start: datetime | None = None,
    ipv6: float = 0.03,
    program: str = "sshd",
) -> dict[str, object]:
    """Write exactly ``lines`` lines to ``out``; return a summary of what was written.

    ``program`` names the process of an attacking connection's lines: ``sshd``, or
    ``sshd-session`` as OpenSSH 9.8+ (Debian 13, Fedora 41) logs them."""
    rng = random.Random(seed)
    began = (start or datetime(2024, 11, 4, tzinfo=UTC)).timestamp()
    span = lines / per_day * 86400
    attackers = max(1, min(attackers, lines // 40))
    addresses = attacker_addresses(rng, attackers, ipv6)
    attack_program = program
    builder = _Connections(rng)
    kinds: dict[str, Callable[[str, int], list[tuple[float, str]]]] = {
        name: getattr(builder, name) for name in ("invalid_user", "valid_user", "probe", "scan")
    }
    personality_cum = list(_accumulate(w for w, _ in _PERSONALITIES))
    habits = [
        _PERSONALITIES[bisect.bisect(personality_cum, rng.random() * personality_cum[-1])][1]
        for _ in addresses
    ]
    # ~5.0 lines per attacking connection and ~3.5% of lines benign: just enough connections
    # that nearly every address appears before the file is full; more are added if short.
    starts = _attack_connections(rng, addresses, began, span, int(lines / 5.15))

    clock = _Clock(fmt, host)
    heap: list[tuple[float, int, list[Line], int]] = []
    seq = 0
    pid = 1000
    benign = _benign(rng, began, span)
    next_benign = next(benign, None)
    written = connections = 0
    last_written = began
    seen: set[int] = set()
    buffer: list[str] = []
    with out.open("w", encoding="utf-8", newline="\n") as handle:
        position = 0
        while written < lines:
            if position == len(starts) and not heap:
                last = starts[-1][0] if starts else began
                more = (lines - written) // 4 + 1
                starts = _attack_connections(rng, addresses[:more], last, span / 20, more)
                position = 0
            next_start = starts[position][0] if position < len(starts) else float("inf")
            head = heap[0][0] if heap else float("inf")
            benign_at = next_benign[0] if next_benign else float("inf")
            if next_start <= head and next_start <= benign_at and next_start != float("inf"):
                when, index = starts[position]
                position += 1
                connections += 1
                pid = pid + rng.randint(1, 40) if pid < 4_000_000 else 1000 + rng.randint(1, 40)
                ip = addresses[index]
                seen.add(index)
                kind = _pick(rng, habits[index])
                conn = [
                    (when + dt, attack_program, pid, text)
                    for dt, text in kinds[kind](ip, rng.randint(1024, 65535))
                ]
                conn.sort(key=lambda line: line[0])
                heapq.heappush(heap, (conn[0][0], seq, conn, 0))
                seq += 1
                continue
            if benign_at <= head and next_benign is not None:
                conn = sorted(next_benign[1], key=lambda line: line[0])
                heapq.heappush(heap, (conn[0][0], seq, conn, 0))
                seq += 1
                next_benign = next(benign, None)
                continue
            _, _, conn, index = heap[0]
            when, program, line_pid, text = conn[index]
            buffer.append(f"{clock.prefix(when)}{program}[{line_pid}]: {text}\n")
            written += 1
            last_written = when
            if index + 1 < len(conn):
                heapq.heapreplace(heap, (max(conn[index + 1][0], when), seq, conn, index + 1))
                seq += 1
            else:
                heapq.heappop(heap)
            if len(buffer) >= 8192:
                handle.write("".join(buffer))
                buffer.clear()
        handle.write("".join(buffer))
    # A log's mtime is its last write: tools that infer syslog's missing year (bruteguard,
    # fail2ban) take it as the reference, as they would for a real rotated log.
    os.utime(out, (last_written, last_written))
    return {
        "lines": written,
        "attacker_addresses": len(seen),
        "connections": connections,
        "seed": seed,
        "format": fmt,
        "ipv6": ipv6,
        "program": program,
        "first": datetime.fromtimestamp(began, UTC).isoformat(),
        "days": round(span / 86400, 1),
    }


def _accumulate(values: Iterator[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def _pick(rng: random.Random, choices: tuple[tuple[float, str], ...]) -> str:
    roll = rng.random()
    for weight, name in choices:
        roll -= weight
        if roll < 0:
            return name
    return choices[-1][1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/data/auth.log"))
    parser.add_argument(
        "--format",
        choices=("syslog", "rfc3339"),
        default="syslog",
        help="syslog: 'Nov 23 06:50:01 host' (Debian 12 rsyslog default); "
        "rfc3339: '2024-11-23T06:50:01.123456+00:00 host'",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--attackers", type=int, default=20_000)
    parser.add_argument("--per-day", type=int, default=40_000, help="lines per day (sets span)")
    parser.add_argument("--host", default="web1")
    parser.add_argument(
        "--ipv6", type=float, default=0.03, help="share of IPv6 attacker addresses (0..1)"
    )
    parser.add_argument(
        "--program",
        choices=("sshd", "sshd-session"),
        default="sshd",
        help="process name of attack lines (sshd-session: OpenSSH 9.8+)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.ipv6 <= 1:
        parser.error("--ipv6 is a share between 0 and 1")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    summary = generate(
        args.lines,
        args.out,
        seed=args.seed,
        fmt=args.format,
        attackers=args.attackers,
        per_day=args.per_day,
        host=args.host,
        ipv6=args.ipv6,
        program=args.program,
    )
    summary["seconds"] = round(time.perf_counter() - began, 2)
    summary["out"] = str(args.out)
    print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
