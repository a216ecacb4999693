"""Durations as admins write them: ``90s``, ``10m``, ``1h``, ``7d`` (or plain seconds)."""

import math
import re

__all__ = ["Seconds", "SecondsOrNever", "describe_duration", "format_duration", "parse_duration"]


class Seconds(float):
    """A duration in seconds, written in the file as ``90s``/``10m``/``1h``/``7d`` or a number."""


class SecondsOrNever(Seconds):
    """A duration where ``0`` (or ``"0s"``) means "not at all"."""


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"\A\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*\Z")


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``; raises ValueError with the accepted forms on anything else."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 90s, 10m, 1h or 7d, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"expected a duration like 90s, 10m, 1h or 7d, got {value!r}")
        seconds = float(match[1]) * _UNITS[match[2] or "s"]
    if not math.isfinite(seconds):  # TOML has inf and nan; a ban needs an end
        raise ValueError(f"a duration must be a finite number of seconds, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` in the units above (``3600`` → ``1h``)."""
    whole = round(seconds)
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def describe_duration(seconds: float) -> str:
    """``seconds`` for a person: the two largest units, rounded (``10802`` → ``3h``,
    ``200`` → ``3m20s``, ``3725`` → ``1h2m``); exact single units as ``format_duration``."""
    whole = round(seconds)
    units = [("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)]
    for index, (name, size) in enumerate(units):
        if whole >= size or name == "s":
            if name == "s":
                return f"{whole}s"
            smaller, small_size = units[index + 1]
            count, rest = divmod(round(whole / small_size) * small_size, size)
            rest //= small_size
            return f"{count}{name}" + (f"{rest}{smaller}" if rest else "")
    return f"{whole}s"
