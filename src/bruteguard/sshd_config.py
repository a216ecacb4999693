"""sshd's global settings, as bruteguard needs them: from ``sshd -T``, else sshd_config.

``sshd -T`` is exact but needs root and the host keys; the fallback reads the configuration
files as sshd does (``Include`` globs, first value wins, ``Match`` blocks counted, not used),
so a check run as an ordinary user still gets an answer. Nothing here raises on a missing
sshd: ``read_sshd_settings`` says why instead.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "MAX_INCLUDED_FILES",
    "MAX_INCLUDE_DEPTH",
    "SSHD_TIMEOUT",
    "SshdSettings",
    "parse_sshd_config",
    "read_sshd_settings",
]

SSHD_TIMEOUT = 5.0
MAX_INCLUDE_DEPTH = 16  # as sshd's own limit: an Include loop ends here, not in a crash
MAX_INCLUDED_FILES = 256  # a loop through a glob of several files would otherwise branch
_SBIN = "/usr/sbin:/sbin:/usr/local/sbin"  # sshd is not on a non-root user's PATH
_STDERR_LIMIT = 300

# OpenSSH's compiled-in values, for keywords a configuration file does not set.
_SSHD_DEFAULTS = {
    "usedns": "no",
    "passwordauthentication": "yes",
    "kbdinteractiveauthentication": "yes",
    "usepam": "no",
    "permitrootlogin": "prohibit-password",
    "loglevel": "INFO",
    "syslogfacility": "AUTH",
}
# Old names that set the same option (sshd -T of OpenSSH < 8.7 prints the old one).
_ALIASES = {
    "challengeresponseauthentication": "kbdinteractiveauthentication",
    "skeyauthentication": "kbdinteractiveauthentication",
}
_SYNONYMS = {"without-password": "prohibit-password", "silent": "quiet"}
_KEYWORD = re.compile(r"\A\s*([A-Za-z][A-Za-z0-9]*)\s*(?:=\s*|\s+)(.*)\Z")


@dataclass
class SshdSettings:
    """sshd's global settings as lowercase keyword → value, and where they came from.

    ``origin`` is ``"sshd -T"`` or the configuration file read. ``ports`` are every port sshd
    listens on (``Port`` and ``ListenAddress host:port``). ``match_blocks`` counts ``Match``
    blocks, which may change a setting for some clients and are not in the global answer.
    """

    origin: str
    values: dict[str, str] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)
    match_blocks: int = 0
    notes: list[str] = field(default_factory=list)

    def get(self, keyword: str) -> str:
        """The value, lowercase, in the words sshd_config uses (sshd -T says "SILENT" for
        LogLevel QUIET and "without-password" for prohibit-password)."""
        value = self.values.get(keyword, _SSHD_DEFAULTS.get(keyword, "")).lower()
        return _SYNONYMS.get(value, value)


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def _listen_port(address: str) -> int | None:
    """The port of a ``ListenAddress`` (``[::]:22``, ``0.0.0.0:22``), None if it names none."""
    if address.startswith("["):
        _, _, rest = address.partition("]")
        return _port(rest[1:]) if rest.startswith(":") else None
    if address.count(":") == 1:
        return _port(address.partition(":")[2])
    return None


def _add_ports(settings: SshdSettings, ports: list[int], listen: list[str]) -> None:
    """Where sshd listens: each ListenAddress on its own port, or on every ``Port`` if it
    names none; with no ListenAddress, every ``Port`` (22 when none is set)."""
    ports = ports or [22]
    found: list[int] = []
    for address in listen or [""]:
        port = _listen_port(address)
        found += [port] if port is not None else ports
    for port in found:
        if port not in settings.ports:
            settings.ports.append(port)


def _parse_effective(text: str) -> SshdSettings:
    """``sshd -T`` output: ``keyword value`` lines, lowercase keywords, one per option."""
    settings = SshdSettings(origin="sshd -T")
    ports: list[int] = []
    listen: list[str] = []
    for line in text.splitlines():
        keyword, _, value = line.strip().partition(" ")
        keyword = keyword.lower()
        if keyword == "port":
            if (port := _port(value.strip())) is not None:
                ports.append(port)
        elif keyword == "listenaddress":
            listen.append(value.strip().split()[0] if value.strip() else "")
        elif keyword:
            settings.values.setdefault(keyword, value.strip())
    for old, new in _ALIASES.items():
        if old in settings.values and new not in settings.values:
            settings.values[new] = settings.values[old]
    _add_ports(settings, ports, [address for address in listen if address])
    return settings


class _ConfigReader:
    """Reads sshd_config as sshd does for its global settings.

    Keywords are case-insensitive and the first value wins (``Port`` and ``ListenAddress``
    add up). ``Include`` globs are followed, relative to the main file's directory (which is
    sshd's ``/etc/ssh`` for the default file), sorted, at most ``MAX_INCLUDE_DEPTH`` deep.
    Lines after ``Match`` apply only to some clients: they are counted, not used; a Match
    block inside an included file ends with that file, as in sshd. At most
    ``MAX_INCLUDED_FILES`` files are read, whatever the globs match.
    """

    def __init__(self, main: Path) -> None:
        self.base = main.parent
        self.settings = SshdSettings(origin=str(main))
        self.ports: list[int] = []
        self.listen: list[str] = []
        self.files = 0

    def read(self, path: Path, depth: int) -> None:
        text = path.read_text(encoding="utf-8", errors="replace")
        in_match = False
        for number, line in enumerate(text.splitlines(), 1):
            found = _KEYWORD.match(line)
            if found is None or line.lstrip().startswith("#"):
                continue
            keyword = found.group(1).lower()
            try:
                args = shlex.split(found.group(2), comments=True)
            except ValueError:
                self.settings.notes.append(f"{path}:{number}: unbalanced quotes; line skipped")
                continue
            if keyword == "match":
                in_match = True
                self.settings.match_blocks += 1
            elif not args or in_match:
                continue
            elif keyword == "include":
                self._include(args, path, depth)
            elif keyword == "port":
                self.ports += [port for port in map(_port, args[:1]) if port is not None]
            elif keyword == "listenaddress":
                self.listen.append(args[0])
            else:
                self.settings.values.setdefault(_ALIASES.get(keyword, keyword), args[0])

    def _include(self, patterns: list[str], parent: Path, depth: int) -> None:
        if depth >= MAX_INCLUDE_DEPTH:
            self.settings.notes.append(f"{parent}: Include nested too deep; not followed")
            return
        for pattern in patterns:
            full = pattern if os.path.isabs(pattern) else str(self.base / pattern)
            for name in sorted(glob.glob(full)):
                self.files += 1
                if self.files > MAX_INCLUDED_FILES:
                    self.settings.notes.append(
                        f"{parent}: more than {MAX_INCLUDED_FILES} included files; rest skipped"
                    )
                    return
                try:
                    self.read(Path(name), depth + 1)
                except OSError as error:
                    self.settings.notes.append(f"{name}: cannot read: {error.strerror}")


def parse_sshd_config(path: str | os.PathLike[str]) -> SshdSettings:
    """The global settings ``path`` (and what it includes) give; OSError if it can't be read."""
    reader = _ConfigReader(Path(path))
    reader.read(Path(path), 0)
    _add_ports(reader.settings, reader.ports, reader.listen)
    return reader.settings


def _first_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line[:_STDERR_LIMIT]


def _run_sshd_t(argv: Sequence[str]) -> tuple[SshdSettings | None, str]:
    """``sshd -T`` parsed, or None and why it could not be used."""
    if not argv:
        return None, "no sshd command given"
    program = shutil.which(argv[0]) or shutil.which(argv[0], path=_SBIN)
    if program is None:
        return None, f"{argv[0]!r} not found"
    try:
        done = subprocess.run(
            [program, *argv[1:]],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=SSHD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"{' '.join(argv)} did not finish within {SSHD_TIMEOUT:g}s"
    except OSError as error:
        return None, f"cannot run {argv[0]!r}: {error.strerror}"
    stdout = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0 or not stdout.strip():
        why = _first_line(done.stderr.decode("utf-8", "replace")) or f"exit {done.returncode}"
        return None, f"{' '.join(argv)} failed: {why}"
    return _parse_effective(stdout), ""


def read_sshd_settings(
    argv: Sequence[str] = ("sshd", "-T"), config: str = "/etc/ssh/sshd_config"
) -> tuple[SshdSettings | None, str]:
    """sshd's settings from ``sshd -T`` (exact, needs root and host keys), else from
    ``config``; and a note on how they were read (why ``sshd -T`` was not used). None when
    neither worked."""
    effective, why = _run_sshd_t(argv)
    try:
        from_file = parse_sshd_config(config)
    except OSError as error:
        if effective is not None:
            return effective, ""
        return None, f"{why}; and {config}: {error.strerror or error}"
    if effective is not None:
        effective.match_blocks = from_file.match_blocks
        return effective, ""
    return from_file, why
