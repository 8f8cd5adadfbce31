-- pgq._row_fields(row_text): split the text form of a row (record_out: "(a,"b c",)")
-- into the text forms of its columns, as the triggers need them.
--
-- Unquoted empty fields are NULL; quoted fields lose their quotes and doubled " and \.
-- Result: text[] with one element per (not dropped) column, in column order.
CREATE OR REPLACE FUNCTION pgq._row_fields(row_text text)
RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT
AS $fn$
    SELECT coalesce(array_agg(CASE WHEN m[1] = '' THEN NULL
                                   WHEN left(m[1], 1) = '"'
                                   THEN regexp_replace(substr(m[1], 2, length(m[1]) - 2), '(["\\])\1', '\1', 'g')
                                   ELSE m[1]
                              END ORDER BY n), '{}')
      FROM regexp_matches(substr(row_text, 2, length(row_text) - 2) || ',',
                          '("(?:[^"\\]|""|\\.)*"|[^,"]*),', 'g') WITH ORDINALITY AS r(m, n);
$fn$;
