"""With ``[fleet]``, the dashboard lists the fleet's active bans from its PostgreSQL (a real
cluster of the test's own), with the host that decided each; an unreachable fleet is said,
and the host's own numbers still show."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from bruteguard.config import load_config
from bruteguard.fleet import outbox
from bruteguard.fleet.publisher import Publisher
from bruteguard.model import Ban
from bruteguard.store.sqlite import SqliteStore
from dashkit import Client, dashboard
from pgkit import Cluster
from test_dashboard import _bruteguard, _with_dashboard
from test_fleet import _init_fleet, _write_config, cluster, fleet_db  # noqa: F401  (fixtures)


def test_the_fleets_bans_are_listed_with_their_host(
    tmp_path: Path,
    cluster: Cluster,  # noqa: F811
    fleet_db: str,  # noqa: F811
) -> None:
    _init_fleet(cluster, fleet_db, "web1")
    path = _write_config(tmp_path, cluster, fleet_db, "web1")
    config = load_config(path)
    assert config.fleet is not None
    now = time.time()
    with SqliteStore(config.store) as store:
        outbox.enable(store, config.fleet.share, config.fleet.samples)
        store.record_batch(
            [], [Ban("203.0.113.9", "sshd", now - 5, now + 3600, 3, "3 failures in 1m")], []
        )
        assert asyncio.run(Publisher(config.fleet, store).once())
    _with_dashboard(path)
    with dashboard(_bruteguard(), path, tmp_path / "dashboard.log") as url:
        client = Client(url)
        client.log_in()
        state = json.loads(client.request("GET", "/api/state")[2])
    assert state["fleet_error"] == ""
    assert [(b["ip"], b["origin"], b["jail"]) for b in state["fleet"]] == [
        ("203.0.113.9", "web1", "sshd")
    ]
    assert state["bans"][0]["ip"] == "203.0.113.9", "the host's own ledger too"

    cluster.stop()
    try:
        with dashboard(_bruteguard(), path, tmp_path / "dashboard.log") as url:
            client = Client(url)
            client.log_in()
            state = json.loads(client.request("GET", "/api/state")[2])
    finally:
        cluster.start()
    assert state["fleet"] is None and "cannot connect" in state["fleet_error"]
    assert state["active"] == 1
