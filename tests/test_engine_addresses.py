"""The compiled pass reads plain address text itself (``_core``'s ``plain_address``) and
asks ``identity.address_from_log`` only for the rest: whatever the text, the address a
line counts for is the one ``address_from_log`` gives (or none, and the line is a name's)."""

from __future__ import annotations

import calendar
import ipaddress
import random

import pytest

from bruteguard.identity import address_from_log
from bruteguard.match import engine
from bruteguard.match.engine import Matcher

REFERENCE = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))

FIXED = [
    "203.0.113.5",
    "0.0.0.0",
    "255.255.255.255",
    "256.1.2.3",
    "01.2.3.4",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.",
    "::",
    "::1",
    "::0.0.0.1",
    "::203.0.113.5",
    "::ffff:203.0.113.5",
    "::FFFF:203.0.113.5",
    "::ffff:0cb0:7105",
    "2001:DB8::1",
    "2001:db8:0:0:0:0:0:1",
    "2001:db8::0:1",
    "2001:0db8:0000:0000:0001:0000:0000:0001",
    "2001:db8::203.0.113.5",
    "2001:db8::1::2",
    "2001:db8:::1",
    "[2001:db8::1]",
    "fe80::1%eth0",
    "2001:db8::g",
    "host.example.org",
    "a.b.c.d",
    "é.1.2.3",
    "1" * 70,
    ":",
    ".",
    "ffff",
]


def _random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        kind = rng.randrange(5)
        if kind == 0:
            texts.append(
                ".".join(
                    str(rng.choice([0, 1, 9, 10, 99, 255, 256, rng.randrange(300)]))
                    for _ in range(rng.choice([3, 4, 4, 4, 5]))
                )
            )
        elif kind == 1:
            value = rng.getrandbits(128) & ~((1 << rng.randrange(0, 128, 16)) - 1)
            text = str(ipaddress.IPv6Address(value))
            texts.append(text.upper() if rng.random() < 0.3 else text)
        elif kind == 2:
            groups = [f"{rng.getrandbits(16):0{rng.choice([1, 4])}x}" for _ in range(8)]
            texts.append(":".join(groups))
        elif kind == 3:
            v4 = ".".join(str(rng.randrange(256)) for _ in range(4))
            texts.append(rng.choice(["::ffff:", "::", "64:ff9b::", "2001:db8::ffff:"]) + v4)
        else:
            alphabet = "0123456789abcdefABCDEF:.g[]%"
            texts.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 50))))
    return texts


@pytest.mark.parametrize("seed", [0, 1])
def test_each_line_counts_for_the_address_address_from_log_gives(seed: int) -> None:
    texts = FIXED + _random_texts(4000, seed)
    stream = Matcher({"sshd": "sshd"}).stream(reference=REFERENCE)
    lines = b"".join(
        f"Nov 23 06:50:01 host sshd[{1000 + n}]: Failed password for root from {text}"
        f" port 22 ssh2\n".encode()
        for n, text in enumerate(texts)
    )
    hits = stream.feed(lines)
    named = stream.take_named()
    expected = [address_from_log(text.encode()) for text in texts]
    assert [hit[1] for hit in hits] == [a for a in expected if a is not None]
    assert [hit[1] for hit in named] == [
        t for t, a in zip(texts, expected, strict=True) if a is None
    ]
    assert len({a for a in expected if a is not None and ":" in a}) > 1000


def test_plain_address_text_is_read_without_a_call_back(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[bytes] = []

    def spy(raw: bytes) -> str | None:
        asked.append(raw)
        return address_from_log(raw)

    monkeypatch.setattr(engine, "address_from_log", spy)
    stream = Matcher({"sshd": "sshd"}).stream(reference=REFERENCE)
    hosts = ["203.0.113.5", "2001:DB8::1", "::ffff:203.0.113.6", "[2001:db8::2]", "::1", "h.test"]
    stream.feed(
        b"".join(
            f"Nov 23 06:50:01 host sshd[{n + 1}]: Failed password for root from {host} port 22"
            f" ssh2\n".encode()
            for n, host in enumerate(hosts)
        )
    )
    assert asked == [b"[2001:db8::2]", b"::1", b"h.test"]
