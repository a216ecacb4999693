"""``[metrics]``: the real ``bruteguard run`` (dry-run enforcer) serves /metrics, parsed with
prometheus_client's own text parser; the counters follow what the daemon read and banned.
(A real Prometheus scraping a daemon that bans at real nftables: test_e2e_metrics.py.)"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bruteguard.config import MetricsConfig, load_config
from bruteguard.errors import ConfigError
from bruteguard.metrics import Metrics

BIN = Path(sys.executable).with_name("bruteguard")
ATTACKER = "203.0.113.44"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(sample name, sorted labels): value}, by prometheus_client's parser."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain; version=")
        text = reply.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def wait(probe, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def daemon(tmp_path: Path):
    port = free_port()
    log = tmp_path / "auth.log"
    log.touch()
    config = tmp_path / "bg.toml"
    config.write_text(
        f'store = "{tmp_path}/bg.db"\nsocket = "{tmp_path}/bg.sock"\nenforcers = ["dry-run"]\n'
        f'[metrics]\nlisten = "127.0.0.1:{port}"\n'
        f'[jails.sshd]\nbackend = "file"\nlogpath = ["{log}"]\nmaxretry = 3\nbantime = "1h"\n'
    )
    with open(tmp_path / "daemon.err", "wb") as err:
        process = subprocess.Popen([str(BIN), "run", "--config", str(config)], stderr=err)

    def status() -> bool:
        assert process.poll() is None, (tmp_path / "daemon.err").read_text()
        done = subprocess.run(
            [str(BIN), "status", "--json", "--config", str(config)], capture_output=True
        )
        return done.returncode == 0

    wait(status, 20, "the daemon to answer")
    yield port, log, config
    process.terminate()
    process.wait(timeout=20)


def test_metrics_follow_the_daemons_counters(daemon) -> None:
    port, log, config = daemon
    before = scrape(port)
    assert before[("bruteguard_up", ())] == 1
    assert before[("bruteguard_bans_total", (("jail", "sshd"),))] == 0
    stamp = time.strftime("%b %e %H:%M:%S")
    with log.open("a") as handle:
        for pid in range(3):
            handle.write(
                f"{stamp} host sshd[{pid + 100}]: Failed password for root from {ATTACKER}"
                f" port 4{pid} ssh2\n"
            )
        handle.write(f"{stamp} host sshd[9]: Accepted publickey for alice from 192.0.2.1\n")

    batch = ("bruteguard_enforcer_batch_seconds_count", (("enforcer", "dry-run"),))

    def banned() -> dict:
        """The ban counted and its enforcer batch timed (the batch ends after the count)."""
        samples = scrape(port)
        counted = samples[("bruteguard_bans_total", (("jail", "sshd"),))]
        return samples if counted and samples.get(batch) else {}

    samples = wait(banned, 15, "bruteguard_bans_total to count the ban")
    source = (("source", f"file:{log}"),)
    assert samples[("bruteguard_bans_total", (("jail", "sshd"),))] == 1
    assert samples[("bruteguard_failures_total", (("jail", "sshd"),))] == 3
    assert samples[("bruteguard_source_lines_read_total", source)] == 4
    assert samples[("bruteguard_source_up", source)] == 1
    assert samples[("bruteguard_source_lag_bytes", source)] == 0
    assert samples[("bruteguard_active_bans", (("jail", "sshd"),))] == 1
    assert samples[("bruteguard_enforcer_active_bans", (("enforcer", "dry-run"),))] == 1
    assert samples[batch] >= 1
    assert samples[("bruteguard_identity_outcomes_total", (("outcome", "attributed"),))] == 0
    # the same numbers as `status`
    status = json.loads(
        subprocess.run(
            [str(BIN), "status", "--json", "--config", str(config)], capture_output=True
        ).stdout
    )
    sshd = status["jails"][0]
    assert (sshd["failures"], sshd["bans_made"], sshd["banned_now"]) == (3, 1, 1)

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
    assert refused.value.code == 404


def test_listen_is_loopback_unless_public(tmp_path: Path) -> None:
    assert MetricsConfig().listen == ""  # off by default
    config = tmp_path / "bg.toml"
    config.write_text('[metrics]\nlisten = "0.0.0.0:9797"\n')
    with pytest.raises(ConfigError, match="not a loopback address"):
        load_config(str(config))
    config.write_text('[metrics]\nlisten = "0.0.0.0:9797"\npublic = true\n')
    assert load_config(str(config)).metrics.listen == "0.0.0.0:9797"
    config.write_text('[metrics]\nlisten = "localhost:9797"\n')
    with pytest.raises(ConfigError, match="ADDRESS:PORT"):
        load_config(str(config))


class EveryPart:
    """A daemon view with every optional part (abuse desk, fleet) present."""

    def metrics_view(self, now: float) -> dict:
        return {
            "started": now - 10,
            "sources": {
                "/var/log/auth.log": {
                    "lines": 10,
                    "last_line": now,
                    "lag_bytes": 0,
                    "reading": True,
                    "skipped": {"too_long": 0, "bad_time": 1, "match_error": 0},
                }
            },
            "jails": {"sshd": {"failures": 5, "bans": 1, "unattributed": 0}},
            "degraded": set(),
            "active_bans": {"sshd": 1},
            "enforcers": ["nftables"],
            "enforcer_errors": {},
            "identity": {"attributed": 2},
            "desk": {"queue": 0, "cases": {"sent": 2}},
            "fleet": {"subscriber": {"last_ok": now - 3, "down": False}},
        }


def exported_names() -> set[str]:
    """Every sample name the daemon can export (with _total, _bucket … suffixes)."""
    metrics = Metrics(EveryPart())
    metrics.enforced("nftables", 0.01)
    names = set()
    for family in text_string_to_metric_families(metrics.text().decode()):
        names.update(sample.name for sample in family.samples)
    return names


def test_every_part_is_exported() -> None:
    names = exported_names()
    for name in (
        "bruteguard_source_lines_read_total",
        "bruteguard_source_lines_skipped_total",
        "bruteguard_source_lag_bytes",
        "bruteguard_failures_total",
        "bruteguard_bans_total",
        "bruteguard_enforcer_active_bans",
        "bruteguard_enforcer_batch_seconds_bucket",
        "bruteguard_identity_outcomes_total",
        "bruteguard_abuse_queue",
        "bruteguard_abuse_cases",
        "bruteguard_fleet_lag_seconds",
    ):
        assert name in names, name
