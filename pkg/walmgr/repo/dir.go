package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// tempPrefix starts the name of every uncommitted file; List never shows them.
const tempPrefix = ".tmp-"

// Dir is a Store on a directory. A commit is: write a temporary file beside the
// final name, fsync it, link it to the final name (link fails if the name is taken,
// so nothing is ever overwritten), remove the temporary name and fsync the directory.
type Dir struct {
	root string
	// mode is the permission of new files; directories get the matching x bits.
	mode os.FileMode
}

// NewDir returns a Store rooted at root, which must exist.
func NewDir(root string) *Dir {
	return &Dir{root: root, mode: 0o600}
}

// Root is the directory the store lives in.
func (d *Dir) Root() string { return d.root }

func (d *Dir) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || path.Clean(key) != key || strings.HasPrefix(key, "../") || key == ".." {
		return "", fmt.Errorf("repository key %q: not a clean relative path", key)
	}
	for _, part := range strings.Split(key, "/") {
		if strings.HasPrefix(part, tempPrefix) {
			return "", fmt.Errorf("repository key %q: %s is reserved for uncommitted files", key, tempPrefix)
		}
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Create implements Store.
func (d *Dir) Create(_ context.Context, key string) (Writer, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(p)
	created, err := d.mkdirs(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, tempPrefix+filepath.Base(p)+"-*")
	if err != nil {
		return nil, fmt.Errorf("repository %s: create temporary file for %s: %w", d.root, key, err)
	}
	if err := f.Chmod(d.mode); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("repository %s: chmod %s: %w", d.root, f.Name(), err)
	}
	return &dirWriter{d: d, key: key, final: p, f: f, newDirs: created}, nil
}

// mkdirs creates dir and missing parents below the root, returning the directories it
// created, outermost first, so that commit can fsync their parents.
func (d *Dir) mkdirs(dir string) ([]string, error) {
	var missing []string
	for p := dir; p != d.root && len(p) > len(d.root); p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("repository %s: %w", d.root, err)
		}
		missing = append([]string{p}, missing...)
	}
	if len(missing) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("repository %s: %w", d.root, err)
	}
	return missing, nil
}

type dirWriter struct {
	d       *Dir
	key     string
	final   string
	f       *os.File
	newDirs []string
	done    bool
}

func (w *dirWriter) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	if err != nil {
		return n, fmt.Errorf("repository %s: write %s: %w", w.d.root, w.key, err)
	}
	return n, nil
}

func (w *dirWriter) Commit(_ context.Context) error {
	if w.done {
		return fmt.Errorf("repository %s: %s: commit after commit or abort", w.d.root, w.key)
	}
	tmp := w.f.Name()
	fail := func(what string, err error) error {
		_ = w.Abort()
		return fmt.Errorf("repository %s: %s %s: %w", w.d.root, what, w.key, err)
	}
	if err := w.f.Sync(); err != nil {
		return fail("fsync", err)
	}
	if err := w.f.Close(); err != nil {
		return fail("close", err)
	}
	if err := os.Link(tmp, w.final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			_ = w.Abort()
			return fmt.Errorf("repository %s: %s: %w", w.d.root, w.key, ErrExists)
		}
		return fail("link", err)
	}
	w.done = true
	if err := os.Remove(tmp); err != nil {
		return fmt.Errorf("repository %s: remove temporary %s: %w", w.d.root, tmp, err)
	}
	if err := SyncDir(filepath.Dir(w.final)); err != nil {
		return fmt.Errorf("repository %s: %s: %w", w.d.root, w.key, err)
	}
	for _, nd := range w.newDirs {
		if err := SyncDir(filepath.Dir(nd)); err != nil {
			return fmt.Errorf("repository %s: %s: %w", w.d.root, w.key, err)
		}
	}
	return nil
}

func (w *dirWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("repository %s: remove temporary %s: %w", w.d.root, w.f.Name(), err)
	}
	return nil
}

// SyncDir fsyncs a directory so that names created or removed in it survive a crash.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

type dirObject struct {
	*os.File
	size int64
}

func (o *dirObject) Size() int64 { return o.size }

// Open implements Store.
func (d *Dir) Open(_ context.Context, key string) (Object, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, d.wrap(key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, d.wrap(key, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("repository %s: %s is not a regular file", d.root, key)
	}
	return &dirObject{File: f, size: st.Size()}, nil
}

// wrap turns ENOENT into ErrNotFound, but only when the repository root itself is
// there: an unmounted or deleted repository is an error, not an absent file.
func (d *Dir) wrap(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		if _, rerr := os.Stat(d.root); rerr != nil {
			return fmt.Errorf("repository %s: %w", d.root, rerr)
		}
		return fmt.Errorf("repository %s: %s: %w", d.root, key, ErrNotFound)
	}
	return fmt.Errorf("repository %s: %s: %w", d.root, key, err)
}

// Stat implements Store.
func (d *Dir) Stat(_ context.Context, key string) (Info, error) {
	p, err := d.path(key)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return Info{}, d.wrap(key, err)
	}
	if !st.Mode().IsRegular() {
		return Info{}, fmt.Errorf("repository %s: %s is not a regular file", d.root, key)
	}
	return Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// List implements Store.
func (d *Dir) List(_ context.Context, prefix string) ([]Info, error) {
	start := d.root
	if prefix != "" {
		p, err := d.path(prefix)
		if err != nil {
			return nil, err
		}
		start = p
	}
	if _, err := os.Stat(d.root); err != nil {
		return nil, fmt.Errorf("repository %s: %w", d.root, err)
	}
	var out []Info
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			return err
		}
		if strings.HasPrefix(e.Name(), tempPrefix) || e.IsDir() || !e.Type().IsRegular() {
			return nil
		}
		st, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) { // removed while listing
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		out = append(out, Info{Key: filepath.ToSlash(rel), Size: st.Size(), ModTime: st.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("repository %s: list %s: %w", d.root, prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Remove implements Store. Empty parent directories are left in place.
func (d *Dir) Remove(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("repository %s: remove %s: %w", d.root, key, err)
	}
	return nil
}

// Persist implements Store: fsync the file and its directory.
func (d *Dir) Persist(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return d.wrap(key, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("repository %s: fsync %s: %w", d.root, key, err)
	}
	return SyncDir(filepath.Dir(p))
}

// Abandoned implements Store: temporary files older than age.
func (d *Dir) Abandoned(_ context.Context, age time.Duration) ([]string, error) {
	var out []string
	cutoff := time.Now().Add(-age)
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != d.root {
				return nil
			}
			return err
		}
		if e.IsDir() || !strings.HasPrefix(e.Name(), tempPrefix) {
			return nil
		}
		st, err := e.Info()
		if err != nil {
			return nil
		}
		if st.ModTime().Before(cutoff) {
			rel, _ := filepath.Rel(d.root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("repository %s: look for abandoned files: %w", d.root, err)
	}
	return out, nil
}

// RemoveAbandoned implements Store.
func (d *Dir) RemoveAbandoned(_ context.Context, name string) error {
	if !strings.HasPrefix(path.Base(name), tempPrefix) || path.Clean(name) != name || strings.HasPrefix(name, "../") {
		return fmt.Errorf("repository %s: %q is not an uncommitted file", d.root, name)
	}
	if err := os.Remove(filepath.Join(d.root, filepath.FromSlash(name))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("repository %s: remove %s: %w", d.root, name, err)
	}
	return nil
}
