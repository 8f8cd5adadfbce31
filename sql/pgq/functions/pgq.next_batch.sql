-- pgq.next_batch(i_queue_name, i_consumer_name): open the next batch or return the
-- open one.
--
-- Result: the batch id; NULL when there is no new tick (sleep and try again). A batch
-- may hold no events and must still be finished.
CREATE OR REPLACE FUNCTION pgq.next_batch(
    in i_queue_name text,
    in i_consumer_name text)
RETURNS int8
AS $fn$
BEGIN
    RETURN (SELECT f.batch_id FROM pgq.next_batch_custom(i_queue_name, i_consumer_name, NULL, NULL, NULL) f);
END;
$fn$ LANGUAGE plpgsql;
