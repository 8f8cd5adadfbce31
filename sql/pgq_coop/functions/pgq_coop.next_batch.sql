-- pgq_coop.next_batch(i_queue_name, i_consumer_name, i_subconsumer_name): the next
-- batch for a subconsumer (pgq_coop.next_batch_custom without minimums or takeover).
--
-- Result: the batch id, or NULL when there is nothing to do for now.
CREATE OR REPLACE FUNCTION pgq_coop.next_batch(
    i_queue_name text,
    i_consumer_name text,
    i_subconsumer_name text)
RETURNS bigint
LANGUAGE plpgsql
AS $fn$
BEGIN
    RETURN pgq_coop.next_batch_custom(i_queue_name, i_consumer_name, i_subconsumer_name,
                                      NULL, NULL, NULL, NULL);
END;
$fn$;

-- pgq_coop.next_batch(i_queue_name, i_consumer_name, i_subconsumer_name,
-- i_dead_interval): as above, taking over the batch of a subconsumer inactive for
-- longer than i_dead_interval. Result: the batch id or NULL.
CREATE OR REPLACE FUNCTION pgq_coop.next_batch(
    i_queue_name text,
    i_consumer_name text,
    i_subconsumer_name text,
    i_dead_interval interval)
RETURNS bigint
LANGUAGE plpgsql
AS $fn$
BEGIN
    RETURN pgq_coop.next_batch_custom(i_queue_name, i_consumer_name, i_subconsumer_name,
                                      NULL, NULL, NULL, i_dead_interval);
END;
$fn$;
