// Package sql holds the SQL source of every schema skytools installs, one directory per
// schema (sql/pgq, sql/pgq_coop, ...). Each directory has a VERSION file and .sql files
// that the schema package applies in lexical order of their paths; name them so that
// order is right ("00_tables.sql", "functions/pgq.ticker.sql", "90_grants.sql").
// Every file must be safe to run again: the same files install a schema and upgrade it.
//
// The "skytools" schema is the installer's own: it records which version of each schema
// is installed (skytools.schema_version).
package sql

import "embed"

// FS is the embedded SQL tree.
//
//go:embed skytools pgq pgq_coop
var FS embed.FS
