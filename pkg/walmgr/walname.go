package walmgr

import (
	"fmt"
	"strconv"
	"strings"
)

// LSN is a WAL location.
type LSN uint64

// ParseLSN reads PostgreSQL's text form "X/Y" (hex).
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("LSN %q: want X/Y in hex", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("LSN %q: want X/Y in hex", s)
	}
	return LSN(h<<32 | l), nil
}

func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xFFFFFFFF) }

// MarshalText and UnmarshalText store an LSN in its text form (manifests).
func (l LSN) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *LSN) UnmarshalText(b []byte) error {
	v, err := ParseLSN(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// WALKind is the kind of file the archiver hands us.
type WALKind int

// The kinds of files that reach archive_command.
const (
	KindSegment WALKind = iota + 1 // 000000010000000000000003
	KindPartial                    // 000000010000000000000003.partial (last segment of an old timeline)
	KindBackup                     // 000000010000000000000003.00000028.backup (backup history file)
	KindHistory                    // 00000002.history (timeline history file)
)

func (k WALKind) String() string {
	switch k {
	case KindSegment:
		return "segment"
	case KindPartial:
		return "partial segment"
	case KindBackup:
		return "backup history file"
	case KindHistory:
		return "timeline history file"
	}
	return "unknown"
}

// WALName is a parsed WAL file name.
type WALName struct {
	Name     string
	Kind     WALKind
	Timeline uint32
	// Log and Seg are the two halves of the segment number of segment-like names
	// (segment, partial, backup); zero for history files.
	Log, Seg uint32
	// Offset is the start offset a backup history file names.
	Offset uint32
}

func isUpperHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func hex32(s string) uint32 {
	v, _ := strconv.ParseUint(s, 16, 32)
	return uint32(v)
}

// ParseWALName recognises the file names PostgreSQL archives: 24 upper-case hex digits
// (a segment), with ".partial", with ".XXXXXXXX.backup", or 8 hex digits + ".history".
// Anything else is refused, so that a typo in archive_command cannot store junk.
func ParseWALName(name string) (WALName, error) {
	bad := fmt.Errorf("WAL file name %q: not a segment, .partial, .backup or .history file", name)
	if strings.HasSuffix(name, ".history") {
		tli := strings.TrimSuffix(name, ".history")
		if len(tli) != 8 || !isUpperHex(tli) || hex32(tli) == 0 {
			return WALName{}, bad
		}
		return WALName{Name: name, Kind: KindHistory, Timeline: hex32(tli)}, nil
	}
	if len(name) < 24 || !isUpperHex(name[:24]) {
		return WALName{}, bad
	}
	w := WALName{Name: name, Timeline: hex32(name[:8]), Log: hex32(name[8:16]), Seg: hex32(name[16:24])}
	if w.Timeline == 0 {
		return WALName{}, bad
	}
	switch rest := name[24:]; {
	case rest == "":
		w.Kind = KindSegment
	case rest == ".partial":
		w.Kind = KindPartial
	case len(rest) == len(".00000000.backup") && strings.HasSuffix(rest, ".backup") && isUpperHex(rest[1:9]) && rest[0] == '.':
		w.Kind = KindBackup
		w.Offset = hex32(rest[1:9])
	default:
		return WALName{}, bad
	}
	return w, nil
}

// SegmentsPerLog is how many segments of segSize bytes one "log" (the middle 8 hex
// digits of a name) holds.
func SegmentsPerLog(segSize int64) uint64 { return 0x100000000 / uint64(segSize) }

// SegNo is the segment number of a segment-like name for the given segment size.
func (w WALName) SegNo(segSize int64) uint64 {
	return uint64(w.Log)*SegmentsPerLog(segSize) + uint64(w.Seg)
}

// SegmentName builds a segment's file name.
func SegmentName(tli uint32, segNo uint64, segSize int64) string {
	per := SegmentsPerLog(segSize)
	return fmt.Sprintf("%08X%08X%08X", tli, uint32(segNo/per), uint32(segNo%per))
}

// SegmentOf is the number of the segment that contains lsn.
func SegmentOf(lsn LSN, segSize int64) uint64 { return uint64(lsn) / uint64(segSize) }

// ValidSegmentSize reports whether n is a wal_segment_size PostgreSQL allows: a power
// of two from 1 MiB to 1 GiB.
func ValidSegmentSize(n int64) bool {
	return n >= 1<<20 && n <= 1<<30 && n&(n-1) == 0
}

// walKey is where a WAL file lives in the repository: history files together,
// segment-like files in one directory per timeline and log, so no directory grows
// beyond 256 segments of 16 MiB per log.
func walKey(w WALName) string {
	if w.Kind == KindHistory {
		return "wal/history/" + w.Name
	}
	return "wal/" + w.Name[:16] + "/" + w.Name
}
