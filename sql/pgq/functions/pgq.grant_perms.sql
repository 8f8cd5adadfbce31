-- pgq.grant_perms(x_queue_name): apply the standard privileges to a queue's objects.
--
-- The event tables (parent and children) get event_template's privileges; both
-- sequences are readable by PUBLIC and the event sequence usable by pgq_admin.
-- x_queue_name: the queue. Error "Queue not found" if there is none.
-- Result: 1.
CREATE OR REPLACE FUNCTION pgq.grant_perms(x_queue_name text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    q record;
    tbl text;
    i int;
BEGIN
    SELECT queue_data_pfx, queue_ntables, queue_event_seq, queue_tick_seq INTO q
      FROM pgq.queue WHERE queue_name = x_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Queue not found';
    END IF;
    FOR i IN -1 .. q.queue_ntables - 1 LOOP
        tbl := q.queue_data_pfx || CASE WHEN i < 0 THEN '' ELSE '_' || i END;
        PERFORM pgq._grant_perms_from('pgq', 'event_template',
                                      split_part(tbl, '.', 1), split_part(tbl, '.', 2));
    END LOOP;
    EXECUTE 'GRANT SELECT ON ' || q.queue_tick_seq || ' TO PUBLIC';
    EXECUTE 'GRANT SELECT ON ' || q.queue_event_seq || ' TO PUBLIC';
    EXECUTE 'GRANT USAGE ON ' || q.queue_event_seq || ' TO pgq_admin';
    RETURN 1;
END;
$fn$;
