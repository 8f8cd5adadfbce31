package walmgr

import (
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"text/tabwriter"

	"github.com/skytools-go/skytools/pkg/walmgr/repo"
)

// walFile is an archived WAL file.
type walFile struct {
	WALName
	Info repo.Info
}

// walInventory is the archived WAL, by kind and timeline.
type walInventory struct {
	SegSize   int64
	Segments  map[uint32][]walFile // per timeline, ordered by segment number
	Others    []walFile            // .partial and .backup files
	Histories []walFile
	Unknown   []repo.Info // objects under wal/ with names walmgrd does not write
}

func (r *Repository) walInventory(ctx context.Context) (*walInventory, error) {
	sys, _, err := r.System(ctx)
	if err != nil {
		return nil, err
	}
	inv := &walInventory{SegSize: sys.WALSegmentSize, Segments: map[uint32][]walFile{}}
	if inv.SegSize == 0 {
		inv.SegSize = 16 << 20
	}
	objs, err := r.Store.List(ctx, "wal")
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		w, err := ParseWALName(path.Base(o.Key))
		if err != nil || walKey(w) != o.Key {
			inv.Unknown = append(inv.Unknown, o)
			continue
		}
		f := walFile{WALName: w, Info: o}
		switch w.Kind {
		case KindSegment:
			inv.Segments[w.Timeline] = append(inv.Segments[w.Timeline], f)
		case KindHistory:
			inv.Histories = append(inv.Histories, f)
		default:
			inv.Others = append(inv.Others, f)
		}
	}
	for _, segs := range inv.Segments {
		sort.Slice(segs, func(i, j int) bool { return segs[i].SegNo(inv.SegSize) < segs[j].SegNo(inv.SegSize) })
	}
	return inv, nil
}

func (inv *walInventory) timelines() []uint32 {
	var tls []uint32
	for tl := range inv.Segments {
		tls = append(tls, tl)
	}
	sort.Slice(tls, func(i, j int) bool { return tls[i] < tls[j] })
	return tls
}

// gaps lists the missing segment ranges within one timeline.
func (inv *walInventory) gaps(tl uint32) []string {
	var out []string
	segs := inv.Segments[tl]
	for i := 1; i < len(segs); i++ {
		prev, cur := segs[i-1].SegNo(inv.SegSize), segs[i].SegNo(inv.SegSize)
		if cur > prev+1 {
			out = append(out, fmt.Sprintf("%s to %s", SegmentName(tl, prev+1, inv.SegSize), SegmentName(tl, cur-1, inv.SegSize)))
		}
	}
	return out
}

// has reports whether a segment is archived.
func (inv *walInventory) has(tl uint32, segNo uint64) bool {
	segs := inv.Segments[tl]
	i := sort.Search(len(segs), func(i int) bool { return segs[i].SegNo(inv.SegSize) >= segNo })
	return i < len(segs) && segs[i].SegNo(inv.SegSize) == segNo
}

// List prints the backups and a summary of the archived WAL.
func (r *Repository) List(ctx context.Context, out io.Writer) error {
	bs, err := r.backups(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKUP\tSTATUS\tSTART (UTC)\tSTOP (UTC)\tSIZE\tSTORED\tTIMELINE\tWAL START\tWAL STOP")
	for _, b := range bs {
		switch {
		case b.Manifest != nil:
			m := b.Manifest
			content, stored := m.Size()
			fmt.Fprintf(tw, "%s\tcomplete\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.ID, m.StartTime.Format("2006-01-02 15:04:05"),
				m.StopTime.Format("2006-01-02 15:04:05"), humanBytes(content), humanBytes(stored), m.Timeline, m.StartWAL, m.StopWAL)
		case b.Err != nil:
			fmt.Fprintf(tw, "%s\tunreadable\t-\t-\t-\t%s\t-\t-\t-\n", b.ID, humanBytes(b.Stored))
		default:
			fmt.Fprintf(tw, "%s\tincomplete\t-\t-\t-\t%s\t-\t-\t-\n", b.ID, humanBytes(b.Stored))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	inv, err := r.walInventory(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(out)
	tls := inv.timelines()
	if len(tls) == 0 {
		fmt.Fprintln(out, "WAL: no segments archived")
	}
	for _, tl := range tls {
		segs := inv.Segments[tl]
		var stored int64
		for _, s := range segs {
			stored += s.Info.Size
		}
		gaps := ""
		if g := inv.gaps(tl); len(g) > 0 {
			gaps = fmt.Sprintf(", %d gap(s)", len(g))
		}
		fmt.Fprintf(out, "WAL timeline %d: %s to %s, %d segment(s), stored %s%s\n", tl, segs[0].Name, segs[len(segs)-1].Name,
			len(segs), humanBytes(stored), gaps)
	}
	fmt.Fprintf(out, "WAL: %d history file(s), %d partial/backup history file(s)\n", len(inv.Histories), len(inv.Others))
	return nil
}
