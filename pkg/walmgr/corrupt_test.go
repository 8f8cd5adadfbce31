package walmgr_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgtest"
)

// flipByte damages one byte in the middle of a stored WAL file's payload.
func flipByte(t *testing.T, repo, seg string) {
	t.Helper()
	p := filepath.Join(repo, "wal", seg[:16], seg)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x5A
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptArchivedSegmentIsCaughtByFetchVerifyAndRecovery damages an archived
// segment that recovery needs after the backup is consistent. fetch must refuse it
// with a code above 125, verify must name it, and a server recovering through it must
// stop rather than end recovery early and promote without the rows after it.
func TestCorruptArchivedSegmentIsCaughtByFetchVerifyAndRecovery(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.exec(f.conn, "CREATE TABLE t (id int)")
	f.mustRun(f.primary, "backup")
	f.exec(f.conn, "INSERT INTO t SELECT generate_series(1, 100)")
	bad := f.switchAndWait()
	f.exec(f.conn, "INSERT INTO t VALUES (-1)") // only reachable through the bad segment
	f.switchAndWait()
	flipByte(t, f.repo, bad)

	dest := filepath.Join(f.dir, "fetched")
	out, errOut, code := f.run(f.primary, "-c", f.cfgPath, "fetch", bad, dest)
	if code != 128 || !strings.Contains(errOut, "corrupt") {
		t.Fatalf("fetch of a corrupt segment: exit %d, want 128\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatal("fetch left the corrupt segment at its destination")
	}
	if _, errOut, code := f.run(f.primary, "-c", f.cfgPath, "fetch", "0000000100000000000000F0", dest); code != 1 {
		t.Fatalf("fetch of a segment never archived: exit %d, want 1 (%s)", code, errOut)
	}
	if _, errOut, code := f.run(f.primary, "-c", filepath.Join(f.dir, "missing.toml"), "fetch", bad, dest); code != 128 {
		t.Fatalf("fetch with an unreadable config: exit %d, want 128 (%s)", code, errOut)
	}
	out, _, code = f.run(f.primary, "-c", f.cfgPath, "verify")
	if code != 1 || !strings.Contains(out, "PROBLEM: WAL "+bad) {
		t.Fatalf("verify of a repository with a corrupt segment: exit %d\n%s", code, out)
	}

	// Recovery through the bad segment must stop, not promote early.
	ctx, cancel := context.WithTimeout(f.ctx, 2*time.Minute)
	defer cancel()
	var dataDir string
	c, err := pgtest.Start(ctx, pgtest.Name("corrupt"), pgtest.FromDataDir(func(ctx context.Context, c *pgtest.Cluster) error {
		dataDir = c.DataDir
		out, errOut, code := f.run(c, "-c", f.cfgPath, "restore", "--no-archive", c.DataDir)
		if code != 0 {
			t.Errorf("restore: exit %d: %s%s", code, out, errOut)
		}
		return nil
	}))
	if err == nil {
		// It may have become ready (read-only) at consistency; it must die at the bad segment.
		t.Cleanup(func() { _ = c.Destroy() })
		waitFor(t, time.Minute, "the recovering server to stop at the corrupt segment", func() bool { return !c.Running() })
		if log := c.LogTail(0, 400); !strings.Contains(log, "FATAL") || !strings.Contains(log, "corrupt") {
			t.Fatalf("server stopped without the expected errors:\n%s", log)
		}
		t.Logf("server became ready at consistency, then stopped at the corrupt segment (%s)", dataDir)
	} else if !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("server failed to start, but not because of the corrupt segment: %v", err)
	} else {
		t.Logf("server stopped at the corrupt segment during start-up (%s)", dataDir)
	}
}
