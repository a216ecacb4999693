"""A real Prometheus scrapes the real daemon, which bans at real nftables.

The daemon runs in a lab's server namespace with ``[metrics] listen`` on that namespace's
loopback; Debian's Prometheus runs in the same namespace, from a configuration and a data
directory in the test's temporary directory, scraping every second. After a failure line
gets an attacker banned (its connection is refused), Prometheus' HTTP API must report the
ban counter, and every query of the Grafana dashboard must run there without error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bgdaemon import Bruteguard
from e2e_lab import file_daemon, write_failure
from netns import Host, Lab
from sshlab import poll_until

pytestmark = pytest.mark.netns

PORT = 22
METRICS = "127.0.0.1:9797"
PROMETHEUS = "127.0.0.1:9090"
DASHBOARD = Path(__file__).resolve().parent.parent / "packaging" / "grafana" / "bruteguard.json"

_GET = """
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as reply:
    sys.stdout.write(reply.read().decode())
"""


def get(host: Host, url: str) -> str | None:
    """GET ``url`` from inside ``host``'s namespace (its loopback is not the test's)."""
    done = host.run([sys.executable, "-c", _GET, url], check=False, timeout=20)
    return done.stdout if done.returncode == 0 else None


def query(host: Host, expr: str) -> dict:
    url = f"http://{PROMETHEUS}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    text = get(host, url)
    assert text is not None, f"Prometheus did not answer {expr!r}"
    return json.loads(text)


@pytest.fixture
def lab(netns_root: None) -> Iterator[Lab]:
    with Lab(("attacker",)) as lab:
        lab.server.listen_tcp(PORT)
        yield lab


@pytest.fixture
def daemon(
    lab: Lab, tmp_path: Path, bruteguard_exe: Path, make_config: Callable[..., Path]
) -> Iterator[tuple[Bruteguard, Path]]:
    sshd = {"maxretry": 2}
    with file_daemon(
        lab.server, tmp_path, bruteguard_exe, make_config, sshd, metrics={"listen": METRICS}
    ) as running:
        yield running


@pytest.fixture
def prometheus(lab: Lab, tmp_path: Path) -> Iterator[subprocess.Popen]:
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is needed: .ci/run installs it"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "bruteguard", "static_configs": [{"targets": [METRICS]}]}
                ],
            }
        )
    )
    with (tmp_path / "prometheus.log").open("wb") as output:
        process = lab.server.popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address={PROMETHEUS}",
                "--log.level=warn",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def ready() -> bool:
        assert process.poll() is None, (tmp_path / "prometheus.log").read_text()
        return get(lab.server, f"http://{PROMETHEUS}/-/ready") is not None

    poll_until(ready, 60, "Prometheus to be ready")
    yield process
    process.terminate()  # the lab kills whatever is left when it closes
    process.wait(timeout=20)


def test_prometheus_sees_a_real_ban(
    lab: Lab, daemon: tuple[Bruteguard, Path], prometheus: subprocess.Popen
) -> None:
    bruteguard, log = daemon
    attacker, server = lab.clients["attacker"], lab.server
    assert attacker.tcp_connect(server.ipv4, PORT)

    def scraped() -> bool:
        result = query(server, 'up{job="bruteguard"}')["data"]["result"]
        return bool(result) and result[0]["value"][1] == "1"

    poll_until(scraped, 30, "Prometheus to scrape the daemon", bruteguard.log)
    before = query(server, 'bruteguard_bans_total{jail="sshd"}')["data"]["result"]
    assert [sample["value"][1] for sample in before] == ["0"]

    for pid in (1, 2):
        write_failure(log, attacker.ipv4, pid)
    poll_until(lambda: bruteguard.ban_of(attacker.ipv4), 15, "the ban", bruteguard.log)
    assert not attacker.tcp_connect(server.ipv4, PORT), "a ban must refuse the connection"

    def counted() -> bool:
        result = query(server, 'bruteguard_bans_total{jail="sshd"}')["data"]["result"]
        return [sample["value"][1] for sample in result] == ["1"]

    poll_until(counted, 30, "Prometheus to hold bruteguard_bans_total = 1", bruteguard.log)
    failures = query(server, 'bruteguard_failures_total{jail="sshd"}')["data"]["result"]
    assert [sample["value"][1] for sample in failures] == ["2"]
    active = query(server, "bruteguard_enforcer_active_bans")["data"]["result"]
    assert [(s["metric"]["enforcer"], s["value"][1]) for s in active] == [("nftables", "1")]
    batches = query(server, "bruteguard_enforcer_batch_seconds_count")["data"]["result"]
    assert batches and float(batches[0]["value"][1]) >= 1

    # every query of the Grafana dashboard runs on this Prometheus without error
    panels = json.loads(DASHBOARD.read_text())["panels"]
    for panel in panels:
        for target in panel.get("targets", ()):
            answer = query(server, target["expr"])
            assert answer["status"] == "success", (panel["title"], answer)
