"""``bruteguard knock``: make the shared key, or knock on a server to be let in.

The client reads the key file named by ``--key``, else the configuration's ``[knock]
key_file``; the port to open defaults to 22 and the knock port to the configuration's (or
fwknop's 62201).
"""

from __future__ import annotations

import argparse
from typing import Any

from bruteguard.config import load_config
from bruteguard.errors import BruteguardError, ConfigError
from bruteguard.knock.config import DEFAULT_KNOCK_PORT, KnockConfig

__all__ = ["add_knock_command"]


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return int(text)


def _settings(args: argparse.Namespace) -> KnockConfig:
    try:
        configured = load_config(args.config).knock
    except ConfigError:
        if args.config:  # a file named and broken: say so; the default may be absent
            raise
        configured = None
    return configured or KnockConfig()


def _cmd_knock(args: argparse.Namespace) -> int:
    # Here, not at the top: every command builds the parser, only a knock signs packets.
    from bruteguard.knock.client import send_knock
    from bruteguard.knock.keys import new_key, read_key

    settings = _settings(args)
    path = args.key or settings.key_file
    if args.new_key:
        new_key(path)
        print(f"new knock key written to {path} (mode 600): copy it to each admin's machine")
        return 0
    if not args.host:
        raise ConfigError("knock: name the HOST to knock on (or --new-key to make a key)")
    key = read_key(path)
    knock_port = args.knock_port or settings.port or DEFAULT_KNOCK_PORT
    try:
        signed = send_knock(key, args.host, args.port, knock_port, args.address)
    except (OSError, ValueError) as error:
        raise BruteguardError(f"knock: {error}") from None
    print(f"knocked on {args.host} udp {knock_port}: port {args.port} opens for {signed}")
    return 0


def add_knock_command(command: Any) -> None:
    """``knock`` on the main parser's ``command`` factory."""
    knock = command(
        "knock",
        "knock on HOST (one signed UDP packet) to be let in to its port; or --new-key",
        _cmd_knock,
    )
    knock.add_argument("host", nargs="?", metavar="HOST", help="the server to knock on")
    knock.add_argument("--port", "-p", type=_port, default=22, help="the port to open (default 22)")
    knock.add_argument(
        "--knock-port", type=_port, metavar="PORT", help="the server's knock port ([knock] port)"
    )
    knock.add_argument(
        "--address",
        "-a",
        metavar="ADDRESS",
        help="the address to open, as the server sees us (default: our own towards HOST;"
        " behind NAT, the outside address)",
    )
    knock.add_argument("--key", metavar="FILE", help="the key file (default: [knock] key_file)")
    knock.add_argument(
        "--new-key", action="store_true", help="write a new random key (mode 600) and exit"
    )
