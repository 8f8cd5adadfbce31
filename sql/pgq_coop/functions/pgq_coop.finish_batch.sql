-- pgq_coop.finish_batch(i_batch_id): close a subconsumer's batch; the subconsumer keeps
-- no position (the main consumer already moved on).
--
-- Result: 1; 0 with "WARNING: coop_finish_batch: batch <id> not found" when unknown.
CREATE OR REPLACE FUNCTION pgq_coop.finish_batch(
    i_batch_id bigint)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    UPDATE pgq.subscription
       SET sub_active = now(), sub_last_tick = NULL, sub_next_tick = NULL, sub_batch = NULL
     WHERE sub_batch = i_batch_id;
    IF NOT FOUND THEN
        RAISE WARNING 'coop_finish_batch: batch % not found', i_batch_id;
        RETURN 0;
    END IF;
    RETURN 1;
END;
$fn$;
