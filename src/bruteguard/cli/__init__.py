"""The ``bruteguard`` command. Each subcommand is a thin layer over the library objects; each
module here adds one group of them to the parser (``daemon``: run, status, bans, ban, unban,
stop; ``scan``: scan, report; ``abuse``, ``fleet``, ``dashboard`` (and ``top``), ``install``,
``knock``, ``test``), imported only when one of its commands runs."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from bruteguard import __version__
from bruteguard.cli.group import Action, LazyCommands, command_factory
from bruteguard.config import DEFAULT_CONFIG_PATH, load_config
from bruteguard.errors import BruteguardError

__all__ = ["build_parser", "main"]


def _cmd_doctor(args: argparse.Namespace) -> int:
    from bruteguard.doctor import run_doctor

    return run_doctor(load_config(args.config), as_json=args.json)


def _cmd_version(_args: argparse.Namespace) -> int:
    print(f"bruteguard {__version__}")
    return 0


def _add_doctor(command: Action) -> None:
    doctor = command(
        "doctor",
        "check sshd's settings, the log sources and the firewall; advice in plain words",
        _cmd_doctor,
    )
    doctor.add_argument("--json", action="store_true", help="the findings as one JSON object")


def _add_version(command: Action) -> None:
    command("version", "print the version", _cmd_version)


def _add_daemon(command: Action) -> None:
    from bruteguard.cli.daemon import add_daemon_commands

    add_daemon_commands(command)


def _add_scan(command: Action) -> None:
    from bruteguard.cli.scan import add_scan_commands

    add_scan_commands(command)


def _add_test(command: Action) -> None:
    from bruteguard.cli.test import add_test_command

    add_test_command(command)


def _add_abuse(command: Action, config_help: str) -> None:
    from bruteguard.cli.abuse import add_abuse_commands

    add_abuse_commands(command, config_help)


def _add_install(command: Action) -> None:
    from bruteguard.cli.install import add_install_commands

    add_install_commands(command)


def _add_fleet(command: Action, config_help: str) -> None:
    from bruteguard.cli.fleet import add_fleet_commands

    add_fleet_commands(command, config_help)


def _add_knock(command: Action) -> None:
    from bruteguard.cli.knock import add_knock_command

    add_knock_command(command)


def _add_dashboard(command: Action) -> None:
    from bruteguard.cli.dashboard import add_dashboard_commands

    add_dashboard_commands(command)


def _groups(config_help: str) -> list[tuple[tuple[str, ...], Callable[[Action], None]]]:
    """The commands, in the order help lists them, by the group that adds them. A group's
    module is imported only when one of its commands runs (or help lists them): importing
    them all and making their ~30 parsers was ~10 % of `scan`'s start-up
    (docs/benchmarks.md, "Start-up: each command's module when it runs")."""
    return [
        (("run", "status", "bans", "ban", "unban", "stop"), _add_daemon),
        (("scan", "report"), _add_scan),
        (("doctor",), _add_doctor),
        (("test",), _add_test),
        (("abuse",), functools.partial(_add_abuse, config_help=config_help)),
        (("install", "uninstall"), _add_install),
        (("fleet",), functools.partial(_add_fleet, config_help=config_help)),
        (("knock",), _add_knock),
        (("dashboard", "top"), _add_dashboard),
        (("version",), _add_version),
    ]


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
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, action=LazyCommands
    )
    command = command_factory(commands, config_help)
    for names, add in _groups(config_help):
        commands.add_group(names, functools.partial(add, command))
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
