-- pgq._insert_event_tree(i_ids, i_leaves): PL/pgSQL source that runs i_leaves[k] when
-- q.queue_id = i_ids[k], as a balanced tree of IFs (O(log n) comparisons), and
-- i_leaves[n+1] for any other queue id. Used by pgq._refresh_insert_event_raw.
--
-- i_ids: queue ids in ascending order; i_leaves: one statement list per id plus the
-- fallback.
-- Result: PL/pgSQL statements.
CREATE OR REPLACE FUNCTION pgq._insert_event_tree(i_ids int[], i_leaves text[])
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
    n int := coalesce(cardinality(i_ids), 0);
    mid int;
    fallback text := i_leaves[n + 1];
BEGIN
    IF n = 0 THEN
        RETURN fallback;
    ELSIF n = 1 THEN
        RETURN 'IF q.queue_id = ' || i_ids[1] || E' THEN\n' || i_leaves[1]
            || E'\nELSE\n' || fallback || E'\nEND IF;';
    END IF;
    mid := n / 2;
    RETURN 'IF q.queue_id <= ' || i_ids[mid] || E' THEN\n'
        || pgq._insert_event_tree(i_ids[1:mid], i_leaves[1:mid] || fallback)
        || E'\nELSE\n'
        || pgq._insert_event_tree(i_ids[mid + 1:n], i_leaves[mid + 1:n] || fallback)
        || E'\nEND IF;';
END;
$fn$;
