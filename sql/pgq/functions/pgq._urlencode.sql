-- pgq._urlencode(val): encode a value for an application/x-www-form-urlencoded payload
-- the way PgQ's triggers do: bytes [0-9A-Za-z_.-] as they are, space as "+", every
-- other byte (of the database encoding) as %xx with lower-case hex digits.
--
-- Result: the encoded text; NULL for NULL.
CREATE OR REPLACE FUNCTION pgq._urlencode(val text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT
AS $fn$
BEGIN
    IF val ~ '^[-0-9A-Za-z_. ]*$' THEN
        RETURN translate(val, ' ', '+');
    END IF;
    RETURN string_agg(CASE WHEN c ~ '^[-0-9A-Za-z_.]$' THEN c
                           WHEN c = ' ' THEN '+'
                           ELSE regexp_replace(encode(convert_to(c, pg_catalog.getdatabaseencoding()), 'hex'),
                                               '(..)', '%\1', 'g')
                      END, '' ORDER BY i)
      FROM regexp_split_to_table(val, '') WITH ORDINALITY AS s(c, i);
END;
$fn$;
