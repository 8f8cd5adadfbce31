package lifecycle

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

type runCfg struct {
	Common
	Name string `toml:"name"`
}

// stubbornDaemon records reloads and, if ignoreStop, does not return when cancelled.
type stubbornDaemon struct {
	ignoreStop bool
	rejectNext atomic.Bool
	applied    atomic.Pointer[string]
	started    chan struct{}
}

func (d *stubbornDaemon) Run(ctx context.Context) error {
	close(d.started)
	<-ctx.Done()
	if d.ignoreStop {
		select {}
	}
	return nil
}

func (d *stubbornDaemon) Reload(_ context.Context, cfg *runCfg) error {
	if d.rejectNext.Swap(false) {
		return errors.New("cannot apply")
	}
	d.applied.Store(&cfg.Name)
	return nil
}

func runSpec(t *testing.T, d *stubbornDaemon, sigs chan os.Signal, stop time.Duration) (Spec[runCfg], string) {
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte("name = \"first\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	level := zap.NewAtomicLevelAt(zapcore.InfoLevel)
	return Spec[runCfg]{
		ConfigPath: path,
		Load: func(p string) (*runCfg, error) {
			c := &runCfg{}
			return c, Load(p, c)
		},
		Common:      func(c *runCfg) Common { return c.Common },
		New:         func(*runCfg, *Host) (Daemon[runCfg], error) { return d, nil },
		Level:       &level,
		StopTimeout: stop,
		Signals:     sigs,
	}, path
}

func testHost(t *testing.T) (*Host, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	return NewHost(zap.New(core)), logs
}

func TestRunStopTimeoutAndSecondSignal(t *testing.T) {
	for _, c := range []struct {
		name    string
		signals []os.Signal
		wantErr string
	}{
		{"timeout", []os.Signal{syscall.SIGTERM}, "stop timeout"},
		{"second signal", []os.Signal{syscall.SIGTERM, syscall.SIGINT}, "second interrupt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, _ := testHost(t)
			d := &stubbornDaemon{ignoreStop: true, started: make(chan struct{})}
			sigs := make(chan os.Signal, 2)
			stop := 200 * time.Millisecond
			if len(c.signals) > 1 {
				stop = time.Hour
			}
			spec, _ := runSpec(t, d, sigs, stop)
			errc := make(chan error, 1)
			go func() { errc <- Run(context.Background(), h, spec) }()
			<-d.started
			for _, s := range c.signals {
				sigs <- s
			}
			select {
			case err := <-errc:
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Run = %v, want %q", err, c.wantErr)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return")
			}
		})
	}
}

func TestRunReloadKeepsOldConfigWhenDaemonRejectsIt(t *testing.T) {
	h, logs := testHost(t)
	d := &stubbornDaemon{started: make(chan struct{})}
	sigs := make(chan os.Signal, 1)
	spec, path := runSpec(t, d, sigs, time.Minute)
	errc := make(chan error, 1)
	go func() { errc <- Run(context.Background(), h, spec) }()
	<-d.started

	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	waitLog := func(msg string, n int) {
		deadline := time.Now().Add(10 * time.Second)
		for logs.FilterMessage(msg).Len() < n {
			if time.Now().After(deadline) {
				t.Fatalf("no log %q (want %d)", msg, n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	write("name = \"second\"\nlog_level = \"debug\"\n")
	sigs <- syscall.SIGHUP
	waitLog("configuration reloaded", 1)
	if got := d.applied.Load(); got == nil || *got != "second" {
		t.Fatalf("applied %v", got)
	}
	if !spec.Level.Enabled(zapcore.DebugLevel) {
		t.Fatal("log_level from the reloaded config not applied")
	}
	d.rejectNext.Store(true)
	write("name = \"third\"\n")
	sigs <- syscall.SIGHUP
	waitLog("could not apply new configuration, keeping the old one", 1)
	if got := d.applied.Load(); *got != "second" {
		t.Fatalf("rejected config applied: %s", *got)
	}
	if !spec.Level.Enabled(zapcore.DebugLevel) {
		t.Fatal("log level changed by a rejected reload")
	}
	sigs <- syscall.SIGTERM
	if err := <-errc; err != nil {
		t.Fatalf("Run after SIGTERM: %v", err)
	}
}
