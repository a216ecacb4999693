"""``bruteguard install``/``uninstall`` and the default configuration file they write.

The file is generated from the model's defaults: uncommented, it must parse and mean exactly
what no file at all means. The commands run for real as root in private mount and network
namespaces (a private /run, so no systemd runs there; a private firewall for uninstall's
clean-up), writing into the test's directory through ``--unit-dir`` and ``--config``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bruteguard.config import (
    BUILTIN_JAILS,
    AbuseConfig,
    Config,
    IdentityConfig,
    JailConfig,
    LookupConfig,
    MetricsConfig,
    NotifyConfig,
    ReportConfig,
    SmtpConfig,
    StoreConfig,
    config_from_dict,
)
from bruteguard.dashboard.config import DashboardConfig
from bruteguard.default_config import commented_defaults
from bruteguard.install import InstallError, program_path, unit_text

SETTING_LINE = re.compile(r"^#(?=[\[a-z])", re.MULTILINE)


def uncommented(text: str) -> str:
    return SETTING_LINE.sub("", text)


def test_the_default_file_uncommented_means_the_defaults() -> None:
    text = commented_defaults()
    defaults = config_from_dict({}, "file")
    assert config_from_dict(tomllib.loads(text), "file") == defaults  # as written: nothing
    document = tomllib.loads(uncommented(text))
    assert document["defaults"]["maxretry"] == 5 and document["jails"]["sshd"]["port"] == ["ssh"]
    assert config_from_dict(document, "file") == defaults
    # and a setting uncommented and changed takes effect
    changed = uncommented(text).replace("maxretry = 4\n", "maxretry = 2\n", 1)
    assert config_from_dict(tomllib.loads(changed), "file").jails["sshd-ddos"].maxretry == 2


# The ledger's path is written as [store] path (a table since it holds retention too).
STORE = {"store", "store_settings"}


def test_the_default_file_shows_every_setting_and_builtin_jail() -> None:
    text = commented_defaults()
    shown = set(re.findall(r"^#([a-z_0-9]+) = ", text, re.MULTILINE))
    shown |= set(re.findall(r"^# ([a-z_0-9]+): ", text, re.MULTILINE))  # said in words
    tables = set(re.findall(r"^#\[([a-z0-9_.-]+)\]$", text, re.MULTILINE))
    kinds: list[tuple[type[msgspec.Struct], set[str]]] = [
        (
            Config,
            {"jails", "source_path", "blocklists", "identity", "abuse", "notify", "metrics"}
            | {"report", "dashboard"}
            | STORE,
        ),
        (MetricsConfig, set()),
        (ReportConfig, set()),
        (DashboardConfig, set()),
        (StoreConfig, set()),
        (JailConfig, {"name", "global_ignoreip"}),
        (IdentityConfig, set()),
        (NotifyConfig, set()),
        (AbuseConfig, {"smtp", "lookup", "mailbox"}),
        (SmtpConfig, set()),
        (LookupConfig, set()),
    ]
    for kind, not_settings in kinds:
        missing = set(kind.__struct_fields__) - not_settings - shown
        assert not missing, (kind.__name__, missing)
    assert {f"jails.{name}" for name in BUILTIN_JAILS} <= tables
    assert {"store", "identity", "notify", "abuse", "abuse.smtp", "abuse.lookup"} <= tables
    assert {"metrics", "report", "dashboard"} <= tables
    assert "defaults" in tables
    # blocklists and the abuse mailbox have no default: explained, never a setting line
    assert "#   [blocklists.drop]" in text and "#   [abuse.mailbox]" in text


def test_the_unit_runs_the_bruteguard_of_this_venv(tmp_path: Path) -> None:
    program = program_path()
    assert program == Path(sys.executable).absolute().with_name("bruteguard")
    unit = unit_text(program)
    assert re.findall(r"^ExecStart=.*$", unit, re.MULTILINE) == [f"ExecStart={program} run"]
    assert "\nType=notify\n" in unit and "\nWantedBy=multi-user.target\n" in unit
    other = unit_text(program, tmp_path / "bg.toml")
    assert f"\nExecStart={program} run --config {tmp_path}/bg.toml\n" in other
    for bad in ("/opt/my venv/bin/bruteguard", "/opt/100%/bin/bruteguard", "bin/bruteguard"):
        with pytest.raises(InstallError, match="plain absolute path"):
            unit_text(Path(bad))


def test_install_and_uninstall_refuse_a_user_who_is_not_root(
    tmp_path: Path, bruteguard_exe: Path
) -> None:
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    prefix = as_nobody if os.geteuid() == 0 else []
    for command in ("install", "uninstall"):
        argv = [*prefix, str(bruteguard_exe), command, "--unit-dir", str(tmp_path)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result
        assert f"bruteguard: {command} must run as root" in result.stderr
    assert list(tmp_path.iterdir()) == []


# Runs as root in private mount and network namespaces: an empty /run (no systemd here), then
# each step's argv; prints one JSON list of [status, stdout, stderr].
_STEPS = r"""
import json, subprocess, sys
subprocess.run(["mount", "-t", "tmpfs", "bruteguard-test-run", "/run"], check=True)
results = []
for argv in json.loads(sys.argv[1]):
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    results.append([done.returncode, done.stdout, done.stderr])
print(json.dumps(results))
"""


def in_private_namespaces(*steps: list[str]) -> list[tuple[int, str, str]]:
    argv = ["unshare", "--mount", "--net", "--propagation", "private", "--",
            sys.executable, "-c", _STEPS, json.dumps(steps)]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return [tuple(step) for step in json.loads(result.stdout)]


@pytest.fixture
def layout(tmp_path: Path, netns_root: None) -> dict[str, Any]:
    units = tmp_path / "units"
    config = tmp_path / "etc" / "bruteguard.toml"
    return {"units": units, "unit": units / "bruteguard.service", "config": config}


@pytest.mark.netns
def test_install_without_systemd_writes_the_files_and_says_how_to_run(
    bruteguard_exe: Path, layout: dict[str, Any]
) -> None:
    exe, units, config = str(bruteguard_exe), str(layout["units"]), str(layout["config"])
    install = [exe, "install", "--unit-dir", units, "--config", config]
    first, again, quiet = in_private_namespaces(install, install, [*install, "--no-start"])
    status, stdout, stderr = first
    assert status == 3, first
    assert f"wrote {units}/bruteguard.service (ExecStart={exe} run --config {config})" in stdout
    assert f"wrote {config}: every setting commented out" in stdout
    assert "systemd does not run here" in stderr and "bruteguard is NOT running" in stderr
    assert f"\n  {exe} run --config {config}\n" in stderr
    assert layout["config"].read_text() == commented_defaults()
    assert layout["config"].stat().st_mode & 0o777 == 0o644
    assert f"\nExecStart={exe} run --config {config}\n" in layout["unit"].read_text()
    assert again[0] == 3 and f"kept {config} (it exists)" in again[1], again
    assert f"{units}/bruteguard.service: up to date" in again[1], again
    assert quiet[0] == 0 and f"start it with: {exe} run --config {config}" in quiet[1], quiet


@pytest.mark.netns
def test_install_keeps_the_admins_file_and_refuses_a_broken_one(
    bruteguard_exe: Path, layout: dict[str, Any]
) -> None:
    exe, units, config = str(bruteguard_exe), str(layout["units"]), str(layout["config"])
    layout["config"].parent.mkdir()
    layout["config"].write_text("[jails.sshd]\nmaxretry = 3\n")
    install = [exe, "install", "--no-start", "--unit-dir", units, "--config", config]
    (kept,) = in_private_namespaces(install)
    assert kept[0] == 0 and layout["config"].read_text() == "[jails.sshd]\nmaxretry = 3\n", kept
    layout["config"].write_text("[jails.sshd]\nmaxretry = 0\n")
    (broken,) = in_private_namespaces(install)
    assert broken[0] == 2, broken
    assert "jails.sshd.maxretry: must be 1 to 10000" in broken[2], broken


@pytest.mark.netns
def test_uninstall_removes_unit_and_firewall_and_purge_the_rest(
    bruteguard_exe: Path, layout: dict[str, Any], tmp_path: Path
) -> None:
    exe, units, config = str(bruteguard_exe), str(layout["units"]), str(layout["config"])
    ledger = tmp_path / "state" / "bruteguard.db"
    ledger.parent.mkdir()
    ledger.write_bytes(b"")
    layout["config"].parent.mkdir()
    layout["config"].write_text(f'store = "{ledger}"\nsocket = "{tmp_path}/control.sock"\n')
    tables = ["nft", "list", "tables"]
    install = [exe, "install", "--no-start", "--unit-dir", units, "--config", config]
    uninstall = [exe, "uninstall", "--unit-dir", units, "--config", config]
    steps = in_private_namespaces(
        install,
        ["nft", "add", "table", "inet", "bruteguard"],
        tables,
        uninstall,
        tables,
    )
    assert [step[0] for step in steps] == [0, 0, 0, 0, 0], steps
    assert steps[2][1].split() == ["table", "inet", "bruteguard"], steps
    assert f"removed {units}/bruteguard.service" in steps[3][1], steps
    assert "removed bruteguard's firewall objects (nftables)" in steps[3][1], steps
    assert f"kept {config} and the ledger {ledger}" in steps[3][1], steps
    assert steps[4][1] == ""  # no table left
    assert not layout["unit"].exists() and layout["config"].exists() and ledger.exists()
    (purged,) = in_private_namespaces([*uninstall, "--purge"])
    assert purged[0] == 0, purged
    assert f"removed {config}\n" in purged[1] and f"removed {ledger}\n" in purged[1], purged
    assert not layout["config"].exists() and not ledger.exists()
    assert not ledger.parent.exists() and not layout["config"].parent.exists()
