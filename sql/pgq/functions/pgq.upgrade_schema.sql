-- pgq.upgrade_schema(): bring an older pgq schema up to date, idempotently.
--
-- Makes pgq.subscription.sub_last_tick nullable (coop subconsumers), creates the roles
-- pgq_reader, pgq_writer and pgq_admin when missing, and adds queue_extra_maint.
-- Result: the number of changes made (PgQ 3.5 always returned 0).
CREATE OR REPLACE FUNCTION pgq.upgrade_schema()
RETURNS int4
LANGUAGE plpgsql
AS $fn$
DECLARE
    changes int4 := 0;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                WHERE attrelid = 'pgq.subscription'::regclass
                  AND attname = 'sub_last_tick' AND attnotnull) THEN
        ALTER TABLE pgq.subscription ALTER COLUMN sub_last_tick DROP NOT NULL;
        changes := changes + 1;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_reader') THEN
        CREATE ROLE pgq_reader;
        changes := changes + 1;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_writer') THEN
        CREATE ROLE pgq_writer;
        changes := changes + 1;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_admin') THEN
        CREATE ROLE pgq_admin IN ROLE pgq_reader, pgq_writer;
        changes := changes + 1;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                    WHERE attrelid = 'pgq.queue'::regclass
                      AND attname = 'queue_extra_maint' AND NOT attisdropped) THEN
        ALTER TABLE pgq.queue ADD COLUMN queue_extra_maint text[];
        changes := changes + 1;
    END IF;
    RETURN changes;
END;
$fn$;
