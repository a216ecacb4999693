"""Plots as inline SVG text: no library, no script, no network, a few kilobytes each.

Every label may be attacker text (a user name, an RDAP owner name): it is escaped with
``html.escape`` (which covers XML) and shortened, so ``<img src=x onerror=alert(1)>`` shows
as those characters and can never become markup, in an HTML page or in a bare SVG file.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Sequence

from bruteguard.insight.summary import Count, Timeline
from bruteguard.safe_text import printable

__all__ = ["PALETTE", "bar_chart", "label", "time_chart"]

# Distinguishable for the common colour-vision deficiencies (Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000")
_FONT = 'font-family="sans-serif" font-size="12"'
_MAX_LABEL = 48


def label(text: str, limit: int = _MAX_LABEL) -> str:
    """``text`` safe inside SVG or HTML: controls shown as escapes, cut at ``limit``
    characters, and ``& < > " '`` as entities."""
    text = printable(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=True)


def _number(value: float) -> str:
    if value >= 10_000_000:
        return f"{value / 1_000_000:.0f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:,.0f}"


def bar_chart(title: str, rows: Sequence[Count], *, width: int = 520) -> str:
    """A horizontal bar per row, the label on the left and the count at the bar's end."""
    bar_height, gap, left, top = 16, 4, 190, 28
    height = top + len(rows) * (bar_height + gap) + 8 if rows else top + 24
    most = max((row.count for row in rows), default=0) or 1
    room = width - left - 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{width}"'
        f' height="{height}" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{label(title)}">',
        f'<text x="4" y="16" {_FONT} font-weight="bold">{label(title)}</text>',
    ]
    if not rows:
        parts.append(f'<text x="4" y="{top + 14}" {_FONT} fill="#666">nothing</text>')
    for index, row in enumerate(rows):
        y = top + index * (bar_height + gap)
        length = max(1, round(room * row.count / most))
        parts.append(
            f'<text x="{left - 6}" y="{y + 12}" {_FONT} text-anchor="end">'
            f"<title>{label(row.label, 400)}</title>{label(row.label, 28)}</text>"
            f'<rect x="{left}" y="{y}" width="{length}" height="{bar_height}"'
            f' fill="{PALETTE[0]}"/>'
            f'<text x="{left + length + 4}" y="{y + 12}" {_FONT}>{row.count:,}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _tick_format(bucket: float, span: float) -> str:
    if span <= 2 * 86400:
        return "%H:%M"
    if bucket >= 86400:
        return "%m-%d"
    return "%m-%d %H:%M"


def time_chart(
    title: str,
    start: float,
    bucket: float,
    series: Sequence[Timeline],
    *,
    width: int = 1040,
    height: int = 260,
) -> str:
    """One line per series over time (UTC), with a legend: counts per ``bucket`` seconds."""
    left, right, top, bottom = 56, 36, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    buckets = max((len(s.counts) for s in series), default=0)
    most = max((max(s.counts, default=0) for s in series), default=0) or 1
    unit = _unit(bucket)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{width}"'
        f' height="{height}" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{label(title)}">',
        f'<text x="4" y="16" {_FONT} font-weight="bold">{label(title)} (per {unit}, UTC)</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"'
        ' stroke="#888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#888"/>',
    ]
    # A middle tick only where it names a whole count of its own (not "0, 0, 1" for most=1).
    fractions = (0.0, 0.5, 1.0) if most % 2 == 0 or most >= 20 else (0.0, 1.0)
    for fraction in fractions:
        y = top + plot_h - fraction * plot_h
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" {_FONT} text-anchor="end">'
            f"{_number(most * fraction)}</text>"
        )
    if buckets:
        step = plot_w / max(buckets - 1, 1)
        span = bucket * buckets
        pattern = _tick_format(bucket, span)
        every = max(1, math.ceil((buckets - 1) / 7))  # at most 8 ticks, evenly spaced
        for index in range(0, buckets, every):
            x = left + index * step
            stamp = time.strftime(pattern, time.gmtime(start + index * bucket))
            parts.append(
                f'<text x="{x:.1f}" y="{top + plot_h + 16}" {_FONT} text-anchor="middle">'
                f"{stamp}</text>"
            )
        for number, line in enumerate(series):
            colour = PALETTE[number % len(PALETTE)]
            points = " ".join(
                f"{left + i * step:.1f},{top + plot_h - plot_h * c / most:.1f}"
                for i, c in enumerate(line.counts)
            )
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}">'
                f"<title>{label(line.name)}</title></polyline>"
            )
            if buckets == 1 and line.counts:  # one point: a line through it would not show
                y = top + plot_h - plot_h * line.counts[0] / most
                parts.append(f'<circle cx="{left}" cy="{y:.1f}" r="3" fill="{colour}"/>')
            x = left + number * 150
            parts.append(
                f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
                f'<text x="{x + 14}" y="{height - 5}" {_FONT}>{label(line.name, 20)}'
                f" ({sum(line.counts):,})</text>"
            )
    else:
        parts.append(f'<text x="{left + 8}" y="{top + 20}" {_FONT} fill="#666">nothing</text>')
    parts.append("</svg>")
    return "".join(parts)


def _unit(bucket: float) -> str:
    if bucket % 86400 == 0:
        days = int(bucket // 86400)
        return "day" if days == 1 else f"{days} days"
    if bucket % 3600 == 0:
        hours = int(bucket // 3600)
        return "hour" if hours == 1 else f"{hours} hours"
    minutes = int(bucket // 60) or 1
    return "minute" if minutes == 1 else f"{minutes} minutes"
