package pgtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Shared is one cluster for all tests of a package, started on first use, with a
// template database from which each test gets its own database.
type Shared struct {
	opts     []Option
	setup    func(ctx context.Context, conn *pgx.Conn) error
	mu       sync.Mutex
	cluster  *Cluster
	err      error
	seq      atomic.Int64
	template string
}

// NewShared describes the package's cluster; nothing starts until a test needs it.
func NewShared(opts ...Option) *Shared {
	return &Shared{opts: opts}
}

// WithTemplate runs setup once in the template database (for example to install the
// pgq schema), so that every test database starts with it.
func (s *Shared) WithTemplate(setup func(ctx context.Context, conn *pgx.Conn) error) *Shared {
	s.setup = setup
	return s
}

// Main runs the package's tests and then stops the cluster. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }
//
// A package with several Shared clusters runs m.Run itself and then Closes each.
func (s *Shared) Main(m *testing.M) int {
	code := m.Run()
	if err := s.Close(); err != nil {
		fmt.Printf("pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Close stops and removes the cluster if it was started.
func (s *Shared) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cluster == nil {
		return nil
	}
	err := s.cluster.Destroy()
	s.cluster = nil
	return err
}

// Cluster returns the shared cluster, starting it on first use.
func (s *Shared) Cluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := s.get()
	if err != nil {
		skipOrFail(t, err)
	}
	return c
}

func (s *Shared) get() (*Cluster, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cluster != nil || s.err != nil {
		return s.cluster, s.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, s.opts...)
	if err != nil {
		s.err = err
		return nil, err
	}
	s.template = "template1"
	if s.setup != nil {
		if err := c.prepareTemplate(ctx, "pgtest_template", s.setup); err != nil {
			_ = c.Destroy()
			s.err = err
			return nil, err
		}
		s.template = "pgtest_template"
	}
	s.cluster = c
	return c, nil
}

func (c *Cluster) prepareTemplate(ctx context.Context, name string, setup func(context.Context, *pgx.Conn) error) error {
	admin, err := c.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" IS_TEMPLATE true"); err != nil {
		return fmt.Errorf("create template database: %w", err)
	}
	conn, err := c.Connect(ctx, name)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := setup(ctx, conn); err != nil {
		return fmt.Errorf("template setup: %w", err)
	}
	return nil
}

// Database is a database of its own for one test.
type Database struct {
	Name       string
	ConnString string
	Cluster    *Cluster
}

// DB creates a fresh database for the test, cloned from the template, and drops it
// when the test ends. On failure the server log written during the test is printed.
func (s *Shared) DB(t testing.TB) *Database {
	t.Helper()
	c := s.Cluster(t)
	name := fmt.Sprintf("%s_%d", dbNamePart(t.Name()), s.seq.Add(1))
	return c.newDatabase(t, name, s.template)
}

// DB creates a fresh database in a cluster of the test's own (see Shared.DB).
func (c *Cluster) DB(t testing.TB) *Database {
	t.Helper()
	return c.newDatabase(t, fmt.Sprintf("%s_%d", dbNamePart(t.Name()), c.seq.Add(1)), "template1")
}

func (c *Cluster) newDatabase(t testing.TB, name, template string) *Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logFrom := c.LogSize()
	admin, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer admin.Close(ctx)
	q := fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s STRATEGY file_copy",
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{template}.Sanitize())
	if c.Major < 15 {
		q = strings.TrimSuffix(q, " STRATEGY file_copy")
	}
	if _, err := admin.Exec(ctx, q); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	db := &Database{Name: name, ConnString: c.ConnString(name), Cluster: c}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log during %s:\n%s", t.Name(), c.LogTail(logFrom, 200))
		}
		if !c.Running() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		admin, err := c.Connect(ctx, "postgres")
		if err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return db
}

// dbNamePart turns a test name into a short, valid database name prefix.
func dbNamePart(testName string) string {
	s := strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, strings.ToLower(testName))
	for strings.Contains(s, "__") {
		s = strings.ReplaceAll(s, "__", "_")
	}
	s = strings.Trim(s, "_")
	if len(s) > 40 {
		s = s[len(s)-40:]
	}
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		s = "t" + s
	}
	return s
}

// Conn opens a connection to the database, closed when the test ends.
func (d *Database) Conn(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.ConnString)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", d.Name, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// Pool opens a connection pool to the database, closed when the test ends.
func (d *Database) Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, d.ConnString)
	if err != nil {
		t.Fatalf("pgtest: pool for %s: %v", d.Name, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Exec runs statements (simple protocol, several allowed) and fails the test on error.
func (d *Database) Exec(t testing.TB, sql string) {
	t.Helper()
	conn := d.Conn(t)
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("pgtest: %s: %v", firstLine(sql), err)
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// Template is another template database of a Shared cluster, for tests that need
// databases prepared two ways (our PgQ and the original extension, say).
type Template struct {
	s     *Shared
	name  string
	setup func(ctx context.Context, conn *pgx.Conn) error
	once  sync.Once
	err   error
}

// Template adds a template database called name to the shared cluster; setup runs in
// it once, on first use. A setup that reports a missing extension
// (ErrMissingExtension) skips the tests that use it, except under PGTEST_REQUIRE=1.
func (s *Shared) Template(name string, setup func(ctx context.Context, conn *pgx.Conn) error) *Template {
	return &Template{s: s, name: name, setup: setup}
}

// DB creates a fresh database from the template for the test, as Shared.DB does.
func (tm *Template) DB(t testing.TB) *Database {
	t.Helper()
	c := tm.s.Cluster(t)
	tm.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		tm.err = c.prepareTemplate(ctx, tm.name, tm.setup)
	})
	if tm.err != nil {
		skipOrFail(t, fmt.Errorf("template %s: %w", tm.name, tm.err))
	}
	name := fmt.Sprintf("%s_%d", dbNamePart(t.Name()), tm.s.seq.Add(1))
	return c.newDatabase(t, name, tm.name)
}
