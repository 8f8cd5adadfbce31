package walmgr

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/skytools-go/skytools/pkg/walmgr/repo"
)

// Repository keys outside wal/ and backups/.
const (
	markerKey = "walmgrd.repository" // written by setup: proves the repository is there
	systemKey = "system.json"        // the one cluster this repository belongs to
)

// ErrNotInitialised means the repository directory has no marker: it was never set
// up, or a network filesystem is not mounted and we see the empty mount point.
var ErrNotInitialised = errors.New("not a walmgrd repository (run walmgrd setup)")

// Repository is a walmgrd repository: archived WAL, base backups, and which cluster
// they belong to.
type Repository struct {
	Store repo.Store
	Path  string
	codec *codec
}

// System identifies the cluster whose WAL a repository holds.
type System struct {
	SystemIdentifier string `json:"system_identifier"`
	WALSegmentSize   int64  `json:"wal_segment_size"`
}

type marker struct {
	Format  int       `json:"format"`
	Created time.Time `json:"created"`
}

// OpenRepository opens an initialised repository.
func OpenRepository(ctx context.Context, cfg *Config) (*Repository, error) {
	r := &Repository{Store: repo.NewDir(cfg.Repository), Path: cfg.Repository,
		codec: newCodec(cfg.compression(), cfg.CompressionLevel)}
	if _, err := r.Store.Stat(ctx, markerKey); err != nil {
		if errors.Is(err, repo.ErrNotFound) {
			return nil, fmt.Errorf("repository %s: %w", cfg.Repository, ErrNotInitialised)
		}
		return nil, err
	}
	return r, nil
}

// InitRepository creates the repository directory and its marker if missing.
// It reports whether it created anything.
func InitRepository(ctx context.Context, cfg *Config) (bool, error) {
	if err := os.MkdirAll(cfg.Repository, 0o700); err != nil {
		return false, fmt.Errorf("repository %s: %w", cfg.Repository, err)
	}
	store := repo.NewDir(cfg.Repository)
	b, _ := json.Marshal(marker{Format: 1, Created: time.Now().UTC()})
	err := putObject(ctx, store, markerKey, b)
	if errors.Is(err, repo.ErrExists) {
		return false, nil
	}
	return err == nil, err
}

// Close releases the codec.
func (r *Repository) Close() { r.codec.close() }

// putObject commits a small plain object.
func putObject(ctx context.Context, s repo.Store, key string, data []byte) error {
	w, err := s.Create(ctx, key)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		_ = w.Abort()
		return err
	}
	return w.Commit(ctx)
}

// getObject reads a small plain object.
func getObject(ctx context.Context, s repo.Store, key string) ([]byte, error) {
	o, err := s.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	if o.Size() > 64<<20 {
		return nil, fmt.Errorf("%s: %d bytes is too large for a metadata object", key, o.Size())
	}
	b, err := io.ReadAll(io.NewSectionReader(o, 0, o.Size()))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return b, nil
}

// System returns the cluster the repository belongs to; ok is false before the
// first segment or backup was stored.
func (r *Repository) System(ctx context.Context) (System, bool, error) {
	b, err := getObject(ctx, r.Store, systemKey)
	if errors.Is(err, repo.ErrNotFound) {
		return System{}, false, nil
	}
	if err != nil {
		return System{}, false, err
	}
	var s System
	if err := json.Unmarshal(b, &s); err != nil {
		return System{}, false, fmt.Errorf("repository %s: %s: %w", r.Path, systemKey, err)
	}
	return s, true, nil
}

// claim records sys as the repository's cluster, or checks that it is the one
// already recorded: WAL of two clusters in one repository is the classic cause of
// "same name, different content", and is refused before anything is stored.
func (r *Repository) claim(ctx context.Context, sys System) error {
	have, ok, err := r.System(ctx)
	if err != nil {
		return err
	}
	if !ok {
		b, _ := json.Marshal(sys)
		err := putObject(ctx, r.Store, systemKey, b)
		if err == nil {
			return nil
		}
		if !errors.Is(err, repo.ErrExists) {
			return err
		}
		if have, _, err = r.System(ctx); err != nil {
			return err
		}
	}
	if have.SystemIdentifier != sys.SystemIdentifier {
		return fmt.Errorf("repository %s belongs to database system %s, not %s: refusing to mix clusters",
			r.Path, have.SystemIdentifier, sys.SystemIdentifier)
	}
	if have.WALSegmentSize != sys.WALSegmentSize {
		return fmt.Errorf("repository %s holds %d-byte WAL segments, not %d", r.Path, have.WALSegmentSize, sys.WALSegmentSize)
	}
	return nil
}

// walPageHeader is what the first (long) page header of a WAL segment tells.
type walPageHeader struct {
	Timeline   uint32
	PageAddr   uint64
	SystemID   uint64
	SegSize    uint32
	BlockSize  uint32
	LongHeader bool
}

// walLongHeaderSize is sizeof(XLogLongPageHeaderData).
const walLongHeaderSize = 40

// parseWALPageHeader decodes XLogLongPageHeaderData (little-endian servers).
func parseWALPageHeader(b []byte) (walPageHeader, error) {
	var h walPageHeader
	if len(b) < walLongHeaderSize {
		return h, fmt.Errorf("%d bytes is too short for a WAL page header", len(b))
	}
	info := binary.LittleEndian.Uint16(b[2:])
	h.Timeline = binary.LittleEndian.Uint32(b[4:])
	h.PageAddr = binary.LittleEndian.Uint64(b[8:])
	h.LongHeader = info&0x0002 != 0
	if !h.LongHeader {
		return h, fmt.Errorf("first page has no long header: not the start of a WAL segment")
	}
	h.SystemID = binary.LittleEndian.Uint64(b[24:])
	h.SegSize = binary.LittleEndian.Uint32(b[32:])
	h.BlockSize = binary.LittleEndian.Uint32(b[36:])
	if !ValidSegmentSize(int64(h.SegSize)) || h.BlockSize == 0 || h.BlockSize&(h.BlockSize-1) != 0 || h.Timeline == 0 {
		return h, fmt.Errorf("WAL page header has segment size %d, block size %d, timeline %d: not a WAL segment",
			h.SegSize, h.BlockSize, h.Timeline)
	}
	return h, nil
}

func (h walPageHeader) system() System {
	return System{SystemIdentifier: strconv.FormatUint(h.SystemID, 10), WALSegmentSize: int64(h.SegSize)}
}
