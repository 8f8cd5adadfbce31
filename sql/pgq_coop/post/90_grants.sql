-- Privileges, as in pgq_coop 3.4: version() for everyone, the rest for pgq_reader.
DO $grants$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig, p.proname::text AS name
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'pgq_coop'::regnamespace
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, pgq_reader, pgq_writer, pgq_admin', f.sig);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f.sig,
                       CASE WHEN f.name = 'version' THEN 'PUBLIC' ELSE 'pgq_reader' END);
    END LOOP;
END
$grants$;
