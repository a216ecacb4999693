"""The named errors bruteguard raises; the CLI turns each into a clear message and exit code."""

__all__ = [
    "BruteguardError",
    "ConfigError",
    "ControlError",
    "EnforcerError",
    "NotRunningError",
    "StoreError",
]


class BruteguardError(Exception):
    """Base of every error bruteguard reports to the user (never a traceback)."""

    exit_code = 1


class ConfigError(BruteguardError):
    """The configuration file is missing, unreadable or invalid (names file and key)."""

    exit_code = 2


class EnforcerError(BruteguardError):
    """The firewall could not be changed (missing tool, no privileges, rejected script)."""


class StoreError(BruteguardError):
    """The ledger could not be opened or written."""


class ControlError(BruteguardError):
    """The control socket refused or failed a request."""


class NotRunningError(ControlError):
    """No daemon is listening on the control socket."""
