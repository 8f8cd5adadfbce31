-- Privileges, as in PgQ 3.5: first nothing for anyone, then
--   PUBLIC:     information and helper functions, SELECT on the metadata tables;
--   pgq_reader: consumer functions, SELECT on metadata and event tables;
--   pgq_writer: producer functions and the triggers;
--   pgq_admin:  ticker, maintenance and administration (and, as a member, the above).
-- Re-applied on every install, so it also repairs grants changed by hand.
GRANT USAGE ON SCHEMA pgq TO PUBLIC;

DO $grants$
DECLARE
    f record;
    target text;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig, p.proname::text AS name, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'pgq'::regnamespace
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, pgq_reader, pgq_writer, pgq_admin', f.sig);
        target := CASE
            WHEN f.name IN ('seq_getval', 'get_queue_info', 'get_consumer_info', 'quote_fqname', 'version',
                            '_urlencode', '_row_fields', '_urlencode_row', '_json_row', '_trigger_event',
                            '_insert_event_tree', '_table_meta')
                THEN 'PUBLIC'
            WHEN f.name IN ('batch_event_sql', 'batch_event_tables', 'find_tick_helper', 'register_consumer',
                            'register_consumer_at', 'unregister_consumer', 'next_batch_info', 'next_batch',
                            'next_batch_custom', 'get_batch_events', 'get_batch_info', 'get_batch_cursor',
                            'event_retry', 'batch_retry', 'force_tick', 'finish_batch')
                THEN 'pgq_reader'
            WHEN f.name IN ('insert_event', 'current_event_table', 'jsontriga', 'sqltriga', 'logutriga')
                THEN 'pgq_writer'
            ELSE 'pgq_admin'
        END;
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f.sig, target);
    END LOOP;
END
$grants$;

REVOKE ALL ON TABLE pgq.consumer, pgq.queue, pgq.tick, pgq.subscription, pgq.event_template, pgq.retry_queue
    FROM PUBLIC, pgq_reader, pgq_writer, pgq_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE pgq.consumer, pgq.queue, pgq.tick, pgq.subscription TO pgq_admin;
GRANT SELECT ON TABLE pgq.consumer, pgq.queue, pgq.tick, pgq.subscription TO pgq_reader, PUBLIC;
GRANT SELECT ON TABLE pgq.event_template TO pgq_reader;
GRANT SELECT, INSERT, TRUNCATE ON TABLE pgq.event_template TO pgq_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE pgq.retry_queue TO pgq_admin;
