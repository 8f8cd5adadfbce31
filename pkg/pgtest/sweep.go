package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The owner file in each cluster directory names the test process that made it, with
// the process's start time so a recycled pid is not mistaken for the owner.
const ownerFile = "owner"

func writeOwnerFile(dir string) error {
	pid := os.Getpid()
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(fmt.Sprintf("%d %s\n", pid, procStartTime(pid))), 0o644)
}

// procStartTime is field 22 of /proc/PID/stat (start time in clock ticks), "" if the
// process does not exist.
func procStartTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) may contain spaces; fields after it are plain.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// ownerAlive reports whether the process recorded in dir's owner file still runs.
func ownerAlive(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		// No owner file: a directory being created right now, or debris. Only debris
		// older than a minute is swept.
		st, err := os.Stat(dir)
		return err == nil && time.Since(st.ModTime()) < time.Minute
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return false
	}
	return procStartTime(pid) == f[1]
}

// sweepOrphans stops the servers and removes the directories of clusters whose test
// process is gone (killed runs, panics). Errors are ignored: sweeping is best effort and
// must never fail the current run.
func sweepOrphans(inst *installation) {
	entries, err := os.ReadDir(inst.baseDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || strings.HasPrefix(name, "initdb-") {
			if strings.HasSuffix(name, ".tmp") {
				dir := filepath.Join(inst.baseDir, name)
				if st, err := os.Stat(dir); err == nil && time.Since(st.ModTime()) > 10*time.Minute {
					_ = os.RemoveAll(dir)
				}
			}
			continue
		}
		dir := filepath.Join(inst.baseDir, name)
		if ownerAlive(dir) {
			continue
		}
		stopOrphanServer(filepath.Join(dir, "data"))
		_ = os.RemoveAll(dir)
	}
}

// stopOrphanServer sends an immediate-shutdown signal to the postmaster recorded in
// datadir/postmaster.pid, if it still runs there, and waits briefly for it to go.
func stopOrphanServer(datadir string) {
	b, err := os.ReadFile(filepath.Join(datadir, "postmaster.pid"))
	if err != nil {
		return
	}
	lines := strings.SplitN(string(b), "\n", 3)
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 1 {
		return
	}
	// The postmaster runs with its data directory as working directory: anything else
	// under that pid is not ours to signal.
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || cwd != datadir {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGQUIT)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
