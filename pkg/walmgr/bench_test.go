package walmgr

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

const benchSegSize = 16 << 20

// benchRepo is a repository in a temporary directory with the given compression.
func benchRepo(b *testing.B, compression string, level int) (*Repository, string) {
	b.Helper()
	dir := b.TempDir()
	cfg := DefaultConfig()
	cfg.Repository = filepath.Join(dir, "repo")
	cfg.Compression = compression
	cfg.CompressionLevel = level
	ctx := context.Background()
	if _, err := InitRepository(ctx, &cfg); err != nil {
		b.Fatal(err)
	}
	r, err := OpenRepository(ctx, &cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.Close)
	return r, dir
}

// BenchmarkArchive stores a new 16 MiB segment per iteration, durably (in-process:
// no process start). Reports MB/s of WAL and segments/s.
func BenchmarkArchive(b *testing.B) {
	for _, tc := range []struct {
		comp  string
		level int
	}{{"zstd", 1}, {"zstd", 3}, {"zstd", 9}, {"none", 3}} {
		b.Run(fmt.Sprintf("%s-%d", tc.comp, tc.level), func(b *testing.B) {
			r, dir := benchRepo(b, tc.comp, tc.level)
			src := filepath.Join(dir, "seg")
			if err := os.WriteFile(src, fakeSegmentSized(benchSegSize, 1, 1, 42, 1), 0o600); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(benchSegSize)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				// A fresh name each time, with a header that matches it.
				seg := uint64(i + 1)
				name := SegmentName(1, seg, benchSegSize)
				b.StopTimer()
				if err := os.WriteFile(src, fakeSegmentSized(benchSegSize, 1, seg, 42, 1), 0o600); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := r.Archive(context.Background(), src, name); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "segments/s")
		})
	}
}

// archivedSegment is a zstd repository holding one archived 16 MiB segment.
func archivedSegment(b *testing.B) (r *Repository, dir, src, name string) {
	b.Helper()
	r, dir = benchRepo(b, "zstd", 3)
	src = filepath.Join(dir, "seg")
	if err := os.WriteFile(src, fakeSegmentSized(benchSegSize, 1, 1, 42, 1), 0o600); err != nil {
		b.Fatal(err)
	}
	name = SegmentName(1, 1, benchSegSize)
	if _, err := r.Archive(context.Background(), src, name); err != nil {
		b.Fatal(err)
	}
	return r, dir, src, name
}

// BenchmarkArchiveAlreadyArchived offers the same segment again (PostgreSQL after a
// crash): hash and compare, no write.
func BenchmarkArchiveAlreadyArchived(b *testing.B) {
	r, _, src, name := archivedSegment(b)
	b.SetBytes(benchSegSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res, err := r.Archive(context.Background(), src, name); err != nil || !res.Existed {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkFetch restores and verifies a 16 MiB segment.
func BenchmarkFetch(b *testing.B) {
	r, dir, _, name := archivedSegment(b)
	dest := filepath.Join(dir, "RECOVERYXLOG")
	b.SetBytes(benchSegSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.Fetch(context.Background(), name, dest); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkArchiveProcessAlreadyArchived is what PostgreSQL pays for one
// archive_command call on a segment already archived: walmgrd's whole process, from
// exec to exit (config, repository checks, hash, compare, fsync of the existing copy).
func BenchmarkArchiveProcessAlreadyArchived(b *testing.B) {
	bin := buildForBench(b)
	_, dir := benchRepo(b, "zstd", 3)
	cfgPath := filepath.Join(dir, "w.toml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("repository = %q\n", filepath.Join(dir, "repo"))), 0o600); err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(dir, "seg")
	if err := os.WriteFile(src, fakeSegmentSized(benchSegSize, 1, 1, 42, 1), 0o600); err != nil {
		b.Fatal(err)
	}
	name := SegmentName(1, 1, benchSegSize)
	if out, err := exec.Command(bin, "-c", cfgPath, "archive", src, name).CombinedOutput(); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out, err := exec.Command(bin, "-c", cfgPath, "archive", src, name).CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/process")
}

func buildForBench(b *testing.B) string {
	b.Helper()
	out := filepath.Join(b.TempDir(), "walmgrd")
	cmd := exec.Command("go", "build", "-o", out, "../../cmd/walmgrd")
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, o)
	}
	return out
}
