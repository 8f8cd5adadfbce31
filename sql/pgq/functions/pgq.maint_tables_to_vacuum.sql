-- pgq.maint_tables_to_vacuum(): tables with frequent updates that need vacuuming when
-- autovacuum is off: pgq's own and those of pgq_ext, pgq_node and londiste that exist.
--
-- Result: "schema.table" names; none when autovacuum is on.
CREATE OR REPLACE FUNCTION pgq.maint_tables_to_vacuum()
RETURNS SETOF text
LANGUAGE plpgsql
AS $fn$
BEGIN
    IF current_setting('autovacuum') = 'on' THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT t.name
          FROM unnest(ARRAY['pgq.subscription', 'pgq.consumer', 'pgq.queue', 'pgq.tick', 'pgq.retry_queue',
                            'pgq_ext.completed_tick', 'pgq_ext.completed_batch', 'pgq_ext.completed_event',
                            'pgq_ext.partial_batch', 'pgq_node.local_state', 'londiste.seq_info',
                            'txid.epoch', 'londiste.completed']) WITH ORDINALITY AS t(name, ord)
         WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = split_part(t.name, '.', 1)
                          AND c.relname = split_part(t.name, '.', 2))
         ORDER BY t.ord;
END;
$fn$;
