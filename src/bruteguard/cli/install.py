"""``bruteguard install`` and ``bruteguard uninstall``: thin argument layers over
``bruteguard.install``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bruteguard.config import DEFAULT_CONFIG_PATH
from bruteguard.install import NOT_STARTED, UNIT_DIR, Layout, install, systemd_running, uninstall

__all__ = ["add_install_commands"]


def _layout(args: argparse.Namespace) -> Layout:
    config = Path(args.config).absolute() if args.config else DEFAULT_CONFIG_PATH
    return Layout(unit_dir=Path(args.unit_dir).absolute(), config_path=config)


def _cmd_install(args: argparse.Namespace) -> int:
    install(_layout(args), start=not args.no_start, systemd=systemd_running())
    return 0


def _cmd_uninstall(args: argparse.Namespace) -> int:
    uninstall(_layout(args), purge=args.purge, systemd=systemd_running())
    return 0


def add_install_commands(command: Any) -> None:
    """``install`` and ``uninstall``, on the main parser's ``command`` factory (which gives
    each ``--config FILE``: here the file written if absent and named in the unit)."""
    unit_dir_help = f"where the unit goes (default {UNIT_DIR}; others for packagers and tests)"
    setup = command(
        "install",
        "run as a service: write the systemd unit (ExecStart: this bruteguard) and, if absent,"
        f" {DEFAULT_CONFIG_PATH} (every setting commented out); enable and start it where"
        f" systemd runs (elsewhere: say how to run it, exit status {NOT_STARTED}); root only",
        _cmd_install,
    )
    setup.add_argument("--unit-dir", default=str(UNIT_DIR), metavar="DIR", help=unit_dir_help)
    setup.add_argument(
        "--no-start", action="store_true", help="only write the files; neither enable nor start"
    )
    remove = command(
        "uninstall",
        "stop and disable the service, remove its unit and firewall objects; the"
        " configuration and the ledger stay unless --purge; root only",
        _cmd_uninstall,
    )
    remove.add_argument("--unit-dir", default=str(UNIT_DIR), metavar="DIR", help=unit_dir_help)
    remove.add_argument(
        "--purge", action="store_true", help="also remove the configuration file and the ledger"
    )
