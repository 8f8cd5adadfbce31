package repo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func put(t *testing.T, s Store, key string, data []byte) error {
	t.Helper()
	w, err := s.Create(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		_ = w.Abort()
		return err
	}
	return w.Commit(context.Background())
}

func read(t *testing.T, s Store, key string) []byte {
	t.Helper()
	o, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(io.NewSectionReader(o, 0, o.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tempFiles lists uncommitted files anywhere under root.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(e.Name(), tempPrefix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestCommitMakesObjectVisibleOnlyAfterwards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := NewDir(t.TempDir())
	w, err := d.Create(ctx, "wal/a/b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stat(ctx, "wal/a/b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("object visible before commit: %v", err)
	}
	if l, _ := d.List(ctx, "wal"); len(l) != 0 {
		t.Fatalf("List shows an uncommitted object: %v", l)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := read(t, d, "wal/a/b"); string(got) != "hello" {
		t.Fatalf("read %q", got)
	}
	if tf := tempFiles(t, d.Root()); len(tf) != 0 {
		t.Fatalf("temporary files left after commit: %v", tf)
	}
	l, err := d.List(ctx, "wal")
	if err != nil || len(l) != 1 || l[0].Key != "wal/a/b" || l[0].Size != 5 {
		t.Fatalf("List = %v, %v", l, err)
	}
}

func TestCommitNeverReplacesAnExistingObject(t *testing.T) {
	t.Parallel()
	d := NewDir(t.TempDir())
	if err := put(t, d, "k", []byte("first")); err != nil {
		t.Fatal(err)
	}
	err := put(t, d, "k", []byte("second"))
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second commit: %v, want ErrExists", err)
	}
	if got := read(t, d, "k"); string(got) != "first" {
		t.Fatalf("existing object changed to %q", got)
	}
	if tf := tempFiles(t, d.Root()); len(tf) != 0 {
		t.Fatalf("temporary files left after refused commit: %v", tf)
	}
}

func TestNotFoundOnlyWhenTheRepositoryIsThere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	d := NewDir(root)
	if _, err := d.Open(ctx, "wal/x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing object: %v, want ErrNotFound", err)
	}
	gone := NewDir(filepath.Join(root, "not-mounted"))
	_, err := gone.Open(ctx, "wal/x")
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("missing repository: %v, want an error that is not ErrNotFound", err)
	}
	if _, err := gone.Stat(ctx, "wal/x"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat on missing repository: %v", err)
	}
}

func TestKeysMustBeCleanRelativePaths(t *testing.T) {
	t.Parallel()
	d := NewDir(t.TempDir())
	for _, k := range []string{"", "/abs", "../up", "a/../../b", "a//b", "a/" + tempPrefix + "x", ".."} {
		if _, err := d.Create(context.Background(), k); err == nil {
			t.Errorf("Create(%q) accepted", k)
		}
	}
}

func TestAbandonedWritesAreFoundAndRemoved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := NewDir(t.TempDir())
	w, err := d.Create(ctx, "wal/x/seg")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	// The writer is never committed or aborted: its process "died".
	if l, _ := d.Abandoned(ctx, time.Hour); len(l) != 0 {
		t.Fatalf("a fresh write counted as abandoned: %v", l)
	}
	l, err := d.Abandoned(ctx, -time.Second)
	if err != nil || len(l) != 1 {
		t.Fatalf("Abandoned = %v, %v", l, err)
	}
	if err := d.RemoveAbandoned(ctx, l[0]); err != nil {
		t.Fatal(err)
	}
	if tf := tempFiles(t, d.Root()); len(tf) != 0 {
		t.Fatalf("left: %v", tf)
	}
	if err := d.RemoveAbandoned(ctx, "wal/x/seg"); err == nil {
		t.Fatal("RemoveAbandoned accepted a committed key")
	}
	// A retry after the "crash" commits normally.
	if err := put(t, d, "wal/x/seg", []byte("full")); err != nil {
		t.Fatal(err)
	}
}

// TestDiskFullLeavesNothingBehind writes into a 1 MiB tmpfs mounted for the test.
func TestDiskFullLeavesNothingBehind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	root := t.TempDir()
	if err := syscall.Mount("tmpfs", root, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(root, 0); err != nil {
			t.Errorf("unmount %s: %v", root, err)
		}
	})
	d := NewDir(root)
	err := put(t, d, "wal/big", bytes.Repeat([]byte("x"), 4<<20))
	if err == nil {
		t.Fatal("writing 4 MiB into a 1 MiB filesystem succeeded")
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("error %v is not ENOSPC", err)
	}
	if _, err := d.Stat(context.Background(), "wal/big"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("object after disk full: %v", err)
	}
	if tf := tempFiles(t, root); len(tf) != 0 {
		t.Fatalf("partial files left after disk full: %v", tf)
	}
	out, _ := exec.Command("df", "-k", root).CombinedOutput()
	t.Logf("after: %s", out)
}
