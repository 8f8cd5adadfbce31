package walmgr

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"
)

// manifestFormat is the version of the manifest layout this code writes.
const manifestFormat = 1

// Manifest describes one complete base backup. It is written last, only after the
// backup's WAL range is in the archive: a backup directory without a manifest is
// incomplete and is never restored from.
type Manifest struct {
	Format           int          `json:"format"`
	ID               string       `json:"id"`
	Label            string       `json:"label"`
	SystemIdentifier string       `json:"system_identifier"`
	ServerVersion    int          `json:"server_version_num"`
	WALSegmentSize   int64        `json:"wal_segment_size"`
	Timeline         uint32       `json:"timeline"`
	StartLSN         LSN          `json:"start_lsn"`
	StopLSN          LSN          `json:"stop_lsn"`
	StartWAL         string       `json:"start_wal"`
	StopWAL          string       `json:"stop_wal"`
	StartTime        time.Time    `json:"start_time"`
	StopTime         time.Time    `json:"stop_time"`
	FromStandby      bool         `json:"from_standby"`
	Compression      string       `json:"compression"`
	Tablespaces      []Tablespace `json:"tablespaces"`
	Dirs             []DirEntry   `json:"dirs"`
	Files            []FileEntry  `json:"files"`
}

// Tablespace is a tablespace as pg_tblspc/OID pointed to during the backup.
type Tablespace struct {
	OID      uint32 `json:"oid"`
	Location string `json:"location"`
}

// DirEntry is a directory of the data directory (or of a tablespace, under
// pg_tblspc/OID/) to create on restore.
type DirEntry struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
}

// FileEntry is one backed-up file.
type FileEntry struct {
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	Stored  int64     `json:"stored"`
	Mode    uint32    `json:"mode"`
	ModTime time.Time `json:"mtime"`
}

// ValidBackupID reports whether id is a backup ID walmgrd makes: the UTC start time
// (20261121T103000Z), plus "-N" when two backups start in the same second.
func ValidBackupID(id string) bool {
	base, n, hasN := strings.Cut(id, "-")
	if hasN && (n == "" || len(n) > 4 || strings.Trim(n, "0123456789") != "") {
		return false
	}
	_, err := time.Parse("20060102T150405Z", base)
	return err == nil && len(base) == 16
}

// validRelPath accepts the relative, clean paths a manifest may name: restore writes
// exactly there under the target, so nothing may climb out of it.
func validRelPath(p string) bool {
	return p != "" && p != "." && !strings.HasPrefix(p, "/") && path.Clean(p) == p &&
		p != ".." && !strings.HasPrefix(p, "../") && !strings.Contains(p, "\x00") && !strings.Contains(p, "\\")
}

// ParseManifest decodes and checks a manifest.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", m.ID, err)
	}
	return &m, nil
}

func (m *Manifest) check() error {
	if m.Format != manifestFormat {
		return fmt.Errorf("format %d, this walmgrd reads %d", m.Format, manifestFormat)
	}
	if !ValidBackupID(m.ID) {
		return fmt.Errorf("bad backup id %q", m.ID)
	}
	if !ValidSegmentSize(m.WALSegmentSize) {
		return fmt.Errorf("bad wal_segment_size %d", m.WALSegmentSize)
	}
	if m.Timeline == 0 || m.StopLSN < m.StartLSN {
		return fmt.Errorf("bad timeline %d or WAL range %s-%s", m.Timeline, m.StartLSN, m.StopLSN)
	}
	for _, name := range []string{m.StartWAL, m.StopWAL} {
		if w, err := ParseWALName(name); err != nil || w.Kind != KindSegment {
			return fmt.Errorf("bad WAL segment name %q", name)
		}
	}
	if m.Compression != "zstd" && m.Compression != "none" {
		return fmt.Errorf("bad compression %q", m.Compression)
	}
	seen := map[string]bool{}
	for _, d := range m.Dirs {
		if !validRelPath(d.Path) {
			return fmt.Errorf("bad directory path %q", d.Path)
		}
	}
	for _, f := range m.Files {
		if !validRelPath(f.Path) {
			return fmt.Errorf("bad file path %q", f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("file %q listed twice", f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 || f.Stored < trailerSize || len(f.SHA256) != 64 {
			return fmt.Errorf("file %q: bad size or checksum", f.Path)
		}
	}
	if !seen["backup_label"] {
		return fmt.Errorf("no backup_label")
	}
	for _, ts := range m.Tablespaces {
		if ts.OID == 0 || !strings.HasPrefix(ts.Location, "/") {
			return fmt.Errorf("bad tablespace %d at %q", ts.OID, ts.Location)
		}
	}
	return nil
}

// Marshal encodes the manifest.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", m.ID, err)
	}
	return append(b, '\n'), nil
}

// Size is the total size of the backed-up content and of what is stored.
func (m *Manifest) Size() (content, stored int64) {
	for _, f := range m.Files {
		content += f.Size
		stored += f.Stored
	}
	return content, stored
}
