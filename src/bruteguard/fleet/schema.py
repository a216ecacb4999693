"""The fleet's PostgreSQL schema, created and upgraded by ``bruteguard fleet init``.

Versioned like the SQLite ledger: each entry of ``MIGRATIONS`` upgrades the schema from
version ``index`` to ``index + 1`` (append, never edit); ``migrate`` applies the missing ones
under an advisory lock in one transaction, so running it twice, or on two hosts at once,
changes nothing the second time.

Least privilege: agents (members of the ``bruteguard_agent`` role) get no INSERT, UPDATE or
DELETE on any table. They write only through SECURITY DEFINER functions that find their host
by ``session_user`` (the role they logged in as), so a host can publish its own bans,
summaries and heartbeat and lift only its own bans; they read bans, hosts and the allowlist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "AGENT_ROLE",
    "CHANGES_LOCK",
    "FLEET_HOST",
    "LEADER_LOCK",
    "MIGRATIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "migrate",
    "schema_version",
]

SCHEMA = "bruteguard"
AGENT_ROLE = "bruteguard_agent"
FLEET_HOST = "fleet"  # the origin of bans decided by fleet-wide thresholds
# The leader's session-level advisory lock: one bigint key (pg_locks shows it as classid 0,
# objid LEADER_LOCK, objsubid 1).
LEADER_LOCK = 0x62676C64  # "bgld"; migration 3 names it (and FLEET_HOST) literally
# Held from the moment a transaction numbers its changes until it has committed (see
# CHANGES_AT_COMMIT, which names it literally): the transaction-level advisory lock "bgch".
CHANGES_LOCK = 0x62676368

# Subscribers read "changes after N", so a change number must never become visible after a
# higher one did: a transaction that took number N (a batch of a host's bans) and committed
# after another took N + 1 and committed (a single ban elsewhere) would be skipped for good by
# a subscriber that read N + 1 in between. So every ban and every lift is numbered again at
# COMMIT, by a deferred trigger, under a lock held until the commit is visible: numbers are
# handed out in the order transactions become visible. Only the commit's last moments are
# serialized, not the hosts' publishing.
CHANGES_AT_COMMIT: tuple[str, ...] = (
    """CREATE FUNCTION bruteguard.number_change() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(1650942824);  -- CHANGES_LOCK
            UPDATE bans SET change = nextval('ban_changes') WHERE id = NEW.id;
            RETURN NULL;
        END $$""",
    "REVOKE EXECUTE ON FUNCTION bruteguard.number_change() FROM PUBLIC",
    """CREATE CONSTRAINT TRIGGER bans_numbered_at_commit
        AFTER INSERT OR UPDATE OF lifted ON bruteguard.bans
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        EXECUTE FUNCTION bruteguard.number_change()""",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # Roles belong to the cluster, not the database: another database's init made it.
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{AGENT_ROLE}') THEN
                CREATE ROLE {AGENT_ROLE} NOLOGIN;
            END IF;
        END $$""",
        """CREATE TABLE bruteguard.hosts (
            id serial PRIMARY KEY,
            name text NOT NULL UNIQUE,
            role name NOT NULL UNIQUE,
            added timestamptz NOT NULL DEFAULT now(),
            last_seen timestamptz,
            queue bigint NOT NULL DEFAULT 0)""",
        # Every insert and every lift takes the next change number: a subscriber that saw
        # change N reads "change > N" and gets new bans and new lifts alike.
        "CREATE SEQUENCE bruteguard.ban_changes",
        """CREATE TABLE bruteguard.bans (
            id bigserial PRIMARY KEY,
            host_id integer NOT NULL REFERENCES bruteguard.hosts,
            local_id bigint NOT NULL,
            ip inet NOT NULL,
            jail text NOT NULL,
            reason text NOT NULL DEFAULT '',
            failures integer NOT NULL DEFAULT 0,
            start timestamptz NOT NULL,
            until timestamptz NOT NULL,
            published timestamptz NOT NULL DEFAULT now(),
            lifted timestamptz,
            lifted_by text,
            change bigint NOT NULL DEFAULT nextval('bruteguard.ban_changes'),
            UNIQUE (host_id, local_id))""",
        "CREATE INDEX bans_change ON bruteguard.bans (change)",
        "CREATE INDEX bans_ip ON bruteguard.bans (ip)",
        "CREATE INDEX bans_active ON bruteguard.bans (until) WHERE lifted IS NULL",
        # One row per (address, jail, minute) a host saw failures in, as the host queued it;
        # expired by ``expire_failures`` through the minute index.
        """CREATE TABLE bruteguard.failure_summaries (
            host_id integer NOT NULL REFERENCES bruteguard.hosts,
            local_id bigint NOT NULL,
            ip inet NOT NULL,
            jail text NOT NULL,
            minute timestamptz NOT NULL,
            count integer NOT NULL CHECK (count > 0),
            samples text[] NOT NULL DEFAULT '{}',
            PRIMARY KEY (host_id, local_id))""",
        "CREATE INDEX failure_summaries_minute ON bruteguard.failure_summaries (minute)",
        "CREATE INDEX failure_summaries_ip ON bruteguard.failure_summaries (ip, minute)",
        """CREATE TABLE bruteguard.allowlist (
            network cidr PRIMARY KEY,
            note text NOT NULL DEFAULT '',
            added timestamptz NOT NULL DEFAULT now())""",
        # -- the agent's only ways to write ---------------------------------------------
        """CREATE FUNCTION bruteguard.agent_host() RETURNS integer
            LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
            DECLARE found integer;
            BEGIN
                SELECT id INTO found FROM hosts WHERE role = session_user;
                IF found IS NULL THEN
                    RAISE EXCEPTION 'role % is not a registered bruteguard host', session_user
                        USING HINT = 'bruteguard fleet add-host NAME --role ROLE';
                END IF;
                RETURN found;
            END $$""",
        """CREATE FUNCTION bruteguard.heartbeat(p_name text, p_queue bigint) RETURNS void
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
            BEGIN
                UPDATE hosts SET last_seen = now(), queue = p_queue
                WHERE id = agent_host() AND name = p_name;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'role % is registered for another host than %',
                        session_user, p_name;
                END IF;
            END $$""",
        """CREATE FUNCTION bruteguard.publish_ban(
                p_local_id bigint, p_ip inet, p_jail text, p_reason text, p_failures integer,
                p_start double precision, p_until double precision) RETURNS void
            LANGUAGE sql SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
                INSERT INTO bans (host_id, local_id, ip, jail, reason, failures, start, until)
                VALUES (agent_host(), p_local_id, p_ip, p_jail, p_reason, p_failures,
                        to_timestamp(p_start), to_timestamp(p_until))
                ON CONFLICT (host_id, local_id) DO NOTHING
            $$""",
        """CREATE FUNCTION bruteguard.lift_ban(p_local_id bigint, p_lifted double precision)
            RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
                UPDATE bans SET lifted = to_timestamp(p_lifted),
                    lifted_by = (SELECT name FROM hosts WHERE id = bans.host_id),
                    change = nextval('ban_changes')
                WHERE host_id = agent_host() AND local_id = p_local_id AND lifted IS NULL
            $$""",
        """CREATE FUNCTION bruteguard.publish_failures(
                p_local_id bigint, p_ip inet, p_jail text, p_minute double precision,
                p_count integer, p_samples text[]) RETURNS void
            LANGUAGE sql SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
                INSERT INTO failure_summaries (host_id, local_id, ip, jail, minute, count,
                                               samples)
                VALUES (agent_host(), p_local_id, p_ip, p_jail, to_timestamp(p_minute),
                        p_count, p_samples)
                ON CONFLICT (host_id, local_id) DO NOTHING
            $$""",
        # -- the admin's (never granted to agents) --------------------------------------
        """CREATE FUNCTION bruteguard.add_host(p_name text, p_role name) RETURNS void
            LANGUAGE sql SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
                INSERT INTO hosts (name, role) VALUES (p_name, p_role)
                ON CONFLICT (name) DO UPDATE SET role = excluded.role
            $$""",
        """CREATE FUNCTION bruteguard.expire_failures(p_before timestamptz) RETURNS bigint
            LANGUAGE sql SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
                WITH gone AS (DELETE FROM failure_summaries WHERE minute < p_before
                              RETURNING 1)
                SELECT count(*) FROM gone
            $$""",
        "REVOKE ALL ON ALL TABLES IN SCHEMA bruteguard FROM PUBLIC",
        "REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA bruteguard FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA bruteguard TO {AGENT_ROLE}",
        f"GRANT SELECT ON bruteguard.bans, bruteguard.hosts, bruteguard.allowlist TO {AGENT_ROLE}",
        f"""GRANT EXECUTE ON FUNCTION bruteguard.agent_host(), bruteguard.heartbeat(text, bigint),
            bruteguard.publish_ban(bigint, inet, text, text, integer, double precision,
                                   double precision),
            bruteguard.lift_ban(bigint, double precision),
            bruteguard.publish_failures(bigint, inet, text, double precision, integer, text[])
            TO {AGENT_ROLE}""",
    ),
    (
        # Blast radius: a host publishing more than its cap of bans a minute (a compromised
        # or broken one) still has them recorded, marked ``capped``, and no host applies them.
        """ALTER TABLE bruteguard.hosts ADD COLUMN max_bans_per_minute integer NOT NULL
            DEFAULT 600 CHECK (max_bans_per_minute >= 0)""",
        "ALTER TABLE bruteguard.bans ADD COLUMN capped boolean NOT NULL DEFAULT false",
        "CREATE INDEX bans_host_published ON bruteguard.bans (host_id, published)",
        """CREATE OR REPLACE FUNCTION bruteguard.publish_ban(
                p_local_id bigint, p_ip inet, p_jail text, p_reason text, p_failures integer,
                p_start double precision, p_until double precision) RETURNS void
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
            DECLARE
                me integer := agent_host();
                cap integer;
                recent bigint;
            BEGIN
                SELECT max_bans_per_minute INTO cap FROM hosts WHERE id = me;
                SELECT count(*) INTO recent FROM bans
                WHERE host_id = me AND published > now() - interval '1 minute' AND NOT capped;
                INSERT INTO bans (host_id, local_id, ip, jail, reason, failures, start, until,
                                  capped)
                VALUES (me, p_local_id, p_ip, p_jail, p_reason, p_failures,
                        to_timestamp(p_start), to_timestamp(p_until), recent >= cap)
                ON CONFLICT (host_id, local_id) DO NOTHING;
            END $$""",
    ),
    (
        # Fleet-wide thresholds (docs/fleet.md). Their bans belong to a host row named
        # "fleet" (role "-": no login role has that name), so every host applies them.
        """INSERT INTO bruteguard.hosts (name, role) VALUES ('fleet', '-')
            ON CONFLICT (name) DO NOTHING""",
        # One decision per (address, jail, window): a leader that takes over and decides the
        # same window again inserts nothing. ``window`` is the threshold's findtime bucket.
        """CREATE TABLE bruteguard.fleet_decisions (
            id bigserial PRIMARY KEY,
            ip inet NOT NULL,
            jail text NOT NULL,
            window_start timestamptz NOT NULL,
            decided timestamptz NOT NULL,
            failures integer NOT NULL,
            hosts integer NOT NULL,
            UNIQUE (ip, jail, window_start))""",
        # Decides only on the session that holds the leader's advisory lock: a host that
        # lost leadership (its connection ended) cannot decide through another connection.
        """CREATE FUNCTION bruteguard.decide_fleet_bans(
                p_jail text, p_now double precision, p_findtime double precision,
                p_maxretry integer, p_hosts integer, p_bantime double precision)
            RETURNS SETOF text
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
            DECLARE
                now_ts timestamptz := to_timestamp(p_now);
                since timestamptz := to_timestamp(p_now - p_findtime);
                bucket timestamptz := to_timestamp(floor(p_now / p_findtime) * p_findtime);
                fleet integer := (SELECT id FROM hosts WHERE name = 'fleet');
                hit record;
                decision bigint;
            BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
                               AND pid = pg_backend_pid() AND granted AND classid = 0
                               AND objid = 1650945124 AND objsubid = 1) THEN
                    RAISE EXCEPTION 'only the fleet leader decides fleet bans';
                END IF;
                FOR hit IN
                    SELECT s.ip, sum(s.count)::integer AS failures,
                           count(DISTINCT s.host_id)::integer AS hosts
                    FROM failure_summaries s
                    WHERE s.jail = p_jail AND s.minute > since AND s.minute <= now_ts
                      AND s.minute >= coalesce((SELECT max(d.decided) FROM fleet_decisions d
                                                WHERE d.ip = s.ip AND d.jail = s.jail),
                                               '-infinity')
                      AND NOT EXISTS (SELECT 1 FROM allowlist a
                                      WHERE a.network >>= s.ip OR s.ip >>= a.network)
                    GROUP BY s.ip
                    HAVING (p_maxretry > 0 AND sum(s.count) >= p_maxretry)
                        OR (p_hosts > 0 AND count(DISTINCT s.host_id) >= p_hosts)
                LOOP
                    INSERT INTO fleet_decisions (ip, jail, window_start, decided, failures,
                                                 hosts)
                    VALUES (hit.ip, p_jail, bucket, now_ts, hit.failures, hit.hosts)
                    ON CONFLICT (ip, jail, window_start) DO NOTHING
                    RETURNING id INTO decision;
                    CONTINUE WHEN decision IS NULL;
                    INSERT INTO bans (host_id, local_id, ip, jail, reason, failures, start,
                                      until)
                    VALUES (fleet, decision, hit.ip, p_jail,
                            format('fleet threshold: %s failures from %s hosts in %s s',
                                   hit.failures, hit.hosts, p_findtime::bigint),
                            hit.failures, now_ts, to_timestamp(p_now + p_bantime));
                    RETURN NEXT abbrev(hit.ip);
                END LOOP;
            END $$""",
        """CREATE OR REPLACE FUNCTION bruteguard.add_host(p_name text, p_role name)
            RETURNS void LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = bruteguard, pg_temp AS $$
            BEGIN
                IF p_name = 'fleet' THEN
                    RAISE EXCEPTION 'the host name fleet is reserved for fleet bans';
                END IF;
                INSERT INTO hosts (name, role) VALUES (p_name, p_role)
                ON CONFLICT (name) DO UPDATE SET role = excluded.role;
            END $$""",
        # Who leads now (for ``fleet status``): agents cannot see other roles' sessions.
        """CREATE FUNCTION bruteguard.leader() RETURNS text
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
                SELECT h.name FROM pg_locks l
                JOIN pg_stat_activity a ON a.pid = l.pid
                JOIN hosts h ON h.role = a.usename
                WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0
                  AND l.objid = 1650945124 AND l.objsubid = 1
                  AND l.database = (SELECT oid FROM pg_database
                                    WHERE datname = current_database())
            $$""",
        "REVOKE EXECUTE ON FUNCTION bruteguard.leader() FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION bruteguard.leader() TO {AGENT_ROLE}",
        "REVOKE EXECUTE ON FUNCTION bruteguard.add_host(text, name) FROM PUBLIC",
        "REVOKE EXECUTE ON FUNCTION bruteguard.decide_fleet_bans(text, double precision,"
        " double precision, integer, integer, double precision) FROM PUBLIC",
        f"""GRANT EXECUTE ON FUNCTION bruteguard.decide_fleet_bans(text, double precision,
            double precision, integer, integer, double precision) TO {AGENT_ROLE}""",
    ),
    CHANGES_AT_COMMIT,
)

SCHEMA_VERSION = len(MIGRATIONS)

_LOCK = "SELECT pg_advisory_xact_lock(hashtext('bruteguard.migrate'))"


def schema_version(conn: psycopg.Connection) -> int:
    """The fleet schema's version in this database (0: ``fleet init`` never ran)."""
    row = conn.execute("SELECT to_regclass('bruteguard.schema_version') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    (version,) = conn.execute(
        "SELECT coalesce(max(version), 0) FROM bruteguard.schema_version"
    ).fetchone() or (0,)
    return int(version)


def migrate(conn: psycopg.Connection) -> tuple[int, int]:
    """Bring the schema to ``SCHEMA_VERSION`` in one transaction; (before, after).

    Refuses a schema newer than this bruteguard knows (``RuntimeError``).
    """
    with conn.transaction():
        conn.execute(_LOCK)  # two inits at once: the second waits, then finds nothing to do
        conn.execute("CREATE SCHEMA IF NOT EXISTS bruteguard")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bruteguard.schema_version ("
            " version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"
        )
        before = schema_version(conn)
        if before > SCHEMA_VERSION:
            raise RuntimeError(
                f"the fleet schema has version {before}, newer than this bruteguard"
                f" understands ({SCHEMA_VERSION}): upgrade bruteguard"
            )
        for number in range(before, SCHEMA_VERSION):
            for statement in MIGRATIONS[number]:
                conn.execute(statement)  # type: ignore[arg-type]  (no parameters: sent as is)
            conn.execute(
                "INSERT INTO bruteguard.schema_version (version) VALUES (%s)", (number + 1,)
            )
    return before, SCHEMA_VERSION
