// Package schema installs and upgrades the SQL schemas that skytools ships (pgq,
// pgq_coop, ...) into a database, from the SQL embedded in the binary.
//
// One Install call runs in one transaction under a transaction-level advisory lock, so
// two installers never interleave and a failure leaves the database as it was. Each
// schema's SQL files are written to be re-runnable, so the same files install a fresh
// schema and upgrade an older one without touching user data (queues, events,
// subscriptions). The version and a checksum of the SQL applied are recorded in
// skytools.schema_version; when they already match, Install changes nothing at all.
//
// Install refuses to touch a schema that belongs to an extension (for example the
// original C pgq installed with CREATE EXTENSION): replacing its functions would
// corrupt the extension. It refuses to downgrade, and explains missing privileges.
package schema

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	skysql "github.com/skytools-go/skytools/sql"
)

// Errors callers can test with errors.Is.
var (
	ErrExtensionOwned = errors.New("schema belongs to an extension")
	ErrDowngrade      = errors.New("installed version is newer")
	ErrPrivilege      = errors.New("insufficient privilege")
)

// advisoryLockKey serializes installers; the value spells "skyinst" in ASCII.
const advisoryLockKey int64 = 0x736b79696e7374

// metaSchema is the installer's own schema, applied before any other.
const metaSchema = "skytools"

// File is one SQL file of a schema.
type File struct {
	Name string // path inside the schema directory
	SQL  string
}

// Schema is the SQL source of one database schema.
type Schema struct {
	Name    string
	Version string
	Files   []File
}

// Checksum identifies the exact SQL of the schema.
func (s Schema) Checksum() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", s.Name, s.Version)
	for _, f := range s.Files {
		fmt.Fprintf(h, "%s\x00%d\x00%s", f.Name, len(f.SQL), f.SQL)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Load reads schema name from the directory of that name in fsys: the VERSION file and
// every .sql file below it, in lexical order of their paths.
func Load(fsys fs.FS, name string) (Schema, error) {
	v, err := fs.ReadFile(fsys, path.Join(name, "VERSION"))
	if err != nil {
		return Schema{}, fmt.Errorf("schema %s: %w", name, err)
	}
	s := Schema{Name: name, Version: strings.TrimSpace(string(v))}
	if s.Version == "" {
		return Schema{}, fmt.Errorf("schema %s: empty VERSION", name)
	}
	err = fs.WalkDir(fsys, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".sql") {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		s.Files = append(s.Files, File{Name: strings.TrimPrefix(p, name+"/"), SQL: string(b)})
		return nil
	})
	if err != nil {
		return Schema{}, fmt.Errorf("schema %s: %w", name, err)
	}
	sort.Slice(s.Files, func(i, j int) bool { return s.Files[i].Name < s.Files[j].Name })
	if len(s.Files) == 0 {
		return Schema{}, fmt.Errorf("schema %s: no .sql files", name)
	}
	return s, nil
}

// Embedded loads a schema shipped in this binary.
func Embedded(name string) (Schema, error) {
	return Load(skysql.FS, name)
}

// Result says what Install did to one schema.
type Result struct {
	Schema  string
	From    string // version before; "" if the schema was not there
	To      string
	Changed bool
	// Unrecorded is true when the schema existed without a record of its version
	// (installed by hand, or by an older tool).
	Unrecorded bool
}

func (r Result) String() string {
	switch {
	case !r.Changed:
		return fmt.Sprintf("%s %s: already installed, nothing to do", r.Schema, r.To)
	case r.Unrecorded:
		return fmt.Sprintf("%s: upgraded an unrecorded installation to %s", r.Schema, r.To)
	case r.From == "":
		return fmt.Sprintf("%s %s: installed", r.Schema, r.To)
	case r.From == r.To:
		return fmt.Sprintf("%s %s: reinstalled (SQL changed)", r.Schema, r.To)
	default:
		return fmt.Sprintf("%s: upgraded %s -> %s", r.Schema, r.From, r.To)
	}
}

// Install installs or upgrades the schemas, in the order given, in one transaction.
// Results are for the schemas given (the installer's own schema is not reported).
func Install(ctx context.Context, conn *pgx.Conn, schemas ...Schema) ([]Result, error) {
	meta, err := Embedded(metaSchema)
	if err != nil {
		return nil, err
	}
	db := conn.Config().Database
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("install into database %s: %w", db, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	for _, q := range []string{
		"SET LOCAL check_function_bodies = off",
		"SET LOCAL client_min_messages = warning",
		fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", advisoryLockKey),
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("install into database %s: %s: %w", db, q, err)
		}
	}
	if err := checkCreatePrivilege(ctx, tx, append([]Schema{meta}, schemas...)); err != nil {
		return nil, err
	}
	if _, err := apply(ctx, tx, meta); err != nil {
		return nil, err
	}
	results := make([]Result, 0, len(schemas))
	for _, s := range schemas {
		r, err := apply(ctx, tx, s)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("install into database %s: commit: %w", db, err)
	}
	return results, nil
}

// checkCreatePrivilege fails early, with the GRANT to run, when a schema must be
// created and the role may not create schemas in this database.
func checkCreatePrivilege(ctx context.Context, tx pgx.Tx, schemas []Schema) error {
	var missing []string
	for _, s := range schemas {
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", s.Name).Scan(&exists); err != nil {
			return fmt.Errorf("schema %s: %w", s.Name, err)
		}
		if !exists {
			missing = append(missing, s.Name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var ok bool
	var role, db string
	err := tx.QueryRow(ctx, "SELECT has_database_privilege(current_database(), 'CREATE'), current_user, current_database()").Scan(&ok, &role, &db)
	if err != nil {
		return fmt.Errorf("check CREATE privilege: %w", err)
	}
	if !ok {
		return fmt.Errorf("%w: role %q may not create schema %s in database %q: run GRANT CREATE ON DATABASE %s TO %s as its owner",
			ErrPrivilege, role, strings.Join(missing, ", "), db, pgx.Identifier{db}.Sanitize(), pgx.Identifier{role}.Sanitize())
	}
	return nil
}

// apply brings one schema to s.Version inside tx.
func apply(ctx context.Context, tx pgx.Tx, s Schema) (Result, error) {
	r := Result{Schema: s.Name, To: s.Version}
	if err := checkNotExtension(ctx, tx, s.Name); err != nil {
		return r, err
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", s.Name).Scan(&exists); err != nil {
		return r, fmt.Errorf("schema %s: %w", s.Name, err)
	}
	var recVersion, recChecksum string
	recorded := false
	if exists {
		var err error
		recVersion, recChecksum, recorded, err = recordedVersion(ctx, tx, s.Name)
		if err != nil {
			return r, err
		}
		r.From = recVersion
		r.Unrecorded = !recorded
	}
	if recorded {
		if compareVersions(recVersion, s.Version) > 0 {
			return r, fmt.Errorf("%w: schema %s is at version %s, this installer has %s; use the newer skytools",
				ErrDowngrade, s.Name, recVersion, s.Version)
		}
		if recVersion == s.Version && recChecksum == s.Checksum() {
			return r, nil
		}
	}
	for _, f := range s.Files {
		if _, err := tx.Exec(ctx, f.SQL); err != nil {
			return r, fileError(s, f, err)
		}
	}
	const upsert = `INSERT INTO skytools.schema_version (schema_name, version, checksum)
VALUES ($1, $2, $3)
ON CONFLICT (schema_name) DO UPDATE
   SET version = excluded.version, checksum = excluded.checksum,
       upgraded_at = now(), installed_by = current_user`
	if _, err := tx.Exec(ctx, upsert, s.Name, s.Version, s.Checksum()); err != nil {
		return r, fmt.Errorf("schema %s: record version: %w", s.Name, err)
	}
	r.Changed = true
	return r, nil
}

// checkNotExtension refuses a schema that, or any function or table of which, belongs
// to an extension.
func checkNotExtension(ctx context.Context, tx pgx.Tx, name string) error {
	const q = `
SELECT e.extname, e.extversion
  FROM pg_namespace n
  JOIN pg_depend d ON d.deptype = 'e'
                  AND ((d.classid = 'pg_namespace'::regclass AND d.objid = n.oid)
                    OR (d.classid = 'pg_proc'::regclass AND d.objid IN (SELECT oid FROM pg_proc WHERE pronamespace = n.oid))
                    OR (d.classid = 'pg_class'::regclass AND d.objid IN (SELECT oid FROM pg_class WHERE relnamespace = n.oid)))
  JOIN pg_extension e ON e.oid = d.refobjid
 WHERE n.nspname = $1
 LIMIT 1`
	var ext, ver string
	err := tx.QueryRow(ctx, q, name).Scan(&ext, &ver)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("schema %s: check extension ownership: %w", name, err)
	}
	return fmt.Errorf("%w: schema %s is part of extension %s %s; skytools will not overwrite it. "+
		"Keep using the extension (our daemons work with it), or move to skytools' SQL: "+
		"drain the queues, DROP EXTENSION %s CASCADE (this deletes its queues and events), then install again",
		ErrExtensionOwned, name, ext, ver, ext)
}

func recordedVersion(ctx context.Context, tx pgx.Tx, name string) (version, checksum string, ok bool, err error) {
	var hasTable bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('skytools.schema_version') IS NOT NULL").Scan(&hasTable); err != nil {
		return "", "", false, fmt.Errorf("schema %s: %w", name, err)
	}
	if !hasTable {
		return "", "", false, nil
	}
	err = tx.QueryRow(ctx, "SELECT version, checksum FROM skytools.schema_version WHERE schema_name = $1", name).Scan(&version, &checksum)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("schema %s: read recorded version: %w", name, err)
	}
	return version, checksum, true, nil
}

// fileError names the schema and file that failed and, for a privilege error, what
// the installing role lacks.
func fileError(s Schema, f File, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		return fmt.Errorf("%w: schema %s, %s: %s: install as the owner of the existing %s objects or a superuser "+
			"(creating the pgq roles also needs CREATEROLE)", ErrPrivilege, s.Name, f.Name, pgErr.Message, s.Name)
	}
	return fmt.Errorf("schema %s, %s: %w", s.Name, f.Name, err)
}

// Installed returns the recorded version of a schema, ok false when none is recorded.
func Installed(ctx context.Context, conn *pgx.Conn, name string) (version string, ok bool, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return "", false, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	version, _, ok, err = recordedVersion(ctx, tx, name)
	return version, ok, err
}

// compareVersions compares dotted numeric versions ("3.5.10" > "3.5.9"); non-numeric
// parts compare as strings.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		x, y := "0", "0"
		if i < len(as) {
			x = as[i]
		}
		if i < len(bs) {
			y = bs[i]
		}
		xi, xerr := strconv.Atoi(x)
		yi, yerr := strconv.Atoi(y)
		switch {
		case xerr == nil && yerr == nil && xi != yi:
			if xi < yi {
				return -1
			}
			return 1
		case (xerr != nil || yerr != nil) && x != y:
			return strings.Compare(x, y)
		}
	}
	return 0
}
