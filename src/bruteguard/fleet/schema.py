"""The fleet's PostgreSQL schema moved to ``bruteguard.store.postgres`` (beside the SQLite
ledger, as DESIGN.md lays the stores out); this name stays the same module for code and
tests written against it (monkeypatching one patches the other)."""

import sys

from bruteguard.store import postgres

sys.modules[__name__] = postgres
