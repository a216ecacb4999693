"""The fleet: many hosts share bans and failure summaries through one PostgreSQL (docs/fleet.md).

Local first: each host's SQLite ledger stays the truth for its own decisions and firewall;
the fleet is fed from an outbound queue in that ledger (``fleet.outbox``) by a publisher
(``fleet.publisher``) into the schema ``fleet.schema`` creates. Nothing here runs without a
``[fleet]`` section.
"""
