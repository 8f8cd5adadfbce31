-- pgq.maint_rotate_tables_step2(): settle table switches made by step1: set
-- queue_switch_step2 = txid_current() where it is NULL. Must run in a later transaction
-- than step1.
--
-- Unlike PgQ 3.5, a queue's switch is settled only when no other session of this
-- database still holds a snapshot older than the switch (pg_stat_activity.backend_xmin
-- not past queue_switch_step1). A REPEATABLE READ or SERIALIZABLE producer whose
-- snapshot predates the switch still sees the old current table and writes there,
-- possibly with a txid above step2; consumers that then read only the new table lost
-- its events. Short statements that overlap the switch (a ticker pass, say) are waited
-- for, up to two seconds; while an older snapshot remains, step2 stays NULL, batches
-- read both tables, and the next maintenance round tries again.
-- Result: 0.
CREATE OR REPLACE FUNCTION pgq.maint_rotate_tables_step2()
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    pending bigint;
    xmins bigint[];
    ref bigint;
    oldest bigint;
    deadline timestamptz := clock_timestamp() + interval '2 seconds';
BEGIN
    SELECT max(queue_switch_step1) INTO pending FROM pgq.queue WHERE queue_switch_step2 IS NULL;
    IF pending IS NULL THEN
        RETURN 0;
    END IF;
    LOOP
        -- 32-bit xmins of the other sessions of this database; then a 64-bit reference
        -- taken after them, so each xmin is at most ref and extends to 64 bits.
        PERFORM pg_stat_clear_snapshot();
        SELECT array_agg(backend_xmin::text::bigint) INTO xmins
          FROM pg_catalog.pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL;
        ref := txid_snapshot_xmax(txid_current_snapshot());
        SELECT min(ref - ((ref - x) & 4294967295)) INTO oldest FROM unnest(xmins) x;
        EXIT WHEN oldest IS NULL OR oldest > pending OR clock_timestamp() > deadline;
        PERFORM pg_sleep(0.05);
    END LOOP;

    UPDATE pgq.queue
       SET queue_switch_step2 = txid_current()
     WHERE queue_switch_step2 IS NULL
       AND (oldest IS NULL OR oldest > queue_switch_step1);
    RETURN 0;
END;
$fn$;
