"""The throw-away network namespace the nftables benchmarks run in, and its argv prefix.

Why here: every benchmark that touches a firewall must work in a namespace it creates and
always deletes (also on error or SIGTERM), so the host's own firewall is never touched.

Imported by the scripts next to it as ``from _netns import namespace``: they are run as
``python bench/x.py``, and Python puts the script's own directory (``bench/``) first on
``sys.path``, so no path handling is needed (the leading ``_``: a helper, not a benchmark).
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import subprocess
from collections.abc import Iterator

__all__ = ["exec_prefix", "namespace"]


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def namespace(prefix: str = "bg-bench") -> Iterator[str]:
    """A fresh network namespace, deleted on the way out (also on error or SIGTERM)."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    previous = signal.signal(signal.SIGTERM, _terminate)
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=30)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False, timeout=30)
        signal.signal(signal.SIGTERM, previous)


def exec_prefix(ns: str) -> list[str]:
    """The argv prefix that runs a command inside namespace ``ns`` (an enforcer's
    ``argv_prefix``)."""
    return ["ip", "netns", "exec", ns]
