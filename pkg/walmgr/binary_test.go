package walmgr

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgtest"
)

// binFixture runs the walmgrd binary against a repository of its own, without a
// server: archive_command and restore_command are plain processes.
type binFixture struct {
	t       *testing.T
	bin     string
	dir     string
	repo    string
	cfgPath string
}

func newBinFixture(t *testing.T, repoSetup func(repo string), extra ...string) *binFixture {
	t.Helper()
	f := &binFixture{t: t, bin: pgtest.Build(t, "walmgrd"), dir: t.TempDir()}
	f.repo = filepath.Join(f.dir, "repo")
	if err := os.Mkdir(f.repo, 0o700); err != nil {
		t.Fatal(err)
	}
	if repoSetup != nil {
		repoSetup(f.repo)
	}
	f.cfgPath = filepath.Join(f.dir, "walmgrd.toml")
	cfg := fmt.Sprintf("repository = %q\n%s\n", f.repo, strings.Join(extra, "\n"))
	if err := os.WriteFile(f.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, code := f.run("setup"); code != 0 || !strings.Contains(out, "created repository") {
		t.Fatalf("setup: exit %d: %s", code, out)
	}
	return f
}

func (f *binFixture) command(args ...string) *exec.Cmd {
	return exec.Command(f.bin, append([]string{"-c", f.cfgPath}, args...)...)
}

func (f *binFixture) run(args ...string) (string, string, int) {
	f.t.Helper()
	cmd := f.command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return stdout.String(), stderr.String(), 0
}

func (f *binFixture) file(name string, data []byte) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// temporaries lists uncommitted files in the repository.
func (f *binFixture) temporaries() []string {
	var out []string
	_ = filepath.WalkDir(f.repo, func(p string, e os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(e.Name(), ".tmp-") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestKillDuringArchiveThenRetrySucceeds kills archive with SIGKILL while it is
// copying a segment (fed through a pipe, so the kill lands mid-copy for certain),
// then retries as PostgreSQL would: the final name must never have existed, and the
// retry must succeed and store the whole segment.
func TestKillDuringArchiveThenRetrySucceeds(t *testing.T) {
	t.Parallel()
	f := newBinFixture(t, nil, `compression = "none"`)
	name := SegmentName(1, 6, testSegSize)
	seg := fakeSegment(1, 6, 42, 1)
	fifo := filepath.Join(f.dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := f.command("archive", fifo, name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(seg[:len(seg)/2]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		tmp := f.temporaries()
		if len(tmp) == 1 {
			if st, err := os.Stat(tmp[0]); err == nil && st.Size() > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("archive never started writing; stderr: %s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not waiting for a result
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	w.Close()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("archive was not killed mid-copy: %v", err)
	}
	final := filepath.Join(f.repo, "wal", name[:16], name)
	if _, err := os.Stat(final); !os.IsNotExist(err) {
		t.Fatalf("a killed archive left a file under the final name: %v", err)
	}
	if len(f.temporaries()) != 1 {
		t.Fatalf("expected the killed copy's temporary file, found %v", f.temporaries())
	}
	// PostgreSQL retries with the real file.
	src := f.file("seg", seg)
	if _, errOut, code := f.run("archive", src, name); code != 0 {
		t.Fatalf("retry after kill: exit %d: %s", code, errOut)
	}
	dest := filepath.Join(f.dir, "back")
	if _, errOut, code := f.run("fetch", name, dest); code != 0 {
		t.Fatalf("fetch: exit %d: %s", code, errOut)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, seg) {
		t.Fatal("the retried archive does not hold the whole segment")
	}
	// Re-archiving the same segment (PostgreSQL after a crash) succeeds; another fails.
	if _, errOut, code := f.run("archive", src, name); code != 0 {
		t.Fatalf("identical re-archive: exit %d: %s", code, errOut)
	}
	other := f.file("other", fakeSegment(1, 6, 42, 9))
	if _, errOut, code := f.run("archive", other, name); code != 1 || !strings.Contains(errOut, "different file is already archived") {
		t.Fatalf("different re-archive: exit %d: %s", code, errOut)
	}
}

// TestDiskFullRepositoryFailsArchiveWithoutPartialFile archives into a repository on
// a tmpfs too small for one segment.
func TestDiskFullRepositoryFailsArchiveWithoutPartialFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	t.Parallel()
	var mounted string
	f := newBinFixture(t, func(repo string) {
		if err := syscall.Mount("tmpfs", repo, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
			t.Skipf("cannot mount a tmpfs here: %v", err)
		}
		mounted = repo
		t.Cleanup(func() {
			if err := syscall.Unmount(mounted, 0); err != nil {
				t.Errorf("unmount %s: %v", mounted, err)
			}
		})
	}, `compression = "none"`)
	name := SegmentName(1, 2, testSegSize)
	_, errOut, code := f.run("archive", f.file("seg", fakeSegment(1, 2, 42, 1)), name)
	if code != 1 || !strings.Contains(errOut, "no space left on device") {
		t.Fatalf("archive into a full repository: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(f.repo, "wal", name[:16], name)); !os.IsNotExist(err) {
		t.Fatalf("a segment appeared despite the full disk: %v", err)
	}
	if tmp := f.temporaries(); len(tmp) != 0 {
		t.Fatalf("partial files left behind: %v", tmp)
	}
	// PostgreSQL's retry reports the same failure: no half file was taken for a copy.
	if _, _, code := f.run("archive", filepath.Join(f.dir, "seg"), name); code != 1 {
		t.Fatalf("retry on a still-full disk: exit %d", code)
	}
}

// TestFetchPrefetchServesTheNextSegmentsVerified archives four segments, fetches the
// first with fetch_prefetch = 2, and checks that the next two are decompressed ahead
// and then handed over by the following fetches, byte for byte.
func TestFetchPrefetchServesTheNextSegmentsVerified(t *testing.T) {
	t.Parallel()
	f := newBinFixture(t, nil, "fetch_prefetch = 2")
	// fetch leaves its prefetcher running in the background: wait for it to finish
	// before the test's directory goes away.
	t.Cleanup(func() {
		deadline := time.Now().Add(time.Minute)
		for prefetchersRunning(f.cfgPath) {
			if time.Now().After(deadline) {
				t.Error("prefetch processes still running after a minute")
				return
			}
			time.Sleep(10 * time.Millisecond) // polling a condition
		}
	})
	segs := map[string][]byte{}
	for i := uint64(1); i <= 4; i++ {
		name := SegmentName(1, i, testSegSize)
		segs[name] = fakeSegment(1, i, 42, i)
		if _, errOut, code := f.run("archive", f.file(name, segs[name]), name); code != 0 {
			t.Fatalf("archive %s: %s", name, errOut)
		}
	}
	walDir := filepath.Join(f.dir, "pg_wal")
	if err := os.Mkdir(walDir, 0o700); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(walDir, "RECOVERYXLOG")
	fetch := func(i uint64) {
		t.Helper()
		name := SegmentName(1, i, testSegSize)
		if _, errOut, code := f.run("fetch", name, dest); code != 0 {
			t.Fatalf("fetch %s: exit %d: %s", name, code, errOut)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, segs[name]) {
			t.Fatalf("fetch %s handed over other content", name)
		}
	}
	fetch(1)
	ahead := filepath.Join(walDir, prefetchDirName)
	for _, i := range []uint64{2, 3} {
		p := filepath.Join(ahead, SegmentName(1, i, testSegSize))
		deadline := time.Now().Add(time.Minute)
		for {
			if _, err := os.Stat(p); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("segment %d was not prefetched", i)
			}
			time.Sleep(10 * time.Millisecond) // polling a condition
		}
	}
	fetch(2)
	if _, err := os.Stat(filepath.Join(ahead, SegmentName(1, 2, testSegSize))); !os.IsNotExist(err) {
		t.Fatal("fetch did not take the prefetched copy")
	}
	fetch(3)
	fetch(4)
	// Nothing beyond the archive is invented, and a genuinely absent segment is still 1.
	if _, _, code := f.run("fetch", SegmentName(1, 9, testSegSize), dest); code != 1 {
		t.Fatalf("fetch of an absent segment with prefetch on: exit %d", code)
	}
}

// prefetchersRunning reports whether a "walmgrd -c cfgPath ... prefetch" process lives.
func prefetchersRunning(cfgPath string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		hasCfg, hasPrefetch := false, false
		for _, a := range args {
			hasCfg = hasCfg || a == cfgPath
			hasPrefetch = hasPrefetch || a == "prefetch"
		}
		if hasCfg && hasPrefetch {
			return true
		}
	}
	return false
}
