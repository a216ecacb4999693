"""Prometheus metrics of the running daemon (``[metrics] listen``; docs/metrics.md).

The numbers are read when Prometheus scrapes, from what the daemon counts anyway (the same
counters ``bruteguard status`` shows) and from the ledger; never from the detector's state.
The scrape is answered on the daemon's own event loop, so every counter is read between
two batches, never half-updated. The text format is prometheus_client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["IDENTITY_OUTCOMES", "Metrics", "serve_metrics"]

log = logging.getLogger(__name__)

IDENTITY_OUTCOMES = ("attributed", "ambiguous", "unattributed")
# An enforcer's batch: one nft transaction of a few bans, up to a million on a restart.
_BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
_MAX_REQUEST = 8192  # bytes of request line and headers; Prometheus sends a few hundred


class DaemonView(Protocol):
    """What the metrics read from the daemon (``Daemon.metrics_view``)."""

    def metrics_view(self, now: float) -> dict[str, Any]: ...


class Metrics:
    """The registry the daemon exposes: its live counters through a collector, and the
    enforcer batch latency as a histogram the daemon observes."""

    def __init__(self, daemon: DaemonView) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.batch_seconds = Histogram(
            "bruteguard_enforcer_batch_seconds",
            "Time one enforcer took to apply one batch of bans",
            ["enforcer"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Collector(daemon))

    def enforced(self, enforcer: str, seconds: float) -> None:
        self.batch_seconds.labels(enforcer).observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)


def _counter(
    name: str, doc: str, labels: list[str], values: dict[tuple[str, ...], float]
) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _gauge(name: str, doc: str, labels: list[str], values: dict[tuple[str, ...], float]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


class _Collector:
    """Metric families built at each scrape from ``Daemon.metrics_view``."""

    def __init__(self, daemon: DaemonView) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        view = self.daemon.metrics_view(now)
        sources = view["sources"]
        yield _gauge("bruteguard_up", "1 while the daemon runs", [], {(): 1})
        yield _gauge(
            "bruteguard_start_time_seconds", "When the daemon started", [], {(): view["started"]}
        )
        yield _counter(
            "bruteguard_source_lines_read",
            "Log lines read per source",
            ["source"],
            {(key,): s["lines"] for key, s in sources.items()},
        )
        skipped: dict[tuple[str, ...], float] = {}
        for key, source in sources.items():
            for reason, count in source["skipped"].items():
                skipped[(key, reason)] = count
        yield _counter(
            "bruteguard_source_lines_skipped",
            "Log lines read but not matched, per source and reason (too_long: over 1 MiB;"
            " bad_time: no usable time stamp; match_error: the matcher gave up)",
            ["source", "reason"],
            skipped,
        )
        yield _gauge(
            "bruteguard_source_lag_bytes",
            "Bytes of a log file written but not read yet",
            ["source"],
            {(key,): s["lag_bytes"] for key, s in sources.items() if s["lag_bytes"] is not None},
        )
        yield _gauge(
            "bruteguard_source_last_line_timestamp_seconds",
            "When a source last delivered lines",
            ["source"],
            {(key,): s["last_line"] for key, s in sources.items() if s["last_line"]},
        )
        yield _gauge(
            "bruteguard_source_up",
            "1 while a source reads its log, 0 while it waits for it or failed",
            ["source"],
            {(key,): float(s["reading"]) for key, s in sources.items()},
        )
        jails = view["jails"]
        for what, doc in (
            ("failures", "Failed attempts counted per jail"),
            ("bans", "Bans made per jail (by the detector, by hand, by the fleet, by the desk)"),
            ("unattributed", "Failures whose named host could not be tied to one address"),
        ):
            yield _counter(
                f"bruteguard_{what}",
                doc,
                ["jail"],
                {(jail,): counts.get(what, 0) for jail, counts in jails.items()},
            )
        yield _gauge(
            "bruteguard_jail_degraded",
            "1 while a jail protects nothing (no readable log) or drops lines (over budget)",
            ["jail"],
            {(jail,): float(jail in view["degraded"]) for jail in jails},
        )
        yield _gauge(
            "bruteguard_active_bans",
            "Active bans in the ledger per jail",
            ["jail"],
            {(jail,): count for jail, count in view["active_bans"].items()},
        )
        active = sum(view["active_bans"].values())
        yield _gauge(
            "bruteguard_enforcer_active_bans",
            "Active bans each enforcer holds (the ledger's: every enforcer holds them all,"
            " reconciled after an error)",
            ["enforcer"],
            {(name,): active for name in view["enforcers"]},
        )
        yield _counter(
            "bruteguard_enforcer_errors",
            "Enforcer calls that failed (retried by the next housekeeping run)",
            ["enforcer"],
            {(name,): view["enforcer_errors"].get(name, 0) for name in view["enforcers"]},
        )
        yield _counter(
            "bruteguard_identity_outcomes",
            "Failures that named a host: tied to one address, several fitted, none did",
            ["outcome"],
            {(outcome,): view["identity"].get(outcome, 0) for outcome in IDENTITY_OUTCOMES},
        )
        desk = view["desk"]
        if desk is not None:
            yield _gauge(
                "bruteguard_abuse_queue",
                "Bans waiting for the abuse desk's lookup",
                [],
                {(): desk["queue"]},
            )
            yield _gauge(
                "bruteguard_abuse_cases",
                "Abuse cases per state",
                ["state"],
                {(state,): count for state, count in desk["cases"].items()},
            )
        for role, poller in view["fleet"].items():
            if poller["last_ok"] is not None:
                yield _gauge(
                    "bruteguard_fleet_lag_seconds",
                    "Seconds since the fleet's PostgreSQL last answered this host's"
                    " publisher or subscriber",
                    ["role"],
                    {(role,): max(0.0, now - poller["last_ok"])},
                )
            yield _gauge(
                "bruteguard_fleet_up",
                "1 while the fleet's PostgreSQL answers",
                ["role"],
                {(role,): float(not poller["down"])},
            )


def count_outcomes(into: Counter[str], attributed: int, unattributed: Any) -> None:
    """Identity outcomes of a batch: an unattributed failure with several candidate peers
    is "ambiguous", one with none "unattributed"."""
    into["attributed"] += attributed
    for failure in unattributed:
        into["ambiguous" if len(failure.candidates) > 1 else "unattributed"] += 1


async def serve_metrics(metrics: Metrics, host: str, port: int) -> asyncio.AbstractServer:
    """``GET /metrics`` over plain HTTP/1.1 on ``host:port``, answered on this loop."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            method, _, rest = head.partition(b" ")
            target = rest.partition(b" ")[0]
            if method not in (b"GET", b"HEAD"):
                status, body, kind = b"405 Method Not Allowed", b"GET only\n", b"text/plain"
            elif target.partition(b"?")[0] != b"/metrics":
                status, body, kind = b"404 Not Found", b"see /metrics\n", b"text/plain"
            else:
                status, body, kind = b"200 OK", metrics.text(), CONTENT_TYPE_LATEST.encode()
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: " + kind
                + b"\r\nContent-Length: " + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n" + (b"" if method == b"HEAD" else body)
            )  # fmt: skip
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        except Exception:
            log.exception("metrics: a scrape failed")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return await asyncio.start_server(answer, host, port, limit=_MAX_REQUEST)
