-- pgq.current_event_table(x_queue_name): the event table producers write to now, for
-- bulk loading with COPY or INSERT. Valid for the current transaction only (rotation may
-- switch tables between transactions).
--
-- Errors: "Event queue not found"; "Writing to queue disabled" when insert is disabled
-- and session_replication_role is not replica.
-- Result: the table name, e.g. "pgq.event_2_0".
CREATE OR REPLACE FUNCTION pgq.current_event_table(x_queue_name text)
RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
    q record;
BEGIN
    SELECT queue_data_pfx, queue_cur_table, queue_disable_insert INTO q
      FROM pgq.queue WHERE queue_name = x_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Event queue not found';
    END IF;
    IF q.queue_disable_insert AND current_setting('session_replication_role') <> 'replica' THEN
        RAISE EXCEPTION 'Writing to queue disabled';
    END IF;
    RETURN q.queue_data_pfx || '_' || q.queue_cur_table;
END;
$fn$;
