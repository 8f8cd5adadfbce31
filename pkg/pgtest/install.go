package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Environment variables that steer the harness.
const (
	EnvRequire = "PGTEST_REQUIRE" // "1": a missing PostgreSQL fails tests instead of skipping them
	EnvBinDir  = "PGBINDIR"       // directory with initdb and postgres
	EnvUser    = "PGTEST_USER"    // unprivileged user for the servers when running as root
	EnvBaseDir = "PGTEST_DIR"     // base directory for clusters
)

// ErrNotInstalled means no PostgreSQL server binaries were found.
var ErrNotInstalled = errors.New("PostgreSQL server binaries not found (set PGBINDIR, or install the postgresql server package)")

// ErrMissingExtension means an extension a test needs is not installed. Return it
// (wrapped) from a template setup to skip the tests that need it, except under
// PGTEST_REQUIRE=1.
var ErrMissingExtension = errors.New("PostgreSQL extension not installed")

// MissingExtension is the error for a missing extension name.
func MissingExtension(name string) error {
	return fmt.Errorf("%w: %s (install its package, e.g. postgresql-15-pgq3 for pgq)", ErrMissingExtension, name)
}

// installation is a PostgreSQL build on this machine and the identity to run it as.
type installation struct {
	binDir  string
	major   int
	version string // "15.18"
	owner   *owner // nil: run as ourselves
	baseDir string
}

// owner is the unprivileged account servers run as when the test runs as root.
type owner struct {
	name     string
	uid, gid uint32
}

func (o *owner) credential() *syscall.Credential {
	if o == nil {
		return nil
	}
	return &syscall.Credential{Uid: o.uid, Gid: o.gid, Groups: []uint32{}}
}

// findInstallation locates the binaries and decides who runs them and where.
func findInstallation() (*installation, error) {
	bin, err := findBinDir()
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s/postgres --version: %w", bin, err)
	}
	m := regexp.MustCompile(`(\d+)(?:\.(\d+))?`).FindStringSubmatch(string(out))
	if m == nil {
		return nil, fmt.Errorf("cannot parse PostgreSQL version from %q", strings.TrimSpace(string(out)))
	}
	major, _ := strconv.Atoi(m[1])
	inst := &installation{binDir: bin, major: major, version: m[0]}
	if os.Geteuid() == 0 {
		o, err := lookupOwner()
		if err != nil {
			return nil, err
		}
		inst.owner = o
	}
	inst.baseDir = os.Getenv(EnvBaseDir)
	if inst.baseDir == "" {
		uid := os.Getuid()
		if inst.owner != nil {
			uid = int(inst.owner.uid)
		}
		inst.baseDir = filepath.Join(os.TempDir(), fmt.Sprintf("skytools-pgtest-%d", uid))
	}
	if err := inst.ensureDir(inst.baseDir); err != nil {
		return nil, err
	}
	return inst, nil
}

func findBinDir() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres", "pg_ctl"} {
			if st, err := os.Stat(filepath.Join(dir, b)); err != nil || st.IsDir() {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv(EnvBinDir); dir != "" {
		if !has(dir) {
			return "", fmt.Errorf("%s=%s: no initdb/postgres/pg_ctl there", EnvBinDir, dir)
		}
		return dir, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOfPath(dirs[i]) > versionOfPath(dirs[j]) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	return "", ErrNotInstalled
}

func versionOfPath(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

func lookupOwner() (*owner, error) {
	names := []string{"postgres", "nobody"}
	if n := os.Getenv(EnvUser); n != "" {
		names = []string{n}
	}
	var lastErr error
	for _, n := range names {
		u, err := user.Lookup(n)
		if err != nil {
			lastErr = err
			continue
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		if uid == 0 {
			return nil, fmt.Errorf("%s=%s is root; PostgreSQL will not run as root", EnvUser, n)
		}
		return &owner{name: n, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root and no unprivileged user to run PostgreSQL as (set %s): %w", EnvUser, lastErr)
}

// ensureDir creates dir (0700) owned by the server user.
func (inst *installation) ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if inst.owner != nil {
		if err := os.Chown(dir, int(inst.owner.uid), int(inst.owner.gid)); err != nil {
			return fmt.Errorf("chown %s to %s: %w", dir, inst.owner.name, err)
		}
	}
	return nil
}

// command builds a command for a PostgreSQL binary, run as the server user.
func (inst *installation) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := name
	if !filepath.IsAbs(name) && !strings.ContainsRune(name, '/') {
		if p := filepath.Join(inst.binDir, name); fileExists(p) {
			path = p
		}
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: inst.owner.credential()}
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	if inst.owner != nil {
		cmd.Env = append(cmd.Env, "HOME="+inst.baseDir, "USER="+inst.owner.name)
	}
	return cmd
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// run executes a command and returns its combined output in the error on failure.
func run(cmd *exec.Cmd) error {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// initdbTemplate returns a data directory made by initdb for this installation, making
// it on first use. An flock on a lock file beside it serializes the first initdb
// between parallel tests and between test processes.
func (inst *installation) initdbTemplate(ctx context.Context) (string, error) {
	dir := filepath.Join(inst.baseDir, fmt.Sprintf("initdb-%s-%x", inst.version, hashString(inst.binDir)))
	if fileExists(filepath.Join(dir, "PG_VERSION")) {
		return dir, nil
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("initdb lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("initdb lock: %w", err)
	}
	if fileExists(filepath.Join(dir, "PG_VERSION")) {
		return dir, nil
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	cmd := inst.command(ctx, "initdb", "-D", tmp, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--data-checksums", "--no-sync", "--no-instructions")
	cmd.Dir = inst.baseDir
	if err := run(cmd); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("install initdb template: %w", err)
	}
	return dir, nil
}

func hashString(s string) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// skipOrFail ends a test that cannot get PostgreSQL: a skip when it is not installed,
// a failure when PGTEST_REQUIRE=1 or when it is installed but broken.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if (errors.Is(err, ErrNotInstalled) || errors.Is(err, ErrMissingExtension)) && os.Getenv(EnvRequire) != "1" {
		t.Skipf("pgtest: %v", err)
	}
	t.Fatalf("pgtest: %v", err)
}

// RequireExtension ends the test unless extension name is available to CREATE
// EXTENSION in the cluster (its package is installed): a skip normally, a failure under
// PGTEST_REQUIRE=1, where .ci/run installs the packages.
func RequireExtension(t testing.TB, conn *pgx.Conn, name string) {
	t.Helper()
	var ok bool
	err := conn.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)", name).Scan(&ok)
	if err != nil {
		t.Fatalf("pgtest: look up extension %s: %v", name, err)
	}
	if !ok {
		skipOrFail(t, MissingExtension(name))
	}
}

// CreateExtension is a template setup that creates extension name, or reports it
// missing (so the tests that need it skip, or fail under PGTEST_REQUIRE=1).
func CreateExtension(name string) func(context.Context, *pgx.Conn) error {
	return func(ctx context.Context, conn *pgx.Conn) error {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)", name).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return MissingExtension(name)
		}
		_, err := conn.Exec(ctx, "CREATE EXTENSION "+pgx.Identifier{name}.Sanitize())
		return err
	}
}
