package walmgr_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/skytools-go/skytools/pkg/pgtest"
)

var backupLine = regexp.MustCompile(`(?m)^(\d{8}T\d{6}Z(?:-\d+)?)\s+complete\s.*\s([0-9A-F]{24})\s+([0-9A-F]{24})$`)

// TestRetentionKeepsNewestBackupsAndTheWALTheyNeed takes three backups with WAL in
// between, then applies keep_backups = 2 and later 1.
func TestRetentionKeepsNewestBackupsAndTheWALTheyNeed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "keep_backups = 2")
	f.exec(f.conn, "CREATE TABLE t (id int)")
	for i := 0; i < 3; i++ {
		f.exec(f.conn, "INSERT INTO t SELECT generate_series(1, 10000)")
		f.switchAndWait()
		f.mustRun(f.primary, "backup")
	}
	f.switchAndWait()
	before := backupLine.FindAllStringSubmatch(f.mustRun(f.primary, "list"), -1)
	if len(before) != 3 {
		t.Fatalf("list shows %d complete backups, want 3", len(before))
	}
	// An incomplete backup older than the newest complete one (a killed run) goes;
	// one newer than every complete backup (maybe still running) stays.
	for _, id := range []string{"20000101T000000Z", "29991231T235959Z"} {
		dir := filepath.Join(f.repo, "backups", id, "data")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f.ownTree(filepath.Join(f.repo, "backups", id))
	}

	dry := f.mustRun(f.primary, "cleanup", "--dry-run")
	if !strings.Contains(dry, "would delete 2 backup(s)") {
		t.Fatalf("dry run: %s", dry)
	}
	if got := backupLine.FindAllStringSubmatch(f.mustRun(f.primary, "list"), -1); len(got) != 3 {
		t.Fatal("--dry-run deleted backups")
	}
	out := f.mustRun(f.primary, "cleanup")
	if !strings.Contains(out, "deleted 2 backup(s)") || !strings.Contains(out, "kept 2 backup(s)") {
		t.Fatalf("cleanup: %s", out)
	}
	list := f.mustRun(f.primary, "list")
	after := backupLine.FindAllStringSubmatch(list, -1)
	if len(after) != 2 || after[0][1] != before[1][1] || after[1][1] != before[2][1] {
		t.Fatalf("kept %v, want the two newest of %v", after, before)
	}
	if strings.Contains(list, "20000101T000000Z") || !strings.Contains(list, "29991231T235959Z") {
		t.Fatalf("incomplete backups handled wrongly:\n%s", list)
	}
	firstKept := after[0][2]
	assertWALFrom(t, f.repo, firstKept)
	if out := f.mustRun(f.primary, "verify"); !strings.Contains(out, "0 problem(s)") {
		t.Fatalf("verify after cleanup: %s", out)
	}

	// keep_backups = 1 never removes the newest complete backup.
	f.writeConfig(f.cfgPath, f.primary, "keep_backups = 1")
	f.mustRun(f.primary, "cleanup")
	last := backupLine.FindAllStringSubmatch(f.mustRun(f.primary, "list"), -1)
	if len(last) != 1 || last[0][1] != before[2][1] {
		t.Fatalf("keep_backups = 1 kept %v, want only %s", last, before[2][1])
	}
	assertWALFrom(t, f.repo, last[0][2])
	if out := f.mustRun(f.primary, "verify"); !strings.Contains(out, "0 problem(s)") {
		t.Fatalf("verify after second cleanup: %s", out)
	}
}

// assertWALFrom checks that the oldest archived segment is first, the first segment
// the oldest kept backup needs.
func assertWALFrom(t *testing.T, repo, first string) {
	t.Helper()
	var segs []string
	_ = filepath.WalkDir(filepath.Join(repo, "wal"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && len(e.Name()) == 24 {
			segs = append(segs, e.Name())
		}
		return nil
	})
	if len(segs) == 0 || segs[0] != first {
		t.Fatalf("oldest archived segment %v, want %s (the oldest kept backup's start)", segs, first)
	}
}

func (f *fixture) ownTree(dir string) {
	f.t.Helper()
	_ = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil {
			f.own(p)
		}
		return nil
	})
}

// TestSetupOnAServerWithoutArchivingSaysRestartNeeded runs setup on a server with
// archive_mode off: after the restart it asks for, WAL reaches the repository.
func TestSetupOnAServerWithoutArchivingSaysRestartNeeded(t *testing.T) {
	t.Parallel()
	bin := pgtest.Build(t, "walmgrd")
	c := pgtest.NewCluster(t, pgtest.Name("setup"))
	dir := filepath.Join(c.Dir, "walmgr")
	if err := c.MkdirOwned(dir); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: t.Context(), bin: bin, dir: dir, repo: filepath.Join(dir, "repo"), cfgPath: filepath.Join(dir, "w.toml"), primary: c}
	f.writeConfig(f.cfgPath, c)
	f.own(f.cfgPath)
	out := f.mustRun(c, "setup")
	if !strings.Contains(out, "created repository") || !strings.Contains(out, "RESTART NEEDED: archive_mode") {
		t.Fatalf("setup: %s", out)
	}
	if err := c.Restart(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.conn = f.connect(c)
	if got := f.queryString(f.conn, "SELECT current_setting('archive_command')"); !strings.Contains(got, bin+" -c "+f.cfgPath+" archive %p %f") {
		t.Fatalf("archive_command = %q", got)
	}
	seg := f.switchAndWait()
	if _, err := os.Stat(filepath.Join(f.repo, "wal", seg[:16], seg)); err != nil {
		t.Fatalf("segment %s not in the repository: %v", seg, err)
	}
	if out := f.mustRun(c, "setup"); !strings.Contains(out, "already set up") || !strings.Contains(out, "no restart needed") {
		t.Fatalf("second setup: %s", out)
	}
}
