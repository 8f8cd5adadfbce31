package schema

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

var pg = pgtest.NewShared()

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

// fixture is a small schema in two versions: v2 adds a column and changes a function.
func fixture(version string) Schema {
	fsys := fstest.MapFS{
		"demo/VERSION": {Data: []byte(version + "\n")},
		"demo/00_tables.sql": {Data: []byte(`
CREATE SCHEMA IF NOT EXISTS demo;
CREATE TABLE IF NOT EXISTS demo.item (id int PRIMARY KEY, name text);`)},
		"demo/functions/demo.answer.sql": {Data: []byte(`
CREATE OR REPLACE FUNCTION demo.answer() RETURNS int LANGUAGE sql AS $$ SELECT 41 $$;`)},
	}
	if version >= "2" {
		fsys["demo/05_upgrade.sql"] = &fstest.MapFile{Data: []byte(`ALTER TABLE demo.item ADD COLUMN IF NOT EXISTS note text;`)}
		fsys["demo/functions/demo.answer.sql"] = &fstest.MapFile{Data: []byte(`
CREATE OR REPLACE FUNCTION demo.answer() RETURNS int LANGUAGE sql AS $$ SELECT 42 $$;`)}
	}
	s, err := Load(fsys, "demo")
	if err != nil {
		panic(err)
	}
	return s
}

func install(t *testing.T, conn *pgx.Conn, s ...Schema) ([]Result, error) {
	t.Helper()
	return Install(context.Background(), conn, s...)
}

func scalar[T any](t *testing.T, conn *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func TestLoadOrdersFilesAndReadsVersion(t *testing.T) {
	s := fixture("2")
	var names []string
	for _, f := range s.Files {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "00_tables.sql,05_upgrade.sql,functions/demo.answer.sql" {
		t.Fatalf("file order %s", got)
	}
	if s.Version != "2" {
		t.Fatalf("version %q", s.Version)
	}
	if _, err := Load(fstest.MapFS{"x/a.sql": {Data: []byte("select 1")}}, "x"); err == nil {
		t.Fatal("schema without VERSION loaded")
	}
	if _, err := Load(fstest.MapFS{"x/VERSION": {Data: []byte("1")}}, "x"); err == nil {
		t.Fatal("schema without SQL files loaded")
	}
	if fixture("1").Checksum() == fixture("2").Checksum() {
		t.Fatal("different SQL, same checksum")
	}
}

func TestEmbeddedMetaSchemaLoads(t *testing.T) {
	s, err := Embedded("skytools")
	if err != nil {
		t.Fatal(err)
	}
	if s.Version == "" || len(s.Files) == 0 {
		t.Fatalf("empty meta schema: %+v", s)
	}
}

func TestInstallRecordsVersionAndSecondRunChangesNothing(t *testing.T) {
	t.Parallel()
	conn := pg.DB(t).Conn(t)
	res, err := install(t, conn, fixture("1"))
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Changed || res[0].From != "" || res[0].To != "1" {
		t.Fatalf("first install result %+v", res[0])
	}
	if v, ok, err := Installed(context.Background(), conn, "demo"); err != nil || !ok || v != "1" {
		t.Fatalf("Installed = %q %v %v", v, ok, err)
	}
	xmin := scalar[string](t, conn, "SELECT xmin::text FROM pg_proc WHERE proname = 'answer'")
	res, err = install(t, conn, fixture("1"))
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Changed {
		t.Fatalf("second install changed something: %v", res[0])
	}
	if got := scalar[string](t, conn, "SELECT xmin::text FROM pg_proc WHERE proname = 'answer'"); got != xmin {
		t.Fatalf("function rewritten by a no-op install: xmin %s -> %s", xmin, got)
	}
}

func TestUpgradeKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := pg.DB(t).Conn(t)
	if _, err := install(t, conn, fixture("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO demo.item VALUES (1, 'kept')"); err != nil {
		t.Fatal(err)
	}
	res, err := install(t, conn, fixture("2"))
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Changed || res[0].From != "1" || res[0].To != "2" {
		t.Fatalf("upgrade result %+v", res[0])
	}
	if got := scalar[string](t, conn, "SELECT name FROM demo.item WHERE id = 1"); got != "kept" {
		t.Fatalf("row after upgrade: %q", got)
	}
	if got := scalar[int](t, conn, "SELECT demo.answer()"); got != 42 {
		t.Fatalf("function not upgraded: %d", got)
	}
	if _, err := conn.Exec(ctx, "UPDATE demo.item SET note = 'new column'"); err != nil {
		t.Fatalf("upgrade did not add column: %v", err)
	}
}

func TestRefusesDowngrade(t *testing.T) {
	t.Parallel()
	conn := pg.DB(t).Conn(t)
	if _, err := install(t, conn, fixture("2")); err != nil {
		t.Fatal(err)
	}
	_, err := install(t, conn, fixture("1"))
	if !errors.Is(err, ErrDowngrade) {
		t.Fatalf("downgrade: got %v", err)
	}
	if got := scalar[int](t, conn, "SELECT demo.answer()"); got != 42 {
		t.Fatalf("refused downgrade still changed the function: %d", got)
	}
}

func TestFailureRollsBackEverythingAndNamesTheFile(t *testing.T) {
	t.Parallel()
	conn := pg.DB(t).Conn(t)
	s := fixture("1")
	s.Files = append(s.Files, File{Name: "99_broken.sql", SQL: "CREATE TABLE demo.x (id nosuchtype)"})
	_, err := install(t, conn, s)
	if err == nil || !strings.Contains(err.Error(), "99_broken.sql") || !strings.Contains(err.Error(), "schema demo") {
		t.Fatalf("error does not name schema and file: %v", err)
	}
	if scalar[bool](t, conn, "SELECT to_regnamespace('demo') IS NOT NULL OR to_regnamespace('skytools') IS NOT NULL") {
		t.Fatal("failed install left schemas behind")
	}
}

func TestRefusesSchemaOwnedByExtension(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := pg.DB(t).Conn(t)
	pgtest.RequireExtension(t, conn, "pgq")
	if _, err := conn.Exec(ctx, "CREATE EXTENSION pgq"); err != nil {
		t.Fatal(err)
	}
	before := scalar[string](t, conn, "SELECT pgq.version()")
	s := Schema{Name: "pgq", Version: "3.5.9", Files: []File{{Name: "f.sql", SQL: "CREATE OR REPLACE FUNCTION pgq.version() RETURNS text LANGUAGE sql AS $$ SELECT 'overwritten' $$"}}}
	_, err := install(t, conn, s)
	if !errors.Is(err, ErrExtensionOwned) || !strings.Contains(err.Error(), "DROP EXTENSION pgq") {
		t.Fatalf("got %v", err)
	}
	if got := scalar[string](t, conn, "SELECT pgq.version()"); got != before {
		t.Fatalf("extension function changed: %q -> %q", before, got)
	}
}

func TestExplainsMissingPrivileges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pg.DB(t)
	super := db.Conn(t)
	role := "plain_" + db.Name
	if _, err := super.Exec(ctx, "CREATE ROLE "+role+" LOGIN; REVOKE CREATE ON DATABASE "+db.Name+" FROM PUBLIC"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = super.Exec(context.Background(), "DROP OWNED BY "+role+"; DROP ROLE "+role)
	})
	cfg, err := pgx.ParseConfig(db.ConnString)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = role
	plain, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(ctx)

	_, err = install(t, plain, fixture("1"))
	if !errors.Is(err, ErrPrivilege) || !strings.Contains(err.Error(), "GRANT CREATE ON DATABASE") {
		t.Fatalf("no CREATE on database: got %v", err)
	}

	// Objects exist but belong to someone else: replacing them needs ownership.
	if _, err := install(t, super, fixture("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := super.Exec(ctx, "GRANT CREATE ON DATABASE "+db.Name+" TO "+role+"; GRANT CREATE, USAGE ON SCHEMA demo, skytools TO "+role+"; GRANT ALL ON skytools.schema_version TO "+role); err != nil {
		t.Fatal(err)
	}
	_, err = install(t, plain, fixture("2"))
	if !errors.Is(err, ErrPrivilege) || !strings.Contains(err.Error(), "owner") {
		t.Fatalf("not owner: got %v", err)
	}
}

func TestConcurrentInstallsSerialize(t *testing.T) {
	t.Parallel()
	db := pg.DB(t)
	conns := []*pgx.Conn{db.Conn(t), db.Conn(t), db.Conn(t)}
	var wg sync.WaitGroup
	results := make([][]Result, len(conns))
	errs := make([]error, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = Install(context.Background(), c, fixture("2"))
		}()
	}
	wg.Wait()
	changed := 0
	for i := range conns {
		if errs[i] != nil {
			t.Fatalf("installer %d: %v", i, errs[i])
		}
		if results[i][0].Changed {
			changed++
		}
	}
	if changed != 1 {
		t.Fatalf("%d of %d concurrent installers changed the schema, want exactly 1", changed, len(conns))
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"3.5", "3.5", 0}, {"3.5.9", "3.5.10", -1}, {"3.6", "3.5.99", 1}, {"3.5", "3.5.0", 0},
		{"3.5.1", "3.5", 1}, {"1", "2", -1}, {"3.5rc1", "3.5rc2", -1},
	} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
