-- pgq._urlencode_row(names, vals, cols): a row as urlencoded key=value pairs joined
-- with "&" (logutriga's payload): NULL values as the bare key, empty ones as "key=".
--
-- names, vals: column names and text values; cols: the positions to include, in order.
-- Result: the encoded row ("" when cols is empty).
CREATE OR REPLACE FUNCTION pgq._urlencode_row(names text[], vals text[], cols int[])
RETURNS text
LANGUAGE sql IMMUTABLE
AS $fn$
    SELECT coalesce(string_agg(pgq._urlencode(names[c])
                               || coalesce('=' || pgq._urlencode(vals[c]), ''), '&' ORDER BY o), '')
      FROM unnest(cols) WITH ORDINALITY AS u(c, o);
$fn$;
