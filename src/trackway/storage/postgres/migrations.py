"""The PostgreSQL schema of the event log, the workspace state, leases, delivery
bookkeeping and reverse ETL's sync state, in versioned migrations.

Migration N (1-based) runs once, when `schema_version` is below N. Every process
migrates on start; an advisory lock held for the migrating transaction makes a second
process wait and then find the schema already current.
"""

from typing import Any

import psycopg

from trackway.storage.postgres.connect import SCHEMA, unavailable

_LOCK_KEY = 0x74726B77_6D696772  # "trkwmigr"

MIGRATIONS = (
    """
    CREATE TABLE chunks(
        pos bigint PRIMARY KEY,
        count integer NOT NULL,
        source_id integer NOT NULL,
        received_at bigint NOT NULL,
        events bytea NOT NULL,
        hashes bytea NOT NULL
    );
    -- lz4 instead of the default pglz: 1.5-1.9x the append rate (decision 0006);
    -- kept as pglz on a server built without lz4.
    DO $$ BEGIN
        EXECUTE 'ALTER TABLE chunks ALTER COLUMN events SET COMPRESSION lz4';
    EXCEPTION WHEN feature_not_supported THEN NULL;
    END $$;
    CREATE INDEX chunks_by_source ON chunks(source_id, pos);
    CREATE TABLE head(
        id integer PRIMARY KEY CHECK (id = 1),
        next_pos bigint NOT NULL
    );
    INSERT INTO head VALUES (1, 1);
    CREATE TABLE failures(
        id bigserial PRIMARY KEY,
        source_id integer NOT NULL,
        received_at bigint NOT NULL,
        idx integer NOT NULL,
        code text NOT NULL,
        message text NOT NULL,
        raw bytea
    );
    CREATE INDEX failures_by_source ON failures(source_id, id);
    CREATE TABLE duplicates(
        id bigserial PRIMARY KEY,
        source_id integer NOT NULL,
        received_at bigint NOT NULL,
        message_id text NOT NULL,
        body bytea NOT NULL
    );
    CREATE INDEX duplicates_by_source ON duplicates(source_id, id);
    CREATE TABLE sources(
        id serial PRIMARY KEY,
        public_id text NOT NULL UNIQUE,
        name text NOT NULL UNIQUE,
        type text NOT NULL,
        enabled boolean NOT NULL DEFAULT true,
        created_at text NOT NULL
    );
    CREATE TABLE write_keys(
        key text PRIMARY KEY,
        source_id integer NOT NULL REFERENCES sources(id),
        created_at text NOT NULL,
        expires_at double precision
    );
    CREATE INDEX write_keys_by_source ON write_keys(source_id);
    CREATE TABLE admin_tokens(
        hash text PRIMARY KEY,
        created_at text NOT NULL
    );
    CREATE TABLE objects(
        kind text NOT NULL,
        name text NOT NULL,
        spec text NOT NULL,
        updated_at text NOT NULL,
        PRIMARY KEY (kind, name)
    );
    CREATE TABLE state_version(
        id integer PRIMARY KEY CHECK (id = 1),
        version bigint NOT NULL
    );
    INSERT INTO state_version VALUES (1, 0)
    """,
    """
    CREATE TABLE leases(
        key text PRIMARY KEY,
        owner text NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE TABLE delivery_cursors(
        destination text PRIMARY KEY,
        position bigint NOT NULL,
        generation integer NOT NULL DEFAULT 0
    );
    CREATE TABLE delivery_retries(
        id bigserial PRIMARY KEY,
        destination text NOT NULL,
        subscription text NOT NULL,
        position bigint NOT NULL,
        received_at_ms bigint NOT NULL,
        event bytea NOT NULL,
        attempts integer NOT NULL,
        first_failed_ms bigint NOT NULL,
        next_at_ms bigint NOT NULL,
        error text NOT NULL
    );
    CREATE INDEX delivery_retries_due ON delivery_retries(destination, next_at_ms);
    CREATE TABLE delivery_dead_letters(
        id bigserial PRIMARY KEY,
        destination text NOT NULL,
        subscription text NOT NULL,
        position bigint NOT NULL,
        received_at_ms bigint NOT NULL,
        event bytea NOT NULL,
        attempts integer NOT NULL,
        reason text NOT NULL,
        error text NOT NULL,
        failed_at_ms bigint NOT NULL
    );
    CREATE INDEX delivery_dead_letters_by_destination ON delivery_dead_letters(destination, id);
    CREATE TABLE delivery_stats(
        destination text NOT NULL,
        action text NOT NULL,
        minute bigint NOT NULL,
        delivered bigint NOT NULL DEFAULT 0,
        retried bigint NOT NULL DEFAULT 0,
        discarded bigint NOT NULL DEFAULT 0,
        dead_lettered bigint NOT NULL DEFAULT 0,
        filtered bigint NOT NULL DEFAULT 0,
        unsubscribed bigint NOT NULL DEFAULT 0,
        skipped bigint NOT NULL DEFAULT 0,
        latency bigint[] NOT NULL,
        PRIMARY KEY (destination, action, minute)
    );
    CREATE TABLE delivery_errors(
        id bigserial PRIMARY KEY,
        destination text NOT NULL,
        at_ms bigint NOT NULL,
        action text NOT NULL,
        kind text NOT NULL,
        message text NOT NULL,
        samples bytea NOT NULL
    );
    CREATE INDEX delivery_errors_by_destination ON delivery_errors(destination, id);
    CREATE TABLE delivery_alerts(
        id bigserial PRIMARY KEY,
        destination text NOT NULL,
        at_ms bigint NOT NULL,
        kind text NOT NULL,
        rate double precision NOT NULL,
        threshold double precision NOT NULL,
        attempts integer NOT NULL,
        notified text NOT NULL
    );
    CREATE INDEX delivery_alerts_by_destination ON delivery_alerts(destination, id)
    """,
    # Reverse ETL's sync state (reverse_etl/state/postgres.py). A key is text tagged with
    # its type ('i7', 's7'), so 7 and '7' stay two keys, as in SQLite; "C" collation:
    # keys are only compared for equality.
    """
    CREATE TABLE reverse_etl_syncs(
        id serial PRIMARY KEY,
        name text NOT NULL UNIQUE,
        initialized boolean NOT NULL DEFAULT false
    );
    CREATE TABLE reverse_etl_snapshot(
        sync_id integer NOT NULL,
        pk text COLLATE "C" NOT NULL,
        hash bigint,
        seq integer NOT NULL,
        payload bytea,
        resend boolean NOT NULL DEFAULT false,
        PRIMARY KEY (sync_id, pk)
    );
    CREATE TABLE reverse_etl_runs(
        id bigserial PRIMARY KEY,
        sync_id integer NOT NULL REFERENCES reverse_etl_syncs(id),
        trigger text NOT NULL,
        full_resync boolean NOT NULL,
        status text NOT NULL,
        started_at text NOT NULL,
        ended_at text,
        added bigint NOT NULL DEFAULT 0,
        changed bigint NOT NULL DEFAULT 0,
        removed bigint NOT NULL DEFAULT 0,
        sent bigint NOT NULL DEFAULT 0,
        failed bigint NOT NULL DEFAULT 0,
        rejected bigint NOT NULL DEFAULT 0,
        error text
    );
    CREATE INDEX reverse_etl_runs_by_sync ON reverse_etl_runs(sync_id, id);
    CREATE TABLE reverse_etl_run_errors(
        id bigserial PRIMARY KEY,
        run_id bigint NOT NULL REFERENCES reverse_etl_runs(id),
        pk text NOT NULL,
        kind text NOT NULL,
        status text NOT NULL,
        error text NOT NULL
    );
    CREATE INDEX reverse_etl_run_errors_by_run ON reverse_etl_run_errors(run_id, id)
    """,
    # Reverse ETL runs are numbered per sync (1, 2, 3 for each), the existing ones in
    # their order.
    """
    ALTER TABLE reverse_etl_runs ADD COLUMN number integer;
    UPDATE reverse_etl_runs AS r SET number = n.number
      FROM (SELECT id, row_number() OVER (PARTITION BY sync_id ORDER BY id) AS number
              FROM reverse_etl_runs) AS n
     WHERE r.id = n.id;
    ALTER TABLE reverse_etl_runs ALTER COLUMN number SET NOT NULL;
    DROP INDEX reverse_etl_runs_by_sync;
    CREATE UNIQUE INDEX reverse_etl_runs_by_number ON reverse_etl_runs(sync_id, number)
    """,
    # a replay's time (latency counts from it) and the names destinations learnt
    # (Kameleoon's goals)
    """
    ALTER TABLE delivery_cursors ADD COLUMN replayed_at_ms bigint NOT NULL DEFAULT 0;
    CREATE TABLE delivery_names(
        destination text NOT NULL,
        name text NOT NULL,
        at_ms bigint NOT NULL,
        PRIMARY KEY (destination, name)
    )
    """,
)


def migrate(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Bring the schema to the newest migration; returns the versions before and after."""
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version(version integer NOT NULL)"
            )
            row = conn.execute(f"SELECT version FROM {SCHEMA}.schema_version").fetchone()
            if row is None:
                conn.execute(f"INSERT INTO {SCHEMA}.schema_version VALUES (0)")
            before = row[0] if row else 0
            for script in MIGRATIONS[before:]:
                conn.execute(script)
            if before < len(MIGRATIONS):
                conn.execute(f"UPDATE {SCHEMA}.schema_version SET version = %s", (len(MIGRATIONS),))
    except psycopg.Error as exc:
        raise unavailable(exc) from exc
    return before, max(before, len(MIGRATIONS))
