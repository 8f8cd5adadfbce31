package walmgr

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/skytools-go/skytools/pkg/cli"
	"go.uber.org/zap"
)

// prefetchDirName is the directory beside %p (in pg_wal) where fetch keeps segments
// decompressed ahead of PostgreSQL's requests when fetch_prefetch > 0.
const prefetchDirName = "walmgrd-prefetch"

// takePrefetched moves an already verified, prefetched copy of name to dest. It also
// drops prefetched segments older than name, which recovery has passed.
func takePrefetched(name, dest string) bool {
	dir := filepath.Join(filepath.Dir(dest), prefetchDirName)
	want, err := ParseWALName(name)
	if err != nil || want.Kind != KindSegment {
		return false
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	found := false
	for _, e := range entries {
		w, err := ParseWALName(e.Name())
		if err != nil {
			continue
		}
		if w.Name == name {
			found = os.Rename(filepath.Join(dir, e.Name()), dest) == nil
			continue
		}
		if w.Log < want.Log || (w.Log == want.Log && w.Seg < want.Seg) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return found
}

// startPrefetch starts "walmgrd prefetch" in the background for the segments after
// name, and does not wait for it: PostgreSQL gets its file now.
func startPrefetch(env *cli.Env, cfg *Config, name, dest string) {
	w, err := ParseWALName(name)
	if err != nil || w.Kind != KindSegment {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	cfgPath, _ := filepath.Abs(env.ConfigPath)
	cmd := exec.Command(exe, "-c", cfgPath, "-q", "prefetch", name, filepath.Join(filepath.Dir(dest), prefetchDirName))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		env.Log.Warn("prefetch not started", zap.Error(err))
		return
	}
	_ = cmd.Process.Release()
}

// Prefetch decompresses and verifies up to n segments after name into dir, skipping
// those already there, and stops at the first one not archived yet.
func (r *Repository) Prefetch(ctx context.Context, name, dir string, n int) (int, error) {
	w, err := ParseWALName(name)
	if err != nil || w.Kind != KindSegment {
		return 0, fmt.Errorf("prefetch: %q is not a segment name", name)
	}
	sys, ok, err := r.System(ctx)
	if err != nil || !ok {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("prefetch: %w", err)
	}
	done := 0
	for i := uint64(1); i <= uint64(n); i++ {
		next := SegmentName(w.Timeline, w.SegNo(sys.WALSegmentSize)+i, sys.WALSegmentSize)
		dest := filepath.Join(dir, next)
		if _, err := os.Stat(dest); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return done, err
		}
		if _, err := r.Fetch(ctx, next, dest); err != nil {
			if errors.Is(err, ErrNotArchived) {
				return done, nil
			}
			return done, err
		}
		done++
	}
	return done, nil
}

func prefetchCommand() *cli.Command {
	return &cli.Command{
		Name: "prefetch", Args: "NAME DIR", MinArgs: 2, MaxArgs: 2,
		Summary: "decompress the fetch_prefetch segments after NAME into DIR (fetch starts it)",
		Run: func(ctx context.Context, env *cli.Env, args []string) error {
			return withRepository(ctx, env, func(cfg *Config, r *Repository) error {
				_, err := r.Prefetch(ctx, args[0], args[1], cfg.FetchPrefetch)
				return err
			})
		},
	}
}
