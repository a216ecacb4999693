"""``bruteguard report --html``: one self-contained HTML file of a ``Summary``.

No script, no stylesheet or font from elsewhere, no image but inline SVG: the file opens
offline, in a mail client or an air-gapped browser, and makes no request. Everything that
came from a log line or a registry is escaped (``plots.label``); the page's Content
Security Policy forbids scripts on top, should a future change ever forget one.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

from bruteguard.insight import plots
from bruteguard.insight.summary import Count, Summary

__all__ = ["render_html"]

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_STYLE = """
body{font-family:sans-serif;margin:1.5em;color:#111;background:#fff;max-width:1100px}
h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.1em;margin-top:1.6em}
.facts{display:flex;flex-wrap:wrap;gap:.6em 2em;margin:.8em 0}
.facts div{min-width:8em}.facts b{display:block;font-size:1.4em}
.grid{display:flex;flex-wrap:wrap;gap:1em 2em;align-items:flex-start}
table{border-collapse:collapse;font-size:.9em}td,th{padding:2px 8px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even){background:#f3f3f3}.note{color:#555;font-size:.85em}
"""


def _stamp(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(moment))


def _fact(name: str, value: object) -> str:
    shown = f"{value:,}" if isinstance(value, int) else str(value)
    return f"<div><b>{html.escape(shown)}</b>{html.escape(name)}</div>"


def _table(title: str, rows: Sequence[Count], column: str) -> str:
    body = "".join(
        f'<tr><td>{plots.label(row.label, 200)}</td><td class="n">{row.count:,}</td></tr>'
        for row in rows
    )
    return (
        f"<table><caption>{html.escape(title)}</caption>"
        f"<tr><th>{html.escape(column)}</th><th>attempts</th></tr>{body}</table>"
    )


def render_html(summary: Summary, *, title: str = "bruteguard report", note: str = "") -> str:
    """The report page (UTF-8 text) for ``summary``; ``note`` says where the numbers came
    from (the logs read, the ledger's path): escaped like everything else."""
    origin = "log replay" if summary.origin == "scan" else "ledger"
    facts = [
        _fact("failed attempts", summary.failures),
        _fact("attacking addresses", summary.addresses),
        _fact("bans", summary.bans),
    ]
    if summary.lines is not None:
        facts.insert(0, _fact("log lines read", summary.lines))
    for jail, count in summary.per_jail.items():
        facts.append(_fact(f"attempts in {jail}", count))
    no_geo = (
        ""
        if summary.top_countries
        else (
            '<p class="note">Countries and ASes need the geo extra (pip install'
            " 'bruteguard[geo]') or [report] geoip_country / geoip_asn.</p>"
        )
    )
    no_owner = (
        ""
        if summary.top_owners
        else (
            '<p class="note">Network owners come from the abuse desk\'s RDAP cache: none of'
            " these addresses has been looked up.</p>"
        )
    )
    who = [
        plots.bar_chart("Top addresses", summary.top_addresses),
        plots.bar_chart("Top networks (/24, /64)", summary.top_networks),
        plots.bar_chart("Top network owners (RDAP)", summary.top_owners),
        plots.bar_chart("Top countries", summary.top_countries),
        plots.bar_chart("Top ASes", summary.top_asns),
        plots.bar_chart("Users tried", summary.users),
    ]
    bans = [
        plots.bar_chart("Bans by escalation step", summary.ban_steps),
        plots.bar_chart("Abuse cases by state", summary.cases),
    ]
    tables = [
        _table("Top addresses", summary.top_addresses, "address"),
        _table("Top networks", summary.top_networks, "network"),
        _table("Users tried", summary.users, "user"),
    ]
    return "".join(
        [
            "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>",
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
            '<meta name="referrer" content="no-referrer">',
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f'<p class="note">From the {origin}, {_stamp(summary.start)} to'
            f" {_stamp(summary.end)}. {plots.label(note, 300)}</p>",
            f'<div class="facts">{"".join(facts)}</div>',
            "<h2>Attempts over time</h2>",
            plots.time_chart("Attempts per jail", summary.start, summary.bucket, summary.attempts),
            "<h2>Bans over time</h2>",
            plots.time_chart(
                "Bans per jail", summary.start, summary.bucket, summary.bans_over_time
            ),
            f'<div class="grid">{"".join(bans)}</div>',
            "<h2>Who attacks</h2>",
            no_geo,
            no_owner,
            f'<div class="grid">{"".join(who)}</div>',
            "<h2>Tables</h2>",
            f'<div class="grid">{"".join(tables)}</div>',
            f'<p class="note">bruteguard, written {_stamp(time.time())}.</p>',
            "</body></html>\n",
        ]
    )
