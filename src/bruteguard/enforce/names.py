"""The one rule for names that become part of firewall objects (jails, tables, prefixes).

nft takes identifiers of a letter or '_' then letters, digits, '_', '-', '.' or '/'; we drop
'.' and '/' (they mean more in other firewalls' names and in paths) and keep names short
enough for every object built from them (``NAME_v6n64`` in nftables). Its own module so the
configuration can check jail names when it is loaded without importing an enforcer.
"""

from __future__ import annotations

import re

__all__ = ["NAME_FORM", "is_safe_name"]

_NAME = re.compile(r"\A[A-Za-z_][A-Za-z0-9_-]{0,29}\Z")
NAME_FORM = "1-30 letters, digits, '_' or '-', starting with a letter or '_'"


def is_safe_name(name: object) -> bool:
    """Whether ``name`` fits ``NAME_FORM``."""
    return isinstance(name, str) and _NAME.match(name) is not None
