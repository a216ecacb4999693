"""``bruteguard doctor``: is this host set up so that bruteguard can protect it?

It checks what an administrator would check by hand, and says what to change in plain words:

* **sshd's settings** (``sshd -T``, else the ``sshd_config`` files): passwords, root login,
  ``UseDNS``, log level, and the ports sshd listens on against the ports the sshd jail bans.
* **each jail's source**, chosen as the daemon chooses it: does it exist, can it be read,
  and does it hold lines from the jail's programs at all?
* **each enforcer**: can it work here (``nft --check``; the firewall is never changed)?
* **services that log hostnames** instead of addresses, and how bruteguard attributes them.
* **keeping the admin in**: an allow list or a knock for sshd, and this session's address.

Every finding is a ``Finding`` value; the text and ``--json`` renderings show the same list.
Nothing here raises: a missing sshd, an unreadable file or a lack of privilege is a finding
that says so. The exit status is 1 when a finding is a *problem* (bruteguard will miss
attacks or cannot ban), 0 otherwise; advice alone does not fail.

One module per group of checks: ``sshd``, ``sources``, ``enforcers``, ``names``, ``keepin``; the
findings' type in ``findings``, their renderings in ``render``. sshd's settings are read by
``bruteguard.sshd_config``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO

from bruteguard.config import Config
from bruteguard.doctor.enforcers import check_enforcers
from bruteguard.doctor.findings import Finding, Status
from bruteguard.doctor.keepin import check_keepin
from bruteguard.doctor.names import (
    ATTRIBUTION,
    NAME_LOGGING,
    NameLogging,
    check_identity,
    check_names,
)
from bruteguard.doctor.render import count_statuses, render_json, render_text
from bruteguard.doctor.sources import check_sources
from bruteguard.doctor.sshd import check_sshd
from bruteguard.sources.journal import JOURNAL_DIRECTORIES
from bruteguard.sshd_config import read_sshd_settings

__all__ = [
    "ATTRIBUTION",
    "NAME_LOGGING",
    "Finding",
    "NameLogging",
    "Status",
    "check_enforcers",
    "check_identity",
    "check_keepin",
    "check_names",
    "check_sources",
    "check_sshd",
    "diagnose",
    "run_doctor",
]


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
        *check_identity(config),
        *check_keepin(config),
    ]


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
    counts = count_statuses(findings)
    if as_json:
        render_json(findings, counts, out)
    else:
        render_text(findings, counts, out)
    return 1 if counts["problem"] else 0
