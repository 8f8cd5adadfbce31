package walmgr

import (
	"fmt"
	"strconv"
	"strings"
)

// BackupLabel is the content of backup_label, as pg_backup_stop returns it.
type BackupLabel struct {
	StartLSN      LSN
	StartWAL      string // the segment that holds StartLSN
	CheckpointLSN LSN
	Method        string // "streamed"
	From          string // "primary" or "standby"
	StartTime     string // as PostgreSQL wrote it
	Label         string
	StartTimeline uint32
}

// ParseBackupLabel reads a backup_label file. START WAL LOCATION and CHECKPOINT
// LOCATION are required; unknown lines are ignored (newer servers add some).
func ParseBackupLabel(text string) (BackupLabel, error) {
	var b BackupLabel
	var haveStart, haveCkpt bool
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		key, val, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch key {
		case "START WAL LOCATION":
			// "0/2000028 (file 000000010000000000000002)"
			lsn, rest, _ := strings.Cut(val, " ")
			l, err := ParseLSN(lsn)
			if err != nil {
				return b, fmt.Errorf("backup_label: START WAL LOCATION: %w", err)
			}
			file := strings.TrimSuffix(strings.TrimPrefix(rest, "(file "), ")")
			w, err := ParseWALName(file)
			if err != nil || w.Kind != KindSegment {
				return b, fmt.Errorf("backup_label: START WAL LOCATION: bad file %q", rest)
			}
			b.StartLSN, b.StartWAL, haveStart = l, file, true
		case "CHECKPOINT LOCATION":
			l, err := ParseLSN(val)
			if err != nil {
				return b, fmt.Errorf("backup_label: CHECKPOINT LOCATION: %w", err)
			}
			b.CheckpointLSN, haveCkpt = l, true
		case "BACKUP METHOD":
			b.Method = val
		case "BACKUP FROM":
			b.From = val
		case "START TIME":
			b.StartTime = val
		case "LABEL":
			b.Label = val
		case "START TIMELINE":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil || n == 0 {
				return b, fmt.Errorf("backup_label: START TIMELINE %q: not a timeline", val)
			}
			b.StartTimeline = uint32(n)
		}
	}
	if !haveStart || !haveCkpt {
		return b, fmt.Errorf("backup_label: START WAL LOCATION or CHECKPOINT LOCATION missing")
	}
	if b.CheckpointLSN < b.StartLSN {
		return b, fmt.Errorf("backup_label: checkpoint %s before start %s", b.CheckpointLSN, b.StartLSN)
	}
	return b, nil
}

// String formats the label as PostgreSQL does.
func (b BackupLabel) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "START WAL LOCATION: %s (file %s)\n", b.StartLSN, b.StartWAL)
	fmt.Fprintf(&s, "CHECKPOINT LOCATION: %s\n", b.CheckpointLSN)
	fmt.Fprintf(&s, "BACKUP METHOD: %s\n", b.Method)
	fmt.Fprintf(&s, "BACKUP FROM: %s\n", b.From)
	fmt.Fprintf(&s, "START TIME: %s\n", b.StartTime)
	fmt.Fprintf(&s, "LABEL: %s\n", b.Label)
	if b.StartTimeline != 0 {
		fmt.Fprintf(&s, "START TIMELINE: %d\n", b.StartTimeline)
	}
	return s.String()
}
