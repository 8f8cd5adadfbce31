package walmgr_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgtest"
)

// notifySocket is pgtest's systemd notify socket, opened up for a daemon that runs as
// the server's user (the test's temporary directories are root's).
func notifySocket(t *testing.T) *pgtest.NotifySocket {
	t.Helper()
	n := pgtest.NewNotifySocket(t)
	for _, p := range []string{filepath.Dir(filepath.Dir(n.Path)), filepath.Dir(n.Path)} {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(n.Path, 0o666); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDaemonTakesScheduledBackupAndReportsHealth runs walmgrd as a daemon under a
// fake systemd (NOTIFY_SOCKET, WATCHDOG_USEC): it must report READY only after
// reaching the server, take the scheduled backup, apply retention, send STATUS and
// watchdog pings, serve metrics, and stop cleanly on SIGTERM.
func TestDaemonTakesScheduledBackupAndReportsHealth(t *testing.T) {
	t.Parallel()
	port := pgtest.FreePort(t)
	f := newFixture(t, `backup_schedule = "1h"`, `check_interval = "200ms"`, "keep_backups = 1",
		fmt.Sprintf("metrics_listen = \"127.0.0.1:%d\"", port))
	f.exec(f.conn, "CREATE TABLE t AS SELECT generate_series(1, 1000) AS id")
	f.switchAndWait()
	notify := notifySocket(t)

	cmd := f.primary.Command(f.ctx, f.bin, "-c", f.cfgPath)
	cmd.Env = append(cmd.Env, notify.Env(), "WATCHDOG_USEC=2000000")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})

	notify.Until(t, time.Minute, "READY=1", pgtest.Is("READY=1"))
	notify.Until(t, 2*time.Minute, "a STATUS line naming the scheduled backup", func(m string) bool {
		return strings.HasPrefix(m, "STATUS=") && strings.Contains(m, "last backup 2") && strings.Contains(m, "next backup in")
	})
	notify.Until(t, 30*time.Second, "a watchdog ping", pgtest.Is("WATCHDOG=1"))
	metrics := ""
	waitFor(t, 30*time.Second, "metrics", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		metrics = string(b)
		return strings.Contains(metrics, "walmgrd_backups_complete 1")
	})
	for _, want := range []string{`walmgrd_backup_runs_total{result="ok"} 1`, "walmgrd_server_up 1", "walmgrd_archive_failed_count 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if list := f.mustRun(f.primary, "list"); strings.Count(list, " complete ") != 1 {
		t.Errorf("after the scheduled backup:\n%s", list)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("daemon exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("daemon did not stop on SIGTERM\n%s", stderr.String())
	}
	notify.Until(t, 10*time.Second, "STOPPING=1", pgtest.Is("STOPPING=1"))
	if !strings.Contains(stderr.String(), "base backup complete") {
		t.Errorf("log lacks the backup:\n%s", stderr.String())
	}
}
