-- pgq.set_queue_config(x_queue_name, x_param_name, x_param_value): change a queue
-- setting.
--
-- x_param_name: the pgq.queue column without its "queue_" prefix: ticker_max_count, ticker_max_lag, ticker_idle_period, ticker_paused,
--   rotation_period or external_ticker; anything else raises
--   'cannot change parameter "<name>s"' (PgQ 3.5's text, stray "s" included).
-- x_param_value: the new value as text, cast to the column's type.
-- Errors: "Invalid NULL value" for a NULL queue or parameter name, "No such event queue".
-- Result: 1.
CREATE OR REPLACE FUNCTION pgq.set_queue_config(
    x_queue_name    text,
    x_param_name    text,
    x_param_value   text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    col text;
BEGIN
    IF x_queue_name IS NULL OR x_param_name IS NULL THEN
        RAISE EXCEPTION 'Invalid NULL value';
    END IF;
    PERFORM 1 FROM pgq.queue WHERE queue_name = x_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No such event queue';
    END IF;
    col := 'queue_' || x_param_name;
    IF col NOT IN ('queue_ticker_max_count', 'queue_ticker_max_lag', 'queue_ticker_idle_period',
                   'queue_ticker_paused', 'queue_rotation_period', 'queue_external_ticker') THEN
        RAISE EXCEPTION 'cannot change parameter "%s"', x_param_name;
    END IF;
    EXECUTE format('UPDATE pgq.queue SET %I = %L WHERE queue_name = $1', col, x_param_value)
      USING x_queue_name;
    RETURN 1;
END;
$fn$;
