-- pgq._json_row(names, types, vals, cols): a row as a JSON object (jsontriga's
-- payload): int2/int4/int8 as numbers, bool as true/false, date/timestamp/timestamptz in
-- ISO 8601 (XSD) form, every other type as the JSON string of its text form, NULL as
-- null.
--
-- names, types, vals: column names, type oids and text values; cols: the positions to
-- include, in order.
-- Result: the JSON text, without spaces between elements.
CREATE OR REPLACE FUNCTION pgq._json_row(names text[], types oid[], vals text[], cols int[])
RETURNS text
LANGUAGE sql STABLE
AS $fn$
    SELECT '{' || coalesce(string_agg(to_json(names[c])::text || ':' ||
               CASE WHEN vals[c] IS NULL THEN 'null'
                    WHEN types[c] IN (20, 21, 23) THEN vals[c]
                    WHEN types[c] = 16 THEN CASE WHEN vals[c] = 't' THEN 'true' ELSE 'false' END
                    WHEN types[c] = 1082 THEN to_json(vals[c]::date)::text
                    WHEN types[c] = 1114 THEN to_json(vals[c]::timestamp)::text
                    WHEN types[c] = 1184 THEN to_json(vals[c]::timestamptz)::text
                    ELSE to_json(vals[c])::text
               END, ',' ORDER BY o), '') || '}'
      FROM unnest(cols) WITH ORDINALITY AS u(c, o);
$fn$;
