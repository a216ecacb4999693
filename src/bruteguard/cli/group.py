"""Commands and command groups (``abuse …``, ``fleet …``): each with ``--config`` too. The
main parser's commands are made lazily (``LazyCommands``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

__all__ = ["Action", "LazyCommands", "command_factory", "command_group"]

Action = Callable[[str, str, Any], argparse.ArgumentParser]


def command_factory(sub: argparse._SubParsersAction, config_help: str) -> Action:
    """``action(name, help, handler)`` → a parser of ``sub``'s, which takes ``--config``
    after its name as well (SUPPRESS: given before the name, the value stays)."""

    def action(name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text, description=help_text)
        parser.add_argument(
            "--config", "-c", metavar="FILE", default=argparse.SUPPRESS, help=config_help
        )
        parser.set_defaults(handler=handler)
        return parser

    return action


def command_group(
    group: argparse.ArgumentParser, dest: str, config_help: str, metavar: str = "ACTION"
) -> Action:
    """A factory of ``group``'s actions: ``action(name, help, handler)`` → its parser."""
    sub = group.add_subparsers(dest=dest, metavar=metavar, required=True)
    return command_factory(sub, config_help)


class LazyCommands(argparse._SubParsersAction):
    """The main parser's commands, each group of them added (its module imported, its
    parsers made) only when one of its commands is chosen, or when help lists them all: a
    replay (``scan``) would otherwise import every command's implementation and make ~30
    parsers it never uses. ``add_group`` names a group's commands and what adds them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._adders: dict[str, Callable[[], None]] = {}  # command → adds its whole group
        self.choices = _Commands(self)

    def add_group(self, names: Iterable[str], add: Callable[[], None]) -> None:
        for name in names:
            self._adders[name] = add

    def names(self) -> list[str]:
        """Every command's name, in the order the groups were named: none of them made."""
        return list(self._adders)

    def made(self, name: str) -> argparse.ArgumentParser:
        """The parser of command ``name``, its group added first if not yet."""
        if name not in self._name_parser_map:
            self._adders[name]()
            if name not in self._name_parser_map:
                raise LookupError(f"the group named for command {name!r} did not add it")
        return self._name_parser_map[name]

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        self.made(values[0])  # a known name: argparse checked it against ``choices``
        super().__call__(parser, namespace, values, option_string)

    def _get_subactions(self) -> list[argparse.Action]:
        """Every command's line of help, in the order the groups were named."""
        order = {name: index for index, name in enumerate(self.names())}
        for name in order:
            self.made(name)
        return sorted(self._choices_actions, key=lambda action: order[action.dest])


class _Commands(Mapping[str, argparse.ArgumentParser]):
    """The commands' names, known without making their parsers; a parser is made when it
    is looked up (``in`` checks the name alone)."""

    def __init__(self, commands: LazyCommands) -> None:
        self._commands = commands

    def __contains__(self, name: object) -> bool:
        return name in self._commands.names()

    def __getitem__(self, name: str) -> argparse.ArgumentParser:
        if name not in self:
            raise KeyError(name)
        return self._commands.made(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._commands.names())

    def __len__(self) -> int:
        return len(self._commands.names())
