"""``bruteguard dashboard`` (the web UI) and ``bruteguard top`` (the terminal view)."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import socket
import sys
import time
from typing import Any

from bruteguard.config import Config, load_config
from bruteguard.errors import BruteguardError, ConfigError

__all__ = ["add_dashboard_commands"]


class DashboardError(BruteguardError):
    """The dashboard cannot start as configured."""


def _password() -> str:
    """The password to hash: asked twice on a terminal, else the first line of stdin."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("dashboard password: ")
    if first != getpass.getpass("again: "):
        raise DashboardError("the two passwords differ")
    return first


def _login(config: Config) -> Any:
    from bruteguard.dashboard.auth import Login

    settings = config.dashboard
    token = ""
    if settings.token_file:
        try:
            with open(settings.token_file, encoding="utf-8") as file:
                token = file.readline().strip()
        except OSError as error:
            raise ConfigError(f"dashboard.token_file: cannot read: {error.strerror}") from None
        if len(token) < 16:
            raise ConfigError("dashboard.token_file: the token must be 16 characters or more")
    if not (settings.password_hash or token):
        where = config.where_to_set("[dashboard] password_hash or token_file")
        raise DashboardError(
            f"nobody could log in: {where} (`bruteguard dashboard --hash-password` makes a hash)"
        )
    return Login(settings.password_hash, token)


def _cmd_dashboard(args: argparse.Namespace) -> int:
    if args.hash_password:
        from bruteguard.dashboard.auth import hash_password

        password = _password()
        if len(password) < 8:
            raise DashboardError("a dashboard password has 8 characters or more")
        print(hash_password(password))
        return 0
    config = load_config(args.config)
    if args.listen is not None:
        import msgspec

        from bruteguard.dashboard.config import DashboardConfig

        try:
            config.dashboard = DashboardConfig(
                **{**msgspec.structs.asdict(config.dashboard), "listen": args.listen}
            )
        except ValueError as error:
            raise ConfigError(f"--listen: {str(error).removeprefix('listen: ')}") from None
    login = _login(config)
    try:
        from bruteguard.dashboard.web import serve
    except ImportError:
        raise DashboardError(
            "the dashboard needs aiohttp: pip install 'bruteguard[dashboard]'"
        ) from None
    import asyncio
    import signal

    from bruteguard.bounds import split_listen

    host, port = split_listen(config.dashboard.listen)

    def ready(url: str) -> None:
        print(f"dashboard on {url}", flush=True)

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            await serve(config, login, host, port, ready)
        except OSError as error:
            raise DashboardError(f"cannot listen on {config.dashboard.listen}: {error}") from None

    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(main())
    return 0


def _cmd_top(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    from bruteguard.dashboard.snapshot import Snapshots
    from bruteguard.dashboard.top import frame

    snapshots = Snapshots(load_config(args.config), fleet=False)
    host = socket.gethostname()
    console = Console()
    if args.once:
        console.print(frame(snapshots.take(time.time()), host))
        return 0
    with Live(console=console, screen=True, auto_refresh=False) as live:
        while True:
            live.update(frame(snapshots.take(time.time()), host), refresh=True)
            time.sleep(snapshots.pause(args.interval))


def add_dashboard_commands(command: Any) -> None:
    dashboard = command(
        "dashboard",
        "the web UI: live bans, attackers and plots; ban, unban, send complaints",
        _cmd_dashboard,
    )
    dashboard.add_argument(
        "--listen", metavar="ADDRESS:PORT", help="override [dashboard] listen (port 0: any)"
    )
    dashboard.add_argument(
        "--hash-password",
        action="store_true",
        help="print a [dashboard] password_hash for a password (asked, or read from stdin)",
    )
    top = command("top", "a live terminal view of bans, jails, sources and attackers", _cmd_top)
    top.add_argument("--once", action="store_true", help="print one frame and exit")
    top.add_argument(
        "--interval", type=float, default=2.0, metavar="SECONDS", help="refresh (default 2)"
    )
