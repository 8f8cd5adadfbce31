-- pgq.maint_rotate_tables_step1(i_queue_name): switch the queue to its next event
-- table when the rotation period has passed.
--
-- Skipped when the previous switch is not settled (step2 NULL), when the slowest
-- consumer may still need the table that would be emptied (its position tick's xmin is
-- not past step2), or when that table is locked (e.g. by pg_dump). Otherwise the oldest
-- table is truncated and becomes current, step1 = this transaction's txid, step2 NULL,
-- and ticks older than the previous switch are deleted.
-- Errors: "queue <q> maint failure: step1=<n>, current=<txid>" (txids went backwards),
--   "queue <q> maint failure: tick <id> not found".
-- Result: 0 (never asks to be called again).
CREATE OR REPLACE FUNCTION pgq.maint_rotate_tables_step1(i_queue_name text)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    q record;
    slowest bigint;
    slowest_xmin bigint;
    next_table int;
    tbl text;
BEGIN
    SELECT queue_id, queue_data_pfx, queue_ntables, queue_cur_table, queue_switch_step1, queue_switch_step2
      INTO q
      FROM pgq.queue
     WHERE queue_name = i_queue_name
       AND queue_rotation_period IS NOT NULL
       AND queue_switch_step2 IS NOT NULL
       AND queue_switch_time + queue_rotation_period < now()
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    IF txid_current() < q.queue_switch_step1 THEN
        RAISE EXCEPTION 'queue % maint failure: step1=%, current=%',
            i_queue_name, q.queue_switch_step1, txid_current();
    END IF;

    SELECT min(sub_last_tick) INTO slowest FROM pgq.subscription WHERE sub_queue = q.queue_id;
    IF slowest IS NOT NULL THEN
        SELECT txid_snapshot_xmin(tick_snapshot) INTO slowest_xmin
          FROM pgq.tick WHERE tick_queue = q.queue_id AND tick_id = slowest;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'queue % maint failure: tick % not found', i_queue_name, slowest;
        END IF;
        IF slowest_xmin <= q.queue_switch_step2 THEN
            RETURN 0;
        END IF;
    END IF;

    next_table := (q.queue_cur_table + 1) % q.queue_ntables;
    tbl := q.queue_data_pfx || '_' || next_table;
    BEGIN
        EXECUTE 'LOCK TABLE ' || tbl || ' NOWAIT';
    EXCEPTION WHEN lock_not_available THEN
        RETURN 0;
    END;
    EXECUTE 'TRUNCATE ' || tbl;

    UPDATE pgq.queue
       SET queue_cur_table = next_table, queue_switch_time = now(),
           queue_switch_step1 = txid_current(), queue_switch_step2 = NULL
     WHERE queue_id = q.queue_id;
    DELETE FROM pgq.tick
     WHERE tick_queue = q.queue_id AND txid_snapshot_xmin(tick_snapshot) < q.queue_switch_step2;
    RETURN 0;
END;
$fn$;
