package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Option changes how a cluster is set up.
type Option func(*options)

type options struct {
	conf      []string
	standbyOf *Cluster
	prepare   func(ctx context.Context, c *Cluster) error
	tcp       bool
	name      string
}

// WALLevel sets wal_level ("minimal", "replica", "logical").
func WALLevel(level string) Option {
	return Conf("wal_level = " + quoteConf(level))
}

// Archive turns on WAL archiving with the given archive_command.
func Archive(command string) Option {
	return Conf("archive_mode = on", "archive_command = "+quoteConf(command))
}

// Conf appends lines to postgresql.conf (later lines win).
func Conf(lines ...string) Option {
	return func(o *options) { o.conf = append(o.conf, lines...) }
}

// TCP makes the server also listen on 127.0.0.1 on a free port (Cluster.Port).
func TCP() Option {
	return func(o *options) { o.tcp = true }
}

// StandbyOf makes the cluster a streaming standby of primary: its data directory is
// taken with pg_basebackup -R from the running primary.
func StandbyOf(primary *Cluster) Option {
	return func(o *options) { o.standbyOf = primary }
}

// FromDataDir makes the cluster's data directory with prepare instead of initdb, for
// servers started from a restored backup. prepare gets the cluster before it starts:
// c.DataDir does not exist yet and prepare must create it (as the server's user, for
// example through c.Command). pgtest then appends its own settings (port, socket,
// options given with Conf) to postgresql.conf and starts the server; the start waits
// until the server accepts connections (a recovering server: once it is consistent).
func FromDataDir(prepare func(ctx context.Context, c *Cluster) error) Option {
	return func(o *options) { o.prepare = prepare }
}

// Name labels the cluster's directory (for humans reading the base directory).
func Name(name string) Option {
	return func(o *options) { o.name = name }
}

func quoteConf(v string) string {
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// Cluster is a private PostgreSQL server.
type Cluster struct {
	Dir     string // the cluster's directory: data/, sock/, server.log
	DataDir string
	SockDir string
	Port    int
	// TCPAddr is "127.0.0.1:PORT" when started with TCP(), else "".
	TCPAddr string
	Major   int // PostgreSQL major version

	inst    *installation
	logPath string

	mu   sync.Mutex
	proc *os.Process
	done chan struct{} // closed when the postmaster exits
	seq  atomic.Int64  // database name counter
}

// NewCluster starts a cluster for one test and stops and removes it when the test ends.
// A missing PostgreSQL skips the test (fails it under PGTEST_REQUIRE=1).
func NewCluster(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, opts...)
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log %s:\n%s", c.logPath, c.LogTail(0, 200))
		}
		if err := c.Destroy(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c
}

// Start creates and starts a cluster outside of a test (the caller must Destroy it).
func Start(ctx context.Context, opts ...Option) (*Cluster, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	inst, err := findInstallation()
	if err != nil {
		return nil, err
	}
	sweepOrphans(inst)
	c, err := create(ctx, inst, &o)
	if err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		_ = c.Destroy()
		return nil, err
	}
	return c, nil
}

func create(ctx context.Context, inst *installation, o *options) (*Cluster, error) {
	label := o.name
	if label == "" {
		label = "c"
	}
	dir, err := os.MkdirTemp(inst.baseDir, fmt.Sprintf("%s-%d-", label, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("create cluster directory: %w", err)
	}
	c := &Cluster{
		Dir:     dir,
		DataDir: filepath.Join(dir, "data"),
		SockDir: filepath.Join(dir, "sock"),
		Port:    5432,
		Major:   inst.major,
		inst:    inst,
		logPath: filepath.Join(dir, "server.log"),
	}
	if len(c.SockDir)+len("/.s.PGSQL.65535.lock") > 107 {
		return nil, fmt.Errorf("socket path %s is too long for a unix socket: set %s to a shorter directory", c.SockDir, EnvBaseDir)
	}
	for _, d := range []string{dir, c.SockDir} {
		if err := inst.ensureDir(d); err != nil {
			return nil, err
		}
	}
	if err := writeOwnerFile(dir); err != nil {
		return nil, err
	}
	if o.tcp {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		c.Port = port
		c.TCPAddr = fmt.Sprintf("127.0.0.1:%d", port)
	}

	if o.prepare != nil {
		if err := o.prepare(ctx, c); err != nil {
			return nil, fmt.Errorf("prepare data directory %s: %w", c.DataDir, err)
		}
	} else if o.standbyOf != nil {
		p := o.standbyOf
		cmd := inst.command(ctx, "pg_basebackup", "-D", c.DataDir, "-R", "-X", "stream", "-c", "fast",
			"-h", p.SockDir, "-p", strconv.Itoa(p.Port), "-U", "postgres", "--no-sync")
		cmd.Dir = dir
		if err := run(cmd); err != nil {
			return nil, fmt.Errorf("standby of %s: %w", p.Dir, err)
		}
	} else {
		tmpl, err := inst.initdbTemplate(ctx)
		if err != nil {
			return nil, err
		}
		cmd := inst.command(ctx, "cp", "-a", tmpl, c.DataDir)
		if err := run(cmd); err != nil {
			return nil, err
		}
	}

	listen := "''"
	if o.tcp {
		listen = "'127.0.0.1'"
	}
	conf := []string{
		"",
		"# pgtest settings",
		"listen_addresses = " + listen,
		"port = " + strconv.Itoa(c.Port),
		"unix_socket_directories = " + quoteConf(c.SockDir),
		"fsync = off",
		"full_page_writes = off",
		"shared_buffers = 64MB",
		"max_connections = 100",
		"max_wal_size = 1GB",
		"log_line_prefix = '%m [%p] %q%u@%d '",
		"log_min_messages = warning",
		"log_timezone = 'UTC'",
		"timezone = 'UTC'",
		"datestyle = 'iso, mdy'",
		"lc_messages = 'C'",
	}
	conf = append(conf, o.conf...)
	if err := appendFile(filepath.Join(c.DataDir, "postgresql.conf"), strings.Join(conf, "\n")+"\n"); err != nil {
		return nil, err
	}
	return c, nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("append to %s: %w", path, err)
	}
	return f.Close()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start launches the postmaster and waits until it accepts connections.
func (c *Cluster) start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		return fmt.Errorf("cluster %s already running", c.Dir)
	}
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	// Not exec.CommandContext: the server must outlive the start-up context.
	cmd := c.inst.command(context.Background(), "postgres", "-D", c.DataDir)
	cmd.Dir = c.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	// The kernel tells the postmaster to quit if the test process dies.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres in %s: %w", c.Dir, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	c.proc, c.done = cmd.Process, done

	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready, _ := c.pidFileStatus(); ready {
			return nil
		}
		select {
		case <-done:
			c.proc = nil
			return fmt.Errorf("postgres in %s exited during start-up:\n%s", c.Dir, c.LogTail(0, 30))
		case <-ctx.Done():
			return fmt.Errorf("postgres in %s did not become ready: %w\n%s", c.Dir, ctx.Err(), c.LogTail(0, 30))
		case <-tick.C:
		}
	}
}

// pidFileStatus reads line 8 of postmaster.pid: "ready" once connections are accepted.
func (c *Cluster) pidFileStatus() (bool, error) {
	b, err := os.ReadFile(filepath.Join(c.DataDir, "postmaster.pid"))
	if err != nil {
		return false, err
	}
	lines := strings.Split(string(b), "\n")
	return len(lines) >= 8 && strings.TrimSpace(lines[7]) == "ready", nil
}

// Stop shuts the server down (fast mode: roll back open transactions, checkpoint).
func (c *Cluster) Stop() error { return c.stop(syscall.SIGINT, 60*time.Second) }

// Crash stops the server the way a power cut would look to PostgreSQL: an immediate
// shutdown, no checkpoint, crash recovery at the next start.
func (c *Cluster) Crash() error { return c.stop(syscall.SIGQUIT, 30*time.Second) }

func (c *Cluster) stop(sig syscall.Signal, wait time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return nil
	}
	if err := c.proc.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal postgres in %s: %w", c.Dir, err)
	}
	select {
	case <-c.done:
	case <-time.After(wait):
		_ = syscall.Kill(-c.proc.Pid, syscall.SIGKILL)
		<-c.done
		c.proc = nil
		return fmt.Errorf("postgres in %s did not stop within %s after %v; killed", c.Dir, wait, sig)
	}
	c.proc = nil
	return nil
}

// Restart stops the server (fast) and starts it again.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.Stop(); err != nil {
		return err
	}
	return c.start(ctx)
}

// StartAgain starts a stopped server.
func (c *Cluster) StartAgain(ctx context.Context) error { return c.start(ctx) }

// Running reports whether the postmaster is alive.
func (c *Cluster) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// Destroy stops the server if it runs and removes the cluster directory.
func (c *Cluster) Destroy() error {
	err := c.Stop()
	if rmErr := os.RemoveAll(c.Dir); rmErr != nil && err == nil {
		err = fmt.Errorf("remove %s: %w", c.Dir, rmErr)
	}
	return err
}

// ConnString is a libpq key/value connection string for database db as the
// superuser "postgres", over the unix socket.
func (c *Cluster) ConnString(db string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", c.SockDir, c.Port, db)
}

// Connect opens a connection to database db.
func (c *Cluster) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, c.ConnString(db))
	if err != nil {
		return nil, fmt.Errorf("connect to %s in %s: %w", db, c.Dir, err)
	}
	return conn, nil
}

// Command returns a command for a binary of this PostgreSQL installation (pgbench,
// pg_ctl, psql, ...) or any other program, run as the server's user with PGHOST,
// PGPORT, PGUSER and PGDATA pointing at this cluster.
func (c *Cluster) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := c.inst.command(ctx, name, args...)
	cmd.Dir = c.Dir
	cmd.Env = append(cmd.Env, "PGHOST="+c.SockDir, "PGPORT="+strconv.Itoa(c.Port), "PGUSER=postgres", "PGDATA="+c.DataDir)
	return cmd
}

// Promote promotes a standby and waits until it leaves recovery.
func (c *Cluster) Promote(ctx context.Context) error {
	if err := run(c.Command(ctx, "pg_ctl", "promote", "-w", "-D", c.DataDir)); err != nil {
		return err
	}
	return nil
}

// BinDir is the directory of the PostgreSQL binaries in use.
func (c *Cluster) BinDir() string { return c.inst.binDir }

// Owner returns the uid and gid the server runs as (ok is false when it runs as the
// test's own user), for tests that prepare files the server must read or write.
func (c *Cluster) Owner() (uid, gid int, ok bool) {
	if c.inst.owner == nil {
		return os.Getuid(), os.Getgid(), false
	}
	return int(c.inst.owner.uid), int(c.inst.owner.gid), true
}

// MkdirOwned creates dir (0700, with parents) owned by the server's user.
func (c *Cluster) MkdirOwned(dir string) error { return c.inst.ensureDir(dir) }

// LogSize is the current size of the server log, to pass to LogTail later.
func (c *Cluster) LogSize() int64 {
	st, err := os.Stat(c.logPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// LogTail returns the server log from byte offset from, at most the last max lines.
func (c *Cluster) LogTail(from int64, max int) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", c.logPath, err)
	}
	if from > 0 && from <= int64(len(b)) {
		b = b[from:]
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > max {
		lines = lines[len(lines)-max:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
