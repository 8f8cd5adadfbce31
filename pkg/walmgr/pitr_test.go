package walmgr_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgtest"
)

// mark is one committed row of the marks table and what a restore that stops right
// after it must see.
type mark struct {
	n      int
	time   string // clock_timestamp() read after the commit
	lsn    string // pg_current_wal_insert_lsn() read after the commit
	digest string // md5 over all marks committed so far
}

const marksDigestSQL = `SELECT coalesce(md5(string_agg(id || ':' || v, ',' ORDER BY id)), '') FROM marks`

// TestPointInTimeRestoreToTimeAndLSN archives a busy pgbench run, takes a base backup
// (with a tablespace), keeps writing, and restores to a time and to an LSN between
// the backup and the end (and to a named restore point): each restored server must
// hold exactly the rows committed before its target.
func TestPointInTimeRestoreToTimeAndLSN(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := f.ctx
	tsDir := filepath.Join(f.dir, "ts1")
	if err := os.Mkdir(tsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	f.own(tsDir)
	f.exec(f.conn, fmt.Sprintf("CREATE TABLESPACE ts1 LOCATION '%s'", tsDir))
	f.exec(f.conn, "CREATE TABLE marks (id int PRIMARY KEY, v text) TABLESPACE ts1")
	f.exec(f.conn, "CREATE UNLOGGED TABLE scratch AS SELECT generate_series(1, 1000) AS x")
	tsOID := f.queryString(f.conn, "SELECT oid::text FROM pg_tablespace WHERE spcname = 'ts1'")
	if out, err := f.primary.Command(ctx, "pgbench", "-i", "-s", "8", "-q", "postgres").CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}

	out := f.mustRun(f.primary, "backup", "--label", "pitr")
	if !strings.Contains(out, "complete") {
		t.Fatalf("backup said: %s", out)
	}

	// Keep the primary busy while marks are committed one by one.
	bench := f.primary.Command(ctx, "pgbench", "-n", "-c", "2", "-j", "2", "-t", "1500", "postgres")
	benchOut := &strings.Builder{}
	bench.Stdout, bench.Stderr = benchOut, benchOut
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	var marks []mark
	for n := 1; n <= 40; n++ {
		f.exec(f.conn, "INSERT INTO marks VALUES ($1::int, md5($1::int::text))", n)
		m := mark{n: n}
		if err := f.conn.QueryRow(ctx, "SELECT clock_timestamp()::text, pg_current_wal_insert_lsn()::text").Scan(&m.time, &m.lsn); err != nil {
			t.Fatal(err)
		}
		m.digest = f.queryString(f.conn, marksDigestSQL)
		marks = append(marks, m)
		if n == 22 {
			f.exec(f.conn, "SELECT pg_create_restore_point('after-22')")
		}
	}
	if err := bench.Wait(); err != nil {
		t.Fatalf("pgbench: %v\n%s", err, benchOut)
	}
	last := f.switchAndWait()
	t.Logf("archived up to %s", last)

	out = f.mustRun(f.primary, "verify")
	if !strings.Contains(out, "0 problem(s)") {
		t.Fatalf("verify: %s", out)
	}
	list := f.mustRun(f.primary, "list")
	if !strings.Contains(list, "complete") || !strings.Contains(list, "WAL timeline 1:") {
		t.Fatalf("list:\n%s", list)
	}
	t.Logf("list:\n%s", list)

	// A non-empty target is refused.
	busy := filepath.Join(f.dir, "busy")
	if err := os.Mkdir(busy, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(busy, "precious"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.own(busy)
	if o, e, code := f.run(f.primary, "-c", f.cfgPath, "restore", busy); code != 1 || !strings.Contains(e, "not empty") {
		t.Fatalf("restore into a non-empty directory: exit %d\n%s%s", code, o, e)
	}

	for _, tc := range []struct {
		name  string
		at    mark
		flags []string
	}{
		{"time", marks[14], []string{"--target-time", marks[14].time}},
		{"lsn", marks[29], []string{"--target-lsn", marks[29].lsn, "--target-exclusive"}},
		{"name", marks[21], []string{"--target-name", "after-22"}},
	} {
		dir := filepath.Join(f.dir, "ts-"+tc.name)
		flags := append(tc.flags, "--target-action", "promote", "--no-archive", "--tablespace-map", tsOID+"="+dir)
		c := f.restoreCluster(f.cfgPath, flags)
		conn := f.connect(c)
		waitFor(t, 2*time.Minute, tc.name+" restore to finish recovery", func() bool {
			var rec bool
			return conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec) == nil && !rec
		})
		if got := f.queryString(conn, "SELECT count(*)::text FROM marks"); got != fmt.Sprint(tc.at.n) {
			t.Errorf("%s target: %s marks restored, want %d", tc.name, got, tc.at.n)
		}
		if got := f.queryString(conn, marksDigestSQL); got != tc.at.digest {
			t.Errorf("%s target: marks differ from what was committed before the target", tc.name)
		}
		if got := f.queryString(conn, "SELECT count(*)::text FROM pgbench_accounts"); got != "800000" {
			t.Errorf("%s target: pgbench_accounts has %s rows", tc.name, got)
		}
		if got := f.queryString(conn, "SELECT count(*)::text FROM scratch"); got != "0" {
			t.Errorf("%s target: unlogged table has %s rows after restore, want 0 (reset from its init fork)", tc.name, got)
		}
		loc := f.queryString(conn, "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'ts1'")
		if loc != dir {
			t.Errorf("%s target: tablespace at %s, want %s", tc.name, loc, dir)
		}
		// The restored server writes.
		f.exec(conn, "INSERT INTO marks VALUES (1000, 'after')")
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStandbyFromBackupCatchesUpAndIsPromoted restores a streaming standby from a
// base backup, checks it follows the primary, pauses and resumes replay, and
// promotes it with walmgrd promote.
func TestStandbyFromBackupCatchesUpAndIsPromoted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := f.ctx
	f.exec(f.conn, "CREATE TABLE t (id int)")
	f.exec(f.conn, "INSERT INTO t SELECT generate_series(1, 1000)")
	f.mustRun(f.primary, "backup")
	f.exec(f.conn, "INSERT INTO t SELECT generate_series(1001, 2000)")
	f.switchAndWait() // the standby first replays this from the archive

	standbyCfg := filepath.Join(f.dir, "standby.toml")
	standby := pgtest.NewCluster(t, pgtest.Name("standby"), pgtest.FromDataDir(func(ctx context.Context, c *pgtest.Cluster) error {
		f.writeConfig(standbyCfg, c, fmt.Sprintf("primary_conninfo = %q", f.primary.ConnString("postgres")+" application_name=standby1"))
		out, errOut, code := f.run(c, "-c", standbyCfg, "restore", "--standby", c.DataDir)
		if code != 0 {
			return fmt.Errorf("restore --standby: exit %d: %s%s", code, out, errOut)
		}
		return nil
	}))
	sconn := f.connect(standby)
	if got := f.queryString(sconn, "SELECT pg_is_in_recovery()::text"); got != "true" {
		t.Fatal("standby is not in recovery")
	}
	count := func() string {
		var n string
		if err := sconn.QueryRow(ctx, "SELECT count(*)::text FROM t").Scan(&n); err != nil {
			return err.Error()
		}
		return n
	}
	f.exec(f.conn, "INSERT INTO t SELECT generate_series(2001, 3000)")
	waitFor(t, time.Minute, "the standby to catch up", func() bool { return count() == "3000" })
	waitFor(t, time.Minute, "streaming replication", func() bool {
		var n int
		return f.conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'standby1' AND state = 'streaming'").Scan(&n) == nil && n == 1
	})

	run := func(cmd string) string {
		out, errOut, code := f.run(standby, "-c", standbyCfg, cmd)
		if code != 0 {
			t.Fatalf("walmgrd %s: exit %d: %s%s", cmd, code, out, errOut)
		}
		return out
	}
	run("pause")
	waitFor(t, 30*time.Second, "replay to pause", func() bool {
		var s string
		return sconn.QueryRow(ctx, "SELECT pg_get_wal_replay_pause_state()").Scan(&s) == nil && s == "paused"
	})
	run("resume")
	if s := f.queryString(sconn, "SELECT pg_get_wal_replay_pause_state()"); s != "not paused" {
		t.Fatalf("after resume: %s", s)
	}
	f.exec(f.conn, "INSERT INTO t SELECT generate_series(3001, 4000)")
	waitFor(t, time.Minute, "the standby to catch up after resume", func() bool { return count() == "4000" })

	if out := run("promote"); !strings.Contains(out, "promoted") {
		t.Fatalf("promote said %q", out)
	}
	if got := f.queryString(sconn, "SELECT pg_is_in_recovery()::text"); got != "false" {
		t.Fatal("still in recovery after promote")
	}
	f.exec(sconn, "INSERT INTO t VALUES (-1)")
	if out, errOut, code := f.run(standby, "-c", standbyCfg, "promote"); code != 1 || !strings.Contains(errOut, "not in recovery") {
		t.Fatalf("promoting a primary: exit %d %s%s", code, out, errOut)
	}
	// The promoted server archives its new timeline's history into the repository.
	waitFor(t, time.Minute, "00000002.history in the repository", func() bool {
		_, err := os.Stat(filepath.Join(f.repo, "wal", "history", "00000002.history"))
		return err == nil
	})
}
