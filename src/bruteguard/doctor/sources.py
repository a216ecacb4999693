"""The findings about each jail's source, chosen as the daemon chooses it: does it exist,
can it be read, and does it hold lines from the jail's programs at all?

A log file is judged by its last ``TAIL_BYTES``; the journal by its newest entries, read
with the daemon's own reader (the systemd bindings, or journalctl) and formatted as the daemon
formats them, so that what counts here is what the matcher would see.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from bruteguard.config import Config, JailConfig
from bruteguard.doctor.findings import Finding, not_checked, running_as_root
from bruteguard.errors import BruteguardError
from bruteguard.match.imported import is_imported
from bruteguard.match.signature import program_regex
from bruteguard.match.signatures import FILTERS
from bruteguard.sources.files import refusal
from bruteguard.sources.journal import (
    JOURNAL_DIRECTORIES,
    JournalSource,
    describe_matches,
    format_entry,
    journal_files,
)
from bruteguard.sources.journalctl import JournalctlFailed, find_journalctl, recent_entries
from bruteguard.sources.select import (
    AUTH_LOGS,
    JournalReader,
    SourceSpec,
    journal_reader,
    resolve_sources,
)

__all__ = ["JOURNAL_DAYS", "JOURNAL_LIMIT", "TAIL_BYTES", "check_sources"]

TAIL_BYTES = 1 << 20  # how much of a log file's end is looked at
JOURNAL_DAYS = 7
JOURNAL_LIMIT = 50_000  # entries read at most, newest first


def _faster_reader() -> str:
    """How to get the faster journal reader into the Python bruteguard runs on."""
    if sys.prefix != sys.base_prefix:  # a venv: the system's python3-systemd is not in it
        how = (
            "pip install 'bruteguard[journal]' into this venv (builds systemd-python: needs "
            "libsystemd-dev, pkg-config and a C compiler)"
        )
    else:
        how = "apt-get install python3-systemd (or your distribution's systemd-python)"
    return f"optional: systemd-python reads the journal faster than journalctl; {how}"


def _program_lines(programs: Sequence[str]) -> re.Pattern[bytes]:
    """A syslog line whose program is one of ``programs``: a stamp and a host (at most five
    fields, none ending in ``:``, so a message that mentions ``sshd[1]:`` does not count),
    then ``prog[pid]:`` or ``prog:``."""
    names = "|".join(program_regex(name) for name in programs).encode()
    return re.compile(
        rb"(?m)^(?:[^\s]*[^\s:][ \t]+){1,5}?(?:" + names + rb")(?:\[[0-9]{1,10}\])?:[ \t]"
    )


def _service_lines(filter_name: str) -> tuple[re.Pattern[bytes], str] | None:
    """Lines the jail's service writes, whatever they say (its programs' syslog lines, or
    lines in its own log format), and how to name them; None for a fail2ban filter, whose
    lines can be anything."""
    if is_imported(filter_name):
        return None
    forms = FILTERS[filter_name].forms()
    programs = [name for form in forms for name in form.programs]
    patterns = [_program_lines(programs).pattern.removeprefix(b"(?m)")] if programs else []
    heads = [form.frame for form in forms if not form.frame.programs]
    patterns += [rb"^" + frame.head.encode() for frame in heads]
    names = "/".join(programs + [f"{frame.name}-format" for frame in heads])
    return re.compile(b"|".join(b"(?:" + p + b")" for p in patterns), re.MULTILINE), names


def _unreadable(check: str, what: str, error: OSError) -> Finding:
    if isinstance(error, PermissionError) and not running_as_root():
        return not_checked(check, f"{what}: permission denied")
    return Finding(
        check=check,
        status="problem",
        detail=f"{what}: cannot read: {error.strerror or error}",
        advice="bruteguard runs as root and must be able to read it",
    )


def _tail(path: str) -> bytes:
    """The whole lines of the file's last ``TAIL_BYTES``. Opened without blocking, so a FIFO
    at the path cannot hang the check (the caller has made sure it is a regular file)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(descriptor, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        start = max(0, size - TAIL_BYTES)
        file.seek(start)
        data = file.read(TAIL_BYTES)
    if start:  # the first line is cut: only whole lines count
        data = data.partition(b"\n")[2]
    return data


def _service_name(jail: JailConfig, programs: Sequence[str]) -> str:
    """The program whose lines a jail reads (its filter's first), as the admin knows it:
    ``sshd`` for the sshd-ddos jail, not the jail's name (a fail2ban filter: its name)."""
    return programs[0].split("(")[0] if programs else jail.filter


def _elsewhere(jail: JailConfig, path: str, journal: bool) -> str:
    """Where else the jail's service may log on this host: the jail's other log files that
    exist (the distribution's auth logs for a jail that names none), then the journal; when
    there is neither, that nothing keeps its lines."""
    candidates = [
        candidate
        for candidate in (jail.logpath or AUTH_LOGS)
        if candidate != path and os.path.isfile(candidate)
    ]
    if journal:
        candidates.append('the journal (backend = "journal")')
    if candidates:
        return f" (look at {', '.join(candidates)})"
    return (
        "; no other log file of the jail and no journal exists here: install a syslog"
        " daemon (rsyslog writes /var/log/auth.log) or let journald keep logs"
        " (Storage= in journald.conf)"
    )


def _file_finding(
    jail: JailConfig, path: str, journal: bool, programs: Sequence[str] = ()
) -> Finding:
    check = f"source.{jail.name}"
    service = _service_name(jail, programs)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return Finding(
            check=check,
            status="problem",
            detail=f"file {path} does not exist: the jail waits for it and bans no one",
            advice=f"point logpath at the file {service} really writes"
            + _elsewhere(jail, path, journal),
        )
    except OSError as error:
        return _unreadable(check, f"file {path}", error)
    if refused := refusal(path, mode):
        return Finding(
            check=check,
            status="problem",
            detail=f"{refused}; the jail bans no one",
            advice=f"remove it and point logpath at the file {service} really writes"
            + _elsewhere(jail, path, journal),
        )
    try:
        data = _tail(path)
    except OSError as error:
        return _unreadable(check, f"file {path}", error)
    shape = _service_lines(jail.filter)
    if shape is None:
        return Finding(
            check=check,
            status="ok",
            detail=f"file {path} can be read (a fail2ban filter: its lines are not checked)",
        )
    lines, names = shape
    count = len(lines.findall(data))
    if count:
        return Finding(
            check=check,
            status="ok",
            detail=f"file {path}: {count} {names} lines in its last {len(data) // 1024} KiB",
        )
    elsewhere = "journal only" if journal else "another file"
    return Finding(
        check=check,
        status="advice",
        detail=f"file {path}: no {names} lines in its last {len(data) // 1024} KiB",
        advice=f"bruteguard's source has no {service} lines: is {service} logging "
        f"elsewhere ({elsewhere})?",
    )


class _JournalCounts(NamedTuple):
    seen: int  # entries read
    found: int  # formatted as one of the programs: what the matcher will look at
    untrusted: int  # _COMM names a program, but _UID/_EXE do not vouch for it


def _journal_entries(
    reader: JournalReader, matches: Sequence[str], files: Sequence[str] | None
) -> Iterator[dict[str, Any]]:
    """The newest entries first, at most ``JOURNAL_LIMIT`` and none older than
    ``JOURNAL_DAYS``, read by the daemon's own ``reader`` (same matches, same raw fields)."""
    oldest = time.time() - JOURNAL_DAYS * 86400
    path = None if files is None else list(files)
    if reader == "journalctl":
        yield from recent_entries(matches, limit=JOURNAL_LIMIT, since=oldest, path=path)
        return
    source = JournalSource(list(matches), path=path)
    journal = source._open()
    try:
        journal.seek_tail()
        for _ in range(JOURNAL_LIMIT):
            entry = journal.get_previous()
            if not entry or entry.get("__REALTIME_TIMESTAMP", 0) < oldest * 1_000_000:
                break
            yield entry
    finally:
        journal.close()


def _journal_counts(
    reader: JournalReader,
    matches: Sequence[str],
    programs: Sequence[str],
    files: Sequence[str] | None,
) -> _JournalCounts:
    """How many recent entries there are, and how many are the programs' own, formatted
    exactly as the daemon does."""
    ours = _program_lines(programs)
    wanted = {name.encode() for name in programs}
    seen = found = untrusted = 0
    for entry in _journal_entries(reader, matches, files):
        seen += 1
        if ours.match(format_entry(entry)):
            found += 1
        elif entry.get("_COMM") in wanted:
            untrusted += 1
    return _JournalCounts(seen, found, untrusted)


def _journal_finding(
    jail: JailConfig, spec: SourceSpec, programs: Sequence[str], files: list[str], system: bool
) -> Finding:
    """``files`` are the journal files found; ``system``: read them as the system journal."""
    check = f"source.{jail.name}"
    reader: JournalReader = spec.reader or "journalctl"
    what = f"journal ({describe_matches(spec.matches)}) via {reader}"
    service = _service_name(jail, programs)
    logpath = f" (its logpath: {', '.join(jail.logpath)})" if jail.logpath else ""
    if reader == "journalctl" and find_journalctl() is None:
        return Finding(
            check=check,
            status="problem",
            detail="reads the journal, but there is no journalctl to read it with "
            "(and no systemd-python)",
            advice='is this a systemd host? journalctl comes with systemd; or set backend = "file"',
        )
    if not files:
        return Finding(
            check=check,
            status="problem",
            detail=f"{what}: there are no journal files",
            advice="is journald running and storing logs (Storage= in journald.conf)?",
        )
    if not programs:  # a fail2ban filter: its lines can be anything
        return Finding(check=check, status="ok", detail=f"{what}: its lines are not checked")
    try:
        seen, found, untrusted = _journal_counts(
            reader, spec.matches, programs, None if system else files
        )
    except (BruteguardError, OSError) as error:
        if isinstance(error, PermissionError):
            return _unreadable(check, "journal", error)
        if isinstance(error, JournalctlFailed) and not running_as_root():
            return not_checked(check, f"{what}: {error}")  # journalctl's way to say EACCES
        return Finding(check=check, status="problem", detail=f"{what}: {error}")
    names = "/".join(programs)
    period = f"the last {JOURNAL_DAYS} days"
    if not seen and not running_as_root():
        return not_checked(check, f"{what}: no entries visible to this user")
    if untrusted:
        return Finding(
            check=check,
            status="advice" if found else "problem",
            detail=f"{what}: {found} {names} entries in {period}, and "
            f"{untrusted} more whose _UID/_EXE do not vouch for their _COMM: they are "
            "ignored (forged by a local user, or a journal copied from another machine)",
            advice=f"if {service} itself wrote them, check how it runs (its binary under "
            "/usr, a system uid, not in a user's session)",
        )
    if found:
        return Finding(
            check=check,
            status="ok",
            detail=f"{what}: {found} {names} entries in {period}",
            advice=_faster_reader() if reader == "journalctl" else "",
        )
    return Finding(
        check=check,
        status="advice",
        detail=f"{what}: no {names} entries in {period} ({seen} other entries)",
        advice=f"bruteguard's source has no {service} lines: is {service} logging to a file "
        f'only (no journal)? Check journalmatch, or set backend = "file"{logpath}',
    )


def _forgery(jail: JailConfig, reader: JournalReader | None, programs: Sequence[str]) -> Finding:
    install = "" if reader else "make journalctl (it comes with systemd) available and "
    service = _service_name(jail, programs)
    return Finding(
        check=f"source.{jail.name}.trust",
        status="advice",
        detail="reads a log file although this host has the systemd journal: any local user "
        f"can write lines into the file that look like {service}'s (logger -t "
        f"{service} …) and get an innocent address banned; journal entries are checked "
        "against _COMM/_UID, which the kernel vouches for",
        advice=f'{install}set backend = "journal" (with a journalmatch) in [jails.{jail.name}]',
    )


_NO_JAILS = Finding(
    check="jails",
    status="problem",
    detail="no jail is enabled: bruteguard watches nothing",
    advice="enable a jail ([jails.sshd] enabled = true)",
)


def check_sources(
    config: Config, journal_directories: Sequence[str] = JOURNAL_DIRECTORIES
) -> list[Finding]:
    """For each enabled jail, the source the daemon would read, and whether it carries lines
    from the jail's programs. The recidive jail reads bruteguard's own bans, not a log."""
    jails = config.log_jails()
    if not jails:
        return [_NO_JAILS]
    files = journal_files(journal_directories)
    reader = journal_reader(journal_directories)  # the daemon's choice, for these files
    # The system journal unless asked to look elsewhere (tests, a copied journal).
    system = tuple(journal_directories) == JOURNAL_DIRECTORIES
    return [finding for jail in jails for finding in _jail_sources(jail, reader, files, system)]


def _jail_sources(
    jail: JailConfig, reader: JournalReader | None, files: list[str], system: bool
) -> list[Finding]:
    """Each source one jail reads, and the warning that a file can be forged when the
    journal is there to read instead."""
    check = f"source.{jail.name}"
    forms = [] if is_imported(jail.filter) else FILTERS[jail.filter].forms()
    programs = [name for form in forms for name in form.programs]
    try:
        specs = resolve_sources(jail, journal=reader or False)
    except BruteguardError as error:
        return [Finding(check=check, status="problem", detail=str(error))]
    if not specs:
        return [
            Finding(
                check=check,
                status="problem",
                detail=f"no file matches logpath {', '.join(jail.logpath)}",
                advice="fix logpath: the jail reads nothing",
            )
        ]
    findings = []
    for spec in specs:
        if spec.kind == "file":
            findings.append(_file_finding(jail, spec.path, bool(files), programs))
        elif spec.kind == "journal":
            findings.append(_journal_finding(jail, spec, programs, files, system))
        else:
            findings.append(Finding(check=check, status="ok", detail="reads standard input of run"))
    if files and any(spec.kind == "file" for spec in specs):
        findings.append(_forgery(jail, reader, programs))
    return findings
