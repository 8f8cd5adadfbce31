package relaytest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgtest"
)

// Process is a daemon binary running for a test under a notify socket (as systemd
// runs it), with its config in a file of its own.
type Process struct {
	t       *testing.T
	Bin     string
	Config  string // the config file's path
	Notify  *pgtest.NotifySocket
	Metrics string // "127.0.0.1:PORT", set by WriteConfig
	cmd     *exec.Cmd
	stderr  *pgtest.Output
	done    chan struct{}
	err     error
}

// NewProcess prepares the tool's binary with a config file named NAME.toml (NAME is
// the instance name, the default consumer name).
func NewProcess(t *testing.T, tool, name string) *Process {
	t.Helper()
	return &Process{
		t:       t,
		Bin:     pgtest.Build(t, tool),
		Config:  filepath.Join(t.TempDir(), name+".toml"),
		Metrics: "127.0.0.1:" + strconv.Itoa(pgtest.FreePort(t)),
	}
}

// WriteConfig writes the config file: metrics_listen, then text.
func (p *Process) WriteConfig(text string) {
	p.t.Helper()
	text = fmt.Sprintf("metrics_listen = %q\n", p.Metrics) + text
	if err := os.WriteFile(p.Config, []byte(text), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// Start runs the daemon with a fresh notify socket and WATCHDOG_USEC set, and waits
// for READY=1.
func (p *Process) Start() {
	p.t.Helper()
	p.Notify = pgtest.NewNotifySocket(p.t)
	p.stderr = &pgtest.Output{}
	p.cmd = exec.Command(p.Bin, "-c", p.Config)
	p.cmd.Env = append(os.Environ(), p.Notify.Env(), "WATCHDOG_USEC=2000000")
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	cmd, stderr := p.cmd, p.stderr
	p.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if p.t.Failed() {
			p.t.Logf("%s stderr:\n%s", filepath.Base(p.Bin), stderr.String())
		}
	})
	p.Notify.Until(p.t, time.Minute, "READY=1", pgtest.Is("READY=1"))
}

// Kill stops the daemon with SIGKILL and waits until it is gone.
func (p *Process) Kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	<-p.done
}

// Signal sends sig to the daemon.
func (p *Process) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// Pid is the daemon's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Wait waits for the daemon to exit and returns its exit code.
func (p *Process) Wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %s", filepath.Base(p.Bin), timeout)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatal(p.err)
	}
	return 0
}

// Stderr is what the daemon wrote to stderr so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// Scrape returns the metrics page.
func (p *Process) Scrape() string {
	p.t.Helper()
	resp, err := http.Get("http://" + p.Metrics + "/metrics")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return string(b)
}

// Metric returns the value of the metric line that starts with series (name and
// labels, exactly as exposed), or -1 when there is none.
func (p *Process) Metric(series string) float64 {
	p.t.Helper()
	for _, line := range strings.Split(p.Scrape(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				p.t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// WaitMetric waits until the metric series has the value want. Metrics are updated
// just after a batch commits, so a test that saw the commit in the database waits
// for them.
func (p *Process) WaitMetric(series string, want float64) {
	p.t.Helper()
	var got float64
	deadline := time.Now().Add(time.Minute)
	for got = p.Metric(series); got != want; got = p.Metric(series) {
		if time.Now().After(deadline) {
			p.t.Fatalf("metric %s is %v, want %v", series, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// StopInSync stops the daemon with SIGTERM (a batch in progress finishes first),
// expects exit code 0, and then the status command to report source and
// destination in sync.
func (p *Process) StopInSync() {
	p.t.Helper()
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(time.Minute); code != 0 {
		p.t.Fatalf("exit code %d after SIGTERM", code)
	}
	out, code := p.Run("status")
	if code != 0 || !strings.Contains(out, "in sync") {
		p.t.Fatalf("status (exit %d):\n%s", code, out)
	}
}

// Run runs one of the tool's admin commands with the config file and returns its
// output and exit code.
func (p *Process) Run(args ...string) (string, int) {
	p.t.Helper()
	cmd := exec.Command(p.Bin, append([]string{"-c", p.Config}, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		p.t.Fatal(err)
	}
	return string(out), 0
}
