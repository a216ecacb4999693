"""``bruteguard fleet …``: set up the fleet's PostgreSQL and look at it (docs/fleet.md)."""

from __future__ import annotations

import argparse
from typing import Any

from bruteguard.config import Config, load_config
from bruteguard.fleet.connect import FleetError, connect_args

__all__ = ["add_fleet_commands"]


def _fleet(config: Config) -> Any:
    if config.fleet is None:
        raise FleetError(f"no [fleet] section: {config.where_to_set('[fleet] dsn')}")
    return config.fleet


def _connect(args: argparse.Namespace) -> Any:
    """A connection as the admin (``--dsn``) or as this host's agent role (the config's)."""
    import psycopg

    config = load_config(args.config)
    if args.dsn is None:
        fleet = _fleet(config)
    else:
        from bruteguard.fleet.config import FleetConfig

        try:  # the same checks as the configured DSN: no password inside
            fleet = FleetConfig(
                dsn=args.dsn, **({} if config.fleet is None else {"host": config.fleet.host})
            )
        except ValueError as error:
            raise FleetError(f"--dsn: {str(error).removeprefix('dsn: ')}") from None
    try:
        return psycopg.connect(**connect_args(fleet, args.dsn))
    except psycopg.Error as error:
        raise FleetError(f"cannot connect to the fleet's PostgreSQL: {error}") from None


def _cmd_init(args: argparse.Namespace) -> int:
    import psycopg

    from bruteguard.fleet.schema import migrate

    with _connect(args) as conn:
        try:
            before, after = migrate(conn)
        except (psycopg.Error, RuntimeError) as error:
            raise FleetError(f"fleet init: {error}") from None
    if before == after:
        print(f"fleet schema already at version {after}")
    else:
        print(f"fleet schema upgraded from version {before} to {after}")
    return 0


def _cmd_add_host(args: argparse.Namespace) -> int:
    import psycopg
    from psycopg import sql

    from bruteguard.fleet.config import HOST_NAME
    from bruteguard.fleet.schema import AGENT_ROLE

    if not HOST_NAME.match(args.name):
        raise FleetError(f"add-host: {args.name!r} is not a host name (letters, digits, . _ -)")
    role = args.role or args.name
    with _connect(args) as conn:
        try:
            with conn.transaction():
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if exists.fetchone() is None:
                    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
                conn.execute(
                    sql.SQL("GRANT {} TO {}").format(
                        sql.Identifier(AGENT_ROLE), sql.Identifier(role)
                    )
                )
                conn.execute("SELECT bruteguard.add_host(%s, %s)", (args.name, role))
        except psycopg.Error as error:
            raise FleetError(f"add-host: {error}") from None
    print(f"host {args.name} publishes as role {role} (give it a password or a certificate)")
    return 0


def add_fleet_commands(command: Any, config_help: str = "configuration file") -> None:
    """``fleet`` and its subcommands, on the main parser's ``command`` factory."""
    fleet = command("fleet", "many hosts sharing bans through PostgreSQL ([fleet])", None)
    sub = fleet.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text, description=help_text)
        parser.add_argument(
            "--config", "-c", metavar="FILE", default=argparse.SUPPRESS, help=config_help
        )
        parser.add_argument(
            "--dsn",
            metavar="DSN",
            help="connect with this DSN (an admin's; no password in it) instead of [fleet] dsn",
        )
        parser.set_defaults(handler=handler)
        return parser

    action("init", "create or upgrade the fleet's schema and agent role (as an admin)", _cmd_init)
    add = action("add-host", "register a host and its login role (as an admin)", _cmd_add_host)
    add.add_argument("name", metavar="NAME", help="the host's [fleet] host")
    add.add_argument("--role", metavar="ROLE", help="its PostgreSQL login role (default NAME)")
