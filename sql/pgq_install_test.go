package sql_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/skytools-go/skytools/pkg/pgtest"
	"github.com/skytools-go/skytools/pkg/schema"
)

func pgqSchemas(t testing.TB) []schema.Schema {
	t.Helper()
	s, err := schema.PgQ()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func install(t testing.TB, conn *pgx.Conn, s ...schema.Schema) []schema.Result {
	t.Helper()
	res, err := schema.Install(context.Background(), conn, s...)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	return res
}

// fillQueue creates a queue with a consumer mid-stream: events consumed, events ticked
// but not consumed, events not ticked yet, a retry pending, an open batch.
func fillQueue(t testing.TB, c *pgx.Conn) {
	t.Helper()
	q(t, c, "SELECT pgq.create_queue('keep')")
	fastTicks(t, c, "keep")
	q(t, c, "SELECT pgq.register_consumer('keep', 'reader')")
	q(t, c, "SELECT pgq.register_consumer('keep', 'other')")
	q(t, c, "SELECT pgq.insert_event('keep', 'first', '1')")
	if evs := drain(t, c, "keep", "reader"); len(evs) != 1 {
		t.Fatalf("first batch %v", evs)
	}
	q(t, c, "SELECT pgq.insert_event('keep', 'second', '2')")
	q(t, c, "SELECT pgq.ticker('keep')")
	q(t, c, "SELECT pgq.insert_event('keep', 'third', '3')")
	q(t, c, "SELECT pgq.event_retry_raw('keep', 'reader', now() - interval '1 minute', NULL, now(), 0, 'retried', 'r', NULL, NULL, NULL, NULL)")
	q(t, c, "SELECT pgq.next_batch('keep', 'other')")
}

// checkQueue checks that everything fillQueue left is still there and works.
func checkQueue(t testing.TB, c *pgx.Conn) {
	t.Helper()
	if n := val[int64](t, c, "SELECT count(*) FROM pgq.subscription"); n != 2 {
		t.Fatalf("subscriptions %d", n)
	}
	if b := val[*int64](t, c, "SELECT current_batch FROM pgq.get_consumer_info('keep', 'other')"); b == nil {
		t.Fatal("open batch lost")
	}
	q(t, c, "SELECT pgq.maint_retry_events()")
	seen := map[string]bool{}
	for _, e := range drain(t, c, "keep", "reader") {
		seen[*e.Type] = true
	}
	if !seen["second"] || !seen["third"] || !seen["retried"] || seen["first"] {
		t.Fatalf("events after install: %v", seen)
	}
}

// TestInstallIsIdempotent: a second install changes nothing at all.
func TestInstallIsIdempotent(t *testing.T) {
	t.Parallel()
	c := pg.DB(t).Conn(t)
	fillQueue(t, c)
	before := catalogLines(t, c, "pgq")
	for _, r := range install(t, c, pgqSchemas(t)...) {
		if r.Changed {
			t.Fatalf("second install changed %s", r)
		}
	}
	if after := catalogLines(t, c, "pgq"); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Fatal("catalog changed by a no-op install")
	}
	checkQueue(t, c)
}

// TestUpgradeKeepsQueuesEventsAndSubscriptions installs a changed version over a busy
// install: every file runs again; queues, events, retries and batches survive.
func TestUpgradeKeepsQueuesEventsAndSubscriptions(t *testing.T) {
	t.Parallel()
	c := pg.DB(t).Conn(t)
	fillQueue(t, c)
	s := pgqSchemas(t)
	s[0].Version = "3.5.101"
	s[0].Files = append(s[0].Files, schema.File{Name: "zz_extra.sql", SQL: "COMMENT ON SCHEMA pgq IS 'upgraded'"})
	res := install(t, c, s...)
	if !res[0].Changed || res[0].From != "3.5.100" || res[0].To != "3.5.101" || res[1].Changed {
		t.Fatalf("results %v", res)
	}
	if got := val[string](t, c, "SELECT obj_description('pgq'::regnamespace)"); got != "upgraded" {
		t.Fatalf("new file not applied: %q", got)
	}
	checkQueue(t, c)
	// a downgrade back to the embedded version is refused
	if _, err := schema.Install(context.Background(), c, pgqSchemas(t)...); !errors.Is(err, schema.ErrDowngrade) {
		t.Fatalf("downgrade: %v", err)
	}
}

// TestReinstallAfterDropSchema: DROP SCHEMA pgq CASCADE and install again gives a
// working pgq: the installer trusts its record only while the schema exists.
func TestReinstallAfterDropSchema(t *testing.T) {
	t.Parallel()
	c := pg.DB(t).Conn(t)
	fillQueue(t, c)
	q(t, c, "DROP SCHEMA pgq_coop CASCADE")
	q(t, c, "DROP SCHEMA pgq CASCADE")
	for _, r := range install(t, c, pgqSchemas(t)...) {
		if !r.Changed || r.From != "" {
			t.Fatalf("reinstall: %s", r)
		}
	}
	q(t, c, "SELECT pgq.create_queue('again')")
	fastTicks(t, c, "again")
	q(t, c, "SELECT pgq.register_consumer('again', 'c')")
	q(t, c, "SELECT pgq.insert_event('again', 'x', 'y')")
	if evs := drain(t, c, "again", "c"); len(evs) != 1 {
		t.Fatalf("events %v", evs)
	}
}

// originalSQL returns the original PgQ 3.5 install script without the statements that
// only work inside CREATE EXTENSION, to install it as plain SQL the way PgQ's
// structure/install.sql did.
func originalSQL(t *testing.T, c *pgx.Conn) string {
	t.Helper()
	dir := val[string](t, c, "SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")
	b, err := os.ReadFile(filepath.Join(dir, "extension", "pgq--3.5.sql"))
	if err != nil {
		t.Fatalf("original PgQ SQL: %v", err)
	}
	s := regexp.MustCompile(`(?m)^SELECT pg_catalog.pg_extension_config_dump\(.*$`).ReplaceAllString(string(b), "")
	return regexp.MustCompile(`(?m)^\\.*$`).ReplaceAllString(s, "")
}

// TestInstallOverOriginalNonExtensionPgQ installs ours over PgQ 3.5 installed as plain
// SQL (C functions included): queues and events are kept, the C functions are replaced
// by ours, and the queue keeps working.
func TestInstallOverOriginalNonExtensionPgQ(t *testing.T) {
	t.Parallel()
	db := pg.DB(t)
	c := db.Conn(t)
	pgtestRequirePgQ(t, c)
	// A database that never had ours: no schemas and no record of them.
	q(t, c, "DROP SCHEMA pgq_coop CASCADE")
	q(t, c, "DROP SCHEMA pgq CASCADE")
	q(t, c, "DELETE FROM skytools.schema_version WHERE schema_name IN ('pgq', 'pgq_coop')")
	if _, err := c.Exec(context.Background(), originalSQL(t, c)); err != nil {
		t.Fatalf("original PgQ as plain SQL: %v", err)
	}
	if v := val[*string](t, c, "SELECT pgq.version()"); v != nil {
		t.Fatalf("original non-extension version() = %q, want NULL", *v)
	}
	fillQueue(t, c)
	res := install(t, c, pgqSchemas(t)...)
	if !res[0].Changed || !res[0].Unrecorded {
		t.Fatalf("result %s", res[0])
	}
	if n := val[int64](t, c, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'pgq'::regnamespace AND prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')"); n != 0 {
		t.Fatalf("%d C functions left", n)
	}
	if v := val[string](t, c, "SELECT pgq.version()"); v != "3.5.100" {
		t.Fatalf("version %q", v)
	}
	checkQueue(t, c)
	// the old queue's triggers now run our PL/pgSQL
	q(t, c, "CREATE TABLE tr (id int PRIMARY KEY, v text)")
	q(t, c, "CREATE TRIGGER t AFTER INSERT ON tr FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('keep')")
	q(t, c, "INSERT INTO tr VALUES (1, 'a b')")
	evs := drain(t, c, "keep", "reader")
	if len(evs) != 1 || *evs[0].Data != "id=1&v=a+b" {
		t.Fatalf("trigger events %v", evs)
	}
}

func pgtestRequirePgQ(t *testing.T, c *pgx.Conn) {
	t.Helper()
	var ok bool
	if err := c.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgq')").Scan(&ok); err != nil {
		t.Fatal(err)
	}
	if !ok {
		extDB(t) // skips or fails the same way
	}
}

// TestInstallRefusesExtension: the installer will not touch the original extension.
func TestInstallRefusesExtension(t *testing.T) {
	t.Parallel()
	c := extDB(t).Conn(t)
	_, err := schema.Install(context.Background(), c, pgqSchemas(t)...)
	if !errors.Is(err, schema.ErrExtensionOwned) {
		t.Fatalf("install over the extension: %v", err)
	}
	if !strings.Contains(err.Error(), "extension pgq") {
		t.Fatalf("message does not name the extension: %v", err)
	}
	if v := val[string](t, c, "SELECT pgq.version()"); v != "3.5" {
		t.Fatalf("extension changed: version %q", v)
	}
}

// TestInstallAsPlainRole installs as a role that is not a superuser and has only CREATE
// on the database (as on managed PostgreSQL; the pgq roles exist already), then runs a
// queue through producer, ticker and consumer roles.
func TestInstallAsPlainRole(t *testing.T) {
	t.Parallel()
	c := pg.Cluster(t)
	db := c.DB(t) // from template1: no pgq yet
	admin := db.Conn(t)
	owner := "inst_" + db.Name
	q(t, admin, "CREATE ROLE "+pgx.Identifier{owner}.Sanitize()+" LOGIN")
	q(t, admin, "GRANT CREATE ON DATABASE "+pgx.Identifier{db.Name}.Sanitize()+" TO "+pgx.Identifier{owner}.Sanitize())
	t.Cleanup(func() {
		a, err := c.Connect(context.Background(), "postgres")
		if err != nil {
			return
		}
		defer a.Close(context.Background())
		_, _ = a.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{db.Name}.Sanitize()+" WITH (FORCE)")
		_, _ = a.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{owner}.Sanitize())
	})
	conn, err := pgx.Connect(context.Background(), strings.Replace(db.ConnString, "user=postgres", "user="+owner, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if val[bool](t, conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") {
		t.Fatal("installer is a superuser")
	}
	install(t, conn, pgqSchemas(t)...)
	if got := val[string](t, conn, "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = 'pgq'"); got != owner {
		t.Fatalf("pgq owned by %s", got)
	}
	// the installing role runs everything through the pgq roles
	q(t, admin, "GRANT pgq_admin TO "+pgx.Identifier{owner}.Sanitize())
	q(t, conn, "SET ROLE pgq_admin")
	q(t, conn, "SELECT pgq.create_queue('plain')")
	q(t, conn, "SELECT pgq.set_queue_config('plain', 'ticker_max_lag', '0')")
	q(t, conn, "SELECT pgq.set_queue_config('plain', 'ticker_idle_period', '0')")
	q(t, conn, "SET ROLE pgq_reader")
	q(t, conn, "SELECT pgq.register_consumer('plain', 'c')")
	q(t, conn, "SET ROLE pgq_writer")
	q(t, conn, "SELECT pgq.insert_event('plain', 'x', 'y')")
	q(t, conn, "SET ROLE pgq_admin")
	q(t, conn, "SELECT pgq.ticker()")
	q(t, conn, "SET ROLE pgq_reader")
	b, evs := consume(t, conn, "plain", "c")
	if b == 0 || len(evs) != 1 || *evs[0].Data != "y" {
		t.Fatalf("batch %d events %v", b, evs)
	}
	q(t, conn, "RESET ROLE")
	q(t, conn, "SELECT pgq.maint_rotate_tables_step2()")
}

// TestOriginalPgqNodeRunsOnOurs installs the original pgq_node 3.5 SQL (Debian
// postgresql-15-pgq-node) as plain SQL on top of our pgq and runs a root node: the
// cascading layer Londiste uses works unchanged.
func TestOriginalPgqNodeRunsOnOurs(t *testing.T) {
	t.Parallel()
	c := pg.DB(t).Conn(t)
	pgtest.RequireExtension(t, c, "pgq_node")
	dir := val[string](t, c, "SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")
	b, err := os.ReadFile(filepath.Join(dir, "extension", "pgq_node--3.5.sql"))
	if err != nil {
		t.Fatal(err)
	}
	script := regexp.MustCompile(`(?m)^SELECT pg_catalog.pg_extension_config_dump\(.*$`).ReplaceAllString(string(b), "")
	if _, err := c.Exec(context.Background(), script); err != nil {
		t.Fatalf("pgq_node as plain SQL: %v", err)
	}
	for sql, want := range map[string]string{
		"SELECT ret_code || ' ' || ret_note FROM pgq_node.register_location('nq', 'n1', 'dbname=n1', false)": "200 Location registered",
		"SELECT ret_code || ' ' || ret_note FROM pgq_node.register_location('nq', 'n2', 'dbname=n2', false)": "200 Location registered",
	} {
		if got := val[string](t, c, sql); got != want {
			t.Fatalf("%s: %s", sql, got)
		}
	}
	if got := val[int32](t, c, "SELECT ret_code FROM pgq_node.create_node('nq', 'root', 'n1', 'n1_worker', NULL, NULL, NULL)"); got != 200 {
		t.Fatalf("create_node: %d", got)
	}
	if got := val[int32](t, c, "SELECT ret_code FROM pgq_node.register_subscriber('nq', 'n2', 'n2_worker', NULL)"); got != 200 {
		t.Fatalf("register_subscriber: %d", got)
	}
	if got := val[string](t, c, "SELECT node_type || ' ' || node_name FROM pgq_node.get_node_info('nq')"); got != "root n1" {
		t.Fatalf("node info %q", got)
	}
	if n := val[int64](t, c, "SELECT count(*) FROM pgq.maint_operations() WHERE func_name = 'pgq_node.maint_watermark' AND func_arg = 'nq'"); n != 1 {
		t.Fatalf("maint_operations lists pgq_node.maint_watermark %d times", n)
	}
	fastTicks(t, c, "nq")
	q(t, c, "SELECT pgq.insert_event('nq', 'data', 'x')")
	seen := map[string]bool{}
	for _, e := range drain(t, c, "nq", "n2_worker") {
		seen[*e.Type] = true
	}
	if !seen["data"] {
		t.Fatalf("subscriber saw %v", seen)
	}
	q(t, c, "SELECT pgq_node.maint_watermark('nq')")
}
