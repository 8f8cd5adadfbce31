package walmgr

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

const testSegSize = 1 << 20

// fakeSegment builds a WAL segment whose first page carries a valid long header for
// (tli, segNo) of database system sysid; the rest is compressible pseudo-random data.
func fakeSegment(tli uint32, segNo uint64, sysid uint64, seed uint64) []byte {
	return fakeSegmentSized(testSegSize, tli, segNo, sysid, seed)
}

func fakeSegmentSized(size int, tli uint32, segNo uint64, sysid uint64, seed uint64) []byte {
	b := make([]byte, size)
	binary.LittleEndian.PutUint16(b[0:], 0xD110)
	binary.LittleEndian.PutUint16(b[2:], 0x0002)
	binary.LittleEndian.PutUint32(b[4:], tli)
	binary.LittleEndian.PutUint64(b[8:], segNo*uint64(size))
	binary.LittleEndian.PutUint64(b[24:], sysid)
	binary.LittleEndian.PutUint32(b[32:], uint32(size))
	binary.LittleEndian.PutUint32(b[36:], 8192)
	r := rand.New(rand.NewPCG(seed, segNo))
	for i := walLongHeaderSize; i < len(b); i += 64 {
		b[i] = byte(r.IntN(8))
	}
	return b
}

type archiveFixture struct {
	t    *testing.T
	ctx  context.Context
	cfg  *Config
	repo *Repository
	dir  string
}

func newArchiveFixture(t *testing.T, compression string) *archiveFixture {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Repository = filepath.Join(dir, "repo")
	cfg.Compression = compression
	ctx := context.Background()
	if _, err := OpenRepository(ctx, &cfg); err == nil {
		t.Fatal("opened a repository directory that does not exist")
	}
	if err := os.Mkdir(cfg.Repository, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRepository(ctx, &cfg); !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("open an empty directory (an unmounted mount point): %v, want ErrNotInitialised", err)
	}
	if _, err := InitRepository(ctx, &cfg); err != nil {
		t.Fatal(err)
	}
	r, err := OpenRepository(ctx, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return &archiveFixture{t: t, ctx: ctx, cfg: &cfg, repo: r, dir: dir}
}

func (f *archiveFixture) file(name string, data []byte) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func TestArchiveThenFetchReturnsTheSameBytes(t *testing.T) {
	t.Parallel()
	for _, comp := range []string{"zstd", "none"} {
		f := newArchiveFixture(t, comp)
		seg := fakeSegment(1, 3, 42, 1)
		name := SegmentName(1, 3, testSegSize)
		res, err := f.repo.Archive(f.ctx, f.file("src", seg), name)
		if err != nil {
			t.Fatal(err)
		}
		if res.Existed || res.Size != testSegSize {
			t.Fatalf("%s: result %+v", comp, res)
		}
		if comp == "zstd" && res.Stored >= testSegSize/2 {
			t.Errorf("zstd stored %d bytes of a compressible %d-byte segment", res.Stored, testSegSize)
		}
		dest := filepath.Join(f.dir, "RECOVERYXLOG")
		if _, err := f.repo.Fetch(f.ctx, name, dest); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dest)
		if string(got) != string(seg) {
			t.Fatalf("%s: fetched content differs", comp)
		}
		hist := []byte("1\t0/3000000\tno recovery target specified\n")
		if _, err := f.repo.Archive(f.ctx, f.file("h", hist), "00000002.history"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.repo.Fetch(f.ctx, "00000002.history", dest); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dest); string(got) != string(hist) {
			t.Fatalf("history file came back as %q", got)
		}
	}
}

func TestReArchiveIdenticalSucceedsDifferentFailsAndIsKeptAside(t *testing.T) {
	t.Parallel()
	f := newArchiveFixture(t, "zstd")
	name := SegmentName(1, 5, testSegSize)
	seg := fakeSegment(1, 5, 42, 1)
	if _, err := f.repo.Archive(f.ctx, f.file("a", seg), name); err != nil {
		t.Fatal(err)
	}
	res, err := f.repo.Archive(f.ctx, f.file("b", seg), name)
	if err != nil || !res.Existed {
		t.Fatalf("identical re-archive: %+v, %v", res, err)
	}
	other := fakeSegment(1, 5, 42, 2)
	_, err = f.repo.Archive(f.ctx, f.file("c", other), name)
	if !errors.Is(err, ErrDifferentContent) {
		t.Fatalf("different content: %v, want ErrDifferentContent", err)
	}
	if !strings.Contains(err.Error(), "quarantine/"+name) {
		t.Errorf("error does not say where the new file was kept: %v", err)
	}
	q, _ := f.repo.Store.List(f.ctx, "quarantine")
	if len(q) != 1 || !strings.HasPrefix(q[0].Key, "quarantine/"+name+"-") {
		t.Fatalf("quarantine holds %v", q)
	}
	// The archived copy is untouched.
	dest := filepath.Join(f.dir, "out")
	if _, err := f.repo.Fetch(f.ctx, name, dest); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); string(got) != string(seg) {
		t.Fatal("the archived segment changed")
	}
	// History files are protected the same way.
	if _, err := f.repo.Archive(f.ctx, f.file("h1", []byte("1\t0/3000000\tx\n")), "00000002.history"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.Archive(f.ctx, f.file("h2", []byte("1\t0/4000000\ty\n")), "00000002.history"); !errors.Is(err, ErrDifferentContent) {
		t.Fatalf("overwriting a history file: %v", err)
	}
}

func TestArchiveRefusesWALOfAnotherClusterOrAMislabelledSegment(t *testing.T) {
	t.Parallel()
	f := newArchiveFixture(t, "zstd")
	if _, err := f.repo.Archive(f.ctx, f.file("a", fakeSegment(1, 1, 42, 1)), SegmentName(1, 1, testSegSize)); err != nil {
		t.Fatal(err)
	}
	_, err := f.repo.Archive(f.ctx, f.file("b", fakeSegment(1, 2, 4242, 1)), SegmentName(1, 2, testSegSize))
	if err == nil || !strings.Contains(err.Error(), "refusing to mix clusters") {
		t.Fatalf("segment of another system: %v", err)
	}
	_, err = f.repo.Archive(f.ctx, f.file("c", fakeSegment(1, 7, 42, 1)), SegmentName(1, 8, testSegSize))
	if err == nil || !strings.Contains(err.Error(), "segment header is for segment") {
		t.Fatalf("mislabelled segment: %v", err)
	}
	_, err = f.repo.Archive(f.ctx, f.file("d", fakeSegment(1, 9, 42, 1)[:testSegSize/2]), SegmentName(1, 9, testSegSize))
	if err == nil {
		t.Fatal("a short segment was archived")
	}
	if _, err := f.repo.Archive(f.ctx, f.file("e", []byte("x")), "RECOVERYXLOG"); err == nil {
		t.Fatal("a non-WAL name was archived")
	}
	objs, _ := f.repo.Store.List(f.ctx, "wal")
	if len(objs) != 1 {
		t.Fatalf("refused files left objects behind: %v", objs)
	}
}

func TestFetchTellsAbsentFromCorrupt(t *testing.T) {
	t.Parallel()
	f := newArchiveFixture(t, "zstd")
	name := SegmentName(1, 4, testSegSize)
	if _, err := f.repo.Archive(f.ctx, f.file("a", fakeSegment(1, 4, 42, 1)), name); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(f.dir, "RECOVERYXLOG")
	if _, err := f.repo.Fetch(f.ctx, SegmentName(1, 5, testSegSize), dest); !errors.Is(err, ErrNotArchived) {
		t.Fatalf("absent segment: %v, want ErrNotArchived", err)
	}
	w, _ := ParseWALName(name)
	stored := filepath.Join(f.cfg.Repository, filepath.FromSlash(walKey(w)))
	b, err := os.ReadFile(stored)
	if err != nil {
		t.Fatal(err)
	}
	for _, damage := range []func([]byte) []byte{
		func(b []byte) []byte { c := append([]byte(nil), b...); c[len(c)/3] ^= 0xFF; return c },       // payload bit flip
		func(b []byte) []byte { c := append([]byte(nil), b...); c[len(c)-1] ^= 0x01; return c },       // checksum bit flip
		func(b []byte) []byte { return append([]byte(nil), b[:len(b)-100]...) },                       // truncated
		func(b []byte) []byte { return append(append([]byte(nil), b[:10]...), b[11:]...) },            // byte lost
		func(b []byte) []byte { return append(append(append([]byte(nil), b[:10]...), 0), b[10:]...) }, // byte added
	} {
		if err := os.WriteFile(stored, damage(b), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := f.repo.Fetch(f.ctx, name, dest)
		if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotArchived) {
			t.Fatalf("damaged segment: %v, want ErrCorrupt", err)
		}
		if _, err := os.Stat(dest); !os.IsNotExist(err) {
			t.Fatal("a corrupt segment was handed over")
		}
		if left, _ := filepath.Glob(filepath.Join(f.dir, ".RECOVERYXLOG*")); len(left) != 0 {
			t.Fatalf("temporary files left: %v", left)
		}
	}
	// A repository that is not there (unmounted) is never "not archived".
	cfg := *f.cfg
	if err := os.Rename(cfg.Repository, cfg.Repository+".moved"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.Fetch(f.ctx, name, dest); err == nil || errors.Is(err, ErrNotArchived) {
		t.Fatalf("fetch from a vanished repository: %v", err)
	}
}

func TestCleanupRemovesOnlyOldAbandonedTemporaries(t *testing.T) {
	t.Parallel()
	f := newArchiveFixture(t, "zstd")
	w, err := f.repo.Store.Create(f.ctx, "wal/0000000100000000/000000010000000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half a segment")); err != nil {
		t.Fatal(err)
	}
	res, err := f.repo.Cleanup(f.ctx, 1, false, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if res.Temporary != 0 {
		t.Fatalf("a fresh temporary file was removed: %+v", res)
	}
	// The writer "died"; the retry commits normally despite the leftover.
	if _, err := f.repo.Archive(f.ctx, f.file("a", fakeSegment(1, 1, 42, 1)), SegmentName(1, 1, testSegSize)); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyReportsQuarantinedFiles(t *testing.T) {
	t.Parallel()
	f := newArchiveFixture(t, "zstd")
	name := SegmentName(1, 2, testSegSize)
	if _, err := f.repo.Archive(f.ctx, f.file("a", fakeSegment(1, 2, 42, 1)), name); err != nil {
		t.Fatal(err)
	}
	rep, err := f.repo.Verify(f.ctx, "")
	if err != nil || len(rep.Problems) != 0 || rep.WALFiles != 1 {
		t.Fatalf("clean repository: %+v, %v", rep, err)
	}
	if _, err := f.repo.Archive(f.ctx, f.file("b", fakeSegment(1, 2, 42, 2)), name); !errors.Is(err, ErrDifferentContent) {
		t.Fatal(err)
	}
	rep, err = f.repo.Verify(f.ctx, "")
	if err != nil || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "quarantine/"+name) {
		t.Fatalf("after a refused different file: %+v, %v", rep, err)
	}
}
