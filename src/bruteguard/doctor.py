"""``bruteguard doctor``: is this host set up so that bruteguard can protect it?

It checks what an administrator would check by hand, and says what to change in plain words:

* **sshd's settings** (``sshd -T``, else the ``sshd_config`` files): passwords, root login,
  ``UseDNS``, log level, and the ports sshd listens on against the ports the sshd jail bans.
* **each jail's source**, chosen as the daemon chooses it: does it exist, can it be read,
  and does it hold lines from the jail's programs at all?
* **each enforcer**: can it work here (``nft --check``; the firewall is never changed)?
* **services that log hostnames** instead of addresses, and how bruteguard attributes them.

Every finding is a ``Finding`` value; the text and ``--json`` renderings show the same list.
Nothing here raises: a missing sshd, an unreadable file or a lack of privilege is a finding
that says so. The exit status is 1 when a finding is a *problem* (bruteguard will miss
attacks or cannot ban), 0 otherwise; advice alone does not fail.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, NamedTuple

import msgspec

from bruteguard.config import Config, JailConfig
from bruteguard.errors import BruteguardError
from bruteguard.match.signatures import FILTERS
from bruteguard.sources.journal import JOURNAL_DIRECTORIES, JournalSource, format_entry
from bruteguard.sources.select import AUTH_LOGS, SourceSpec, resolve_sources

__all__ = [
    "ATTRIBUTION",
    "NAME_LOGGING",
    "Finding",
    "NameLogging",
    "SshdSettings",
    "Status",
    "check_enforcers",
    "check_names",
    "check_sources",
    "check_sshd",
    "diagnose",
    "parse_sshd_config",
    "read_sshd_settings",
    "run_doctor",
]

Status = Literal["ok", "advice", "problem", "unknown"]


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One thing checked: what (``check``), how it stands, what was seen, what to do."""

    check: str
    status: Status
    detail: str
    advice: str = ""


# -- sshd's settings ----------------------------------------------------------------------

SSHD_TIMEOUT = 5.0
MAX_INCLUDE_DEPTH = 16  # as sshd's own limit: an Include loop ends here, not in a crash
MAX_INCLUDED_FILES = 256  # a loop through a glob of several files would otherwise branch
_SBIN = "/usr/sbin:/sbin:/usr/local/sbin"  # sshd is not on a non-root user's PATH
_STDERR_LIMIT = 300
_ROOT_ADVICE = "run bruteguard doctor as root for sshd's own answer (sshd -T)"

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


# -- the findings about sshd --------------------------------------------------------------

_SAFE_ROOT = ("no", "prohibit-password", "forced-commands-only")
_SILENT_LEVELS = ("quiet", "fatal", "error")
_AUTH_FACILITIES = ("auth", "authpriv")


def _sshd_jails(config: Config) -> list[JailConfig]:
    return [jail for jail in config.enabled_jails() if jail.filter == "sshd"]


def _ports_text(ports: Sequence[int]) -> str:
    return ", ".join(map(str, ports))


def check_sshd(settings: SshdSettings | None, how: str, config: Config) -> list[Finding]:
    """Findings about sshd's settings (``settings`` None: they could not be read)."""
    if settings is None:
        if not _sshd_jails(config):
            return [Finding(check="sshd", status="ok", detail=f"no sshd here ({how})")]
        return [
            Finding(
                check="sshd",
                status="unknown",
                detail=f"cannot read sshd's settings: {how}",
                advice="run bruteguard doctor as root on the host where sshd runs",
            )
        ]
    findings = [_origin(settings, how)]
    findings += [
        _password(settings),
        _kbdinteractive(settings),
        _root_login(settings),
        _usedns(settings),
        _loglevel(settings),
        _facility(settings),
        *_ports(settings, config),
    ]
    return findings


def _origin(settings: SshdSettings, how: str) -> Finding:
    notes = "; ".join(settings.notes)
    match = ""
    if settings.match_blocks:
        match = (
            f"; {settings.match_blocks} Match block(s) not included: they may change these "
            "settings for some users or addresses"
        )
    if settings.origin == "sshd -T":
        return Finding(
            check="sshd.settings", status="ok", detail=f"read with sshd -T{match}", advice=notes
        )
    return Finding(
        check="sshd.settings",
        status="ok",
        detail=f"read from {settings.origin} ({how}); unset keywords have OpenSSH's "
        f"defaults{match}",
        advice=notes or (_ROOT_ADVICE if os.geteuid() != 0 else ""),
    )


def _password(settings: SshdSettings) -> Finding:
    if settings.get("passwordauthentication") == "no":
        return Finding(
            check="sshd.passwordauthentication", status="ok", detail="PasswordAuthentication no"
        )
    return Finding(
        check="sshd.passwordauthentication",
        status="advice",
        detail="PasswordAuthentication yes: passwords can be guessed, keys cannot",
        advice="log in with keys only: once your key works, set PasswordAuthentication no",
    )


def _kbdinteractive(settings: SshdSettings) -> Finding:
    check = "sshd.kbdinteractiveauthentication"
    value = settings.get("kbdinteractiveauthentication")
    if value == "yes" and settings.get("usepam") == "yes":
        return Finding(
            check=check,
            status="advice",
            detail="KbdInteractiveAuthentication yes with UsePAM yes: PAM asks for the "
            "password this way even with PasswordAuthentication no",
            advice="set KbdInteractiveAuthentication no (ChallengeResponseAuthentication "
            "no before OpenSSH 8.7)",
        )
    return Finding(
        check=check,
        status="ok",
        detail=f"KbdInteractiveAuthentication {value}, UsePAM {settings.get('usepam')}",
    )


def _root_login(settings: SshdSettings) -> Finding:
    value = settings.get("permitrootlogin")
    if value in _SAFE_ROOT:
        return Finding(check="sshd.permitrootlogin", status="ok", detail=f"PermitRootLogin {value}")
    return Finding(
        check="sshd.permitrootlogin",
        status="advice",
        detail=f"PermitRootLogin {value}: root is the name every attacker tries",
        advice="set PermitRootLogin no (or prohibit-password: root with a key only)",
    )


def _usedns(settings: SshdSettings) -> Finding:
    if settings.get("usedns") != "yes":
        return Finding(check="sshd.usedns", status="ok", detail="UseDNS no")
    return Finding(
        check="sshd.usedns",
        status="advice",
        detail="UseDNS yes: pam's rhost= then carries the client's name, chosen by whoever "
        "runs its reverse DNS, instead of its address",
        advice="set UseDNS no; meanwhile bruteguard ties such names to a connection through "
        "the socket table and the kernel firewall log, never DNS alone",
    )


def _loglevel(settings: SshdSettings) -> Finding:
    value = settings.get("loglevel")
    if value in _SILENT_LEVELS:
        return Finding(
            check="sshd.loglevel",
            status="problem",
            detail=f"LogLevel {value.upper()}: sshd does not log failed logins",
            advice="set LogLevel INFO (or VERBOSE, which also logs key fingerprints)",
        )
    advice = "VERBOSE is enough; DEBUG logs private detail" if value.startswith("debug") else ""
    return Finding(
        check="sshd.loglevel", status="ok", detail=f"LogLevel {value.upper()}", advice=advice
    )


def _facility(settings: SshdSettings) -> Finding:
    value = settings.get("syslogfacility")
    if value in _AUTH_FACILITIES:
        return Finding(
            check="sshd.syslogfacility", status="ok", detail=f"SyslogFacility {value.upper()}"
        )
    return Finding(
        check="sshd.syslogfacility",
        status="advice",
        detail=f"SyslogFacility {value.upper()}: syslog does not put these lines in "
        f"{' or '.join(AUTH_LOGS)}",
        advice="check that the sshd jail's logpath is where syslog writes this facility, "
        "or set SyslogFacility AUTH",
    )


def _ports(settings: SshdSettings, config: Config) -> list[Finding]:
    """sshd's ports against each sshd jail's: a ban on 22 does not stop guesses on 2222."""
    findings = []
    for jail in _sshd_jails(config):
        check = f"sshd.ports.{jail.name}"
        covered = set(jail.ports)
        missing = [port for port in settings.ports if covered and port not in covered]
        listening = _ports_text(settings.ports)
        if missing:
            findings.append(
                Finding(
                    check=check,
                    status="problem",
                    detail=f"sshd listens on {listening}, but jail {jail.name} bans only on "
                    f"{_ports_text(jail.ports)}: a banned address can still try "
                    f"{_ports_text(missing)}",
                    advice=f"set port = [{_ports_text(sorted({*jail.ports, *settings.ports}))}]"
                    f" in [jails.{jail.name}]",
                )
            )
        else:
            bans = _ports_text(jail.ports) if jail.ports else "every port"
            findings.append(
                Finding(
                    check=check,
                    status="ok",
                    detail=f"sshd listens on {listening}; jail {jail.name} bans on {bans}",
                )
            )
    return findings


# -- sources ------------------------------------------------------------------------------

TAIL_BYTES = 1 << 20  # how much of a log file's end is looked at
JOURNAL_DAYS = 7
JOURNAL_LIMIT = 50_000  # entries read at most, newest first


def _bindings() -> bool:
    try:
        from systemd import journal  # noqa: F401
    except ImportError:
        return False
    return True


def _journal_files(directories: Sequence[str]) -> list[str]:
    return sorted(
        name
        for directory in directories
        for pattern in ("*.journal", "*/*.journal")
        for name in glob.glob(os.path.join(directory, pattern))
    )


def _program_lines(programs: Sequence[str]) -> re.Pattern[bytes]:
    """A syslog line whose program is one of ``programs``: a stamp and a host (at most five
    fields, none ending in ``:``, so a message that mentions ``sshd[1]:`` does not count),
    then ``prog[pid]:`` or ``prog:``."""
    names = b"|".join(re.escape(name.encode()) for name in programs)
    return re.compile(
        rb"(?m)^(?:[^\s]*[^\s:][ \t]+){1,5}?(?:" + names + rb")(?:\[[0-9]{1,10}\])?:[ \t]"
    )


def _unreadable(check: str, what: str, error: OSError) -> Finding:
    if isinstance(error, PermissionError) and os.geteuid() != 0:
        return Finding(
            check=check,
            status="unknown",
            detail=f"{what}: permission denied",
            advice="run bruteguard doctor as root (the daemon runs as root)",
        )
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


def _file_finding(jail: JailConfig, path: str, programs: Sequence[str], journal: bool) -> Finding:
    check = f"source.{jail.name}"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        where = f"the journal, or {', '.join(AUTH_LOGS)}" if journal else ", ".join(AUTH_LOGS)
        return Finding(
            check=check,
            status="problem",
            detail=f"file {path} does not exist: the jail waits for it and bans no one",
            advice=f"point logpath at the file {jail.filter} really writes (look at {where})",
        )
    except OSError as error:
        return _unreadable(check, f"file {path}", error)
    if stat.S_ISDIR(mode):
        return Finding(check=check, status="problem", detail=f"{path} is a directory")
    if not stat.S_ISREG(mode):
        return Finding(
            check=check, status="unknown", detail=f"{path} is not a regular file: not read"
        )
    try:
        data = _tail(path)
    except OSError as error:
        return _unreadable(check, f"file {path}", error)
    count = len(_program_lines(programs).findall(data))
    names = "/".join(programs)
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
        advice=f"bruteguard's source has no {jail.filter} lines: is {jail.filter} logging "
        f"elsewhere ({elsewhere})?",
    )


class _JournalCounts(NamedTuple):
    seen: int  # entries read
    found: int  # formatted as one of the programs: what the matcher will look at
    untrusted: int  # _COMM names a program, but _UID/_EXE do not vouch for it


def _journal_counts(
    matches: Sequence[str], programs: Sequence[str], files: Sequence[str] | None
) -> _JournalCounts:
    """The newest entries first, at most ``JOURNAL_LIMIT`` and none older than
    ``JOURNAL_DAYS``, read and formatted exactly as the daemon does."""
    source = JournalSource(list(matches), path=None if files is None else list(files))
    reader = source._open()  # the daemon's own reader: same matches, same raw fields
    ours = _program_lines(programs)
    wanted = {name.encode() for name in programs}
    oldest = (time.time() - JOURNAL_DAYS * 86400) * 1_000_000
    seen = found = untrusted = 0
    try:
        reader.seek_tail()
        while seen < JOURNAL_LIMIT and (entry := reader.get_previous()):
            if entry.get("__REALTIME_TIMESTAMP", 0) < oldest:
                break
            seen += 1
            if ours.match(format_entry(entry)):
                found += 1
            elif entry.get("_COMM") in wanted:
                untrusted += 1
    finally:
        reader.close()
    return _JournalCounts(seen, found, untrusted)


def _journal_finding(
    jail: JailConfig, spec: SourceSpec, programs: Sequence[str], files: list[str], system: bool
) -> Finding:
    """``files`` are the journal files found; ``system``: read them as the system journal."""
    check = f"source.{jail.name}"
    matches = " or ".join(spec.matches) if spec.matches else "every entry"
    if not _bindings():
        return Finding(
            check=check,
            status="problem",
            detail="reads the journal, but the Python bindings are missing",
            advice="install python3-systemd (or pip install systemd-python), "
            'or set backend = "file"',
        )
    if not files:
        return Finding(
            check=check,
            status="problem",
            detail="reads the journal, but there are no journal files",
            advice="is journald running and storing logs (Storage= in journald.conf)?",
        )
    try:
        seen, found, untrusted = _journal_counts(spec.matches, programs, None if system else files)
    except (BruteguardError, OSError) as error:
        if isinstance(error, PermissionError):
            return _unreadable(check, "journal", error)
        return Finding(check=check, status="problem", detail=f"journal: {error}")
    names = "/".join(programs)
    period = f"the last {JOURNAL_DAYS} days"
    if not seen and os.geteuid() != 0:
        return Finding(
            check=check,
            status="unknown",
            detail=f"journal ({matches}): no entries visible to this user",
            advice="run bruteguard doctor as root (the daemon runs as root)",
        )
    if untrusted:
        return Finding(
            check=check,
            status="advice" if found else "problem",
            detail=f"journal ({matches}): {found} {names} entries in {period}, and "
            f"{untrusted} more whose _UID/_EXE do not vouch for their _COMM: they are "
            "ignored (forged by a local user, or a journal copied from another machine)",
            advice=f"if {jail.filter} itself wrote them, check how it runs (its binary under "
            "/usr, a system uid, not in a user's session)",
        )
    if found:
        return Finding(
            check=check,
            status="ok",
            detail=f"journal ({matches}): {found} {names} entries in {period}",
        )
    return Finding(
        check=check,
        status="advice",
        detail=f"journal ({matches}): no {names} entries in {period} ({seen} other entries)",
        advice=f"bruteguard's source has no {jail.filter} lines: is {jail.filter} logging "
        'to a file only (no journal)? Check journalmatch, or set backend = "file"',
    )


def _forgery(jail: JailConfig, bindings: bool) -> Finding:
    install = "" if bindings else "install python3-systemd and "
    return Finding(
        check=f"source.{jail.name}.trust",
        status="advice",
        detail="reads a log file although this host has the systemd journal: any local user "
        f"can write lines into the file that look like {jail.filter}'s (logger -t "
        f"{jail.filter} …) and get an innocent address banned; journal entries are checked "
        "against _COMM/_UID, which the kernel vouches for",
        advice=f'{install}set backend = "journal" (with a journalmatch) in [jails.{jail.name}]',
    )


def check_sources(
    config: Config, journal_directories: Sequence[str] = JOURNAL_DIRECTORIES
) -> list[Finding]:
    """For each enabled jail, the source the daemon would read, and whether it carries lines
    from the jail's programs."""
    bindings = _bindings()
    files = _journal_files(journal_directories)
    available = bindings and bool(files)
    # The system journal (flags) unless asked to look elsewhere (tests, a copied journal).
    system = tuple(journal_directories) == JOURNAL_DIRECTORIES
    jails = config.enabled_jails()
    if not jails:
        return [
            Finding(
                check="jails",
                status="problem",
                detail="no jail is enabled: bruteguard watches nothing",
                advice="enable a jail ([jails.sshd] enabled = true)",
            )
        ]
    findings = []
    for jail in jails:
        check = f"source.{jail.name}"
        programs = FILTERS[jail.filter].programs
        try:
            specs = resolve_sources(jail, journal=available)
        except BruteguardError as error:
            findings.append(Finding(check=check, status="problem", detail=str(error)))
            continue
        if not specs:
            findings.append(
                Finding(
                    check=check,
                    status="problem",
                    detail=f"no file matches logpath {', '.join(jail.logpath)}",
                    advice="fix logpath: the jail reads nothing",
                )
            )
        for spec in specs:
            if spec.kind == "file":
                findings.append(_file_finding(jail, spec.path, programs, bool(files)))
            elif spec.kind == "journal":
                findings.append(_journal_finding(jail, spec, programs, files, system))
            else:
                findings.append(
                    Finding(check=check, status="ok", detail="reads standard input of run")
                )
        if files and any(spec.kind == "file" for spec in specs):
            findings.append(_forgery(jail, bindings))
    return findings


# -- enforcers ----------------------------------------------------------------------------


def check_enforcers(config: Config) -> list[Finding]:
    """Whether each configured enforcer can work here; asks, never changes the firewall."""
    from bruteguard.enforce.factory import make_enforcers

    try:
        enforcers = make_enforcers(config)
    except BruteguardError as error:
        return [Finding(check="enforcers", status="problem", detail=str(error))]
    if not enforcers:
        return [
            Finding(
                check="enforcers",
                status="problem",
                detail="no enforcer configured: offenders are counted but never banned",
                advice='set enforcers = ["nftables"]',
            )
        ]
    findings = []
    for enforcer in enforcers:
        check = f"enforcer.{enforcer.name}"
        probe = getattr(enforcer, "check", None)
        if probe is None:
            findings.append(
                Finding(
                    check=check,
                    status="advice",
                    detail=f"{enforcer.name} changes no firewall: offenders are logged, not banned",
                    advice='use enforcers = ["nftables"] once the configuration is right',
                )
            )
            continue
        try:
            why = probe()
        except (BruteguardError, OSError) as error:
            why = str(error)
        if why is None:
            findings.append(Finding(check=check, status="ok", detail=f"{enforcer.name} works here"))
        elif "not permitted" in why and os.geteuid() != 0:
            findings.append(
                Finding(
                    check=check,
                    status="unknown",
                    detail=why,
                    advice="run bruteguard doctor as root to check the firewall",
                )
            )
        else:
            findings.append(
                Finding(
                    check=check,
                    status="problem",
                    detail=why,
                    advice="bans cannot be enforced until this is fixed",
                )
            )
    return findings


# -- services that log hostnames ----------------------------------------------------------


@dataclass(frozen=True)
class NameLogging:
    """A service whose log lines may carry the client's name instead of its address."""

    service: str
    when: str
    fix: str


NAME_LOGGING: dict[str, NameLogging] = {
    "sshd": NameLogging(
        "sshd",
        "in pam's rhost= when UseDNS is yes (sshd's own lines keep the address)",
        "UseDNS no in /etc/ssh/sshd_config",
    ),
    "pure-ftpd": NameLogging(
        "pure-ftpd",
        "unless it is started with -H (DontResolve yes)",
        "DontResolve yes (pure-ftpd -H)",
    ),
    "proftpd": NameLogging(
        "proftpd",
        "with UseReverseDNS on, its default",
        "UseReverseDNS off in proftpd.conf",
    ),
}

ATTRIBUTION = (
    "bruteguard ties such a name to the connection it came from, never to DNS alone: the "
    "peers connected to the service's ports in the socket table at the moment the line "
    "arrives, and the kernel firewall log of new connections; a PTR lookup of those "
    "connected candidates only tells them apart. A failure it cannot tie to one connection "
    "bans no one and is shown as unattributed in bruteguard status"
)


def check_names(config: Config, settings: SshdSettings | None) -> list[Finding]:
    """For each enabled jail of a service that may log names: does it, and what then."""
    findings = []
    for jail in config.enabled_jails():
        names = NAME_LOGGING.get(jail.filter)
        if names is None:
            continue
        check = f"names.{jail.name}"
        if jail.filter == "sshd" and settings is not None:
            if settings.get("usedns") != "yes":
                findings.append(
                    Finding(
                        check=check,
                        status="ok",
                        detail="sshd logs addresses, not names (UseDNS no)",
                    )
                )
                continue
            detail = "sshd has UseDNS yes: pam's rhost= carries client names"
        else:
            detail = f"{names.service} may log client names instead of addresses {names.when}"
        findings.append(
            Finding(
                check=check,
                status="advice",
                detail=f"{detail}. {ATTRIBUTION}",
                advice=f"turn name resolution off: {names.fix}",
            )
        )
    return findings


# -- the whole check, and its two renderings ----------------------------------------------


def diagnose(
    config: Config,
    *,
    sshd_argv: Sequence[str] = ("sshd", "-T"),
    sshd_config: str = "/etc/ssh/sshd_config",
    journal_directories: Sequence[str] = JOURNAL_DIRECTORIES,
) -> list[Finding]:
    """Every finding, in the order they are shown."""
    settings, how = read_sshd_settings(sshd_argv, sshd_config)
    return [
        *check_sshd(settings, how, config),
        *check_sources(config, journal_directories),
        *check_enforcers(config),
        *check_names(config, settings),
    ]


_LABELS: dict[str, tuple[str, str]] = {
    "ok": ("ok", "green"),
    "advice": ("advice", "yellow"),
    "problem": ("PROBLEM", "bold red"),
    "unknown": ("unknown", "cyan"),
}


def _counts(findings: Sequence[Finding]) -> dict[str, int]:
    counts = dict.fromkeys(_LABELS, 0)
    for finding in findings:
        counts[finding.status] += 1
    return counts


def _summary(counts: dict[str, int]) -> str:
    parts = [
        f"{counts['problem']} problem{'s' * (counts['problem'] != 1)}",
        f"{counts['advice']} piece{'s' * (counts['advice'] != 1)} of advice",
    ]
    if counts["unknown"]:
        parts.append(f"{counts['unknown']} not checked")
    return ", ".join(parts)


def _render_text(findings: Sequence[Finding], out: IO[str]) -> None:
    """One wrapped entry per finding, the status first; colour only on a terminal. The
    text is given as Text, never markup: it quotes paths and log lines."""
    from rich.console import Console
    from rich.text import Text

    console = Console(file=out, highlight=False, emoji=False, soft_wrap=True)
    indent = " " * 9
    width = max(40, console.width)
    for finding in findings:
        label, style = _LABELS[finding.status]
        lines = textwrap.wrap(
            f"{finding.check}: {finding.detail}",
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,  # keep paths and program names whole
        )
        if finding.advice:
            lines += textwrap.wrap(
                f"-> {finding.advice}",
                width,
                initial_indent=indent,
                subsequent_indent=indent + "   ",
                break_on_hyphens=False,
            )
        lines[0] = lines[0][len(indent) :]
        text = Text(label.ljust(len(indent)), style=style)
        text.append(lines[0] + "\n" + "".join(line + "\n" for line in lines[1:]))
        console.print(text, end="")
    console.print(Text(_summary(_counts(findings))))


class _Report(msgspec.Struct):
    ok: bool
    counts: dict[str, int]
    findings: list[Finding]


def run_doctor(
    config: Config,
    as_json: bool = False,
    *,
    sshd_argv: Sequence[str] = ("sshd", "-T"),
    sshd_config: str = "/etc/ssh/sshd_config",
    journal_directories: Sequence[str] = JOURNAL_DIRECTORIES,
    out: IO[str] | None = None,
) -> int:
    """Check, print the findings (text, or one JSON object), return 1 if any is a problem."""
    out = sys.stdout if out is None else out
    findings = diagnose(
        config,
        sshd_argv=sshd_argv,
        sshd_config=sshd_config,
        journal_directories=journal_directories,
    )
    counts = _counts(findings)
    if as_json:
        report = _Report(ok=counts["problem"] == 0, counts=counts, findings=findings)
        out.write(msgspec.json.encode(report).decode() + "\n")
    else:
        _render_text(findings, out)
    return 1 if counts["problem"] else 0
