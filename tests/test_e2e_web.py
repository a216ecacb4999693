"""A real nginx's access log, end to end: WordPress login floods and scanners are banned.

``weblab.NginxLab`` runs Debian's nginx (nginx-light) in the server namespace of a lab with
three clients; the real ``bruteguard run`` in the same namespace runs the built-in
``wordpress`` and ``web-scanner`` jails on nginx's real access log. Judged by behaviour:

* the attacker POSTs wrong passwords to ``/wp-login.php`` (200 each, as WordPress answers):
  at ``maxretry`` it is banned, and its connections to port 80 are refused;
* the scanner asks for well-known probe paths (404 each) over IPv6: banned the same way;
* the innocent browses — pages, one 404 on an ordinary path, one failed login — before,
  between and after: it is never banned, still served, and only its failed login counted.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bgdaemon import Bruteguard
from e2e_lab import LabDaemons, banned, failures
from labkit import poll_until
from weblab import NGINX, NginxLab

pytestmark = pytest.mark.netns

WP_MAXRETRY = 3
SCAN_MAXRETRY = 4
SETTLE = 1.0  # seconds the daemon gets to read on before a count is taken as final
PROBES = ["/.env", "/.git/config", "/phpmyadmin/", "/wp-config.php.bak", "/cgi-bin/luci"]


@pytest.fixture
def web(lab_daemons: LabDaemons, tmp_path: Path) -> tuple[NginxLab, Bruteguard]:
    if not Path(NGINX).is_file():
        pytest.fail("the test needs nginx: apt-get install nginx-light (CI installs it)")
    lab = NginxLab(tmp_path / "nginx", clients=("attacker", "scanner", "innocent"))
    jails = {
        "sshd": {"enabled": False},
        "wordpress": {"enabled": True, "logpath": [str(lab.jail_log)], "maxretry": WP_MAXRETRY},
        "web-scanner": {"enabled": True, "logpath": [str(lab.jail_log)], "maxretry": SCAN_MAXRETRY},
    }
    return lab_daemons.start(lab, jails, "web-bg.log")


def _browse(lab: NginxLab, address: str) -> None:
    """What a person does: pages, a mistyped link (404), one wrong password."""
    got = lab.requests(
        "innocent",
        address,
        [("GET", "/", ""), ("GET", "/about/", ""), ("GET", "/abuot/", ""), lab.failed_login()],
    )
    assert got == [200, 200, 404, 200], got


def test_wordpress_flood_and_scanner_are_banned_the_innocent_is_not(web) -> None:
    lab, daemon = web
    server4, server6 = lab.server.ipv4, lab.server.ipv6
    attacker, scanner, innocent = (lab.clients[n] for n in ("attacker", "scanner", "innocent"))
    _browse(lab, server4)

    # maxretry - 1 failed logins ban nobody; the next one does.
    flood = [lab.failed_login()] * (WP_MAXRETRY - 1)
    assert lab.requests(attacker, server4, flood) == [200] * (WP_MAXRETRY - 1)
    lab.wait_for_jail_log(
        r'^\S+ - - \[[^]]+\] "POST /wp-login\.php HTTP/1\.1" 200 ', count=WP_MAXRETRY
    )
    time.sleep(SETTLE)
    assert daemon.ban_of(attacker.ipv4) is None, daemon.log()
    assert lab.requests(attacker, server4, [lab.failed_login()]) == [200]
    banned(lab, daemon, attacker.ipv4, "wordpress")
    poll_until(lambda: not lab.connects(attacker, server4), 10, "port 80 refused to the attacker")

    # The scanner, over IPv6: probe paths answered 404.
    probes = [("GET", path, "") for path in PROBES[:SCAN_MAXRETRY]]
    assert lab.requests(scanner, server6, probes) == [404] * SCAN_MAXRETRY
    banned(lab, daemon, scanner.ipv6, "web-scanner")
    poll_until(lambda: not lab.connects(scanner, server6), 10, "port 80 refused to the scanner")
    assert lab.requests(scanner, server6, [("GET", "/", "")]) == ["unreachable"]

    # The innocent is served throughout, on both families, and never banned.
    _browse(lab, server6)
    assert lab.requests(innocent, server4, [("GET", "/", "")]) == [200]
    assert daemon.ban_of(innocent.ipv4) is None and daemon.ban_of(innocent.ipv6) is None

    # Each failed login once (the attacker's 3, the innocent's 2), each probe once; the
    # innocent's 404s on ordinary paths are no scanner's.
    time.sleep(SETTLE)
    assert failures(daemon, "wordpress") == WP_MAXRETRY + 2, daemon.log()
    assert failures(daemon, "web-scanner") == SCAN_MAXRETRY, daemon.log()
