-- pgq.version(): the version of this PgQ implementation.
--
-- Result: text, our version (sql/pgq/VERSION), "3.5.<n>" with n >= 100, so it starts
-- with "3." as PgQ 3.x tools expect and compares newer than any original 3.5.x. It is
-- returned for every install (the original returns NULL when installed without
-- CREATE EXTENSION, which pgqd then ignores).
CREATE OR REPLACE FUNCTION pgq.version()
RETURNS text
LANGUAGE plpgsql
AS $fn$
BEGIN
    RETURN '3.5.100';
END;
$fn$;
