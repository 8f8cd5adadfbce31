package walmgr_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// fixture is a primary whose WAL is archived by the walmgrd binary into a repository
// of its own. Every walmgrd command runs as the server's user, as it would in
// production, so that the repository's files all belong to that user.
type fixture struct {
	t       *testing.T
	ctx     context.Context
	bin     string
	dir     string // config files and the repository; readable by the server user
	repo    string
	cfgPath string
	primary *pgtest.Cluster
	conn    *pgx.Conn
}

// newFixture starts a primary with archive_mode on and walmgrd as archive_command,
// writes the config (extra lines appended) and runs walmgrd setup.
func newFixture(t *testing.T, extra ...string) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), bin: pgtest.Build(t, "walmgrd")}
	dir, err := os.MkdirTemp("", "walmgrd-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f.dir, f.repo, f.cfgPath = dir, filepath.Join(dir, "repo"), filepath.Join(dir, "master.toml")
	f.primary = pgtest.NewCluster(t, pgtest.Name("walmgr"), pgtest.WALLevel("replica"),
		pgtest.Archive(f.bin+" -c "+f.cfgPath+" archive %p %f"), pgtest.Conf("max_wal_senders = 5"))
	f.own(dir)
	f.writeConfig(f.cfgPath, f.primary, extra...)
	out := f.mustRun(f.primary, "setup")
	if !strings.Contains(out, "no restart needed") {
		t.Fatalf("setup on a server with archive_mode on: %s", out)
	}
	f.conn = f.connect(f.primary)
	return f
}

// own hands a directory to the server's user.
func (f *fixture) own(dir string) {
	f.t.Helper()
	if uid, gid, ok := f.primary.Owner(); ok {
		if err := os.Chown(dir, uid, gid); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fixture) writeConfig(path string, c *pgtest.Cluster, extra ...string) {
	f.t.Helper()
	lines := []string{
		fmt.Sprintf("repository = %q", f.repo),
		fmt.Sprintf("pgdata = %q", c.DataDir),
		fmt.Sprintf("connstr = %q", c.ConnString("postgres")),
		`backup_wal_timeout = "2m"`,
	}
	lines = append(lines, extra...)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) connect(c *pgtest.Cluster) *pgx.Conn {
	f.t.Helper()
	conn, err := c.Connect(f.ctx, "postgres")
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// run runs walmgrd as c's server user and returns stdout, stderr and the exit code.
func (f *fixture) run(c *pgtest.Cluster, args ...string) (string, string, int) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Minute)
	defer cancel()
	cmd := c.Command(ctx, f.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		f.t.Fatalf("run walmgrd %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

// mustRun runs walmgrd -c master.toml ARGS and fails the test unless it exits 0.
func (f *fixture) mustRun(c *pgtest.Cluster, args ...string) string {
	f.t.Helper()
	out, errOut, code := f.run(c, append([]string{"-c", f.cfgPath}, args...)...)
	if code != 0 {
		f.t.Fatalf("walmgrd %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

func (f *fixture) exec(conn *pgx.Conn, sql string, args ...any) {
	f.t.Helper()
	if _, err := conn.Exec(f.ctx, sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

func (f *fixture) queryString(conn *pgx.Conn, sql string, args ...any) string {
	f.t.Helper()
	var s string
	if err := conn.QueryRow(f.ctx, sql, args...).Scan(&s); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// switchAndWait closes the current segment on the primary and waits until
// walmgrd has archived it.
func (f *fixture) switchAndWait() string {
	f.t.Helper()
	seg := f.queryString(f.conn, "SELECT pg_walfile_name(pg_switch_wal())")
	f.waitArchived(seg)
	return seg
}

// waitArchived waits until pg_stat_archiver reports seg (or a later file) archived.
func (f *fixture) waitArchived(seg string) {
	f.t.Helper()
	waitFor(f.t, 2*time.Minute, "archiving of "+seg, func() bool {
		var last string
		err := f.conn.QueryRow(f.ctx, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver").Scan(&last)
		return err == nil && len(last) >= 24 && last[:24] >= seg
	})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		<-tick.C
	}
}

// restoreCluster starts a new cluster on a data directory restored by walmgrd
// restore with the given flags, using config cfgPath. conf lines go to postgresql.conf.
func (f *fixture) restoreCluster(cfgPath string, flags []string, conf ...string) *pgtest.Cluster {
	f.t.Helper()
	opts := []pgtest.Option{pgtest.Name("restored"), pgtest.FromDataDir(func(ctx context.Context, c *pgtest.Cluster) error {
		args := append(append([]string{"-c", cfgPath, "restore"}, flags...), c.DataDir)
		out, errOut, code := f.run(c, args...)
		if code != 0 {
			return fmt.Errorf("walmgrd restore: exit %d: %s%s", code, out, errOut)
		}
		return nil
	})}
	if len(conf) > 0 {
		opts = append(opts, pgtest.Conf(conf...))
	}
	return pgtest.NewCluster(f.t, opts...)
}
