"""The two renderings of the findings: wrapped text for a person, one JSON object for a
program. Both show the same list in the same order."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import IO

import msgspec

from bruteguard.doctor.findings import Finding

__all__ = ["count_statuses", "render_json", "render_text"]

_LABELS: dict[str, tuple[str, str]] = {
    "ok": ("ok", "green"),
    "advice": ("advice", "yellow"),
    "problem": ("PROBLEM", "bold red"),
    "unknown": ("unknown", "cyan"),
}


def count_statuses(findings: Sequence[Finding]) -> dict[str, int]:
    """How many findings have each status (every status present, zero or not)."""
    counts = dict.fromkeys(_LABELS, 0)
    for finding in findings:
        counts[finding.status] += 1
    return counts


def _summary(counts: dict[str, int]) -> str:
    parts = [
        f"{counts['problem']} problem{'s' * (counts['problem'] != 1)}",
        f"{counts['advice']} piece{'s' * (counts['advice'] != 1)} of advice",
    ]
    if counts["unknown"]:
        parts.append(f"{counts['unknown']} not checked")
    return ", ".join(parts)


def render_text(findings: Sequence[Finding], counts: dict[str, int], out: IO[str]) -> None:
    """One wrapped entry per finding, the status first; colour only on a terminal. The
    text is given as Text, never markup: it quotes paths and log lines."""
    from rich.console import Console
    from rich.text import Text

    console = Console(file=out, highlight=False, emoji=False, soft_wrap=True)
    indent = " " * 9
    width = max(40, console.width)
    for finding in findings:
        label, style = _LABELS[finding.status]
        lines = textwrap.wrap(
            f"{finding.check}: {finding.detail}",
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,  # keep paths and program names whole
        )
        if finding.advice:
            lines += textwrap.wrap(
                f"-> {finding.advice}",
                width,
                initial_indent=indent,
                subsequent_indent=indent + "   ",
                break_on_hyphens=False,
            )
        lines[0] = lines[0][len(indent) :]
        text = Text(label.ljust(len(indent)), style=style)
        text.append(lines[0] + "\n" + "".join(line + "\n" for line in lines[1:]))
        console.print(text, end="")
    console.print(Text(_summary(counts)))


class _Report(msgspec.Struct):
    ok: bool
    counts: dict[str, int]
    findings: list[Finding]


def render_json(findings: Sequence[Finding], counts: dict[str, int], out: IO[str]) -> None:
    """One JSON object on one line: ``ok``, the ``counts`` and every finding."""
    report = _Report(ok=counts["problem"] == 0, counts=counts, findings=list(findings))
    out.write(msgspec.json.encode(report).decode() + "\n")
