-- pgq.sqltriga(): trigger that queues every row change of its table as an event: partial SQL (INSERT column/value lists, UPDATE set/where, DELETE where), ev_type I/U/D;
-- TRUNCATE (statement trigger) queues ev_type R.
--
-- Arguments: queue name, then options SKIP, backup, deny, ignore=, pkey=, when=,
-- ev_type=/ev_data=/ev_extra1..4= (see pgq._trigger_event). The event is inserted with
-- pgq.insert_event(7 arguments); ev_extra1 is "schema.table" unless overridden.
-- Result: NULL in AFTER triggers; in BEFORE triggers the row, or NULL with SKIP.
CREATE OR REPLACE FUNCTION pgq.sqltriga()
RETURNS trigger
LANGUAGE plpgsql
AS $fn$
DECLARE
    skip boolean;
BEGIN
    skip := pgq._trigger_event('sql', TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP, TG_WHEN, TG_LEVEL, TG_ARGV,
                               CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN NEW::text END,
                               CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN OLD::text END);
    IF TG_WHEN <> 'BEFORE' OR TG_LEVEL <> 'ROW' OR skip THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$fn$;
