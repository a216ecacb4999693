"""The flood bench's peer setups are ones the peers accept, with our thresholds.

``bench/flood.py`` compares bruteguard with fail2ban and SSHGuard; a comparison is only
fair if the peers run the config we think they run. fail2ban checks its own config
directory (``-t``) and dumps the jail it would start; SSHGuard's blocker, given the
thresholds we give it, blocks an address at its ``maxretry``-th failure and not before.
Cheap (a few seconds) and needs no root: nothing is started in a namespace here.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _peers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_peers", BENCH / "peers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


peers = _peers()


def _require(peer: str) -> None:
    why = peers.missing(peer)
    if why:
        pytest.fail(f"the flood bench's {peer}: {why}")


def test_fail2ban_accepts_the_bench_config(tmp_path: Path) -> None:
    _require("fail2ban")
    log = tmp_path / "auth.log"
    log.touch()
    config = peers.fail2ban_config(
        tmp_path, log, maxretry=3, findtime=600, bantime=3600, backend=peers.fail2ban_backend()
    )
    argv = peers.fail2ban_argv(config, tmp_path)
    checked = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "OK: configuration test is successful" in checked.stdout + checked.stderr
    dumped = subprocess.run([*argv, "-d"], capture_output=True, text=True, check=False, timeout=60)
    assert dumped.returncode == 0, dumped.stderr
    jails = {line.split("'")[3] for line in dumped.stdout.splitlines() if "'add'" in line}
    assert jails == {"sshd"}  # the host's jail.d and *.local files are left out
    expected = (
        "['set', 'sshd', 'maxretry', 3]",
        "['set', 'sshd', 'findtime', '600']",
        "['set', 'sshd', 'bantime', '3600']",
        f"['set', 'sshd', 'addlogpath', '{log}', 'head']",
        "nft add element",
    )
    for fragment in expected:
        assert fragment in dumped.stdout, fragment
    # Nothing of the run may land outside the bench's directory.
    assert str(tmp_path / "fail2ban.sock") in " ".join(argv)
    assert f"'dbfile', '{tmp_path / 'fail2ban.sqlite3'}'" in dumped.stdout


def test_sshguard_blocks_at_maxretry_with_the_bench_flags(tmp_path: Path) -> None:
    _require("sshguard")
    tail, parser, blocker, backend = peers.sshguard_argvs(
        tmp_path / "auth.log", maxretry=3, findtime=600, bantime=3600
    )
    assert Path(tail[0]).name == "sshg-logtail" and Path(backend[0]).name == "sshg-fw-nft-sets"
    line = (
        "Dec  6 00:25:00 web1 sshd[1234]: Failed password for invalid user admin "
        "from {} port 2222 ssh2\n"
    )
    two = line.format("192.0.2.7") * 2
    three = line.format("2001:db8:9:4::5") * 3
    parsed = subprocess.run(
        parser, input=two + three, capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert parsed.splitlines() == ["100 192.0.2.7 4 10"] * 2 + ["100 2001:db8:9:4::5 6 10"] * 3
    blocked = subprocess.run(
        blocker, input=parsed, capture_output=True, text=True, check=True, timeout=30
    ).stdout
    # Two failures (score 20 < 30) block nobody; the third blocks, an IPv6 attacker by /64.
    assert [row for row in blocked.splitlines() if row.startswith("block")] == [
        "block 2001:db8:9:4::5 6 64"
    ]
