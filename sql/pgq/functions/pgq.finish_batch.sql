-- pgq.finish_batch(x_batch_id): close a batch: the consumer's position moves to the
-- batch's end tick. After this the batch id is dead.
--
-- Result: 1; 0 with "WARNING: finish_batch: batch <id> not found" when it is not open.
CREATE OR REPLACE FUNCTION pgq.finish_batch(
    x_batch_id bigint)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    UPDATE pgq.subscription
       SET sub_active = now(), sub_last_tick = sub_next_tick, sub_next_tick = NULL, sub_batch = NULL
     WHERE sub_batch = x_batch_id;
    IF NOT FOUND THEN
        RAISE WARNING 'finish_batch: batch % not found', x_batch_id;
        RETURN 0;
    END IF;
    RETURN 1;
END;
$fn$;
