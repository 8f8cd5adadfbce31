package walmgr

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseWALNameAcceptsExactlyWhatPostgreSQLArchives(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		kind WALKind
		tli  uint32
		log  uint32
		seg  uint32
	}{
		{"000000010000000000000003", KindSegment, 1, 0, 3},
		{"0000000A00000002000000FF", KindSegment, 10, 2, 255},
		{"000000010000000000000008.partial", KindPartial, 1, 0, 8},
		{"000000010000000000000002.00000028.backup", KindBackup, 1, 0, 2},
		{"00000002.history", KindHistory, 2, 0, 0},
	} {
		w, err := ParseWALName(tc.name)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if w.Kind != tc.kind || w.Timeline != tc.tli || w.Log != tc.log || w.Seg != tc.seg {
			t.Errorf("%s: got %+v", tc.name, w)
		}
	}
	for _, bad := range []string{"", "00000001000000000000000", "0000000100000000000000030", "000000010000000000000003.gz",
		"000000010000000000000003.00000028", "00000000000000000000003", "00000000.history", "0000001.history",
		"00000001000000000000000a", "../00000001000000000000", "RECOVERYXLOG", "000000010000000000000003.partial.x",
		"000000010000000000000002.0000002.backup", "000000000000000000000003"} {
		if w, err := ParseWALName(bad); err == nil {
			t.Errorf("%q accepted as %+v", bad, w)
		}
	}
}

func TestSegmentArithmeticFollowsSegmentSize(t *testing.T) {
	t.Parallel()
	for _, size := range []int64{1 << 20, 16 << 20, 1 << 30} {
		for _, segNo := range []uint64{0, 1, SegmentsPerLog(size) - 1, SegmentsPerLog(size), 5*SegmentsPerLog(size) + 7} {
			name := SegmentName(3, segNo, size)
			w, err := ParseWALName(name)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := w.SegNo(size); got != segNo {
				t.Errorf("size %d: SegNo(%s) = %d, want %d", size, name, got, segNo)
			}
		}
	}
	if got := SegmentName(1, SegmentOf(LSN(0x1_00000028), 16<<20), 16<<20); got != "000000010000000100000000" {
		t.Errorf("segment of 1/28: %s", got)
	}
	if !ValidSegmentSize(16<<20) || ValidSegmentSize(3<<20) || ValidSegmentSize(1<<19) || ValidSegmentSize(2<<30) {
		t.Error("ValidSegmentSize")
	}
}

func TestLSNRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"0/0", "0/2000028", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		l, err := ParseLSN(s)
		if err != nil || l.String() != s {
			t.Errorf("%s: %v %v", s, l, err)
		}
	}
	for _, bad := range []string{"", "0", "/1", "1/", "G/0", "123456789/0", "0/-1", "0/1/2"} {
		if _, err := ParseLSN(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

const sampleLabel = `START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
CHECKPOINT LOCATION: 0/2000060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-11-21 10:30:00 UTC
LABEL: walmgrd
START TIMELINE: 1
`

func TestParseBackupLabel(t *testing.T) {
	t.Parallel()
	b, err := ParseBackupLabel(sampleLabel)
	if err != nil {
		t.Fatal(err)
	}
	want := BackupLabel{StartLSN: 0x2000028, StartWAL: "000000010000000000000002", CheckpointLSN: 0x2000060,
		Method: "streamed", From: "primary", StartTime: "2026-11-21 10:30:00 UTC", Label: "walmgrd", StartTimeline: 1}
	if b != want {
		t.Fatalf("got %+v", b)
	}
	if b.String() != sampleLabel {
		t.Fatalf("String():\n%s", b.String())
	}
	for _, bad := range []string{"", "LABEL: x\n", strings.Replace(sampleLabel, "0/2000060", "0/1", 1),
		strings.Replace(sampleLabel, "(file 000000010000000000000002)", "(file junk)", 1),
		strings.Replace(sampleLabel, "START TIMELINE: 1", "START TIMELINE: 0", 1)} {
		if _, err := ParseBackupLabel(bad); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}

func sampleManifest() *Manifest {
	return &Manifest{
		Format: manifestFormat, ID: "20261121T103000Z", Label: "x", SystemIdentifier: "7311", ServerVersion: 150020,
		WALSegmentSize: 16 << 20, Timeline: 1, StartLSN: 0x2000028, StopLSN: 0x2000138,
		StartWAL: "000000010000000000000002", StopWAL: "000000010000000000000002",
		StartTime: time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC), StopTime: time.Date(2026, 11, 21, 10, 30, 5, 0, time.UTC),
		Compression: "zstd", Tablespaces: []Tablespace{{OID: 16384, Location: "/srv/ts"}},
		Dirs:  []DirEntry{{Path: "base", Mode: 0o700}, {Path: "pg_tblspc/16384", Mode: 0o700}},
		Files: []FileEntry{{Path: "backup_label", Size: 10, SHA256: strings.Repeat("a", 64), Stored: 80, Mode: 0o600}},
	}
}

func TestManifestRoundTripAndRejectsPathsOutsideTheTarget(t *testing.T) {
	t.Parallel()
	m := sampleManifest()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := got.Marshal()
	if !bytes.Equal(b, b2) {
		t.Fatalf("round trip changed the manifest:\n%s\n%s", b, b2)
	}
	for _, p := range []string{"../etc/passwd", "/etc/passwd", "a/../../b", "a//b", ".", ""} {
		bad := sampleManifest()
		bad.Files = append(bad.Files, FileEntry{Path: p, Size: 1, SHA256: strings.Repeat("b", 64), Stored: 70})
		b, _ := bad.Marshal()
		if _, err := ParseManifest(b); err == nil {
			t.Errorf("file path %q accepted", p)
		}
		bad = sampleManifest()
		bad.Dirs = append(bad.Dirs, DirEntry{Path: p})
		b, _ = bad.Marshal()
		if _, err := ParseManifest(b); err == nil {
			t.Errorf("dir path %q accepted", p)
		}
	}
	noLabel := sampleManifest()
	noLabel.Files = nil
	b, _ = noLabel.Marshal()
	if _, err := ParseManifest(b); err == nil {
		t.Error("manifest without backup_label accepted")
	}
	if _, err := ParseManifest(append(b[:len(b)-2], []byte(`,"extra":1}`)...)); err == nil {
		t.Error("unknown field accepted")
	}
}

func TestValidBackupID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{"20261121T103000Z": true, "20261121T103000Z-1": true, "20261121T103000Z-12": true,
		"20261121T103000": false, "20261321T103000Z": false, "20261121T103000Z-": false, "20261121T103000Z-x": false,
		"../20261121T103000Z": false, "": false} {
		if got := ValidBackupID(id); got != want {
			t.Errorf("ValidBackupID(%q) = %v", id, got)
		}
	}
}

func TestConfigValidateNamesEveryBadKey(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Repository = "relative"
	cfg.Compression = "gzip"
	cfg.CompressionLevel = 0
	cfg.KeepBackups = 0
	cfg.Jobs = 0
	err := cfg.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, key := range []string{"repository", "compression", "compression_level", "keep_backups", "jobs"} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("problem with %s not reported: %v", key, err)
		}
	}
	good := DefaultConfig()
	good.Repository = "/srv/walmgr"
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults + repository rejected: %v", err)
	}
}

func FuzzParseWALName(f *testing.F) {
	for _, s := range []string{"000000010000000000000003", "00000002.history", "000000010000000000000002.00000028.backup",
		"000000010000000000000008.partial", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWALName(s)
		if err != nil {
			return
		}
		if w.Name != s {
			t.Fatalf("name %q parsed as %q", s, w.Name)
		}
		key := walKey(w)
		if !strings.HasPrefix(key, "wal/") || strings.Contains(key, "..") || !strings.HasSuffix(key, "/"+s) {
			t.Fatalf("%q maps to unsafe key %q", s, key)
		}
		if w.Kind == KindSegment {
			if got := SegmentName(w.Timeline, w.SegNo(16<<20), 16<<20); w.Seg < 256 && got != s {
				t.Fatalf("SegmentName round trip: %q -> %q", s, got)
			}
		}
	})
}

func FuzzParseBackupLabel(f *testing.F) {
	f.Add(sampleLabel)
	f.Add("START WAL LOCATION: 0/0 (file 000000010000000000000000)\nCHECKPOINT LOCATION: 0/0\n")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBackupLabel(s)
		if err != nil {
			return
		}
		if b.CheckpointLSN < b.StartLSN {
			t.Fatalf("checkpoint before start accepted: %+v", b)
		}
		again, err := ParseBackupLabel(b.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		if again.StartLSN != b.StartLSN || again.CheckpointLSN != b.CheckpointLSN || again.StartWAL != b.StartWAL {
			t.Fatalf("round trip %+v -> %+v", b, again)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	b, _ := sampleManifest().Marshal()
	f.Add(b)
	f.Add([]byte(`{"format":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		for _, fe := range m.Files {
			if !validRelPath(fe.Path) || strings.HasPrefix(fe.Path, "/") || strings.Contains("/"+fe.Path+"/", "/../") {
				t.Fatalf("unsafe path %q accepted", fe.Path)
			}
		}
		for _, d := range m.Dirs {
			if strings.HasPrefix(d.Path, "/") || strings.Contains("/"+d.Path+"/", "/../") {
				t.Fatalf("unsafe dir %q accepted", d.Path)
			}
		}
	})
}

func FuzzParseTrailer(f *testing.F) {
	f.Add(Trailer{Compression: CompressZstd, PayloadSize: 10, Size: 100}.marshal())
	f.Add(make([]byte, trailerSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := ParseTrailer(b)
		if err != nil {
			return
		}
		if !bytes.Equal(tr.marshal(), b) {
			t.Fatalf("trailer does not round trip: %x", b)
		}
	})
}

func TestExampleConfigsAreValid(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"walmgrd-master.toml", "walmgrd-standby.toml"} {
		if _, err := LoadConfig("../../deploy/examples/" + name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
