"""``bruteguard fleet …``: set up the fleet's PostgreSQL and look at it (docs/fleet.md)."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from bruteguard.cli.group import command_group
from bruteguard.config import Config, load_config
from bruteguard.fleet.connect import FleetError, connect_args

__all__ = ["add_fleet_commands", "fleet_bans", "fleet_unban"]


def _print_json(value: Any) -> None:
    import json  # here, not at the top: every command (a scan too) builds this parser

    print(json.dumps(value))


def _fleet(config: Config) -> Any:
    if config.fleet is None:
        raise FleetError(f"no [fleet] section: {config.where_to_set('[fleet] dsn')}")
    return config.fleet


def _connect(args: argparse.Namespace) -> Any:
    """A connection as the admin (``--dsn``) or as this host's agent role (the config's)."""
    import psycopg

    config = load_config(args.config)
    if getattr(args, "dsn", None) is None:
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
        return psycopg.connect(**connect_args(fleet, getattr(args, "dsn", None)))
    except psycopg.Error as error:
        raise FleetError(f"cannot connect to the fleet's PostgreSQL: {error}") from None


def _cmd_init(args: argparse.Namespace) -> int:
    import psycopg

    from bruteguard.store.postgres import migrate

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
    from bruteguard.store.postgres import AGENT_ROLE

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


def _when(moment: float | None) -> str:
    if moment is None:
        return "never"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _query(conn: Any, action: str, query: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    try:
        return conn.execute(query, params).fetchall()
    except psycopg.Error as error:
        raise FleetError(f"{action}: {error}") from None


def _cmd_status(args: argparse.Namespace) -> int:
    """Hosts, when each last published, what each still queues; the leader; this host's own
    queue and how many fleet changes it has yet to apply."""
    from pathlib import Path

    from bruteguard.fleet import outbox
    from bruteguard.fleet.subscriber import CURSOR_KEY
    from bruteguard.store.postgres import FLEET_HOST
    from bruteguard.store.sqlite import SqliteStore

    config = load_config(args.config)
    with _connect(args) as conn:
        hosts = _query(
            conn,
            "fleet status",
            "SELECT name, extract(epoch FROM last_seen)::float8, queue,"
            " (SELECT count(*) FROM bruteguard.bans b WHERE b.host_id = h.id AND b.capped)"
            " FROM bruteguard.hosts h WHERE name <> %s ORDER BY name",
            (FLEET_HOST,),
        )
        ((newest, leader),) = _query(
            conn,
            "fleet status",
            "SELECT coalesce(max(change), 0), bruteguard.leader() FROM bruteguard.bans",
        )
    queue, cursor = (0, 0), 0
    if Path(config.store).exists():
        with SqliteStore(config.store) as store:
            queue = outbox.length(store)
            saved = store.get_position(CURSOR_KEY)
            cursor = int(saved.cursor) if saved is not None and saved.cursor else 0
    now = time.time()
    view = {
        "host": _fleet(config).host,
        "queue": {"bans": queue[0], "summaries": queue[1]},
        "changes_behind": max(0, int(newest) - cursor),
        "leader": leader,
        "hosts": [
            {
                "name": name,
                "last_seen": seen,
                "lag": None if seen is None else max(0.0, now - seen),
                "queue": int(waiting),
                "capped": int(capped),
            }
            for name, seen, waiting, capped in hosts
        ],
    }
    if args.json:
        _print_json(view)
        return 0
    print(
        f"this host: {view['host']}; queued here: {queue[0]} ban events, {queue[1]} failure"
        f" summaries; fleet changes not yet applied: {view['changes_behind']}"
    )
    print(f"leader (decides fleet-wide thresholds): {leader or 'none'}")
    print(f"{'HOST':<24} {'LAST SEEN':<24} {'LAG':>8} {'QUEUE':>8} {'CAPPED':>8}")
    for host in view["hosts"]:
        lag = "-" if host["lag"] is None else f"{host['lag']:.0f}s"
        print(
            f"{host['name']:<24} {_when(host['last_seen']):<24} {lag:>8} {host['queue']:>8}"
            f" {host['capped']:>8}"
        )
    return 0


def fleet_bans(args: argparse.Namespace) -> int:
    """``bans --fleet``: the fleet's active bans, with the host that decided each."""
    from bruteguard.fleet.views import active_bans

    with _connect(args) as conn:
        bans = active_bans(conn)
    if args.json:
        _print_json(bans)
        return 0
    if not bans:
        print("no active fleet bans")
        return 0
    from bruteguard.safe_text import printable

    print(f"{'ADDRESS OR NETWORK':<43} {'HOST':<16} {'JAIL':<10} {'UNTIL':<24}  WHY")
    for ban in bans:
        print(
            f"{ban['ip']:<43} {ban['origin']:<16} {ban['jail']:<10} {_when(ban['until']):<24}"
            f"  {printable(ban['reason'])}"
        )
    return 0


def fleet_unban(args: argparse.Namespace) -> int:
    """``unban --fleet``: the admin path (``--dsn`` of a role that may update the fleet's
    bans; agents may not): lifts every host's active bans of the target in the fleet, and
    each host's subscriber lifts them from its firewall."""
    import psycopg

    with _connect(args) as conn:
        try:
            lifted = conn.execute(
                "UPDATE bruteguard.bans SET lifted = now(), lifted_by = 'admin:' || session_user,"
                " change = nextval('bruteguard.ban_changes')"
                " WHERE ip = %s::inet AND lifted IS NULL AND until > now()",
                (args.ip,),
            ).rowcount
        except psycopg.errors.InsufficientPrivilege:
            raise FleetError(
                "unban --fleet: this role may not lift the fleet's bans (agents lift only"
                " their own, by unbanning locally); use --dsn with an admin's role"
            ) from None
        except psycopg.Error as error:
            raise FleetError(f"unban --fleet: {error}") from None
    print(f"lifted {lifted} fleet bans of {args.ip}; every host lifts them within its poll")
    return 0


def _cmd_expire(args: argparse.Namespace) -> int:
    """Keep failure summaries ``--keep`` from now on (the leader expires them by it too):
    whole days older are dropped as partitions, the rest of the boundary day deleted, and
    the partitions of the days ahead made."""
    with _connect(args) as conn:
        ((created, dropped, deleted),) = _admin(
            conn,
            "fleet expire",
            "SELECT * FROM bruteguard.expire_summaries(make_interval(secs => %s))",
            (args.keep,),
        ).fetchall()
    print(
        f"expired failure summaries older than {args.keep:g}s: {dropped} daily partitions"
        f" dropped, {deleted} more summaries deleted; {created} partitions made ahead"
    )
    return 0


def _admin(conn: Any, action: str, query: str, params: tuple) -> Any:
    """An admin's write: an agent's role is told to use ``--dsn``, not a bare SQL error."""
    import psycopg

    try:
        return conn.execute(query, params)
    except psycopg.errors.InsufficientPrivilege:
        raise FleetError(
            f"{action}: this role may not change the fleet's settings (agents may not);"
            " use --dsn with an admin's role"
        ) from None
    except psycopg.Error as error:
        raise FleetError(f"{action}: {error}") from None


def _network(text: str) -> str:
    """An address or network as the allowlist keeps it (``cidr``: no host bits)."""
    import ipaddress

    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError:
        pass
    try:
        wider = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise FleetError(f"fleet allow: {text!r} is not an address or network") from None
    raise FleetError(f"fleet allow: {text} has host bits set; did you mean {wider}?")


def _cmd_allow(args: argparse.Namespace) -> int:
    """The fleet-wide allowlist: networks no host applies a fleet ban for and the leader
    never decides (each host's own ``ignoreip`` still applies on top)."""
    from bruteguard.safe_text import printable

    if args.verb == "list":
        if args.target is not None:
            raise FleetError("fleet allow list: takes no address")
        with _connect(args) as conn:
            rows = _query(
                conn,
                "fleet allow list",
                "SELECT network::text, note, extract(epoch FROM added)::float8"
                " FROM bruteguard.allowlist ORDER BY network",
            )
        if args.json:
            _print_json([{"network": n, "comment": c, "added": a} for n, c, a in rows])
        elif not rows:
            print("the fleet's allowlist is empty")
        else:
            print(f"{'NETWORK':<43} {'ADDED':<24}  COMMENT")
            for network, note, added in rows:
                print(f"{network:<43} {_when(added):<24}  {printable(note)}")
        return 0
    if args.target is None:
        raise FleetError(f"fleet allow {args.verb}: which address or network?")
    network = _network(args.target)
    with _connect(args) as conn:
        if args.verb == "add":
            _admin(
                conn,
                "fleet allow add",
                "INSERT INTO bruteguard.allowlist (network, note) VALUES (%s, %s)"
                " ON CONFLICT (network) DO UPDATE SET note = excluded.note",
                (network, args.comment or ""),
            )
            print(f"{network} is on the fleet's allowlist: no host applies a fleet ban of it")
            return 0
        gone = _admin(
            conn,
            "fleet allow remove",
            "DELETE FROM bruteguard.allowlist WHERE network = %s",
            (network,),
        ).rowcount
    if not gone:
        raise FleetError(f"fleet allow remove: {network} is not on the fleet's allowlist")
    print(f"{network} is off the fleet's allowlist")
    return 0


def _cmd_cap(args: argparse.Namespace) -> int:
    """A host's ban rate cap: its bans past N a minute are kept, marked capped, and applied
    by no other host. ``fleet`` is the leader's decisions' own cap."""
    with _connect(args) as conn:
        changed = _admin(
            conn,
            "fleet cap",
            "UPDATE bruteguard.hosts SET max_bans_per_minute = %s WHERE name = %s",
            (args.per_minute, args.host),
        ).rowcount
    if not changed:
        raise FleetError(f"fleet cap: no host {args.host!r} (see fleet status; fleet add-host)")
    print(f"{args.host} may publish {args.per_minute} bans a minute; the rest are capped")
    return 0


def _per_minute(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be 0 to 1000000, got {value}")
    return value


def add_dsn_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dsn",
        metavar="DSN",
        help="connect with this DSN (an admin's; no password in it) instead of [fleet] dsn",
    )


def add_fleet_commands(command: Any, config_help: str = "configuration file") -> None:
    """``fleet`` and its subcommands, on the main parser's ``command`` factory."""
    fleet = command("fleet", "many hosts sharing bans through PostgreSQL ([fleet])", None)
    group_action = command_group(fleet, "fleet_command", config_help)

    def action(name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
        parser = group_action(name, help_text, handler)
        add_dsn_argument(parser)
        return parser

    action("init", "create or upgrade the fleet's schema and agent role (as an admin)", _cmd_init)
    add = action("add-host", "register a host and its login role (as an admin)", _cmd_add_host)
    add.add_argument("name", metavar="NAME", help="the host's [fleet] host")
    add.add_argument("--role", metavar="ROLE", help="its PostgreSQL login role (default NAME)")
    status = action(
        "status", "hosts, when each last published, queues, and how far this host lags", _cmd_status
    )
    status.add_argument("--json", action="store_true", help="one JSON object")
    allow = action(
        "allow",
        "the fleet-wide allowlist: add, remove or list networks no fleet ban touches",
        _cmd_allow,
    )
    allow.add_argument(
        "verb",
        choices=("add", "remove", "list"),
        metavar="add|remove|list",
        help="put a network on the allowlist, take it off, or show the list",
    )
    allow.add_argument(
        "target",
        nargs="?",
        metavar="ADDRESS_OR_NETWORK",
        help="an address or a network (no host bits: 203.0.113.0/24); not with list",
    )
    allow.add_argument("--comment", default="", metavar="TEXT", help="why it is allowed")
    allow.add_argument("--json", action="store_true", help="list as JSON")
    cap = action("cap", "set a host's cap of published bans a minute (as an admin)", _cmd_cap)
    cap.add_argument("host", metavar="HOST", help="the host's fleet name")
    cap.add_argument("per_minute", type=_per_minute, metavar="N", help="bans a minute (0-1000000)")
    expire = action(
        "expire", "delete failure summaries older than --keep (as an admin; run daily)", _cmd_expire
    )
    expire.add_argument(
        "--keep",
        type=_seconds,
        default=7 * 86400.0,
        metavar="DURATION",
        help="how long summaries are kept, from now on, also by the leader (1h or more;"
        " default 7d)",
    )


def _seconds(text: str) -> float:
    from bruteguard.duration import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
