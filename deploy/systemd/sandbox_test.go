package systemd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgtest"
	"github.com/skytools-go/skytools/pkg/relay/relaytest"
)

// sandbox is a real systemd booted in a PID + mount namespace of its own, so unit
// files can be started for real without touching the host's systemd. Following the
// hazard note in DESIGN.md, the boot script mounts private tmpfs over /run, /tmp,
// /var/tmp and /var/log/journal and masks every unit that acts on the shared
// filesystem or kernel at boot, and systemd boots into a test target.
type sandbox struct {
	t   *testing.T
	cmd *exec.Cmd // unshare, whose child is the sandbox's systemd
	pid int       // systemd's pid as the host sees it
	log *bytes.Buffer
}

// bootScript prepares the namespace and execs systemd. $1 is the unit directory.
const bootScript = `#!/bin/sh
set -e
units="$1"
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system
cp "$units"/* /run/systemd/system/
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /var/tmp
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
cd /run/systemd/system
# Mask boot-time units that act on the shared filesystem or kernel, timers, gettys and
# the distribution's PostgreSQL and pgqd units. Units copied above win over masks.
for u in $(ls /lib/systemd/system/sysinit.target.wants/ /etc/systemd/system/sysinit.target.wants/ 2>/dev/null | grep -v ':$' | sort -u) \
	systemd-tmpfiles-clean.timer systemd-tmpfiles-clean.service systemd-tmpfiles-setup.service \
	systemd-tmpfiles-setup-dev.service postgresql.service postgresql@.service \
	getty.target console-getty.service getty@.service apt-daily.timer apt-daily-upgrade.timer \
	dpkg-db-backup.timer e2scrub_all.timer fstrim.timer man-db.timer systemd-timesyncd.service \
	systemd-pstore.service e2scrub_reap.service remote-fs.target cron.service; do
	[ -e "$u" ] || ln -s /dev/null "$u"
done
rm -f systemd-journald.service
cat > skytest.target <<T
[Unit]
Description=skytools test target
Requires=basic.target systemd-journald.service
After=basic.target systemd-journald.service
AllowIsolate=yes
T
exec /lib/systemd/systemd --system --unit=skytest.target
`

// bootSandbox starts systemd with the unit files of unitDir and waits until it runs.
// It skips when namespaces or systemd are not available to the test.
func bootSandbox(t *testing.T, dir, unitDir string) *sandbox {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("booting systemd in a namespace needs root")
	}
	for _, p := range []string{"/lib/systemd/systemd", "/usr/bin/unshare", "/usr/bin/nsenter", "/usr/bin/setsid"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("no %s", p)
		}
	}
	if out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--mount", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot create PID and mount namespaces here: %v %s", err, out)
	}
	script := filepath.Join(dir, "boot.sh")
	if err := os.WriteFile(script, []byte(bootScript), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &sandbox{t: t, log: &bytes.Buffer{}}
	s.cmd = exec.Command("setsid", "unshare", "--pid", "--fork", "--mount-proc", "--mount", "--propagation", "private", "sh", script, unitDir)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	t.Cleanup(func() { s.poweroff(done) })

	// systemd is unshare's child; setsid may have forked once more.
	deadline := time.Now().Add(30 * time.Second)
	for s.pid == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no systemd started in the sandbox; log:\n%s", s.log)
		}
		out, _ := exec.Command("pgrep", "-f", "systemd --system --unit=skytest.target").Output()
		for _, f := range strings.Fields(string(out)) {
			pid, _ := strconv.Atoi(f)
			if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) == "systemd" {
				s.pid = pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		out, _ := s.run(ctx, "systemctl", "is-system-running")
		state := strings.TrimSpace(out)
		if state == "running" || state == "degraded" {
			return s
		}
		if ctx.Err() != nil {
			jout, _ := s.run(context.Background(), "systemctl", "--failed", "--no-pager")
			t.Fatalf("sandbox systemd not running (state %q); failed units:\n%s\nlog:\n%s", state, jout, s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run runs a command inside the sandbox's namespaces.
func (s *sandbox) run(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"-t", strconv.Itoa(s.pid), "-m", "-p"}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", full...).CombinedOutput()
	return string(out), err
}

// must runs a command in the sandbox and fails the test if it fails.
func (s *sandbox) must(args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := s.run(ctx, args...)
	if err != nil {
		s.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// journal returns the unit's journal entries as JSON objects.
func (s *sandbox) journal(unit string, match ...string) []map[string]any {
	s.t.Helper()
	args := append([]string{"journalctl", "-u", unit, "-o", "json", "--no-pager"}, match...)
	out := s.must(args...)
	var entries []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" || !strings.HasPrefix(line, "{") {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			s.t.Fatalf("journal line %q: %v", line, err)
		}
		entries = append(entries, e)
	}
	return entries
}

// poweroff stops the sandbox and makes sure its namespace is gone.
func (s *sandbox) poweroff(done <-chan error) {
	if s.pid != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _ = s.run(ctx, "systemctl", "poweroff")
		cancel()
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		if s.pid != 0 {
			_ = exec.Command("kill", "-9", strconv.Itoa(s.pid)).Run()
		}
		<-done
		s.t.Errorf("sandbox systemd did not power off within 60s; killed")
	}
	if s.pid != 0 {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", s.pid)); err == nil {
			s.t.Errorf("sandbox systemd (pid %d) still exists after poweroff", s.pid)
		}
	}
}

// installRoot makes a directory outside /tmp (which the sandbox hides) for an
// installation the sandbox's services can reach, removed when the test ends.
func installRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/lib", "skytools-systemd-test-")
	if err != nil {
		t.Skipf("cannot create a directory under /var/lib: %v", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestPgqdServiceUnderRealSystemd(t *testing.T) {
	root := installRoot(t)
	// The test cluster must live where the sandbox's services can see it.
	t.Setenv(pgtest.EnvBaseDir, filepath.Join(root, "pgtest"))
	c := pgtest.NewCluster(t)
	db := c.DB(t)
	conn := db.Conn(t)
	if err := pgtest.CreateExtension("pgq")(context.Background(), conn); err != nil {
		t.Skipf("original PgQ for this test: %v", err)
	}
	ctx := context.Background()
	for _, q := range []string{"SELECT pgq.create_queue('orders')", "SELECT pgq.set_queue_config('orders', 'ticker_max_lag', '0')"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	prefix := filepath.Join(root, "prefix")
	etc := filepath.Join(root, "etc")
	cmd := exec.Command("make", "install", "PREFIX="+prefix, "SYSCONFDIR="+etc)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	cfg := fmt.Sprintf("connstr = \"host=%s port=%d user=postgres\"\ndatabases = [%q]\nticker_period = \"50ms\"\nstats_period = \"1s\"\n",
		c.SockDir, c.Port, db.Name)
	if err := os.WriteFile(filepath.Join(etc, "skytools", "pgqd.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	s := bootSandbox(t, root, filepath.Join(prefix, "lib/systemd/system"))
	s.must("systemctl", "start", "pgqd.service") // Type=notify: returns after READY=1
	if st := strings.TrimSpace(s.must("systemctl", "is-active", "pgqd.service")); st != "active" {
		t.Fatalf("pgqd.service is %s", st)
	}
	var status string
	deadline := time.Now().Add(30 * time.Second)
	for !strings.HasPrefix(status, "ticking 1 queues in 1 of 1 databases") {
		if time.Now().After(deadline) {
			t.Fatalf("StatusText %q", status)
		}
		status = strings.TrimSpace(s.must("systemctl", "show", "-p", "StatusText", "--value", "pgqd.service"))
		time.Sleep(50 * time.Millisecond)
	}
	var ticks int64
	for ticks < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("queue not ticked by the service: last tick %d", ticks)
		}
		_, _ = conn.Exec(ctx, "SELECT pgq.insert_event('orders', 't', 'x')")
		if err := conn.QueryRow(ctx, "SELECT last_tick_id FROM pgq.get_queue_info('orders')").Scan(&ticks); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if user := strings.TrimSpace(s.must("ps", "-o", "user=", "-p", strings.TrimSpace(s.must("systemctl", "show", "-p", "MainPID", "--value", "pgqd.service")))); user != "postgres" {
		t.Fatalf("pgqd runs as %q, want postgres", user)
	}

	// journald-native fields: the stats line carries DATABASE=.
	var stats []map[string]any
	for len(stats) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no journal entry with DATABASE=" + db.Name)
		}
		stats = s.journal("pgqd.service", "DATABASE="+db.Name)
		time.Sleep(100 * time.Millisecond)
	}
	if e := stats[0]; e["SYSLOG_IDENTIFIER"] != "pgqd" || e["DATABASE"] != db.Name {
		t.Fatalf("journal entry %v", e)
	}

	s.must("systemctl", "reload", "pgqd.service")
	for len(s.journal("pgqd.service", "MESSAGE=configuration reloaded")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("reload not logged")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.must("systemctl", "stop", "pgqd.service")
	if res := strings.TrimSpace(s.must("systemctl", "show", "-p", "Result", "--value", "pgqd.service")); res != "success" {
		t.Fatalf("stop result %q", res)
	}
	if code := strings.TrimSpace(s.must("systemctl", "show", "-p", "ExecMainStatus", "--value", "pgqd.service")); code != "0" {
		t.Fatalf("pgqd exit status %s after stop", code)
	}
}

// queue-mover@NAME and dispatcher@NAME under a real systemd: the instance name is the
// config file's base name and the consumer's name, READY=1 and STATUS= reach
// systemd, events are moved and dispatched, the journal has QUEUE= fields, reload
// and stop work.
func TestRelayServicesUnderRealSystemd(t *testing.T) {
	root := installRoot(t)
	t.Setenv(pgtest.EnvBaseDir, filepath.Join(root, "pgtest"))
	c := pgtest.NewCluster(t)
	src, dst := c.DB(t), c.DB(t)
	srcPool, dstPool := src.Pool(t), dst.Pool(t)
	ctx := context.Background()
	for _, db := range []*pgtest.Database{src, dst} {
		conn := db.Conn(t)
		if err := relaytest.InstallOurs(ctx, conn); err != nil {
			t.Fatal(err)
		}
	}
	relaytest.Queue(t, srcPool, "orders", "moveit")
	relaytest.Queue(t, srcPool, "changes", "dwh")
	relaytest.Queue(t, dstPool, "orders", "")
	relaytest.Exec(t, srcPool, `CREATE TABLE accounts (id int PRIMARY KEY, balance int);
CREATE TRIGGER q AFTER INSERT OR UPDATE OR DELETE ON accounts FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('changes')`)
	relaytest.Exec(t, dstPool, `CREATE TABLE accounts (id int PRIMARY KEY, balance int)`)

	prefix := filepath.Join(root, "prefix")
	etc := filepath.Join(root, "etc")
	cmd := exec.Command("make", "install", "PREFIX="+prefix, "SYSCONFDIR="+etc)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	common := fmt.Sprintf("src_db = %q\ndst_db = %q\nloop_delay = \"100ms\"\n", src.ConnString, dst.ConnString)
	files := map[string]string{
		"queue-mover/moveit.toml": common + "queue = \"orders\"\n",
		"dispatcher/dwh.toml":     common + "queue = \"changes\"\nmode = \"bulk\"\n[[table]]\nname = \"accounts\"\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(etc, "skytools", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	s := bootSandbox(t, root, filepath.Join(prefix, "lib/systemd/system"))
	units := []string{"queue-mover@moveit.service", "dispatcher@dwh.service"}
	for _, u := range units {
		s.must("systemctl", "start", u) // Type=notify: returns after READY=1
		if st := strings.TrimSpace(s.must("systemctl", "is-active", u)); st != "active" {
			t.Fatalf("%s is %s", u, st)
		}
	}
	relaytest.Ticker(t, srcPool, "orders")
	relaytest.Ticker(t, srcPool, "changes")
	relaytest.Exec(t, srcPool, `SELECT pgq.insert_event('orders', 'order.new', g::text) FROM generate_series(1, 50) g;
INSERT INTO accounts SELECT g, g * 10 FROM generate_series(1, 20) g; UPDATE accounts SET balance = 0 WHERE id <= 5; DELETE FROM accounts WHERE id > 15`)
	relaytest.WaitFor(t, time.Minute, "events moved and dispatched", func() bool {
		return relaytest.Val[int64](t, dstPool, "SELECT count(*) FROM pgq.event_template") == 50 &&
			relaytest.Val[int64](t, dstPool, "SELECT count(*) FROM accounts WHERE balance = 0 OR id <= 15") == 15
	})
	if n := relaytest.Val[int64](t, dstPool, "SELECT count(*) FROM accounts"); n != 15 {
		t.Fatalf("destination accounts: %d rows, want 15", n)
	}
	for _, u := range units {
		relaytest.WaitFor(t, time.Minute, u+" status line", func() bool {
			return strings.Contains(s.must("systemctl", "show", "-p", "StatusText", "--value", u), " events")
		})
		pid := strings.TrimSpace(s.must("systemctl", "show", "-p", "MainPID", "--value", u))
		if user := strings.TrimSpace(s.must("ps", "-o", "user=", "-p", pid)); user != "postgres" {
			t.Fatalf("%s runs as %q, want postgres", u, user)
		}
	}
	if e := s.journal(units[0], "QUEUE=orders", "CONSUMER=moveit"); len(e) == 0 || e[0]["SYSLOG_IDENTIFIER"] != "queue-mover" {
		t.Fatalf("no journal entry of queue-mover with QUEUE=orders CONSUMER=moveit: %v", e)
	}
	for _, u := range units {
		s.must("systemctl", "reload", u)
		relaytest.WaitFor(t, time.Minute, u+" reload logged", func() bool {
			return len(s.journal(u, "MESSAGE=configuration reloaded")) > 0
		})
		s.must("systemctl", "stop", u)
		if res := strings.TrimSpace(s.must("systemctl", "show", "-p", "Result", "--value", u)); res != "success" {
			t.Fatalf("%s stop result %q", u, res)
		}
	}
}
