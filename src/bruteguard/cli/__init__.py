"""The ``bruteguard`` command. Each subcommand is a thin layer over the library objects; each
module here adds one group of them to the parser (``daemon``: run, status, bans, ban, unban,
stop; ``scan``: scan, report; ``abuse``, ``fleet``, ``dashboard`` (and ``top``), ``install``,
``knock``, ``test``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from bruteguard import __version__
from bruteguard.cli.abuse import add_abuse_commands
from bruteguard.cli.daemon import add_daemon_commands
from bruteguard.cli.dashboard import add_dashboard_commands
from bruteguard.cli.fleet import add_fleet_commands
from bruteguard.cli.group import command_group
from bruteguard.cli.install import add_install_commands
from bruteguard.cli.knock import add_knock_command
from bruteguard.cli.scan import add_scan_commands
from bruteguard.cli.test import add_test_command
from bruteguard.config import DEFAULT_CONFIG_PATH, load_config
from bruteguard.errors import BruteguardError

__all__ = ["build_parser", "main"]


def _cmd_doctor(args: argparse.Namespace) -> int:
    from bruteguard.doctor import run_doctor

    return run_doctor(load_config(args.config), as_json=args.json)


def _cmd_version(_args: argparse.Namespace) -> int:
    print(f"bruteguard {__version__}")
    return 0


# -- argument parsing ------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with bad usage reported in one line (exit 2) that points to ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bruteguard",
        description="Reads service logs, finds the real attacker, bans at the firewall.",
    )
    parser.add_argument("--version", action="version", version=f"bruteguard {__version__}")
    config_help = f"configuration file (default {DEFAULT_CONFIG_PATH}; built-in defaults if absent)"
    # Before the command (`bruteguard -c FILE status`) or after it: the command's own
    # option only sets the value when given (SUPPRESS), so it never undoes the first.
    parser.add_argument("--config", "-c", metavar="FILE", help=config_help)
    command = command_group(parser, "command", config_help, metavar="COMMAND")

    add_daemon_commands(command)
    add_scan_commands(command)

    doctor = command(
        "doctor",
        "check sshd's settings, the log sources and the firewall; advice in plain words",
        _cmd_doctor,
    )
    doctor.add_argument("--json", action="store_true", help="the findings as one JSON object")

    add_test_command(command)
    add_abuse_commands(command, config_help)
    add_install_commands(command)
    add_fleet_commands(command, config_help)
    add_knock_command(command)
    add_dashboard_commands(command)
    command("version", "print the version", _cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except BruteguardError as error:
        print(f"bruteguard: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): not an error; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
