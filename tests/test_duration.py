"""Durations as admins write them (``90s``, ``10m``, ``1h``, ``7d``); clear errors otherwise."""

from __future__ import annotations

import pytest

from bruteguard.duration import describe_duration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("7d", 604800.0),
        ("2w", 1209600.0),
        ("1.5h", 5400.0),
        ("90", 90.0),
        (" 10 m ", 600.0),
        (90, 90.0),
        (2.5, 2.5),
    ],
)
def test_accepted_forms(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "s",
        "ten minutes",
        "10 minutes",
        "10x",
        "1h30m",  # combinations are not a supported form: say so rather than guess
        "-5m",
        "1e3",
        "10m!",
        "10m\x00",
    ],
)
def test_malformed_text_names_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"90s, 10m, 1h or 7d") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("value", ["0s", "0", 0, 0.0, -1, -0.5])
def test_zero_and_negative_are_rejected(value: str | float) -> None:
    with pytest.raises(ValueError, match="positive"):
        parse_duration(value)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), float("-inf")])
def test_non_finite_numbers_are_rejected(value: float) -> None:
    # TOML can spell inf and nan; a ban for "nan" seconds has no end anyone can compute.
    with pytest.raises(ValueError, match=r"finite|positive"):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_durations(value: bool) -> None:
    with pytest.raises(ValueError, match="90s, 10m, 1h or 7d"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(90, "90s"), (600, "10m"), (3600, "1h"), (86400, "1d"), (604800, "1w"), (5400, "90m")],
)
def test_format_is_the_shortest_exact_spelling(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (39, "39s"),
        (60, "1m"),
        (200, "3m20s"),
        (3725, "1h2m"),
        (10802, "3h"),  # two units at most: a person reads "3h", not "3h0m2s"
        (90000, "1d1h"),
        (604800, "1w"),
    ],
)
def test_describe_duration_for_a_person(seconds: float, text: str) -> None:
    assert describe_duration(seconds) == text
