-- pgq.tune_storage(i_queue_name): set the storage options of a queue's event tables:
-- fillfactor 100 and no autovacuum (they are insert-only and emptied by TRUNCATE).
--
-- Result: 1, or 0 when the queue does not exist.
CREATE OR REPLACE FUNCTION pgq.tune_storage(i_queue_name text)
RETURNS integer
LANGUAGE plpgsql STRICT
AS $fn$
DECLARE
    q record;
    i int;
BEGIN
    SELECT queue_data_pfx, queue_ntables INTO q FROM pgq.queue WHERE queue_name = i_queue_name;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    FOR i IN 0 .. q.queue_ntables - 1 LOOP
        EXECUTE 'ALTER TABLE ' || q.queue_data_pfx || '_' || i
             || ' SET (fillfactor = 100, autovacuum_enabled = off, toast.autovacuum_enabled = off)';
    END LOOP;
    RETURN 1;
END;
$fn$;
