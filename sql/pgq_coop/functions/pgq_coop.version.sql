-- pgq_coop.version(): the version of this pgq_coop implementation (sql/pgq_coop/VERSION).
--
-- Result: text starting with "3.".
CREATE OR REPLACE FUNCTION pgq_coop.version()
RETURNS text
LANGUAGE plpgsql
AS $fn$
BEGIN
    RETURN '3.4.100';
END;
$fn$;
