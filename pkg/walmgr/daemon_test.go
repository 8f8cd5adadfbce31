package walmgr_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// notifyListener collects what a daemon sends to NOTIFY_SOCKET.
type notifyListener struct {
	mu   sync.Mutex
	msgs []string
}

func (n *notifyListener) has(prefix, contains string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.msgs {
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(line, prefix) && strings.Contains(line, contains) {
				return true
			}
		}
	}
	return false
}

func listenNotify(t *testing.T, path string) *notifyListener {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	n := &notifyListener{}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	return n
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestDaemonTakesScheduledBackupAndReportsHealth runs walmgrd as a daemon under a
// fake systemd (NOTIFY_SOCKET, WATCHDOG_USEC): it must report READY only after
// reaching the server, take the scheduled backup, apply retention, send STATUS and
// watchdog pings, serve metrics, and stop cleanly on SIGTERM.
func TestDaemonTakesScheduledBackupAndReportsHealth(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	f := newFixture(t, `backup_schedule = "1h"`, `check_interval = "200ms"`, "keep_backups = 1",
		fmt.Sprintf("metrics_listen = \"127.0.0.1:%d\"", port))
	f.exec(f.conn, "CREATE TABLE t AS SELECT generate_series(1, 1000) AS id")
	f.switchAndWait()
	sock := filepath.Join(f.dir, "notify.sock")
	notify := listenNotify(t, sock)

	cmd := f.primary.Command(f.ctx, f.bin, "-c", f.cfgPath)
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=2000000")
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

	waitFor(t, time.Minute, "READY=1", func() bool { return notify.has("READY=1", "") })
	waitFor(t, 2*time.Minute, "a STATUS line naming the scheduled backup", func() bool {
		return notify.has("STATUS=", "last backup 2") && notify.has("STATUS=", "next backup in")
	})
	waitFor(t, 30*time.Second, "watchdog pings", func() bool { return notify.has("WATCHDOG=1", "") })
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
	if !notify.has("STOPPING=1", "") {
		t.Error("no STOPPING=1")
	}
	if !strings.Contains(stderr.String(), "base backup complete") {
		t.Errorf("log lacks the backup:\n%s", stderr.String())
	}
}
