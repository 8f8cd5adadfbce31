package walmgr

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/skytools-go/skytools/pkg/walmgr/repo"
)

// VerifyReport is what verify found.
type VerifyReport struct {
	Backups    int
	Files      int
	WALFiles   int
	Bytes      int64
	Problems   []string
	Incomplete []string
}

func (v *VerifyReport) problemf(format string, args ...any) {
	v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
}

// Print writes the report.
func (v *VerifyReport) Print(w io.Writer) {
	for _, id := range v.Incomplete {
		fmt.Fprintf(w, "note: backup %s is incomplete (no manifest): never restored from, removed by cleanup\n", id)
	}
	for _, p := range v.Problems {
		fmt.Fprintf(w, "PROBLEM: %s\n", p)
	}
	fmt.Fprintf(w, "verified %d backup(s) with %d file(s) and %d WAL file(s), %s of content: %d problem(s)\n",
		v.Backups, v.Files, v.WALFiles, humanBytes(v.Bytes), len(v.Problems))
}

// Verify reads back every file of every complete backup (or of backup onlyID) and
// every archived WAL file, checking sizes and checksums, and checks that each
// timeline's WAL is continuous and that every backup's WAL range is archived.
func (r *Repository) Verify(ctx context.Context, onlyID string) (*VerifyReport, error) {
	v := &VerifyReport{}
	bs, err := r.backups(ctx)
	if err != nil {
		return nil, err
	}
	inv, err := r.walInventory(ctx)
	if err != nil {
		return nil, err
	}
	found := false
	for _, b := range bs {
		if onlyID != "" && b.ID != onlyID {
			continue
		}
		found = true
		switch {
		case b.Err != nil:
			v.problemf("backup %s: %v", b.ID, b.Err)
			continue
		case b.Manifest == nil:
			v.Incomplete = append(v.Incomplete, b.ID)
			continue
		}
		m := b.Manifest
		v.Backups++
		for _, f := range m.Files {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			t, err := r.verifyObject(ctx, backupDataKey(m.ID, f.Path))
			v.Files++
			v.Bytes += t.Size
			switch {
			case err != nil:
				v.problemf("backup %s: file %s: %v", m.ID, f.Path, err)
			case t.Checksum() != f.SHA256 || t.Size != f.Size:
				v.problemf("backup %s: file %s: stored content (%d bytes, %s) differs from the manifest (%d bytes, %s)",
					m.ID, f.Path, t.Size, t.Checksum(), f.Size, f.SHA256)
			}
		}
		start, _ := ParseWALName(m.StartWAL)
		stop, _ := ParseWALName(m.StopWAL)
		for seg := start.SegNo(m.WALSegmentSize); seg <= stop.SegNo(m.WALSegmentSize); seg++ {
			if !inv.has(m.Timeline, seg) {
				v.problemf("backup %s: needs WAL segment %s, which is not archived", m.ID, SegmentName(m.Timeline, seg, m.WALSegmentSize))
			}
		}
	}
	if onlyID != "" && !found {
		return nil, fmt.Errorf("repository %s: no backup %s", r.Path, onlyID)
	}
	histories := map[uint32]bool{}
	for _, h := range inv.Histories {
		histories[h.Timeline] = true
	}
	var all []walFile
	for _, tl := range inv.timelines() {
		for _, g := range inv.gaps(tl) {
			v.problemf("WAL timeline %d: segments %s are missing", tl, g)
		}
		if tl > 1 && !histories[tl] {
			v.problemf("WAL timeline %d: history file %08X.history is missing", tl, tl)
		}
		all = append(all, inv.Segments[tl]...)
	}
	all = append(append(all, inv.Histories...), inv.Others...)
	for _, f := range all {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t, err := r.verifyObject(ctx, f.Info.Key)
		v.WALFiles++
		v.Bytes += t.Size
		if err != nil {
			v.problemf("WAL %s: %v", f.Name, err)
		} else if (f.Kind == KindSegment || f.Kind == KindPartial) && t.Size != inv.SegSize {
			v.problemf("WAL %s: %d bytes, a segment is %d", f.Name, t.Size, inv.SegSize)
		}
	}
	for _, u := range inv.Unknown {
		v.problemf("unexpected object %s in the WAL archive", u.Key)
	}
	q, err := r.Store.List(ctx, "quarantine")
	if err != nil {
		return nil, err
	}
	for _, o := range q {
		v.problemf("%s: a different file was offered under an archived name (see docs: After a \"different file\" error)", o.Key)
	}
	return v, nil
}

// verifyObject decodes an object to nowhere, checking it against its trailer.
func (r *Repository) verifyObject(ctx context.Context, key string) (Trailer, error) {
	obj, err := r.Store.Open(ctx, key)
	if err != nil {
		if errors.Is(err, repo.ErrNotFound) {
			return Trailer{}, fmt.Errorf("missing from the repository")
		}
		return Trailer{}, err
	}
	defer obj.Close()
	return r.codec.decode(io.Discard, obj)
}
