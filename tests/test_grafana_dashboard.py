"""packaging/grafana/bruteguard.json: a dashboard Grafana imports, querying only metrics the
daemon exports, in PromQL Prometheus parses.

Grafana is packaged by neither Debian nor PyPI: the dashboard is validated against Grafana's
own JSON schema (tests/data/grafana, from grafana-foundation-sdk), every query target
against its Prometheus query schema, and every expression by Prometheus' ``promtool``.
(test_e2e_metrics.py runs them against a real Prometheus scraping a real daemon.)
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema

from test_metrics import exported_names

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "packaging" / "grafana" / "bruteguard.json"
SCHEMAS = Path(__file__).resolve().parent / "data" / "grafana"
METRIC = re.compile(r"\bbruteguard_[a-z0-9_]+\b")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def expressions() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def test_the_dashboard_is_valid_for_grafanas_schema() -> None:
    schema = json.loads((SCHEMAS / "dashboard.jsonschema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(dashboard()), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_a_broken_dashboard_fails_the_schema() -> None:
    """The schema is strict enough to catch a mistake (it is not a pass-everything)."""
    schema = json.loads((SCHEMAS / "dashboard.jsonschema.json").read_text())
    broken = dashboard()
    broken["panels"][1]["gridPos"] = {"x": 0, "y": 0}  # no width, no height
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))
    del broken["schemaVersion"]
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


def test_every_target_is_a_prometheus_query() -> None:
    schema = json.loads((SCHEMAS / "prometheus.jsonschema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    for panel in panels():
        assert panel["datasource"]["type"] == "prometheus", panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} queries nothing"
        for target in panel["targets"]:
            errors = list(validator.iter_errors(target))
            assert not errors, (panel["title"], [e.message for e in errors])


def test_every_panel_queries_metrics_the_daemon_exports() -> None:
    exported = exported_names()
    used: set[str] = set()
    for panel in panels():
        names = {name for t in panel["targets"] for name in METRIC.findall(t["expr"])}
        assert names, f"panel {panel['title']!r} names no bruteguard metric"
        unknown = names - exported
        assert not unknown, f"panel {panel['title']!r} queries {unknown}, not exported"
        used |= names
    families = {re.sub(r"_(total|bucket|count|sum|created)$", "", n) for n in exported}
    shown = {re.sub(r"_(total|bucket|count|sum|created)$", "", n) for n in used}
    assert families - shown <= {"bruteguard_start_time_seconds", "bruteguard_unattributed"}


def test_panels_sit_side_by_side_without_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"panel {panel['title']!r} overlaps another"
        taken |= cells
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_promtool_parses_every_expression(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "Debian's prometheus package (promtool) is needed: .ci/run installs it"
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"bruteguard:panel_{n}", "expr": expr}
                    for n, expr in enumerate(expressions())
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = {"groups": [{"name": "x", "rules": [{"record": "a", "expr": "("}]}]}
    path.write_text(json.dumps(broken))
    bad = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert bad.returncode != 0
