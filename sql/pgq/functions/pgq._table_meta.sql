-- pgq._table_meta(i_relid, i_ncols): make the triggers' description of a table
-- available in transaction-local settings pgq.tg_<relid>_n (column names), _t (type
-- oids) and _p (primary key columns in index order), as text arrays.
--
-- The catalog is read once per statement and table: the settings carry the statement's
-- start time and are re-read for a later statement, or when the number of columns
-- differs from i_ncols (the row at hand has columns added or dropped since; -1 skips
-- that check). This takes two catalog queries off every row of a bulk change.
-- Result: true when the catalog was read.
CREATE OR REPLACE FUNCTION pgq._table_meta(i_relid oid, i_ncols int)
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
    prefix text := 'pgq.tg_' || i_relid;
    stamp text := statement_timestamp()::text;
    names text[];
    types oid[];
    pkeys text[];
BEGIN
    IF current_setting(prefix || '_s', true) IS NOT DISTINCT FROM stamp THEN
        IF i_ncols < 0 OR cardinality(current_setting(prefix || '_n', true)::text[]) = i_ncols THEN
            RETURN false;
        END IF;
    END IF;
    SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}'),
           coalesce(array_agg(a.atttypid ORDER BY a.attnum), '{}'),
           (SELECT coalesce(array_agg(pa.attname::text ORDER BY k.ord), '{}')
              FROM pg_catalog.pg_index x
             CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
              JOIN pg_catalog.pg_attribute pa ON pa.attrelid = x.indrelid AND pa.attnum = k.attnum
             WHERE x.indrelid = i_relid AND x.indisprimary)
      INTO names, types, pkeys
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = i_relid AND a.attnum > 0 AND NOT a.attisdropped;
    PERFORM set_config(prefix || '_n', names::text, true),
            set_config(prefix || '_t', types::text, true),
            set_config(prefix || '_p', pkeys::text, true),
            set_config(prefix || '_s', stamp, true);
    RETURN true;
END;
$fn$;
