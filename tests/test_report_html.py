"""``bruteguard report --html``: from logs and from the ledger, run as the real command.

The page must be one offline file (no reference to anything outside it), show attacker
text as text, and carry the same numbers as ``scan --json`` and the ledger's own rows. A
screenshot taken by Debian's headless chromium is kept as docs/img/report.png.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bruteguard.model import Ban, Failure
from bruteguard.store.sqlite import SqliteStore

HOSTILE = "<img src=x onerror=alert(1)>"
ROOT = Path(__file__).resolve().parent.parent
MTIME = 1_764_547_200.0  # 2025-12-01 00:00 UTC: the year the syslog stamps take
T0 = 1_700_000_000.0


def bruteguard(exe: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"}
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=120, env={**env, "TZ": "UTC"}
    )


class Page(HTMLParser):
    """Every tag with its attributes, and the text shown, of an HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def fact(self, name: str) -> int:
        """The big number shown above ``name`` in the facts row."""
        shown = "\n".join(self.text)
        found = re.search(r"([\d,]+)\n" + re.escape(name) + r"\n", shown)
        assert found, f"no fact {name!r}"
        return int(found.group(1).replace(",", ""))


def assert_offline(html: str) -> Page:
    page = Page(html)
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed", "img", "base"), tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("src", "href", "srcset", "action", "data", "xlink:href"):
                pytest.fail(f"<{tag} {name}={value!r}> refers outside the file")
    # no URL anywhere but the SVG namespace name (an identifier, never fetched)
    assert set(re.findall(r"https?://[^\s\"'<>)]+", html)) <= {"http://www.w3.org/2000/svg"}
    assert "url(" not in html and "@import" not in html
    return page


def auth_log(path: Path) -> Path:
    lines = []
    for i in range(40):
        address = f"203.0.113.{10 + i % 4}"
        user = HOSTILE if i % 5 == 0 else f"user{i % 7}"
        lines.append(
            f"Nov 30 10:{i // 4:02d}:{i:02d} host sshd[{1000 + i}]: Failed password"
            f" for invalid user {user} from {address} port {40000 + i} ssh2"
        )
    path.write_text("\n".join(lines) + "\n")
    os.utime(path, (MTIME, MTIME))
    return path


def test_report_of_logs_is_offline_escaped_and_equals_the_scan(
    tmp_path: Path, bruteguard_exe: Path, make_config
) -> None:
    config = make_config()
    log = auth_log(tmp_path / "auth.log")
    out = tmp_path / "report.html"
    done = bruteguard(bruteguard_exe, "-c", str(config), "report", str(log), "--html", str(out))
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    page = assert_offline(html)
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert HOSTILE in "".join(page.text)  # shown as text

    scanned = bruteguard(bruteguard_exe, "-c", str(config), "scan", str(log), "--json")
    summary = json.loads(scanned.stdout.splitlines()[-1])
    assert page.fact("log lines read") == summary["lines"] == 40
    assert page.fact("failed attempts") == summary["failures"] == 40
    assert page.fact("bans") == summary["bans"] > 0
    assert page.fact("attacking addresses") == 4
    assert page.fact("attempts in sshd") == summary["per_jail"]["sshd"]
    # the users table: the hostile name tried 8 times, as text
    assert re.search(r"<td>&lt;img src=x onerror=alert\(1\)&gt;</td><td class=\"n\">8</td>", html)


def test_report_of_the_ledger_equals_its_rows(
    tmp_path: Path, bruteguard_exe: Path, make_config
) -> None:
    config = make_config()
    ledger = tmp_path / "bruteguard.db"
    with SqliteStore(ledger) as store:
        store.add_failures(
            Failure(T0 + i * 30, f"198.51.100.{i % 9}", "sshd", HOSTILE if i % 2 else "root")
            for i in range(250)
        )
        store.add_bans(
            Ban(f"198.51.100.{i}", "sshd", T0 + 100 * i, T0 + 100 * i + 600, 5, "r", step=1 + i % 3)
            for i in range(9)
        )
    out = tmp_path / "ledger.html"
    done = bruteguard(bruteguard_exe, "-c", str(config), "report", "--ledger", "--html", str(out))
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    page = assert_offline(html)
    with sqlite3.connect(ledger) as db:
        failures = db.execute("SELECT count(*) FROM failures").fetchone()[0]
        bans = db.execute("SELECT count(*) FROM bans").fetchone()[0]
        hostile = db.execute("SELECT count(*) FROM failures WHERE user = ?", (HOSTILE,))
        tried = hostile.fetchone()[0]
    assert page.fact("failed attempts") == failures == 250
    assert page.fact("bans") == bans == 9
    assert page.fact("attacking addresses") == 9
    assert "log lines read" not in "".join(page.text)  # the ledger keeps no line count
    assert f'<td>&lt;img src=x onerror=alert(1)&gt;</td><td class="n">{tried}</td>' in html
    assert "<img" not in html


def test_report_refuses_a_missing_ledger(tmp_path: Path, bruteguard_exe: Path, make_config):
    config = make_config()
    done = bruteguard(
        bruteguard_exe, "-c", str(config), "report", "--ledger", str(tmp_path / "none.db"),
        "--html", str(tmp_path / "x.html"),
    )  # fmt: skip
    assert done.returncode != 0 and "no ledger there" in done.stderr
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "none.db").exists()


def test_screenshot_by_headless_chromium(tmp_path: Path, bruteguard_exe: Path, make_config) -> None:
    """The report as a browser draws it, kept as docs/img/report.png (linked from the
    README); the page must render with nothing fetched, so the picture shows the plots."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (.ci/run installs it)"
    config = make_config()
    log = auth_log(tmp_path / "auth.log")
    out = tmp_path / "report.html"
    done = bruteguard(bruteguard_exe, "-c", str(config), "report", str(log), "--html", str(out))
    assert done.returncode == 0, done.stderr
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
            "--window-size=1140,1500", f"file://{out}",
        ],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a picture, not blank
    artefacts = ROOT / "docs" / "img"
    artefacts.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, artefacts / "report.png")


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("--ledger",), "--html"),
        (("x.log", "--ledger", "--html", "x.html"), "not both"),
        (("--html", "x.html"), "LOG"),
    ],
)
def test_bad_combinations_are_bad_usage(bruteguard_exe: Path, args, what: str) -> None:
    done = bruteguard(bruteguard_exe, "report", *args)
    assert done.returncode == 2 and done.stdout == ""
    assert what in done.stderr and "see `bruteguard report --help`" in done.stderr
