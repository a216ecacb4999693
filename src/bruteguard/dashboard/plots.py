"""The report's plots for the dashboard: the same ``insight`` summary and SVG charts as
``report --html``, from the ledger, one SVG document per plot (served as images)."""

from __future__ import annotations

from pathlib import Path

from bruteguard.config import Config
from bruteguard.dashboard.pages import PLOTS
from bruteguard.insight.plots import bar_chart, time_chart
from bruteguard.insight.summary import Summary, from_ledger

__all__ = ["render_plots"]


def _geo(config: Config):
    """Countries and ASes as the report finds them: the admin's MaxMind files ([report]),
    else the data the ``geo`` extra ships; none when neither can be read."""
    from bruteguard.insight.geo import report_geo

    try:
        return report_geo(config.report)
    except (OSError, ValueError):
        return None


def render_plots(config: Config, since: float, top: int = 15) -> dict[str, str]:
    """Each of ``PLOTS`` as SVG text, from the ledger's failures and bans since ``since``."""
    if not Path(config.store).exists():
        return {name: bar_chart(name, []) for name in PLOTS}
    from bruteguard.store.sqlite import SqliteStore

    with SqliteStore(config.store) as store:
        summary = from_ledger(store, since=since, top=top, geo=_geo(config))
    return _charts(summary)


def _charts(summary: Summary) -> dict[str, str]:
    start, bucket = summary.start, summary.bucket
    charts = {
        "attempts": time_chart("Attempts per jail", start, bucket, summary.attempts),
        "bans": time_chart("Bans per jail", start, bucket, summary.bans_over_time),
        "addresses": bar_chart("Top addresses", summary.top_addresses),
        "networks": bar_chart("Top networks", summary.top_networks),
        "owners": bar_chart("Top network owners", summary.top_owners),
        "countries": bar_chart("Countries", summary.top_countries),
        "asns": bar_chart("Autonomous systems", summary.top_asns),
        "users": bar_chart("Users tried", summary.users),
        "steps": bar_chart("Bans by escalation step", summary.ban_steps),
        "cases": bar_chart("Abuse cases by state", summary.cases),
    }
    assert set(charts) == set(PLOTS)
    return charts
