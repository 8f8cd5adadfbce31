-- pgq.quote_fqname(i_name): quote a possibly schema-qualified name for use in SQL.
--
-- i_name: "schema.name" or "name" (split at the first dot; no dot means schema public).
-- Result: both parts passed through quote_ident() and joined with a dot.
CREATE OR REPLACE FUNCTION pgq.quote_fqname(i_name text)
RETURNS text
LANGUAGE plpgsql STRICT IMMUTABLE
AS $fn$
DECLARE
    dot int := strpos(i_name, '.');
BEGIN
    IF dot = 0 THEN
        RETURN 'public.' || quote_ident(i_name);
    END IF;
    RETURN quote_ident(substr(i_name, 1, dot - 1)) || '.' || quote_ident(substr(i_name, dot + 1));
END;
$fn$;
