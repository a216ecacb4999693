"""Which sources a jail reads, and one source per log however many jails read it.

``backend = "auto"`` (the default) picks what this host has: the journal when it can be read
and the jail says which entries are its own (``journalmatch``), else the jail's ``logpath``
files, else the distribution's auth log (``/var/log/auth.log`` on Debian, ``/var/log/secure``
on Red Hat; both, watched, when neither exists yet). ``"file"``, ``"journal"`` and
``"stdin"`` force one kind. A file that does not exist is watched and read from its first
line when it appears; until then its jail is *degraded* (``status``, the log, systemd's
``STATUS=``).

The journal is read by one of two readers (``journal_reader``): the systemd Python bindings
when they import (the faster one), else ``journalctl``, which every systemd host has and a
plain ``pip install`` needs no compiler for. Both save the same cursor.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import msgspec

from bruteguard.config import JailConfig
from bruteguard.errors import ConfigError
from bruteguard.model import SourcePosition
from bruteguard.sources import Source
from bruteguard.sources.files import FileSource, file_key, refusal
from bruteguard.sources.journal import (
    JOURNAL_DIRECTORIES,
    JournalSource,
    bindings_available,
    describe_matches,
    journal_files,
    journal_key,
)
from bruteguard.sources.journalctl import JournalctlSource, find_journalctl
from bruteguard.sources.stdin import STDIN_KEY, StdinSource

__all__ = [
    "AUTH_LOGS",
    "JournalReader",
    "SourceSpec",
    "journal_reader",
    "plan_sources",
    "resolve_sources",
    "source_description",
    "sources_for_jail",
]

AUTH_LOGS = ("/var/log/auth.log", "/var/log/secure")

SavedPositions = Callable[[str], SourcePosition | None]
Start = Literal["end", "start"]
JournalReader = Literal["systemd-python", "journalctl"]


def journal_reader(directories: Sequence[str] = JOURNAL_DIRECTORIES) -> JournalReader | None:
    """How this host's journal is read: with the bindings when they import (faster), else
    with ``journalctl``; None when there is no journal here (no journal files) or neither."""
    if not journal_files(directories):
        return None
    if bindings_available():
        return "systemd-python"
    return "journalctl" if find_journalctl() is not None else None


def _forced_reader() -> JournalReader:
    """The reader of ``backend = "journal"``: as ``auto`` would pick, else the one whose
    failure says best what is missing (journalctl, in its health)."""
    return journal_reader() or ("systemd-python" if bindings_available() else "journalctl")


class SourceSpec(msgspec.Struct, frozen=True):
    """What to read, decided but not opened: ``kind`` plus a path, or journal matches and
    the reader (which does not change the key: both readers share one cursor)."""

    kind: Literal["file", "journal", "stdin"]
    path: str = ""
    matches: tuple[str, ...] = ()
    reader: JournalReader | Literal[""] = ""

    @property
    def key(self) -> str:
        if self.kind == "file":
            return file_key(self.path)
        if self.kind == "journal":
            return journal_key(self.matches)
        return STDIN_KEY


def _expand(logpath: Iterable[str]) -> list[str]:
    """Absolute paths; a glob (``/var/log/nginx/*error.log``) becomes the files it matches now.

    A plain path is kept even if missing (the file source waits for it); a glob that matches
    nothing contributes nothing, since there is no single file to wait for.
    """
    paths: list[str] = []
    for pattern in logpath:
        found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        for path in map(os.path.abspath, found):
            if path not in paths:
                paths.append(path)
    return paths


def resolve_sources(
    jail: JailConfig, *, journal: JournalReader | Literal[False] | None = None
) -> list[SourceSpec]:
    """The sources ``jail`` reads on this host. ``journal`` overrides what ``journal_reader``
    finds here: a reader, or False for a host without a readable journal."""
    backend = jail.backend
    if backend == "stdin":
        return [SourceSpec("stdin")]
    if backend == "journal":
        reader = journal or _forced_reader()
        return [SourceSpec("journal", matches=tuple(jail.journalmatch), reader=reader)]
    if backend == "file":
        if not jail.logpath:
            raise ConfigError(f'jails.{jail.name}: backend "file" needs a logpath')
        return [SourceSpec("file", path) for path in _expand(jail.logpath)]
    reader = journal_reader() if journal is None and jail.journalmatch else journal
    if jail.journalmatch and reader:
        return [SourceSpec("journal", matches=tuple(jail.journalmatch), reader=reader)]
    if jail.logpath:
        return [SourceSpec("file", path) for path in _expand(jail.logpath)]
    found = [log for log in AUTH_LOGS if os.path.exists(log)]
    # Neither is there yet (rsyslog not installed): watch both, read whichever appears.
    return [SourceSpec("file", log) for log in (found[:1] or AUTH_LOGS)]


def _open(spec: SourceSpec, saved: SavedPositions, start: Start, since: float | None) -> Source:
    position = saved(spec.key)
    if spec.kind == "file":
        return FileSource(spec.path, position, start)
    if spec.kind == "journal":
        if since is None and start == "start":
            since = 0.0  # from the beginning, like a file read from its start
        if spec.reader == "systemd-python":
            return JournalSource(list(spec.matches), position, since)
        return JournalctlSource(list(spec.matches), position, since)
    return StdinSource()


def sources_for_jail(
    jail: JailConfig,
    saved: SavedPositions,
    start: Start = "end",
    *,
    since: float | None = None,
) -> list[Source]:
    """New, unopened sources for one jail, each resuming from ``saved(key)`` if known."""
    return [_open(spec, saved, start, since) for spec in resolve_sources(jail)]


def plan_sources(
    jails: Iterable[JailConfig],
    saved: SavedPositions,
    start: Start = "end",
    *,
    since: float | None = None,
) -> dict[str, tuple[Source, list[str]]]:
    """One source per key and the jails it feeds: two jails on one file share one reader."""
    specs: dict[str, tuple[SourceSpec, list[str]]] = {}
    for jail in jails:
        for spec in resolve_sources(jail):
            specs.setdefault(spec.key, (spec, []))[1].append(jail.name)
    return {key: (_open(spec, saved, start, since), names) for key, (spec, names) in specs.items()}


def source_description(
    jail: JailConfig, *, journal: JournalReader | Literal[False] | None = None
) -> str:
    """One line for ``bruteguard status`` / ``doctor``: what the jail reads, and why."""
    try:
        specs = resolve_sources(jail, journal=journal)
    except ConfigError as error:
        return f"nothing: {error}"
    if not specs:
        return f"nothing: no file matches logpath {', '.join(jail.logpath)}"
    parts = []
    for spec in specs:
        if spec.kind == "file":
            try:
                refused = refusal(spec.path, os.stat(spec.path).st_mode)
            except OSError:
                refused = f"file {spec.path} (not there yet: waiting for it)"
            parts.append(refused or f"file {spec.path}")
        elif spec.kind == "journal":
            parts.append(f"journal ({describe_matches(spec.matches)}) via {spec.reader}")
        else:
            parts.append("standard input")
    text = ", ".join(parts)
    return f"{text} [auto]" if jail.backend == "auto" else text
