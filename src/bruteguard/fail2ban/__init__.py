"""fail2ban filter files, loaded as they are and run with fail2ban 1.0.2's semantics.

A jail names one with ``filter = "fail2ban:sshd"``, ``"fail2ban:sshd[mode=aggressive]"`` or
a path to a ``.conf`` file. What the filter captures as the host is raw text, handed to the
identity stage like any of our own signatures' (no DNS here). See docs/fail2ban.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from bruteguard.fail2ban.conffile import (
    ConfFiles,
    FilterError,
    filter_files,
    parse_spec,
    resolve_filter,
)
from bruteguard.fail2ban.filter import Fail2banFilter, LineMatcher, LineResult

__all__ = [
    "Fail2banFilter",
    "FilterError",
    "LineMatcher",
    "LineResult",
    "filter_dirs",
    "load_filter",
]

PREFIX = "fail2ban:"
_NAME = re.compile(r"^[\w][\w.-]*$")


def filter_dirs() -> list[Path]:
    """Where filters are looked up by name: fail2ban's own directory."""
    return [Path("/etc/fail2ban/filter.d")]


def load_filter(
    spec: str, *, dirs: Sequence[Path] | None = None, logtype: str | None = None
) -> Fail2banFilter:
    """Load and compile a filter: ``"sshd"``, ``"sshd[mode=aggressive]"`` or a ``.conf`` path.

    ``logtype`` is what fail2ban sets from the jail's backend (``"journal"`` for systemd)
    unless the filter or the options set it themselves.
    """
    if spec.startswith(PREFIX):
        spec = spec[len(PREFIX) :]
    name, options = parse_spec(spec)
    if "/" in name or name.endswith((".conf", ".local")):
        path = Path(name).expanduser()
        base = path.with_suffix("") if path.suffix in (".conf", ".local") else path
        files = filter_files(base)
        if not files:
            raise FilterError(f"filter {spec!r}: no file {base}.conf or {base}.local")
        label = base.name
    else:
        if not _NAME.match(name):
            raise FilterError(f"filter {spec!r}: a name is letters, digits, '.', '-' and '_'")
        search = list(filter_dirs() if dirs is None else dirs)
        files = []
        for directory in search:
            files = filter_files(directory / name)
            if files:
                break
        if not files:
            where = ", ".join(str(d) for d in search) or "no directory"
            raise FilterError(f"filter {spec!r}: no {name}.conf or {name}.local in {where}")
        label = name
    conf = ConfFiles(files)
    return Fail2banFilter(label, conf.files, resolve_filter(conf, options, logtype=logtype))
