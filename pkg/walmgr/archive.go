package walmgr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/skytools-go/skytools/pkg/walmgr/repo"
)

// ErrDifferentContent means a file with the same name but other content is already
// archived. Archiving stops (PostgreSQL retries) until a human looks.
var ErrDifferentContent = errors.New("a different file is already archived under this name")

// ArchiveResult says what Archive did.
type ArchiveResult struct {
	Name     string
	Key      string
	Existed  bool // an identical copy was already archived
	Size     int64
	Stored   int64
	Duration time.Duration
}

// Archive stores the WAL file at path (archive_command's %p) under name (%f). It
// returns only after the file is durable in the repository; see the package
// documentation for the protocol.
func (r *Repository) Archive(ctx context.Context, path, name string) (ArchiveResult, error) {
	start := time.Now()
	res := ArchiveResult{Name: name}
	w, err := ParseWALName(name)
	if err != nil {
		return res, err
	}
	res.Key = walKey(w)
	f, err := os.Open(path)
	if err != nil {
		return res, fmt.Errorf("archive %s: %w", name, err)
	}
	defer f.Close()

	src := bufio.NewReaderSize(f, 1<<20)
	var want int64 = -1
	if w.Kind == KindSegment || w.Kind == KindPartial {
		head, err := src.Peek(walLongHeaderSize)
		if err != nil {
			return res, fmt.Errorf("archive %s: read WAL page header: %w", name, err)
		}
		h, err := parseWALPageHeader(head)
		if err != nil {
			return res, fmt.Errorf("archive %s: %w", name, err)
		}
		// The first segment of a new timeline starts with a copy of the old one's
		// pages, so the header may name an older timeline, never a newer one.
		if h.Timeline > w.Timeline {
			return res, fmt.Errorf("archive %s: segment header says timeline %d", name, h.Timeline)
		}
		if got := h.PageAddr / uint64(h.SegSize); got != w.SegNo(int64(h.SegSize)) {
			return res, fmt.Errorf("archive %s: segment header is for segment %s", name, SegmentName(w.Timeline, got, int64(h.SegSize)))
		}
		if err := r.claim(ctx, h.system()); err != nil {
			return res, fmt.Errorf("archive %s: %w", name, err)
		}
		want = int64(h.SegSize)
	}

	// Already archived? Compare before writing anything.
	if obj, err := r.Store.Open(ctx, res.Key); err == nil {
		obj.Close()
		return r.compareExisting(ctx, res, f, start)
	} else if !errors.Is(err, repo.ErrNotFound) {
		return res, fmt.Errorf("archive %s: %w", name, err)
	}

	wr, err := r.Store.Create(ctx, res.Key)
	if err != nil {
		return res, fmt.Errorf("archive %s: %w", name, err)
	}
	t, err := r.codec.encode(wr, src)
	if err != nil {
		_ = wr.Abort()
		return res, fmt.Errorf("archive %s: %w", name, err)
	}
	if want >= 0 && t.Size != want {
		_ = wr.Abort()
		return res, fmt.Errorf("archive %s: read %d bytes, a segment is %d", name, t.Size, want)
	}
	if err := wr.Commit(ctx); err != nil {
		if errors.Is(err, repo.ErrExists) { // another archiver won the race
			return r.compareExisting(ctx, res, f, start)
		}
		return res, fmt.Errorf("archive %s: %w", name, err)
	}
	res.Size, res.Stored, res.Duration = t.Size, t.PayloadSize+trailerSize, time.Since(start)
	return res, nil
}

// compareExisting handles a name that is already archived: identical content is
// success (after making sure the existing copy is durable); different content is kept
// aside under quarantine/ and reported.
func (r *Repository) compareExisting(ctx context.Context, res ArchiveResult, f *os.File, start time.Time) (ArchiveResult, error) {
	obj, err := r.Store.Open(ctx, res.Key)
	if err != nil {
		return res, fmt.Errorf("archive %s: %w", res.Name, err)
	}
	t, terr := readTrailer(obj)
	obj.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res, fmt.Errorf("archive %s: %w", res.Name, err)
	}
	size, sum, err := fastHash(f)
	if err != nil {
		return res, fmt.Errorf("archive %s: %w", res.Name, err)
	}
	if terr == nil && t.Size == size && t.XXH64 == sum {
		if err := r.Store.Persist(ctx, res.Key); err != nil {
			return res, fmt.Errorf("archive %s: %w", res.Name, err)
		}
		res.Existed, res.Size, res.Stored, res.Duration = true, size, t.PayloadSize+trailerSize, time.Since(start)
		return res, nil
	}
	why := "its checksum differs"
	if terr != nil {
		why = "the archived copy is unreadable: " + terr.Error()
	}
	aside := fmt.Sprintf("quarantine/%s-%016x", res.Name, sum)
	if err := r.keepAside(ctx, f, aside); err != nil {
		return res, fmt.Errorf("archive %s: %w (%s); and keeping the new file aside failed: %v", res.Name, ErrDifferentContent, why, err)
	}
	return res, fmt.Errorf("archive %s: %w (%s); the new file is kept as %s for inspection", res.Name, ErrDifferentContent, why, aside)
}

func (r *Repository) keepAside(ctx context.Context, f *os.File, key string) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	w, err := r.Store.Create(ctx, key)
	if err != nil {
		return err
	}
	if _, err := r.codec.encode(w, f); err != nil {
		_ = w.Abort()
		return err
	}
	if err := w.Commit(ctx); err != nil && !errors.Is(err, repo.ErrExists) {
		return err
	}
	return nil
}
