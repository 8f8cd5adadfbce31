-- pgq._urlencode_row(names, vals, cols): a row as urlencoded key=value pairs joined
-- with "&" (logutriga's payload): NULL values as the bare key, empty ones as "key=".
--
-- names, vals: column names and text values; cols: the positions to include, in order.
-- Values made only of unreserved characters and spaces (most of them) are encoded
-- inline; others go through pgq._urlencode.
-- Result: the encoded row ("" when cols is empty).
CREATE OR REPLACE FUNCTION pgq._urlencode_row(names text[], vals text[], cols int[])
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
    out text := '';
    c int;
    k text;
    v text;
BEGIN
    FOREACH c IN ARRAY cols LOOP
        k := names[c];
        IF k !~ '^[-.0-9A-Za-z_ ]*$' THEN
            k := pgq._urlencode(k);
        ELSIF strpos(k, ' ') > 0 THEN
            k := translate(k, ' ', '+');
        END IF;
        v := vals[c];
        IF v IS NULL THEN
            out := out || '&' || k;
            CONTINUE;
        END IF;
        IF v !~ '^[-.0-9A-Za-z_ ]*$' THEN
            v := pgq._urlencode(v);
        ELSIF strpos(v, ' ') > 0 THEN
            v := translate(v, ' ', '+');
        END IF;
        out := out || '&' || k || '=' || v;
    END LOOP;
    RETURN substr(out, 2);
END;
$fn$;
