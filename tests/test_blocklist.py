"""Blocklist files: streamed, each entry checked, bad lines skipped and counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bruteguard.blocklist import BlocklistError, BlocklistReader


def test_entries_comments_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "drop.txt"
    path.write_bytes(
        b"# Spamhaus-style DROP list\n"
        b"198.51.100.0/24 ; SBL123\n"
        b"\n"
        b"203.0.113.7\n"
        b"203.0.113.9/32   # one host written as a network\n"
        b"2001:db8:bad::/48\n"
        b"::ffff:192.0.2.0/120\n"
        b"198.51.100.77/24\n"  # host bits set: the network it names
        b"not-an-address\n"
        b"203.0.113.300\n"
        b"\xff\xfe garbage\n"
        b"$(touch /tmp/pwned)\n" + b"9" * 5000 + b"\n"
    )
    reader = BlocklistReader(str(path))
    assert list(reader) == [
        "198.51.100.0/24",
        "203.0.113.7",
        "203.0.113.9",
        "2001:db8:bad::/48",
        "192.0.2.0/24",
        "198.51.100.0/24",
    ]
    assert (reader.entries, reader.bad) == (6, 5)
    assert [number for number, _ in reader.examples] == [9, 10, 11, 12, 13]
    assert reader.examples[0] == (9, "not-an-address")


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BlocklistError, match=r"blocklist .*absent\.txt: No such file"):
        list(BlocklistReader(str(tmp_path / "absent.txt")))


def test_a_million_lines_stream(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    with path.open("w") as handle:
        for index in range(1_000_000):
            handle.write(f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}\n")
    reader = BlocklistReader(str(path))
    count = sum(1 for _ in reader)
    assert (count, reader.entries, reader.bad) == (1_000_000, 1_000_000, 0)
