"""``bruteguard install`` and ``uninstall``: the systemd unit, a default config, the service on.

``install`` writes the unit with ``ExecStart=`` naming, by absolute path, the ``bruteguard``
program of the Python it runs from (a venv's ``bin/``: nothing needs to be copied to where a
packaged unit would look), writes the default configuration file (every setting commented
out) only when there is none, and where systemd runs, reloads it, restarts the service if it
ran (a new version or venv takes over) and enables and starts it. Where systemd does not
run, nothing could start the daemon at boot: ``install`` writes the files, says so and how to
run the daemon, and exits with status 3 (``--no-start`` makes that the plan, status 0).
``uninstall`` stops and disables the service, removes the unit and bruteguard's firewall
objects, and keeps the configuration and the ledger unless ``--purge``. Every command is an
argv list.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bruteguard.config import DEFAULT_CONFIG_PATH, Config, config_from_dict, load_config
from bruteguard.control import request
from bruteguard.errors import BruteguardError, ConfigError, NotRunningError

__all__ = [
    "NOT_STARTED",
    "UNIT_DIR",
    "UNIT_NAME",
    "InstallError",
    "Layout",
    "NotStartedError",
    "install",
    "program_path",
    "run_argv",
    "systemd_running",
    "uninstall",
    "unit_text",
]

UNIT_NAME = "bruteguard.service"
UNIT_DIR = Path("/etc/systemd/system")
SYSTEMD_RUNTIME = Path("/run/systemd/system")  # what sd_booted(3) looks for
NOT_STARTED = 3

# A unit's ExecStart takes these characters as they are; others (spaces, %, $, quotes,
# backslashes, ;) would need systemd's quoting, and a path holding them is refused.
_PLAIN_PATH = re.compile(r"\A/[A-Za-z0-9_./+,:@=-]+\Z")
_EXEC_START = re.compile(r"^ExecStart=.*$", re.MULTILINE)

Say = Callable[[str], None]


class InstallError(BruteguardError):
    """Installing or uninstalling could not be done (not root, no program, systemctl failed)."""


class NotStartedError(BruteguardError):
    """The files are in place but nothing runs the daemon: systemd does not run here."""

    exit_code = NOT_STARTED


@dataclass(frozen=True)
class Layout:
    """Where the unit and the configuration file go (other places only for tests and
    packagers: systemd reads units from ``UNIT_DIR``)."""

    unit_dir: Path = UNIT_DIR
    config_path: Path = DEFAULT_CONFIG_PATH

    @property
    def unit_path(self) -> Path:
        return self.unit_dir / UNIT_NAME

    @property
    def unit_target(self) -> str:
        """What systemctl is told: the name, or the file where systemd would not look."""
        return UNIT_NAME if self.unit_dir == UNIT_DIR else str(self.unit_path)


def systemd_running() -> bool:
    """Whether systemd is this system's init (as sd_booted(3) decides)."""
    return SYSTEMD_RUNTIME.is_dir()


def _require_root(command: str) -> None:
    if os.geteuid() != 0:
        raise InstallError(
            f"{command} must run as root: it writes {UNIT_DIR} and /etc/bruteguard and runs "
            f"systemctl (try: sudo {Path(sys.argv[0]).absolute()} {command})"
        )


def _plain(path: Path, what: str) -> str:
    text = str(path)
    if not _PLAIN_PATH.match(text):
        raise InstallError(
            f"{what} {text!r}: a unit's ExecStart needs a plain absolute path (no spaces, %, $,"
            " quotes or backslashes); install into a venv at such a path"
        )
    return text


def program_path() -> Path:
    """The ``bruteguard`` program of the Python running this: the venv's, absolute."""
    import sysconfig  # here, as the package's other commands (a replay) never need it

    candidates = [
        Path(sys.executable).parent / "bruteguard",
        Path(sysconfig.get_path("scripts")) / "bruteguard",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return Path(os.path.abspath(candidate))
    raise InstallError(
        f"no bruteguard program next to {sys.executable}: install the package into this"
        " Python first (python3 -m venv .venv && .venv/bin/pip install .)"
    )


def run_argv(program: Path, config_path: Path) -> list[str]:
    """The daemon's command line: ``PROGRAM run``, naming the file when it is not the default."""
    argv = [_plain(program, "program"), "run"]
    if config_path != DEFAULT_CONFIG_PATH:
        argv += ["--config", _plain(config_path, "configuration file")]
    return argv


def unit_text(program: Path, config_path: Path = DEFAULT_CONFIG_PATH) -> str:
    """The packaged unit (``bruteguard.service``) with ``ExecStart=`` running ``program``."""
    from importlib import resources

    template = resources.files("bruteguard").joinpath(UNIT_NAME).read_text(encoding="utf-8")
    line = "ExecStart=" + " ".join(run_argv(program, config_path))
    text, count = _EXEC_START.subn(line, template)
    if count != 1:
        raise InstallError(f"the packaged {UNIT_NAME} has {count} ExecStart lines, not one")
    return text


def _temporary(path: Path, text: str, mode: int) -> Path:
    """``text`` in a new file beside ``path`` (same file system), flushed to disk."""
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.chmod(temporary, mode)  # whatever the umask
    return temporary


def _replace(path: Path, text: str, mode: int = 0o644) -> None:
    os.replace(_temporary(path, text, mode), path)


def _create(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write ``path`` whole unless it exists (never overwritten); True if it was written."""
    temporary = _temporary(path, text, mode)
    try:
        os.link(temporary, path)  # fails if the file exists: an admin's file is kept
    except FileExistsError:
        return False
    finally:
        temporary.unlink()
    return True


def _systemctl(*args: str) -> None:
    import subprocess  # here: importing this module (every command does) should not cost it

    argv = ["systemctl", *args]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    except FileNotFoundError:
        raise InstallError("systemd runs but systemctl is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise InstallError(f"{' '.join(argv)} did not finish within 300 s") from None
    if result.returncode != 0:
        raise InstallError(
            f"{' '.join(argv)} failed: {result.stderr.strip() or result.stdout.strip()}"
            f" (see: journalctl -u {UNIT_NAME})"
        )


def install(layout: Layout, *, start: bool, systemd: bool, say: Say = print) -> None:
    """Write the unit and (if absent) the configuration; start the service where systemd runs.

    Raises ``NotStartedError`` when ``start`` is asked for but systemd does not run here.
    """
    _require_root("install")
    argv = run_argv(program_path(), layout.config_path)
    unit = unit_text(Path(argv[0]), layout.config_path)
    try:
        current = layout.unit_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if current == unit:
        say(f"{layout.unit_path}: up to date")
    else:
        _replace(layout.unit_path, unit)
        say(f"wrote {layout.unit_path} (ExecStart={' '.join(argv)})")
    from bruteguard.default_config import commented_defaults

    if _create(layout.config_path, commented_defaults()):
        say(f"wrote {layout.config_path}: every setting commented out, showing its default")
    else:
        say(f"kept {layout.config_path} (it exists)")
    load_config(layout.config_path)  # a broken file is reported now, not by a failed start
    command = " ".join(argv)
    if not start:
        how = f"systemctl enable --now {layout.unit_target}" if systemd else command
        say(f"not started (--no-start); start it with: {how}")
        return
    if not systemd:
        raise NotStartedError(
            f"systemd does not run here ({SYSTEMD_RUNTIME} is missing): bruteguard is NOT "
            f"running and nothing will start it at boot. Run it in the foreground (as root):\n"
            f"  {command}\nor start that from your init system or a terminal that stays open"
        )
    _systemctl("daemon-reload")
    # A service already running restarts: it runs the program (and unit) just installed.
    _systemctl("try-restart", UNIT_NAME)
    _systemctl("enable", "--now", layout.unit_target)
    say(
        f"{UNIT_NAME} is enabled and running: `bruteguard status` shows what it reads and"
        " bans, `bruteguard doctor` checks sshd, the logs and the firewall"
    )


def _config_or_defaults(path: Path, say: Say) -> Config:
    if not path.exists():
        return config_from_dict({})
    try:
        return load_config(path)
    except ConfigError as error:
        say(f"warning: {error}; using the defaults to find the socket, firewall and ledger")
        return config_from_dict({})


def _stop_by_socket(config: Config, say: Say) -> None:
    """Stop a daemon no service manager runs (a foreground ``bruteguard run``)."""
    try:
        request(config.socket, "stop")
    except NotRunningError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            request(config.socket, "status")
        except NotRunningError:
            say("stopped the running bruteguard")
            return
        time.sleep(0.2)
    raise InstallError(f"bruteguard on {config.socket} did not stop within 30 s")


def _remove_firewall(config: Config, say: Say) -> None:
    from bruteguard.enforce.factory import make_enforcers

    try:
        for enforcer in make_enforcers(config):
            enforcer.teardown()
    except BruteguardError as error:
        say(f"warning: firewall objects not removed: {error}")
        return
    say(f"removed bruteguard's firewall objects ({', '.join(config.enforcers)})")


def _remove(paths: list[Path], say: Say) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        say(f"removed {path}")
    for directory in {path.parent for path in paths}:
        try:
            directory.rmdir()  # only when empty: other files there are not ours
        except OSError:
            continue
        say(f"removed {directory}")


def uninstall(layout: Layout, *, purge: bool, systemd: bool, say: Say = print) -> None:
    """Stop and disable the service, remove the unit and the firewall objects; with
    ``purge`` also the configuration file and the ledger."""
    _require_root("uninstall")
    config = _config_or_defaults(layout.config_path, say)
    unit = layout.unit_path
    if systemd and unit.exists():
        _systemctl("disable", "--now", layout.unit_target)
        say(f"stopped and disabled {UNIT_NAME}")
    _stop_by_socket(config, say)
    _remove_firewall(config, say)
    if unit.exists():
        unit.unlink()
        say(f"removed {unit}")
        if systemd:
            _systemctl("daemon-reload")
    store = Path(config.store)
    if not purge:
        say(f"kept {layout.config_path} and the ledger {store} (--purge removes them)")
        return
    ledger = [store, *(store.with_name(store.name + end) for end in ("-wal", "-shm", "-journal"))]
    _remove([layout.config_path, *ledger], say)
