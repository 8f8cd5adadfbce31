package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles ./cmd/TOOL of this module once per test process and returns the
// binary's path. The binary lives in the pgtest base directory, where the servers'
// user can run it too (an archive_command runs as that user). It is removed with the
// test process's other debris by a later orphan sweep.
func Build(t testing.TB, tool string) string {
	t.Helper()
	path, err := build(tool)
	if err != nil {
		t.Fatalf("pgtest: build %s: %v", tool, err)
	}
	return path
}

func build(tool string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	base := os.Getenv(EnvBaseDir)
	var o *owner
	if os.Geteuid() == 0 {
		if o, err = lookupOwner(); err != nil {
			return "", err
		}
	}
	if base == "" {
		uid := os.Getuid()
		if o != nil {
			uid = int(o.uid)
		}
		base = filepath.Join(os.TempDir(), fmt.Sprintf("skytools-pgtest-%d", uid))
	}
	inst := &installation{owner: o, baseDir: base}
	dir := filepath.Join(base, fmt.Sprintf("bin-%d", os.Getpid()))
	if err := inst.ensureDir(base); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	if !fileExists(filepath.Join(dir, ownerFile)) {
		if err := writeOwnerFile(dir); err != nil {
			return "", err
		}
	}
	out := filepath.Join(dir, tool)
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if fileExists(out) {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out+".new", "./cmd/"+tool)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/%s: %w\n%s", tool, err, b)
	}
	if err := os.Rename(out+".new", out); err != nil {
		return "", err
	}
	return out, nil
}

// moduleRoot finds the directory of go.mod above the working directory (a test runs
// in its package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Output collects what a process started by a test writes (its cmd.Stdout or
// cmd.Stderr) while the test reads it: writes and String are safe to call
// concurrently.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
