"""The fleet: many hosts share bans and failure summaries through one PostgreSQL (docs/fleet.md).

Local first: each host's SQLite ledger stays the truth for its own decisions and firewall.
``config`` is ``[fleet]``; the PostgreSQL side is ``store.postgres`` (``fleet init``);
``outbox`` the outbound queue in the local ledger, which ``publisher`` drains; ``subscriber``
reads the fleet's bans, and ``apply`` decides which of them this host takes; ``leader``
runs the election and, on the host that wins it, the fleet-wide thresholds. Nothing here
runs without a ``[fleet]`` section.
"""
