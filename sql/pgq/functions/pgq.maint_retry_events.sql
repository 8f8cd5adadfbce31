-- pgq.maint_retry_events(): move up to 10 due events from the retry queue back into
-- their queues (through pgq.insert_event_raw, keeping ev_id, ev_time, owner and retry
-- count). One mover at a time; producers are not blocked. Call until it returns 0.
--
-- Result: the number of events moved.
CREATE OR REPLACE FUNCTION pgq.maint_retry_events()
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    ev record;
    moved integer := 0;
BEGIN
    LOCK TABLE pgq.retry_queue IN SHARE UPDATE EXCLUSIVE MODE;
    FOR ev IN
        SELECT q.queue_name, r.ev_id, r.ev_time, r.ev_owner, r.ev_retry, r.ev_type, r.ev_data,
               r.ev_extra1, r.ev_extra2, r.ev_extra3, r.ev_extra4
          FROM pgq.retry_queue r JOIN pgq.queue q ON q.queue_id = r.ev_queue
         WHERE r.ev_retry_after <= now()
         ORDER BY r.ev_retry_after
         LIMIT 10
    LOOP
        PERFORM pgq.insert_event_raw(ev.queue_name, ev.ev_id, ev.ev_time, ev.ev_owner, ev.ev_retry,
                                     ev.ev_type, ev.ev_data, ev.ev_extra1, ev.ev_extra2,
                                     ev.ev_extra3, ev.ev_extra4);
        DELETE FROM pgq.retry_queue WHERE ev_owner = ev.ev_owner AND ev_id = ev.ev_id;
        moved := moved + 1;
    END LOOP;
    RETURN moved;
END;
$fn$;
