-- pgq._urlencode_row(keys, vals, cols): a row as urlencoded key=value pairs joined
-- with "&" (logutriga's payload): NULL values as the bare key, empty ones as "key=".
--
-- keys: the column names, already urlencoded; vals: the text values; cols: the
-- positions to include, in order.
-- Values made only of unreserved characters and spaces (most of them) are encoded
-- inline; others go through pgq._urlencode.
-- Result: the encoded row ("" when cols is empty).
CREATE OR REPLACE FUNCTION pgq._urlencode_row(keys text[], vals text[], cols int[])
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
        k := keys[c];
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
