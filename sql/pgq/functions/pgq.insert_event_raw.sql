-- pgq.insert_event_raw(queue_name, ev_id, ev_time, ev_owner, ev_retry, ev_type, ev_data,
-- ev_extra1, ev_extra2, ev_extra3, ev_extra4): the low-level insert every producer path
-- ends in (PgQ 3.5 has it in C; this is the same contract in PL/pgSQL).
--
-- Always takes nextval() of the queue's event sequence, even when ev_id is given, so
-- the ticker sees activity. Writes into the queue's current event table; ev_txid comes
-- from the column default, txid_current().
-- ev_id: NULL for the sequence value. ev_time: NULL for now().
-- ev_owner, ev_retry: set for events coming back from the retry queue, else NULL.
-- Errors: "Queue name must not be NULL", "No such queue", "Insert into queue disallowed"
--   (queue_disable_insert, unless session_replication_role is replica),
--   "Queue '<name>' allows max <n> events from one TX" (queue_per_tx_limit).
-- Result: the event id.
--
-- This is the generic form, installed first; pgq._refresh_insert_event_raw() replaces
-- it with the same logic plus static (plan-cached) inserts for every existing queue.
CREATE OR REPLACE FUNCTION pgq.insert_event_raw(
    queue_name text, ev_id bigint, ev_time timestamptz,
    ev_owner integer, ev_retry integer, ev_type text, ev_data text,
    ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
RETURNS bigint
LANGUAGE plpgsql
AS $fn$
#variable_conflict use_column
DECLARE
    q record;
    id bigint;
    n int;
    counter text;
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'Queue name must not be NULL';
    END IF;
    SELECT queue_id, queue_data_pfx, queue_cur_table, queue_disable_insert, queue_per_tx_limit,
           nextval(queue_event_seq::regclass) AS seq
      INTO q
      FROM pgq.queue WHERE queue_name = $1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No such queue';
    END IF;
    IF q.queue_disable_insert AND current_setting('session_replication_role') <> 'replica' THEN
        RAISE EXCEPTION 'Insert into queue disallowed';
    END IF;
    IF q.queue_per_tx_limit IS NOT NULL THEN
        -- A transaction-local setting counts this transaction's inserts into the queue;
        -- it disappears at commit or rollback like the C version's per-xid counter.
        counter := 'pgq.tx_events_' || q.queue_id;
        n := coalesce(nullif(current_setting(counter, true), ''), '0')::int + 1;
        IF n > q.queue_per_tx_limit THEN
            RAISE EXCEPTION 'Queue ''%'' allows max % events from one TX', $1, q.queue_per_tx_limit;
        END IF;
        PERFORM set_config(counter, n::text, true);
    END IF;
    id := coalesce($2, q.seq);
    EXECUTE 'INSERT INTO ' || q.queue_data_pfx || '_' || q.queue_cur_table
         || ' (ev_id, ev_time, ev_owner, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)'
         || ' VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)'
      USING id, coalesce($3, now()), $4, $5, $6, $7, $8, $9, $10, $11;
    RETURN id;
END;
$fn$;
