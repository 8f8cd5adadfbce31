package pgtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var pg = NewShared().WithTemplate(func(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, "CREATE TABLE from_template (id int); INSERT INTO from_template VALUES (42)")
	return err
})

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

func queryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestSharedDatabaseComesFromTemplateAndIsPrivate(t *testing.T) {
	t.Parallel()
	a, b := pg.DB(t), pg.DB(t)
	if a.Name == b.Name {
		t.Fatalf("two tests got the same database %q", a.Name)
	}
	ca, cb := a.Conn(t), b.Conn(t)
	if got := queryString(t, ca, "SELECT id::text FROM from_template"); got != "42" {
		t.Fatalf("template row: got %q", got)
	}
	if _, err := ca.Exec(context.Background(), "INSERT INTO from_template VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, cb, "SELECT count(*)::text FROM from_template"); got != "1" {
		t.Fatalf("database b sees a's row: count %s", got)
	}
}

func TestServerSettings(t *testing.T) {
	t.Parallel()
	conn := pg.DB(t).Conn(t)
	for name, want := range map[string]string{
		"fsync":            "off",
		"listen_addresses": "",
		"data_checksums":   "on",
		"server_encoding":  "UTF8",
	} {
		if got := queryString(t, conn, "SELECT current_setting('"+name+"')"); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestServerRunsUnprivileged(t *testing.T) {
	t.Parallel()
	c := pg.Cluster(t)
	b, err := os.ReadFile(filepath.Join(c.DataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(line, "Uid:") {
			f := strings.Fields(line)
			if f[1] == "0" {
				t.Fatalf("postmaster runs as root: %s", line)
			}
			if uid, _, owned := c.Owner(); owned && f[1] != strconv.Itoa(uid) {
				t.Fatalf("postmaster uid %s, want %d", f[1], uid)
			}
		}
		if strings.HasPrefix(line, "Groups:") && os.Geteuid() == 0 {
			if g := strings.TrimSpace(strings.TrimPrefix(line, "Groups:")); g != "" {
				t.Fatalf("postmaster kept supplementary groups %q", g)
			}
		}
	}
}

func TestOwnClusterWithOptionsAndStandby(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	archive := filepath.Join(t.TempDir(), "unused")
	primary := NewCluster(t, WALLevel("logical"), Archive("test ! -f "+archive), Conf("max_wal_senders = 5"), TCP())
	conn, err := primary.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for name, want := range map[string]string{"wal_level": "logical", "archive_mode": "on", "max_wal_senders": "5", "listen_addresses": "127.0.0.1"} {
		if got := queryString(t, conn, "SELECT current_setting('"+name+"')"); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if primary.TCPAddr == "" {
		t.Fatal("TCP() gave no address")
	}
	tcp, err := pgx.Connect(ctx, "postgres://postgres@"+primary.TCPAddr+"/postgres?sslmode=disable")
	if err != nil {
		t.Fatalf("connect over TCP: %v", err)
	}
	tcp.Close(ctx)

	if _, err := conn.Exec(ctx, "CREATE TABLE t AS SELECT 1 AS x"); err != nil {
		t.Fatal(err)
	}
	standby := NewCluster(t, StandbyOf(primary))
	sconn, err := standby.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer sconn.Close(ctx)
	if got := queryString(t, sconn, "SELECT pg_is_in_recovery()::text"); got != "true" {
		t.Fatalf("standby not in recovery: %s", got)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool {
		var n int
		return sconn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n) == nil && n == 2
	})
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, sconn, "SELECT pg_is_in_recovery()::text"); got != "false" {
		t.Fatalf("promoted standby still in recovery")
	}
}

func TestRestartAndCrashRecovery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := NewCluster(t)
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE keep AS SELECT 7 AS v"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := c.Crash(); err != nil {
		t.Fatal(err)
	}
	if c.Running() {
		t.Fatal("Running after Crash")
	}
	if err := c.StartAgain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err = c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if got := queryString(t, conn, "SELECT v::text FROM keep"); got != "7" {
		t.Fatalf("after crash and restart: %q", got)
	}
}

func TestOrphanSweepStopsServerOfDeadTestProcess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := Start(ctx, Name("orphan"))
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() { _ = c.Destroy() })
	b, err := os.ReadFile(filepath.Join(c.DataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	// Pretend the cluster belongs to a test process that has died.
	if err := os.WriteFile(filepath.Join(c.Dir, ownerFile), []byte("999999999 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sweepOrphans(c.inst)
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Fatalf("orphan directory still there: %v", err)
	}
	waitFor(t, 20*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
	waitFor(t, 20*time.Second, func() bool { return !c.Running() })
}

func TestSweepKeepsLiveClusters(t *testing.T) {
	t.Parallel()
	c := pg.Cluster(t)
	sweepOrphans(c.inst)
	if !c.Running() {
		t.Fatal("sweep stopped a cluster whose owner is alive")
	}
}

func TestDBNamePart(t *testing.T) {
	for in, want := range map[string]string{
		"TestFoo":                "testfoo",
		"TestFoo/sub_case#01":    "testfoo_sub_case_01",
		"9lives":                 "t9lives",
		strings.Repeat("x", 100): strings.Repeat("x", 40),
		"Test/With Spaces--Dash": "test_with_spaces_dash",
	} {
		if got := dbNamePart(in); got != want {
			t.Errorf("dbNamePart(%q) = %q, want %q", in, got, want)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkClusterStart measures creating, starting and destroying one cluster (the
// initdb template is cached after the first run).
func BenchmarkClusterStart(b *testing.B) {
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		c, err := Start(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Destroy(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDatabaseFromTemplate measures the per-test cost of a fresh database.
func BenchmarkDatabaseFromTemplate(b *testing.B) {
	for i := 0; i < b.N; i++ {
		pg.DB(b)
	}
}

func TestBuildMakesARunnableBinaryOnce(t *testing.T) {
	t.Parallel()
	p := Build(t, "pgqd")
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if Build(t, "pgqd") != p {
		t.Fatal("second Build returned another path")
	}
	st2, _ := os.Stat(p)
	if !st2.ModTime().Equal(st.ModTime()) {
		t.Fatal("second Build rebuilt the binary")
	}
	out, err := exec.Command(p, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "pgqd ") {
		t.Fatalf("built binary --version: %q %v", out, err)
	}
}

func TestFromDataDirStartsAPreparedDataDirectory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := pg.Cluster(t)
	db := pg.DB(t)
	db.Exec(t, "CREATE TABLE copied AS SELECT 7 AS x")
	var prepared string
	c := NewCluster(t, Conf("work_mem = '7MB'"), FromDataDir(func(ctx context.Context, c *Cluster) error {
		prepared = c.DataDir
		if _, err := os.Stat(c.DataDir); !os.IsNotExist(err) {
			t.Errorf("data directory exists before prepare: %v", err)
		}
		return run(c.Command(ctx, "pg_basebackup", "-D", c.DataDir, "-X", "stream", "-c", "fast",
			"-h", src.SockDir, "-p", strconv.Itoa(src.Port), "-U", "postgres", "--no-sync"))
	}))
	if prepared != c.DataDir {
		t.Fatalf("prepare saw %q, cluster runs on %q", prepared, c.DataDir)
	}
	conn, err := pgx.Connect(ctx, c.ConnString(db.Name))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if got := queryString(t, conn, "SELECT x::text FROM copied"); got != "7" {
		t.Fatalf("copied row: %q", got)
	}
	if got := queryString(t, conn, "SELECT current_setting('work_mem')"); got != "7MB" {
		t.Fatalf("Conf not applied on a prepared directory: work_mem = %q", got)
	}
	if got := queryString(t, conn, "SELECT current_setting('unix_socket_directories')"); got != c.SockDir {
		t.Fatalf("server listens on %q, not its own socket directory %q", got, c.SockDir)
	}
}

var twoWays = pg.Template("pgtest_second_template", func(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, "CREATE TABLE second (v text); INSERT INTO second VALUES ('other template')")
	return err
})

func TestSecondTemplate(t *testing.T) {
	t.Parallel()
	a, b := twoWays.DB(t), twoWays.DB(t)
	if a.Name == b.Name {
		t.Fatal("same database twice")
	}
	if got := queryString(t, a.Conn(t), "SELECT v FROM second"); got != "other template" {
		t.Fatalf("got %q", got)
	}
	// The package's own template is untouched by the second one.
	var n int
	if err := pg.DB(t).Conn(t).QueryRow(context.Background(), "SELECT count(*) FROM pg_tables WHERE tablename = 'second'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("main template has table second: %d %v", n, err)
	}
}
