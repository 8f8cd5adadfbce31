-- pgq.insert_event(queue_name, ev_type, ev_data): insert an event into a queue
-- (insert_event with NULL extras).
--
-- A plain SQL function (PgQ's is PL/pgSQL): the planner inlines it into the calling
-- query, so a call costs one function call less.
-- Result: the event id.
CREATE OR REPLACE FUNCTION pgq.insert_event(queue_name text, ev_type text, ev_data text)
RETURNS bigint
LANGUAGE sql
AS $fn$
    SELECT pgq.insert_event($1, $2, $3, NULL, NULL, NULL, NULL);
$fn$;

-- pgq.insert_event(queue_name, ev_type, ev_data, ev_extra1..ev_extra4): insert an event
-- into a queue, in the caller's transaction. The triggers call exactly this function.
--
-- Result: the event id. Errors: those of pgq.insert_event_raw().
CREATE OR REPLACE FUNCTION pgq.insert_event(
    queue_name text, ev_type text, ev_data text,
    ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    RETURN pgq.insert_event_raw($1, NULL, now(), NULL, NULL, $2, $3, $4, $5, $6, $7);
END;
$fn$;
