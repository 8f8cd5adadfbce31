-- pgq._table_meta(i_relid): read the triggers' description of a table from the catalog
-- into transaction-local settings: pgq.tg_<relid>_n (column names), _t (type oids),
-- _p (primary key columns in index order), _a (all column positions), _k (column names
-- urlencoded), _f (a format() string "key=%s&..." for rows of plain values), _m
-- ("true" when the table has _pgq_ev_* magic columns), _n/_t/_p/_a/_k as text arrays,
-- and _s (the statement's start time).
--
-- pgq._trigger_event reads the settings, and calls this again for a later statement or
-- when the row at hand has another number of columns (added or dropped since), so the
-- catalog is read once per statement and table instead of for every row.
-- Result: true.
CREATE OR REPLACE FUNCTION pgq._table_meta(i_relid oid)
RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
    prefix text := 'pgq.tg_' || i_relid;
    names text[];
    types oid[];
    pkeys text[];
BEGIN
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
            set_config(prefix || '_a', ARRAY(SELECT generate_series(1, cardinality(names)))::text, true),
            set_config(prefix || '_k', ARRAY(SELECT pgq._urlencode(n) FROM unnest(names) WITH ORDINALITY AS u(n, o)
                                             ORDER BY o)::text, true),
            set_config(prefix || '_f', (SELECT coalesce(string_agg(replace(pgq._urlencode(n), '%', '%%') || '=%s', '&' ORDER BY o), '')
                                          FROM unnest(names) WITH ORDINALITY AS u(n, o)), true),
            set_config(prefix || '_m', (EXISTS (SELECT 1 FROM unnest(names) n WHERE n LIKE '\_pgq\_ev\_%'))::text, true),
            set_config(prefix || '_s', statement_timestamp()::text, true);
    RETURN true;
END;
$fn$;
