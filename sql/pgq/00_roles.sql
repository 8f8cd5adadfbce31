-- pgq roles: pgq_reader (consumers), pgq_writer (producers) and pgq_admin (ticker,
-- maintenance, queue administration; member of the other two). NOLOGIN group roles,
-- created only when missing, so a re-run or an upgrade leaves existing roles and their
-- members alone. pgq.upgrade_schema() does the same for callers that use it.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_reader') THEN
        CREATE ROLE pgq_reader;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_writer') THEN
        CREATE ROLE pgq_writer;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_admin') THEN
        CREATE ROLE pgq_admin IN ROLE pgq_reader, pgq_writer;
    END IF;
END
$roles$;
