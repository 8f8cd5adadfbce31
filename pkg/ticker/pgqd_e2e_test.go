package ticker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgtest"
)

// The pgqd binary under a systemd-like supervisor: notify socket, watchdog, signals.
func TestPgqdBinaryUnderSystemdNotify(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		ctx := context.Background()
		bin := pgtest.Build(t, "pgqd")
		c := pgtest.NewCluster(t)
		conn := setupPgqDB(t, c, f, "app", "q")

		dir := t.TempDir()
		cfgPath := filepath.Join(dir, "pgqd.toml")
		port := pgtest.FreePort(t)
		write := func(extra string) {
			text := fmt.Sprintf("connstr = %q\ndatabases = [\"app\"]\nmetrics_listen = \"127.0.0.1:%d\"\n%s", baseConnstr(c), port, extra)
			if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// A ticker period of an hour: one pass at start, then nothing until reloaded.
		write("ticker_period = \"1h\"\nfail_after = \"2s\"\n")

		ns := pgtest.NewNotifySocket(t)
		cmd := osexec.Command(bin, "-c", cfgPath)
		cmd.Env = append(os.Environ(), ns.Env(), "WATCHDOG_USEC=1000000")
		stderr := &pgtest.Output{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			if t.Failed() {
				t.Logf("pgqd stderr:\n%s", stderr.String())
			}
		})

		ns.Until(t, 30*time.Second, "READY=1", pgtest.Is("READY=1"))
		ns.Until(t, 30*time.Second, "status", pgtest.HasPrefix("STATUS=ticking 1 queues in 1 of 1 databases"))
		ns.Until(t, 30*time.Second, "watchdog ping", pgtest.Is("WATCHDOG=1"))
		afterStart, err := lastTick(conn, "q")
		if err != nil {
			t.Fatal(err)
		}

		// SIGHUP with a short period: ticking starts without waiting out the hour.
		write("ticker_period = \"20ms\"\nfail_after = \"2s\"\n")
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		ns.Until(t, 30*time.Second, "RELOADING=1", pgtest.Is("RELOADING=1"))
		ns.Until(t, 30*time.Second, "READY=1 after reload", pgtest.Is("READY=1"))
		ticksPast(t, conn, "q", afterStart+2)

		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`pgqd_ticks_total{database="app",queue="q"}`, `pgqd_database_up{database="app"} 1`, "pgqd_queue_ticker_lag_seconds"} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("metrics lack %s", want)
			}
		}

		// The database goes away: pings go on while pgqd retries, until fail_after.
		conn.Close(ctx)
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		ns.Until(t, 30*time.Second, "status naming the down database", pgtest.HasPrefix("STATUS=ticking 0 queues in 0 of 1 databases; down: app"))
		ns.Until(t, 30*time.Second, "watchdog ping while the database is down", pgtest.Is("WATCHDOG=1"))
		select {
		case err := <-done:
			var ee *osexec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("pgqd after fail_after: %v, want exit 1", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("pgqd did not exit after fail_after")
		}
		if !strings.Contains(stderr.String(), "pgqd: database app unreachable for") {
			t.Fatalf("exit reason not on stderr:\n%s", stderr.String())
		}
	})
}

func TestPgqdBinaryStopsCleanlyOnSIGTERM(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		bin := pgtest.Build(t, "pgqd")
		db := f.shared.DB(t)
		cfgPath := filepath.Join(t.TempDir(), "pgqd.toml")
		text := fmt.Sprintf("connstr = %q\ndatabases = [%q]\nticker_period = \"10ms\"\n", baseConnstr(db.Cluster), db.Name)
		if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		ns := pgtest.NewNotifySocket(t)
		cmd := osexec.Command(bin, "-c", cfgPath)
		cmd.Env = append(os.Environ(), ns.Env())
		var stderr pgtest.Output
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ns.Until(t, 30*time.Second, "READY=1", pgtest.Is("READY=1"))
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		ns.Until(t, 30*time.Second, "STOPPING=1", pgtest.Is("STOPPING=1"))
		if err := cmd.Wait(); err != nil {
			t.Fatalf("pgqd after SIGTERM: %v\n%s", err, stderr.String())
		}
	})
}
