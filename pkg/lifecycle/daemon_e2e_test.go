package lifecycle_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/lifecycle"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// The test binary doubles as a small daemon ("testdaemon") built on cli + lifecycle,
// so these tests exercise the real process lifecycle: flags, config, signals, sd_notify.
const daemonEnv = "LIFECYCLE_TEST_DAEMON"

var pg = pgtest.NewShared()

func TestMain(m *testing.M) {
	if os.Getenv(daemonEnv) == "1" {
		os.Exit(cli.Main(context.Background(), testTool(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(pg.Main(m))
}

type tdConfig struct {
	lifecycle.Common
	Connstr   string             `toml:"connstr"`
	Period    lifecycle.Duration `toml:"period"`
	StuckFile string             `toml:"stuck_file"`
}

func (c *tdConfig) Validate() error {
	var ps lifecycle.Problems
	c.Common.Validate(&ps)
	if c.Connstr == "" {
		ps.Addf("connstr", "is required")
	}
	if c.Period <= 0 {
		ps.Addf("period", "must be positive")
	}
	return ps.Err()
}

func loadTD(path string) (*tdConfig, error) {
	cfg := &tdConfig{Period: lifecycle.Duration(50 * time.Millisecond)}
	if err := lifecycle.Load(path, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func testTool() cli.Tool {
	return cli.Tool{
		Name:        "testdaemon",
		Summary:     "lifecycle test daemon",
		CheckConfig: cli.CheckConfig(loadTD),
		Daemon: func(ctx context.Context, env *cli.Env) error {
			return cli.RunDaemon(ctx, env, cli.DaemonSpec[tdConfig]{
				Load:   loadTD,
				Common: func(c *tdConfig) lifecycle.Common { return c.Common },
				New: func(cfg *tdConfig, h *lifecycle.Host) (lifecycle.Daemon[tdConfig], error) {
					d := &testDaemon{h: h, ticks: prometheus.NewCounter(prometheus.CounterOpts{Name: "testdaemon_ticks_total", Help: "loop passes"})}
					h.Metrics.MustRegister(d.ticks)
					d.cfg.Store(cfg)
					return d, nil
				},
			})
		},
	}
}

// testDaemon connects to its database (retrying), becomes ready after the first
// query, then runs "SELECT 1" every period. When stuck_file exists it runs a slow
// query instead, so its loop stops making progress for a while.
type testDaemon struct {
	h     *lifecycle.Host
	cfg   atomic.Pointer[tdConfig]
	ticks prometheus.Counter
}

func (d *testDaemon) Run(ctx context.Context) error {
	var conn *pgx.Conn
	for conn == nil {
		c, err := pgx.Connect(ctx, d.cfg.Load().Connstr)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.h.Notify.Status("waiting for database")
			d.h.Watchdog.Beat()
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Duration(d.cfg.Load().Period)):
			}
			continue
		}
		conn = c
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for n := 1; ; n++ {
		cfg := d.cfg.Load()
		if cfg.StuckFile != "" {
			if _, err := os.Stat(cfg.StuckFile); err == nil {
				_ = os.Remove(cfg.StuckFile)
				d.h.Notify.Status("slow query")
				if _, err := conn.Exec(ctx, "SELECT pg_sleep(1.5)"); err != nil && ctx.Err() == nil {
					return err
				}
				d.h.Notify.Status("slow query done")
			}
		}
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("testdaemon: %w", err)
		}
		d.h.Notify.Ready()
		d.ticks.Inc()
		d.h.Watchdog.Beat()
		d.h.Notify.Status("pass %d period %s", n, cfg.Period)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Duration(cfg.Period)):
		}
	}
}

func (d *testDaemon) Reload(_ context.Context, cfg *tdConfig) error {
	d.cfg.Store(cfg)
	return nil
}

func count(msgs []string, s string) int {
	n := 0
	for _, m := range msgs {
		if m == s {
			n++
		}
	}
	return n
}

// daemonProc is a running test daemon.
type daemonProc struct {
	cmd    *exec.Cmd
	stderr *pgtest.Output
	done   chan error
}

func startDaemon(t *testing.T, env []string, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), append(env, daemonEnv+"=1")...)
	p := &daemonProc{cmd: cmd, stderr: &pgtest.Output{}, done: make(chan error, 1)}
	cmd.Stdout = io.Discard
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("daemon stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

func (p *daemonProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not exit; stderr:\n%s", p.stderr.String())
		return -1
	}
}

// waitStderr waits until the daemon's stderr (copied through a pipe) contains s.
func (p *daemonProc) waitStderr(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.stderr.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon stderr never contained %q", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDaemonLifecycleUnderSystemdNotify(t *testing.T) {
	ctx := context.Background()
	c := pg.Cluster(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "td.toml")
	stuck := filepath.Join(dir, "stuck")
	port := pgtest.FreePort(t)
	dbName := fmt.Sprintf("late_db_%d_%d", os.Getpid(), time.Now().UnixNano())
	base := fmt.Sprintf("connstr = %q\nstuck_file = %q\nmetrics_listen = \"127.0.0.1:%d\"\n", c.ConnString(dbName), stuck, port)
	writeConfig(t, cfgPath, base+"period = \"50ms\"\n")

	ns := pgtest.NewNotifySocket(t)
	p := startDaemon(t, []string{ns.Env(), "WATCHDOG_USEC=400000"}, "-c", cfgPath)

	// Not ready while the database does not exist yet.
	before := ns.Until(t, 30*time.Second, "STATUS=waiting for database", pgtest.Is("STATUS=waiting for database"))
	if count(before, "READY=1") > 0 {
		t.Fatalf("READY=1 before the database answered: %q", before)
	}
	admin, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if conn, err := c.Connect(ctx, "postgres"); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	ns.Until(t, 30*time.Second, "READY=1", pgtest.Is("READY=1"))

	// Watchdog pings while the loop runs.
	ns.Until(t, 30*time.Second, "WATCHDOG=1", pgtest.Is("WATCHDOG=1"))
	ns.Until(t, 30*time.Second, "second WATCHDOG=1", pgtest.Is("WATCHDOG=1"))

	// Metrics endpoint serves the daemon's own collector and the runtime's.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte("testdaemon_ticks_total")) || !bytes.Contains(body, []byte("go_goroutines")) {
		t.Fatalf("metrics missing collectors:\n%.500s", body)
	}

	// A loop stuck in a query stops the pings: at most one (already earned) ping may
	// arrive during a 1.5 s query, where three would be due every 200 ms otherwise.
	writeConfig(t, stuck, "")
	ns.Until(t, 30*time.Second, "STATUS=slow query", pgtest.Is("STATUS=slow query"))
	during := ns.Until(t, 30*time.Second, "STATUS=slow query done", pgtest.Is("STATUS=slow query done"))
	if n := count(during, "WATCHDOG=1"); n > 1 {
		t.Fatalf("%d watchdog pings while the loop was stuck: %q", n, during)
	}
	ns.Until(t, 30*time.Second, "WATCHDOG=1 after the stall", pgtest.Is("WATCHDOG=1"))

	// SIGHUP with a good config: RELOADING=1 then READY=1, new period in effect.
	writeConfig(t, cfgPath, base+"period = \"70ms\"\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	ns.Until(t, 30*time.Second, "RELOADING=1", pgtest.Is("RELOADING=1"))
	ns.Until(t, 30*time.Second, "READY=1 after reload", pgtest.Is("READY=1"))
	ns.Until(t, 30*time.Second, "status with the new period", func(m string) bool { return strings.HasSuffix(m, "period 70ms") })

	// SIGHUP with a broken config: still RELOADING=1/READY=1, old config kept, problem logged.
	writeConfig(t, cfgPath, base+"perod = \"10ms\"\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	ns.Until(t, 30*time.Second, "RELOADING=1", pgtest.Is("RELOADING=1"))
	ns.Until(t, 30*time.Second, "READY=1 after rejected reload", pgtest.Is("READY=1"))
	p.waitStderr(t, cfgPath+": perod: unknown key")
	// The loop goes on with the old period (a wrongly accepted file would mean 50ms).
	for i := 0; i < 3; i++ {
		var status string
		ns.Until(t, 30*time.Second, "a pass after the rejected reload", func(m string) bool {
			status = m
			return strings.HasPrefix(m, "STATUS=pass")
		})
		if !strings.HasSuffix(status, "period 70ms") {
			t.Fatalf("status after rejected reload: %q", status)
		}
	}

	// SIGTERM: STOPPING=1 and exit 0.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ns.Until(t, 30*time.Second, "STOPPING=1", pgtest.Is("STOPPING=1"))
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0; stderr:\n%s", code, p.stderr.String())
	}
}

func TestConfigTypoExitsTwoNamingTheKey(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "td.toml")
	writeConfig(t, cfgPath, "connstr = \"dbname=x\"\nperiod = \"1s\"\nperiodd = \"2s\"\n")

	p := startDaemon(t, nil, "-c", cfgPath)
	if code := p.wait(t); code != 2 {
		t.Fatalf("daemon with a config typo: exit %d, want 2", code)
	}
	if want := cfgPath + ": periodd: unknown key\n"; p.stderr.String() != want {
		t.Fatalf("stderr %q, want %q", p.stderr.String(), want)
	}

	p = startDaemon(t, nil, "-c", cfgPath, "--check-config")
	if code := p.wait(t); code != 2 {
		t.Fatalf("--check-config on a bad file: exit %d, want 2", code)
	}
	writeConfig(t, cfgPath, "connstr = \"dbname=x\"\n")
	p = startDaemon(t, nil, "-c", cfgPath, "--check-config")
	if code := p.wait(t); code != 0 {
		t.Fatalf("--check-config on a good file: exit %d, want 0; %s", code, p.stderr.String())
	}
	p = startDaemon(t, nil)
	if code := p.wait(t); code != 2 || !strings.Contains(p.stderr.String(), "no config file") {
		t.Fatalf("daemon without -c: exit %d, stderr %q", code, p.stderr.String())
	}
}
