"""The fleet: many hosts share bans and failure summaries through one PostgreSQL (docs/fleet.md).

Local first: each host's SQLite ledger stays the truth for its own decisions and firewall.
``config`` is ``[fleet]``; ``schema`` the PostgreSQL side (``bruteguard fleet init``);
``outbox`` the outbound queue in the local ledger, which ``publisher`` drains; ``subscriber``
reads the fleet's bans, and ``apply`` decides which of them this host takes. Nothing here
runs without a ``[fleet]`` section.
"""
