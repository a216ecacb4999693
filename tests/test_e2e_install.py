"""README command 1 on a fresh, journal-only Debian server leaves sshd protected.

The server (tests/installlab.py) is what a stock Debian 12 machine is: sshd logs to
systemd-journald only, there is no syslog daemon and no auth.log. In its own mount, PID and
network namespaces, ``install.sh`` runs from a copy of this repository exactly as the README
says (pip kept offline), once by root and once by a user who may sudo, from a clone in their
home. systemd is not PID 1 there, so install.sh writes the unit and the default
configuration with ``bruteguard install --no-start`` and runs the daemon in the foreground:
the unit's own ExecStart line. Then an attacker guesses passwords over real SSH from another
namespace and must find port 22 closed, while an innocent host still logs in.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

import pytest

from bruteguard.default_config import commented_defaults
from installlab import InstallLab
from sshlab import SSH_PORT, poll_until

pytestmark = pytest.mark.netns

# The extras install.sh installs (`pip install '.[journal]'`: systemd-python reads the
# journal); the venv is given what pip would fetch for them.
EXTRAS = ("journal",)
INSTALL_SH = Path(__file__).resolve().parent.parent / "install.sh"
MAXRETRY = 5  # the built-in sshd jail's
INSTALL_TIMEOUT = 300  # seconds: venv, building the C matcher, starting the daemon


@pytest.mark.parametrize("admin", ["root", "sudo-user"])
def test_readme_command_one_protects_sshd_on_a_journal_only_server(
    netns_root: None, tmp_path: Path, admin: Literal["root", "sudo-user"]
) -> None:
    assert f".venv/bin/pip install '.[{','.join(EXTRAS)}]'\n" in INSTALL_SH.read_text()
    if admin == "sudo-user" and shutil.which("sudo") is None:
        pytest.fail("this test needs sudo (Debian package sudo)")
    with InstallLab(tmp_path / "lab", extras=EXTRAS, admin=admin) as lab:
        program = lab.program
        server = lab.lab.server

        def daemon_answers() -> bool:
            return lab.in_server([program, "status", "--json"]).returncode == 0

        poll_until(
            daemon_answers, INSTALL_TIMEOUT, "install.sh's bruteguard to answer", lab.diagnostics
        )

        # What `bruteguard install` wrote: a unit running this venv's bruteguard (what
        # install.sh runs in the foreground here), and the commented default configuration.
        unit = lab.in_server(["cat", "/etc/systemd/system/bruteguard.service"])
        assert unit.returncode == 0, unit.stderr
        assert f"\nExecStart={program} run\n" in unit.stdout, unit.stdout
        config = lab.in_server(["cat", "/etc/bruteguard/bruteguard.toml"])
        assert config.stdout == commented_defaults(), config.stderr
        assert lab.in_server(["test", "-e", "/var/log/auth.log"]).returncode == 1

        # The daemon reads sshd's lines from the journal, and says so; doctor agrees.
        status = json.loads(lab.in_server([program, "status", "--json"]).stdout)
        sshd = next(jail for jail in status["jails"] if jail["name"] == "sshd")
        assert "sshd" not in status["degraded"], status
        assert [source["reading"] for source in sshd["sources"]] == [True], sshd
        assert "journal" in sshd["sources"][0]["detail"], sshd
        doctor = lab.in_server([program, "doctor", "--json"])
        findings = {f["check"]: f for f in json.loads(doctor.stdout)["findings"]}
        for jail in ("sshd", "sshd-ddos"):  # (the sshd.* checks judge the host's sshd_config)
            source = findings[f"source.{jail}"]
            assert source["status"] == "ok", source
            assert source["detail"].startswith("journal (_SYSTEMD_UNIT=ssh.service"), source

        attacker = lab.clients["attacker"]
        assert attacker.tcp_connect(server.ipv4, SSH_PORT)
        assert lab.innocent_can_login(server.ipv4)
        for _ in range(MAXRETRY):
            assert not lab.ssh_password_attempt(attacker, server.ipv4, password="wrong")

        def attacker_refused() -> bool:
            return not attacker.tcp_connect(server.ipv4, SSH_PORT, timeout=1.0)

        poll_until(attacker_refused, 30, "the attacker's ban", lab.diagnostics)
        assert lab.innocent_can_login(server.ipv4)
        bans = json.loads(lab.in_server([program, "bans", "--json"]).stdout)
        assert [(ban["ip"], ban["jail"]) for ban in bans] == [(attacker.ipv4, "sshd")], bans
