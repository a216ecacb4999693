"""Commands and command groups (``abuse …``, ``fleet …``): each with ``--config`` too."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["Action", "command_group"]

Action = Callable[[str, str, Any], argparse.ArgumentParser]


def command_group(
    group: argparse.ArgumentParser, dest: str, config_help: str, metavar: str = "ACTION"
) -> Action:
    """A factory of ``group``'s actions: ``action(name, help, handler)`` → its parser.

    Each action takes ``--config`` after it as well (SUPPRESS: given before the group, the
    value stays)."""
    sub = group.add_subparsers(dest=dest, metavar=metavar, required=True)

    def action(name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text, description=help_text)
        parser.add_argument(
            "--config", "-c", metavar="FILE", default=argparse.SUPPRESS, help=config_help
        )
        parser.set_defaults(handler=handler)
        return parser

    return action
