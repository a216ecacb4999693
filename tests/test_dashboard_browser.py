"""``bruteguard dashboard`` in a real headless chromium (Debian's, driven by playwright),
against the real daemon banning with real nftables in a lab namespace.

The daemon reads an auth.log in the lab's server namespace; the dashboard runs beside it on
127.0.0.1 and talks to the daemon's control socket. Behaviour is checked where it shows: the
nft set, a TCP connection from the attacker's namespace, the page the browser drew.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bgdaemon import Bruteguard
from bruteguard.dashboard.auth import hash_password
from conftest import only_these_jails, toml_document
from dashkit import PASSWORD, browser, dashboard, log_in
from enforcekit import SSH, lab_fixture, reaches
from labkit import poll_until
from netns import Lab
from test_enforce_nftables import elements

pytestmark = pytest.mark.netns

HOSTILE_USER = "<img src=x onerror=alert(1)>"
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "img" / "dashboard.png"

lab = lab_fixture("bgdash", clients=("attacker",))


def _failure(pid: int, address: str) -> str:
    stamp = time.strftime("%b %e %H:%M:%S")
    return (
        f"{stamp} server sshd[{pid}]: Failed password for invalid user {HOSTILE_USER}"
        f" from {address} port {40000 + pid} ssh2\n"
    )


def _config(tmp: Path) -> Path:
    log = tmp / "auth.log"
    log.touch()
    config = tmp / "bg.toml"
    config.write_text(
        toml_document(
            {
                "store": str(tmp / "bg.db"),
                "socket": str(tmp / "bg.sock"),
                "enforcers": ["nftables"],
                "dashboard": {
                    "listen": "127.0.0.1:0",
                    "password_hash": hash_password(PASSWORD),
                },
                "jails": only_these_jails(
                    {
                        "sshd": {
                            "backend": "file",
                            "logpath": [str(log)],
                            "port": [SSH],
                            "maxretry": 3,
                            "bantime": "1h",
                        },
                        "recidive": {"enabled": False},
                    }
                ),
            }
        )
    )
    return config


def _in_set(lab: Lab) -> set[str]:
    return {entry["val"] for entry in elements(lab.server, "sshd_v4")}


def test_dashboard_shows_a_ban_unbans_it_refuses_csrf_and_escapes(
    lab: Lab, tmp_path: Path, bruteguard_exe: Path
) -> None:
    attacker = lab.clients["attacker"]
    config = _config(tmp_path)
    daemon = Bruteguard(bruteguard_exe, config, lab.server, tmp_path / "daemon.log")
    daemon.start()
    try:
        with (
            dashboard(bruteguard_exe, config, tmp_path / "dashboard.log") as url,
            browser() as chromium,
        ):
            page = chromium.new_page(viewport={"width": 1400, "height": 1000})
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            log_in(page, url)

            # The daemon bans the attacker from its log: the set has it, the port refuses it.
            with (tmp_path / "auth.log").open("a") as log:
                log.write("".join(_failure(pid, attacker.ipv4) for pid in (1, 2, 3)))
            poll_until(
                lambda: attacker.ipv4 in _in_set(lab), 15, "the daemon's ban in nft", interval=0.05
            )
            banned_at = time.monotonic()
            row = page.locator("#bans tbody tr", has_text=attacker.ipv4)
            row.wait_for(timeout=2000)
            assert time.monotonic() - banned_at < 2.0
            assert reaches(attacker, lab.server)["v4"] is False

            # The hostile user name is shown as text everywhere it appears; no markup, no
            # script ran.
            page.locator("#users tbody", has_text=HOSTILE_USER).wait_for(timeout=5000)
            page.locator("#failures tbody", has_text=HOSTILE_USER).wait_for(timeout=5000)
            assert page.locator("#users tbody td").first.text_content() == HOSTILE_USER
            assert page.locator("img:not(.plot)").count() == 0
            assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0
            page.wait_for_timeout(500)  # time for a handler that should never run
            assert dialogs == []

            # An action without the CSRF token (or with a wrong one) is refused: 403, the
            # ban stays, in the ledger and in the firewall.
            body = json.dumps({"ip": attacker.ipv4})
            for headers in (
                {"Content-Type": "application/json"},
                {"Content-Type": "application/json", "X-CSRF-Token": "forged"},
            ):
                refused = page.request.post(url + "api/unban", data=body, headers=headers)
                assert refused.status == 403, refused.text()
            time.sleep(0.5)
            assert attacker.ipv4 in _in_set(lab)
            assert daemon.ban_of(attacker.ipv4) is not None

            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            # One click lifts it: the nft set empties and the attacker connects again.
            row.get_by_role("button", name="Unban").click()
            poll_until(
                lambda: not _in_set(lab), 5, "the nft set to empty after the click", interval=0.05
            )
            assert reaches(attacker, lab.server)["v4"] is True
            assert daemon.ban_of(attacker.ipv4) is None
            page.locator("#message", has_text=f"unbanned {attacker.ipv4}").wait_for(timeout=5000)
            row.wait_for(state="detached", timeout=5000)
            assert dialogs == []
    finally:
        daemon.terminate()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes((tmp_path / "dashboard.png").read_bytes())
