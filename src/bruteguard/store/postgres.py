"""The fleet's store on PostgreSQL: its schema, created and upgraded by ``bruteguard fleet
init``, and the functions that are its whole interface to agents (docs/fleet.md).

The SQLite ledger (``store.sqlite``) stays each host's truth; this is what hosts share. The
fleet's tasks (``bruteguard.fleet``: publisher, subscriber, leader) call the functions
defined here and read the tables granted to them, nothing else.

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
    "BANS_CHANNEL",
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
BANS_CHANNEL = "bruteguard_bans"  # NOTIFYed on every new ban or lift (migration 5)
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
    (
        # Escalation on fleet counts (docs/fleet.md): the leader's decisions grow like a
        # host's own (docs/escalation.md) and count every host's bans, not only its own.
        # Rules come as one JSON object (the jail's settings), so a new one needs no new
        # signature. The version-3 ``decide_fleet_bans`` stays for leaders not yet upgraded.
        """CREATE FUNCTION bruteguard.require_leader() RETURNS void
            LANGUAGE plpgsql STABLE SET search_path = bruteguard, pg_temp AS $$
            BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
                               AND pid = pg_backend_pid() AND granted AND classid = 0
                               AND objid = 1650945124 AND objsubid = 1) THEN
                    RAISE EXCEPTION 'only the fleet leader decides fleet bans';
                END IF;
            END $$""",
        # The fleet's n-th ban of a target in a jail (bans of every host, none by hand, none
        # over a cap) lasts bantime * factor^(n-1), at most maxtime. Inserted only when its
        # (target, jail, window) decision is new: nothing is decided twice. The leader is
        # capped like any host (the host row "fleet", ``fleet cap fleet N``): a compromised
        # host that takes the lead cannot ban the internet through it either.
        """CREATE FUNCTION bruteguard.fleet_ban(
                p_target inet, p_jail text, p_now timestamptz, p_window timestamptz,
                p_failures integer, p_hosts integer, p_reason text, p_rule jsonb)
            RETURNS integer
            LANGUAGE plpgsql SET search_path = bruteguard, pg_temp AS $$
            DECLARE
                decision bigint;
                step integer;
                length double precision;
                me integer := (SELECT id FROM hosts WHERE name = 'fleet');
                over_cap boolean;
            BEGIN
                INSERT INTO fleet_decisions (ip, jail, window_start, decided, failures, hosts)
                VALUES (p_target, p_jail, p_window, p_now, p_failures, p_hosts)
                ON CONFLICT (ip, jail, window_start) DO NOTHING
                RETURNING id INTO decision;
                IF decision IS NULL THEN
                    RETURN NULL;
                END IF;
                step := 1 + (SELECT count(*) FROM bans b WHERE b.ip = p_target
                             AND b.jail = p_jail AND NOT b.capped AND b.failures > 0);
                -- factor^(n-1) as exp((n-1) ln factor), bounded: a target banned a thousand
                -- times must not overflow the float and stop every later decision
                length := least((p_rule->>'bantime')::float8
                                * exp(least((step - 1) * ln((p_rule->>'factor')::float8), 600)),
                                (p_rule->>'maxtime')::float8);
                over_cap := (SELECT count(*) FROM bans WHERE host_id = me AND NOT capped
                             AND published > now() - interval '1 minute')
                            >= (SELECT max_bans_per_minute FROM hosts WHERE id = me);
                INSERT INTO bans (host_id, local_id, ip, jail, reason, failures, start, until,
                                  capped)
                VALUES (me, decision, p_target, p_jail, p_reason, p_failures, p_now,
                        p_now + make_interval(secs => length), over_cap);
                RETURN CASE WHEN over_cap THEN NULL ELSE step END;
            END $$""",
        # Whether the fleet already bans ``p_target`` in ``p_jail`` now, or may not at all.
        """CREATE FUNCTION bruteguard.fleet_spares(p_target inet, p_jail text,
                                                 p_now timestamptz) RETURNS boolean
            LANGUAGE sql STABLE SET search_path = bruteguard, pg_temp AS $$
                SELECT EXISTS (SELECT 1 FROM bans b WHERE b.ip = p_target AND b.jail = p_jail
                               AND b.lifted IS NULL AND b.until > p_now AND NOT b.capped)
                    OR EXISTS (SELECT 1 FROM allowlist a
                               WHERE a.network >>= p_target OR p_target >>= a.network)
            $$""",
        # When the fleet last banned ``p_target`` in ``p_jail``: what came before is spent
        # (a host's own window forgets the attempts that made a ban, too).
        """CREATE FUNCTION bruteguard.fleet_last_ban(p_target inet, p_jail text)
            RETURNS timestamptz
            LANGUAGE sql STABLE SET search_path = bruteguard, pg_temp AS $$
                SELECT coalesce(max(b.start), '-infinity') FROM bans b
                WHERE b.ip = p_target AND b.jail = p_jail AND NOT b.capped
            $$""",
        # One jail: the threshold (IPv6 counted per /v6_prefix, as hosts count them), then
        # its IPv4 networks with subnet_maxretry addresses banned anywhere in the fleet.
        """CREATE FUNCTION bruteguard.decide_fleet_bans(
                p_jail text, p_now double precision, p_rule jsonb)
            RETURNS TABLE (address text, jail text, step integer)
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
            DECLARE
                now_ts timestamptz := to_timestamp(p_now);
                findtime float8 := (p_rule->>'findtime')::float8;
                maxretry integer := (p_rule->>'maxretry')::integer;
                min_hosts integer := (p_rule->>'hosts')::integer;
                -- the bounds config/jail.py puts on ipv6_prefix and ipv4_prefix, here too
                v6 integer := greatest(16, least(128, (p_rule->>'v6_prefix')::integer));
                v4 integer := greatest(8, least(32, (p_rule->>'v4_prefix')::integer));
                net_maxretry integer := (p_rule->>'subnet_maxretry')::integer;
                net_findtime float8 := (p_rule->>'subnet_findtime')::float8;
                hit record;
                made integer;
            BEGIN
                PERFORM require_leader();
                -- The targets over a threshold in the whole window first (cheap: one
                -- aggregate); only theirs are counted again from their last ban on.
                FOR hit IN
                    WITH t AS (
                        SELECT CASE WHEN family(s.ip) = 6 AND v6 < 128
                                    THEN network(set_masklen(s.ip, v6))::inet
                                    ELSE s.ip END AS target,
                               s.count, s.host_id, s.minute
                        FROM failure_summaries s
                        WHERE s.jail = p_jail AND s.minute <= now_ts
                          AND s.minute > now_ts - make_interval(secs => findtime)),
                    over AS (
                        SELECT t.target FROM t GROUP BY t.target
                        HAVING (maxretry > 0 AND sum(t.count) >= maxretry)
                            OR (min_hosts > 0 AND count(DISTINCT t.host_id) >= min_hosts))
                    SELECT t.target, sum(t.count)::integer AS failures,
                           count(DISTINCT t.host_id)::integer AS hosts
                    FROM t JOIN over ON over.target = t.target
                    WHERE t.minute >= fleet_last_ban(t.target, p_jail)
                    GROUP BY t.target
                    HAVING (maxretry > 0 AND sum(t.count) >= maxretry)
                        OR (min_hosts > 0 AND count(DISTINCT t.host_id) >= min_hosts)
                LOOP
                    CONTINUE WHEN fleet_spares(hit.target, p_jail, now_ts);
                    made := fleet_ban(
                        hit.target, p_jail, now_ts,
                        to_timestamp(floor(p_now / findtime) * findtime),
                        hit.failures, hit.hosts,
                        format('fleet threshold: %s failures from %s hosts in %s s',
                               hit.failures, hit.hosts, findtime::bigint),
                        p_rule);
                    CONTINUE WHEN made IS NULL;
                    address := abbrev(hit.target); jail := p_jail; step := made;
                    RETURN NEXT;
                END LOOP;
                IF net_maxretry <= 0 THEN
                    RETURN;
                END IF;
                FOR hit IN
                    WITH t AS (
                        SELECT network(set_masklen(b.ip, v4))::inet AS target, b.ip, b.start
                        FROM bans b
                        WHERE b.jail = p_jail AND family(b.ip) = 4 AND masklen(b.ip) = 32
                          AND NOT b.capped AND b.failures > 0 AND b.start <= now_ts
                          AND b.start > now_ts - make_interval(secs => net_findtime)),
                    over AS (SELECT t.target FROM t GROUP BY t.target
                             HAVING count(DISTINCT t.ip) >= net_maxretry)
                    SELECT t.target, count(DISTINCT t.ip)::integer AS banned,
                           extract(epoch FROM now_ts - min(t.start))::bigint AS took
                    FROM t JOIN over ON over.target = t.target
                    WHERE t.start >= fleet_last_ban(t.target, p_jail)
                    GROUP BY t.target
                    HAVING count(DISTINCT t.ip) >= net_maxretry
                LOOP
                    CONTINUE WHEN fleet_spares(hit.target, p_jail, now_ts);
                    made := fleet_ban(
                        hit.target, p_jail, now_ts,
                        to_timestamp(floor(p_now / net_findtime) * net_findtime),
                        hit.banned, 0,
                        format('fleet: %s addresses of it banned in %s s', hit.banned,
                               hit.took),
                        p_rule);
                    CONTINUE WHEN made IS NULL;
                    address := abbrev(hit.target); jail := p_jail; step := made;
                    RETURN NEXT;
                END LOOP;
            END $$""",
        # Recidive on fleet counts: a target banned maxretry times within findtime in other
        # jails, by any hosts together, is banned in ``p_rule.jail`` (every port).
        """CREATE FUNCTION bruteguard.decide_fleet_recidive(p_now double precision,
                                                           p_rule jsonb)
            RETURNS TABLE (address text, jail text, step integer)
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
            DECLARE
                now_ts timestamptz := to_timestamp(p_now);
                recidive text := p_rule->>'jail';
                findtime float8 := (p_rule->>'findtime')::float8;
                hit record;
                made integer;
            BEGIN
                PERFORM require_leader();
                FOR hit IN
                    WITH t AS (
                        SELECT b.ip, b.host_id, b.start FROM bans b
                        WHERE b.jail <> recidive AND NOT b.capped AND b.failures > 0
                          AND b.start <= now_ts
                          AND b.start > now_ts - make_interval(secs => findtime)),
                    over AS (SELECT t.ip FROM t GROUP BY t.ip
                             HAVING count(*) >= (p_rule->>'maxretry')::integer)
                    SELECT t.ip AS target, count(*)::integer AS banned,
                           count(DISTINCT t.host_id)::integer AS hosts
                    FROM t JOIN over ON over.ip = t.ip
                    WHERE t.start >= fleet_last_ban(t.ip, recidive)
                    GROUP BY t.ip
                    HAVING count(*) >= (p_rule->>'maxretry')::integer
                LOOP
                    CONTINUE WHEN fleet_spares(hit.target, recidive, now_ts);
                    made := fleet_ban(
                        hit.target, recidive, now_ts,
                        to_timestamp(floor(p_now / findtime) * findtime),
                        hit.banned, hit.hosts,
                        format('fleet recidive: %s bans from %s hosts in %s s', hit.banned,
                               hit.hosts, findtime::bigint),
                        p_rule);
                    CONTINUE WHEN made IS NULL;
                    address := abbrev(hit.target); jail := recidive; step := made;
                    RETURN NEXT;
                END LOOP;
            END $$""",
        "REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA bruteguard FROM PUBLIC",
        f"""GRANT EXECUTE ON FUNCTION
            bruteguard.decide_fleet_bans(text, double precision, jsonb),
            bruteguard.decide_fleet_recidive(double precision, jsonb) TO {AGENT_ROLE}""",
    ),
    (
        # Subscribers wake at once on a new ban or lift (LISTEN bruteguard_bans) instead of
        # at their next poll. The notification carries nothing: subscribers read the bans by
        # their cursor as always, so a NOTIFY sent by anyone else (PostgreSQL has no
        # privilege for it) costs one empty read and can neither hide nor forge a ban.
        # One per transaction: PostgreSQL folds equal notifications of one transaction.
        """CREATE FUNCTION bruteguard.notify_bans() RETURNS trigger
            LANGUAGE plpgsql SET search_path = bruteguard, pg_temp AS $$
            BEGIN
                PERFORM pg_notify('bruteguard_bans', '');
                RETURN NULL;
            END $$""",
        "REVOKE EXECUTE ON FUNCTION bruteguard.notify_bans() FROM PUBLIC",
        """CREATE TRIGGER bans_notify AFTER INSERT OR UPDATE ON bruteguard.bans
            FOR EACH STATEMENT EXECUTE FUNCTION bruteguard.notify_bans()""",
    ),
    (
        # Retention by the day: failure_summaries is partitioned by day (UTC) of its minute;
        # expiry drops whole partitions (no row-by-row DELETE, no bloat, no vacuum debt).
        # How long summaries are kept is the admin's (``fleet expire --keep``), stored here,
        # so the leader that expires them daily cannot be told by an agent to keep less.
        """CREATE TABLE bruteguard.retention (
            id boolean PRIMARY KEY DEFAULT true CHECK (id),
            keep interval NOT NULL DEFAULT '7 days' CHECK (keep >= interval '1 hour'),
            ahead integer NOT NULL DEFAULT 3 CHECK (ahead BETWEEN 1 AND 60))""",
        "INSERT INTO bruteguard.retention DEFAULT VALUES",
        "ALTER TABLE bruteguard.failure_summaries RENAME TO failure_summaries_v5",
        "ALTER INDEX bruteguard.failure_summaries_pkey RENAME TO failure_summaries_v5_pkey",
        "ALTER INDEX bruteguard.failure_summaries_minute RENAME TO failure_summaries_v5_minute",
        "ALTER INDEX bruteguard.failure_summaries_ip RENAME TO failure_summaries_v5_ip",
        # A summary's (host, local id) always has the same minute: the key with the
        # partition's column in it is as unique as the old one.
        """CREATE TABLE bruteguard.failure_summaries (
            LIKE bruteguard.failure_summaries_v5 INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
            FOREIGN KEY (host_id) REFERENCES bruteguard.hosts,
            PRIMARY KEY (host_id, local_id, minute)) PARTITION BY RANGE (minute)""",
        "CREATE INDEX failure_summaries_minute ON bruteguard.failure_summaries (minute)",
        "CREATE INDEX failure_summaries_ip ON bruteguard.failure_summaries (ip, minute)",
        # The day's partition, made if missing: created on its own and then attached, which
        # locks the parent only against other DDL (SHARE UPDATE EXCLUSIVE), not inserts.
        """CREATE FUNCTION bruteguard.summary_partition(p_day date) RETURNS boolean
            LANGUAGE plpgsql SET search_path = bruteguard, pg_temp AS $$
            DECLARE
                part text := 'failure_summaries_' || to_char(p_day, 'YYYYMMDD');
            BEGIN
                IF to_regclass('bruteguard.' || part) IS NOT NULL THEN
                    RETURN false;
                END IF;
                PERFORM pg_advisory_xact_lock(hashtext('bruteguard.summary_partition'));
                IF to_regclass('bruteguard.' || part) IS NOT NULL THEN
                    RETURN false;  -- another session made it while this one waited
                END IF;
                EXECUTE format('CREATE TABLE bruteguard.%I (LIKE bruteguard.failure_summaries'
                               ' INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
                EXECUTE format('ALTER TABLE bruteguard.failure_summaries ATTACH PARTITION'
                               ' bruteguard.%I FOR VALUES FROM (%L) TO (%L)', part,
                               p_day::timestamp AT TIME ZONE 'UTC',
                               (p_day + 1)::timestamp AT TIME ZONE 'UTC');
                RETURN true;
            END $$""",
        """DO $$ DECLARE day date; BEGIN
            FOR day IN SELECT DISTINCT (minute AT TIME ZONE 'UTC')::date
                       FROM bruteguard.failure_summaries_v5 LOOP
                PERFORM bruteguard.summary_partition(day);
            END LOOP;
        END $$""",
        """INSERT INTO bruteguard.failure_summaries
            SELECT host_id, local_id, ip, jail, minute, count, samples
            FROM bruteguard.failure_summaries_v5""",
        "DROP TABLE bruteguard.failure_summaries_v5",
        # Partitions for today and ``ahead`` days; those wholly before ``p_before`` dropped,
        # the rows before it in the partition it falls in deleted.
        """CREATE FUNCTION bruteguard.maintain_summaries(p_before timestamptz)
            RETURNS TABLE (created integer, dropped integer, deleted bigint)
            LANGUAGE plpgsql SET search_path = bruteguard, pg_temp AS $$
            DECLARE
                today date := (now() AT TIME ZONE 'UTC')::date;
                part record;
            BEGIN
                created := 0; dropped := 0;
                FOR n IN 0 .. (SELECT ahead FROM retention) LOOP
                    created := created + summary_partition(today + n)::integer;
                END LOOP;
                FOR part IN
                    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                    WHERE i.inhparent = 'bruteguard.failure_summaries'::regclass
                      AND c.relname ~ '^failure_summaries_[0-9]{8}$'
                      AND ((to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp
                           AT TIME ZONE 'UTC') <= p_before
                LOOP
                    EXECUTE format('DROP TABLE bruteguard.%I', part.relname);
                    dropped := dropped + 1;
                END LOOP;
                WITH gone AS (DELETE FROM failure_summaries WHERE minute < p_before
                              RETURNING 1)
                SELECT count(*) INTO deleted FROM gone;
                RETURN NEXT;
            END $$""",
        # The admin's: keep summaries ``p_keep`` from now on, and expire now.
        """CREATE FUNCTION bruteguard.expire_summaries(p_keep interval)
            RETURNS TABLE (created integer, dropped integer, deleted bigint)
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
            BEGIN
                UPDATE retention SET keep = p_keep;
                RETURN QUERY SELECT * FROM maintain_summaries(now() - p_keep);
            END $$""",
        # The leader's, every so often: by the admin's ``keep``.
        """CREATE FUNCTION bruteguard.leader_maintenance()
            RETURNS TABLE (created integer, dropped integer, deleted bigint)
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
            BEGIN
                PERFORM require_leader();
                RETURN QUERY SELECT * FROM maintain_summaries(
                    now() - (SELECT keep FROM retention));
            END $$""",
        # A summary of a day without a partition makes it (one of a day already expired,
        # from a host that was away, is dropped with it at the next maintenance).
        """CREATE OR REPLACE FUNCTION bruteguard.publish_failures(
                p_local_id bigint, p_ip inet, p_jail text, p_minute double precision,
                p_count integer, p_samples text[]) RETURNS void
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = bruteguard, pg_temp AS $$
            DECLARE
                at timestamptz := to_timestamp(p_minute);
            BEGIN
                PERFORM summary_partition((at AT TIME ZONE 'UTC')::date);
                INSERT INTO failure_summaries (host_id, local_id, ip, jail, minute, count,
                                               samples)
                VALUES (agent_host(), p_local_id, p_ip, p_jail, at, p_count, p_samples)
                ON CONFLICT (host_id, local_id, minute) DO NOTHING;
            END $$""",
        """CREATE OR REPLACE FUNCTION bruteguard.expire_failures(p_before timestamptz)
            RETURNS bigint LANGUAGE sql SECURITY DEFINER
            SET search_path = bruteguard, pg_temp AS $$
                SELECT deleted FROM maintain_summaries(p_before)
            $$""",
        "SELECT bruteguard.maintain_summaries('-infinity')",
        "REVOKE ALL ON ALL TABLES IN SCHEMA bruteguard FROM PUBLIC",
        "REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA bruteguard FROM PUBLIC",
        f"GRANT SELECT ON bruteguard.retention TO {AGENT_ROLE}",
        f"GRANT EXECUTE ON FUNCTION bruteguard.leader_maintenance() TO {AGENT_ROLE}",
    ),
    CHANGES_AT_COMMIT,
    (
        # The version-3 ``decide_fleet_bans`` (kept for leaders not yet upgraded) checked the
        # leader's lock with its own copy of ``require_leader()``'s test: its stored text
        # gets ``PERFORM require_leader()`` instead, so the check is in one place.
        # CREATE OR REPLACE keeps the function's owner and grants.
        """DO $$ DECLARE
            old text := pg_get_functiondef('bruteguard.decide_fleet_bans(text,
                double precision, double precision, integer, integer, double precision)'
                ::regprocedure);
            new text := regexp_replace(old, 'IF NOT EXISTS \\(SELECT 1 FROM pg_locks .*?END IF;',
                                       'PERFORM require_leader();');
        BEGIN
            IF new = old OR new ~ 'pg_locks' THEN
                RAISE EXCEPTION 'decide_fleet_bans is not the version-3 function';
            END IF;
            EXECUTE new;
        END $$""",
    ),
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
