"""Fixtures shared by the whole suite: the real executable, config files, root checks.

Tests that need root, namespaces or system tools *fail* with the reason and the Debian
package to install when those are missing: a skipped end-to-end test proves nothing.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bruteguard.config import BUILTIN_JAILS, RECIDIVE_JAIL
from e2e_lab import LabDaemons
from netns import require_root_netns

__all__ = ["only_these_jails", "require_dovecot", "toml_document"]

# Program → the Debian package that provides it (what .ci/run installs).
E2E_TOOLS: dict[str, str] = {
    "ip": "iproute2",
    "nft": "nftables",
    "unshare": "util-linux",
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "sshpass": "sshpass",
    "rsyslogd": "rsyslog",
    "useradd": "passwd",
    "chpasswd": "passwd",
    "pure-ftpd": "pure-ftpd",
    "pure-pw": "pure-ftpd",
    "dnsmasq": "dnsmasq-base",
    "dovecot": "dovecot-core",
    "openssl": "openssl",
    "nsenter": "util-linux",
    "ss": "iproute2",
    "saslpasswd2": "sasl2-bin",
    "m4": "m4",
    "nginx": "nginx",
    "named": "bind9",
    "dig": "bind9-dnsutils",
    "smbd": "samba",
    "smbclient": "smbclient",
}

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        # A JSON string with ASCII escapes is also a valid TOML basic string.
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def toml_document(settings: dict[str, Any], table: str = "") -> str:
    """``settings`` as TOML: plain keys first, then each nested dict as a ``[table]``."""
    lines = [f"[{table}]"] if table else []
    lines += [
        f"{_toml_key(key)} = {_toml_value(value)}"
        for key, value in settings.items()
        if not isinstance(value, dict)
    ]
    text = "\n".join(lines) + "\n" if lines else ""
    for key, value in settings.items():
        if isinstance(value, dict):
            name = f"{table}.{_toml_key(key)}" if table else _toml_key(key)
            text += "\n" + toml_document(value, name)
    return text


def require_dovecot() -> str:
    """Dovecot's binary; the test fails (never skips) saying what to install when the
    binary or the users it runs as are missing."""
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/sbin")
    if found is None:
        pytest.fail("the test needs Dovecot: apt-get install dovecot-imapd (CI installs it)")
    for name in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            pytest.fail(f"user {name!r} is missing: apt-get install dovecot-imapd creates it")
    return found


def only_these_jails(jails: dict[str, Any]) -> dict[str, Any]:
    """Jail tables where the built-in jails not named stay off, whatever logs this host has:
    a test says which jails run (sshd and recidive keep their defaults)."""
    tables = dict(jails)
    for jail in BUILTIN_JAILS:
        if jail not in ("sshd", RECIDIVE_JAIL):
            tables.setdefault(jail, {"enabled": False})
    return tables


def _host_tables() -> set[str]:
    """The nftables tables of the namespace the suite runs in (the host's), as
    ``family name``; empty where nft is missing or not allowed."""
    nft = _which("nft")
    if nft is None or os.geteuid() != 0:
        return set()
    listed = subprocess.run([nft, "list", "tables"], capture_output=True, text=True, timeout=30)
    return {line.removeprefix("table ").strip() for line in listed.stdout.splitlines()}


@pytest.fixture(scope="session", autouse=True)
def host_firewall_untouched() -> Iterator[None]:
    """Tests change firewalls only in namespaces they made: a table the suite leaves in
    the host's own ruleset fails the run (it was a daemon run here with a real enforcer)."""
    before = _host_tables()
    yield
    left = _host_tables() - before
    assert not left, f"the tests left tables in the host's own firewall: {sorted(left)}"


@pytest.fixture
def local_zone() -> Iterator[Callable[[str], ZoneInfo]]:
    """``use("Europe/Berlin")`` makes that the process's local time zone for this test."""
    saved = os.environ.get("TZ")

    def use(name: str) -> ZoneInfo:
        os.environ["TZ"] = name
        time.tzset()
        return ZoneInfo(name)

    yield use
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


@pytest.fixture
def netns_root() -> None:
    """Root, network namespaces and every system tool the end-to-end tests run, or fail."""
    require_root_netns()
    missing = sorted({pkg for tool, pkg in E2E_TOOLS.items() if not _which(tool)})
    if missing:
        pytest.fail(f"end-to-end tests need these Debian packages: {' '.join(missing)}")


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


@pytest.fixture(scope="session")
def bruteguard_exe() -> Path:
    """The ``bruteguard`` console script of the venv running the tests (not one on PATH)."""
    exe = Path(sys.executable).with_name("bruteguard")
    if not exe.exists():
        pytest.fail(f"{exe} not found: install the project into this venv (pip install -e .)")
    return exe


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a bruteguard TOML config into ``tmp_path`` and return its path.

    Store and control socket default to files in ``tmp_path``, enforcers to nftables;
    keyword arguments add or override top-level settings (``jails={...}`` makes tables).
    """

    def make(name: str = "bruteguard.toml", **settings: Any) -> Path:
        settings["jails"] = only_these_jails(settings.pop("jails", {}))
        document = {
            "store": tmp_path / "bruteguard.db",
            "socket": tmp_path / "bruteguard.sock",
            "enforcers": ["nftables"],
            **settings,
        }
        path = tmp_path / name
        path.write_text(toml_document(document), encoding="utf-8")
        return path

    return make


@pytest.fixture
def lab_daemons(
    netns_root: None,
    tmp_path: Path,
    bruteguard_exe: Path,
    make_config: Callable[..., Path],
) -> Iterator[LabDaemons]:
    """Labs with the real daemon in them (``lab_daemons.start(lab, jails)``); afterwards
    every lab stops, and nothing of one may be left."""
    labs = LabDaemons(tmp_path, bruteguard_exe, make_config)
    yield labs
    labs.close()
