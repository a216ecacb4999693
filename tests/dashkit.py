"""The real ``bruteguard dashboard`` process for tests, and Debian's chromium driven by
playwright (never a browser of playwright's own: ``playwright install`` downloads one)."""

from __future__ import annotations

import contextlib
import select
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PASSWORD = "correct horse battery"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

__all__ = ["CHROMIUM", "PASSWORD", "Client", "browser", "dashboard", "log_in"]


@contextlib.contextmanager
def dashboard(exe: Path, config: Path, log: Path) -> Iterator[str]:
    """Run ``bruteguard dashboard`` (its config listens on port 0) and yield its URL."""
    with log.open("ab") as errors:
        process = subprocess.Popen(
            [str(exe), "dashboard", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline().decode() if ready else ""
        if not line.startswith("dashboard on "):
            raise AssertionError(f"the dashboard did not start: {line!r}\n{log.read_text()}")
        yield line.split()[-1]
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    """A fresh headless chromium (playwright's sync API)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (.ci/run installs it)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def log_in(page: Any, url: str, secret: str = PASSWORD) -> None:
    page.goto(url)
    page.fill("#secret", secret)
    page.click("button[type=submit]")
    page.wait_for_selector("#ban-form", timeout=10_000)


class Client:
    """A plain HTTP client that keeps the session cookie (what a script, not a browser,
    would send: no SameSite, no CSP, so the server's own checks are what is tested)."""

    def __init__(self, url: str) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cookie = ""
        self.csrf = ""

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        import http.client

        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = dict(headers or {})
        if self.cookie:
            sent.setdefault("Cookie", self.cookie)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def log_in(self, secret: str = PASSWORD) -> tuple[int, dict[str, str], bytes]:
        import re
        from urllib.parse import urlencode

        form = urlencode({"secret": secret}).encode()
        answer = self.request(
            "POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        cookie = answer[1].get("Set-Cookie", "")
        if answer[0] == 303 and cookie:
            self.cookie = cookie.split(";", 1)[0]
            page = self.request("GET", "/")[2].decode()
            found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
            assert found, page
            self.csrf = found.group(1)
        return answer

    def act(
        self, path: str, fields: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        import json

        sent = {"Content-Type": "application/json", "X-CSRF-Token": self.csrf, **(headers or {})}
        status, _, body = self.request("POST", path, json.dumps(fields).encode(), sent)
        return status, json.loads(body) if body.startswith(b"{") else body
