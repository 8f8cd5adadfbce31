-- skytools.schema_version: which version of each skytools-managed schema is installed
-- in this database, written by the installer (pkg/schema) in the same transaction as the
-- schema itself. checksum identifies the exact SQL applied, so a re-run of the same
-- installer changes nothing.
CREATE SCHEMA IF NOT EXISTS skytools;

CREATE TABLE IF NOT EXISTS skytools.schema_version (
    schema_name  text        PRIMARY KEY,
    version      text        NOT NULL,
    checksum     text        NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT now(),
    upgraded_at  timestamptz NOT NULL DEFAULT now(),
    installed_by text        NOT NULL DEFAULT current_user
);

COMMENT ON TABLE skytools.schema_version IS
    'Versions of the schemas installed by skytools (pgqd install); maintained by the installer';

GRANT USAGE ON SCHEMA skytools TO PUBLIC;
GRANT SELECT ON skytools.schema_version TO PUBLIC;
