"""A fresh, journal-only Debian server in a ``netns.Lab``, on which README command 1 runs.

``InstallLab`` is an ``SshLab`` whose launcher (tests/installlab-launch.sh) starts a real
systemd-journald instead of rsyslogd (so there is no auth.log, as on a stock Debian 12
server), a real sshd logging to it, and then ``install.sh`` from a copy of this repository,
as root, the way the README says. The host's /etc and /var are overlays in that namespace and
/run is private: whatever the install writes stays there.

The admin is root, or the lab's user with sudo rights running it from a clone in their
home (``admin="sudo-user"``). The Python is the system's ``/usr/bin/python3``, as on a fresh
Debian machine.

Offline: ``pip install .`` must not reach an index, so the copy's ``.venv`` is prepared with
what pip would have fetched: the distributions ``bruteguard`` needs (and setuptools, to
build it without isolation), copied from the venv running the tests. ``install.sh`` then
re-runs ``python3 -m venv`` over it, builds and installs the copy for real, and starts it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from importlib.metadata import Distribution, distribution
from pathlib import Path
from typing import Literal

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from sshlab import SshLab

__all__ = ["InstallLab", "distributions_needed"]

REPO = Path(__file__).resolve().parent.parent
# What a user's clone holds that the install reads; tests, benchmarks and caches stay out.
_NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", "*.so", ".*_cache", "tests", "bench"
)


def distributions_needed(roots: Iterable[str]) -> dict[str, Distribution]:
    """The installed distributions that ``pip install`` of ``roots`` (requirement strings,
    extras included) would put in a venv, found from this venv's metadata."""
    found: dict[str, Distribution] = {}
    pending = [Requirement(root) for root in roots]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found[name] = dist = distribution(requirement.name)
        extras = requirement.extras or {""}
        for text in dist.requires or []:
            needed = Requirement(text)
            marker = needed.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(needed)
    return found


def _copy_into(site: Path, dists: Iterable[Distribution]) -> None:
    """Each distribution's top-level files and directories, copied into ``site``."""
    for dist in dists:
        if dist.files is None:
            raise RuntimeError(f"{dist.metadata['Name']} has no RECORD: cannot copy it")
        for top in {file.parts[0] for file in dist.files}:
            if top in ("..", "__pycache__") or (site / top).exists():
                continue
            source = Path(str(dist.locate_file(top)))
            if source.is_dir():
                shutil.copytree(source, site / top, symlinks=True)
            else:
                shutil.copy2(source, site / top)


def system_python() -> Path:
    """``/usr/bin/python3``, the one a fresh Debian machine has: the version of this one (the
    copied distributions are built for it)."""
    python = Path("/usr/bin/python3")
    version = subprocess.run(
        [str(python), "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()  # fmt: skip
    if version != [str(part) for part in sys.version_info[:2]]:
        raise RuntimeError(f"{python} is Python {'.'.join(version)}, the tests' {sys.version}")
    return python


class InstallLab(SshLab):
    """sshd logging to a real journald; ``install.sh`` run as the README says."""

    LAUNCHER = Path(__file__).with_name("installlab-launch.sh")
    PREFIX = "bginst"
    LOG_NAME = "journal.txt"  # the journal as text, refreshed by ``read_journal``
    READY = "sshd's 'Server listening' lines in the journal"
    DIAGNOSED = ("journald.log", "install.log")

    def __init__(
        self,
        workdir: Path,
        extras: Iterable[str] = (),
        admin: Literal["root", "sudo-user"] = "root",
    ) -> None:
        super().__init__(workdir)
        self.extras = tuple(extras)
        self.admin = admin
        self.checkout = self.workdir / "bruteguard"

    @property
    def program(self) -> str:
        """The bruteguard install.sh installs, as the server sees it (a sudo user's clone is
        in their home)."""
        checkout = (self.workdir / "checkout").read_text().strip()
        return f"{checkout}/.venv/bin/bruteguard"

    def _prepare(self) -> None:
        super()._prepare()
        shutil.copytree(REPO, self.checkout, ignore=_NOT_COPIED)
        python = system_python()
        venv = self.checkout / ".venv"
        subprocess.run(
            [str(python), "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
        )
        version = sysconfig.get_python_version()
        site = venv / "lib" / f"python{version}" / "site-packages"
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        needed = distributions_needed([f"bruteguard{extras}", "setuptools"])
        del needed["bruteguard"]  # install.sh installs that one
        _copy_into(site, needed.values())
        (self.workdir / "python-bin").write_text(str(python.parent))
        if self.admin == "root":
            (self.workdir / "admin").write_text("root")
        else:
            (self.workdir / "admin").write_text(self.user)
            subprocess.run(["chown", "-R", f"{self.user}:", str(self.checkout)], check=True)

    def read_journal(self) -> str:
        """The journal so far, as journalctl shows it (also kept in ``log_path``)."""
        result = subprocess.run(
            ["journalctl", "-D", str(self.workdir / "journal"), "-o", "short", "--no-pager"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        self.log_path.write_text(result.stdout)
        return result.stdout

    def _ready(self) -> bool:
        self.read_journal()
        return super()._ready()

    def in_server(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        """Run ``argv`` on the lab's server as the admin would: its mount, network and PID
        namespaces (its /etc, /run and firewall)."""
        if self.launcher_pid is None:
            raise RuntimeError("the lab is not running")
        prefix = ["nsenter", "--target", str(self.launcher_pid), "--mount", "--net", "--pid"]
        return subprocess.run(
            [*prefix, "--", *argv], capture_output=True, text=True, timeout=timeout, check=False
        )
