package walmgr

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/skytools-go/skytools/pkg/walmgr/repo"
	"go.uber.org/zap"
)

// BackupOptions tune one base backup.
type BackupOptions struct {
	Label string
	// Progress, if set, is called after every stored file (the daemon beats its
	// watchdog from it).
	Progress func()
}

// skipContents reports the directories whose contents a base backup leaves out:
// PostgreSQL recreates or resets them, and WAL comes from the archive. The directories
// themselves are kept.
func skipContents(rel string) bool {
	switch rel {
	case "pg_wal", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_stat_tmp", "pg_subtrans":
		return true
	}
	return false
}

// skipTopFile reports the files at the top of the data directory a base backup leaves
// out. backup_label and tablespace_map are written from pg_backup_stop's answer instead.
func skipTopFile(name string) bool {
	switch name {
	case "postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map", "backup_label.old",
		"tablespace_map.old", "recovery.signal", "standby.signal", "current_logfiles", "recovery.conf":
		return true
	}
	return false
}

// backupFile is one file to copy.
type backupFile struct {
	rel  string // path in the backup
	abs  string // path on disk
	mode fs.FileMode
}

func backupDataKey(id, rel string) string { return "backups/" + id + "/data/" + rel }
func manifestKey(id string) string        { return "backups/" + id + "/manifest" }

// Backup takes a base backup of the server at cfg.ConnStr whose data directory is
// cfg.PGData. See the package documentation for the steps.
func (r *Repository) Backup(ctx context.Context, cfg *Config, log *zap.Logger, o BackupOptions) (*Manifest, error) {
	if err := cfg.need("pgdata", cfg.PGData, "backup"); err != nil {
		return nil, err
	}
	if err := cfg.need("connstr", cfg.ConnStr, "backup"); err != nil {
		return nil, err
	}
	unlock, err := r.lock("backup")
	if err != nil {
		return nil, err
	}
	defer unlock()

	conn, err := connect(ctx, cfg, "")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	// Closing the session aborts a backup still in progress: the server cleans up.
	defer conn.Close(context.WithoutCancel(ctx))
	info, err := queryServerInfo(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := sameDir(info.DataDirectory, cfg.PGData); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := r.claim(ctx, System{SystemIdentifier: info.SystemID, WALSegmentSize: info.WALSegmentSize}); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	id, err := r.newBackupID(ctx)
	if err != nil {
		return nil, err
	}
	m := &Manifest{
		Format: manifestFormat, ID: id, Label: o.Label, SystemIdentifier: info.SystemID,
		ServerVersion: info.VersionNum, WALSegmentSize: info.WALSegmentSize, FromStandby: info.InRecovery,
		Compression: cfg.Compression, StartTime: time.Now().UTC(),
	}
	log = log.With(zap.String("backup", id))
	log.Info("starting base backup", zap.String("pgdata", cfg.PGData), zap.Bool("from_standby", info.InRecovery))

	startSQL := "SELECT pg_backup_start($1, $2)::text"
	stopSQL := "SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(false)"
	if info.VersionNum < 150000 {
		startSQL = "SELECT pg_start_backup($1, $2, false)::text"
		stopSQL = "SELECT lsn::text, labelfile, spcmapfile FROM pg_stop_backup(false, false)"
	}
	var startLSN string
	if err := conn.QueryRow(ctx, startSQL, o.Label, cfg.FastCheckpoint).Scan(&startLSN); err != nil {
		return nil, fmt.Errorf("backup %s: start: %w", id, err)
	}

	files, err := collectFiles(cfg.PGData, m)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", id, err)
	}
	if err := r.copyFiles(ctx, cfg, id, files, m, o.Progress); err != nil {
		return nil, fmt.Errorf("backup %s: %w", id, err)
	}

	var stopLSN, labelFile, spcMap string
	if err := conn.QueryRow(ctx, stopSQL).Scan(&stopLSN, &labelFile, &spcMap); err != nil {
		return nil, fmt.Errorf("backup %s: stop: %w", id, err)
	}
	m.StopTime = time.Now().UTC()
	label, err := ParseBackupLabel(labelFile)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", id, err)
	}
	stop, err := ParseLSN(stopLSN)
	if err != nil {
		return nil, fmt.Errorf("backup %s: stop: %w", id, err)
	}
	m.StartLSN, m.StopLSN, m.StartWAL = label.StartLSN, stop, label.StartWAL
	m.Timeline = label.StartTimeline
	if m.Timeline == 0 {
		sw, _ := ParseWALName(label.StartWAL)
		m.Timeline = sw.Timeline
	}
	stopSeg := SegmentOf(stop-1, m.WALSegmentSize)
	if stop <= m.StartLSN {
		stopSeg = SegmentOf(m.StartLSN, m.WALSegmentSize)
	}
	m.StopWAL = SegmentName(m.Timeline, stopSeg, m.WALSegmentSize)
	for _, special := range []struct{ name, text string }{{"backup_label", labelFile}, {"tablespace_map", spcMap}} {
		if special.text == "" {
			continue
		}
		fe, err := r.storeBytes(ctx, backupDataKey(id, special.name), []byte(special.text))
		if err != nil {
			return nil, fmt.Errorf("backup %s: %w", id, err)
		}
		fe.Path, fe.Mode, fe.ModTime = special.name, 0o600, m.StopTime
		m.Files = append(m.Files, fe)
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })

	log.Info("files stored, waiting for the backup's WAL to be archived",
		zap.String("start_wal", m.StartWAL), zap.String("stop_wal", m.StopWAL))
	if err := r.waitForWAL(ctx, m, time.Duration(cfg.BackupWALTimeout), o.Progress); err != nil {
		return nil, fmt.Errorf("backup %s: %w", id, err)
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	if _, err := r.storeBytes(ctx, manifestKey(id), b); err != nil {
		return nil, fmt.Errorf("backup %s: write manifest: %w", id, err)
	}
	content, stored := m.Size()
	log.Info("base backup complete", zap.Int64("bytes", content), zap.Int64("stored", stored),
		zap.Duration("took", m.StopTime.Sub(m.StartTime)))
	return m, nil
}

// sameDir refuses to back up a directory that is not the server's data directory.
func sameDir(server, configured string) error {
	a, err1 := filepath.EvalSymlinks(server)
	b, err2 := filepath.EvalSymlinks(configured)
	if err1 != nil || err2 != nil || a != b {
		return fmt.Errorf("pgdata %s is not the data directory of the server at connstr (%s)", configured, server)
	}
	return nil
}

// lock takes an exclusive lock on the repository for one kind of work (one backup
// at a time; cleanup never runs beside a backup). It is an flock on a file in the
// repository directory, released when the process ends however it ends.
func (r *Repository) lock(what string) (func(), error) {
	p := filepath.Join(r.Path, "lock")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("repository %s: lock for %s: %w", r.Path, what, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("repository %s: a backup or cleanup is already running", r.Path)
		}
		return nil, fmt.Errorf("repository %s: lock for %s: %w", r.Path, what, err)
	}
	return func() { f.Close() }, nil
}

func (r *Repository) newBackupID(ctx context.Context) (string, error) {
	base := time.Now().UTC().Format("20060102T150405Z")
	for i := 0; i < 100; i++ {
		id := base
		if i > 0 {
			id = base + "-" + strconv.Itoa(i)
		}
		l, err := r.Store.List(ctx, "backups/"+id)
		if err != nil {
			return "", err
		}
		if len(l) == 0 {
			return id, nil
		}
	}
	return "", fmt.Errorf("repository %s: no free backup id at %s", r.Path, base)
}

// collectFiles walks the data directory and its tablespaces, recording directories in
// m and returning the files to copy, global/pg_control last.
func collectFiles(pgdata string, m *Manifest) ([]backupFile, error) {
	var files []backupFile
	var control *backupFile
	err := walkTree(pgdata, "", true, m, &files, &control)
	if err != nil {
		return nil, err
	}
	tsDir := filepath.Join(pgdata, "pg_tblspc")
	entries, err := os.ReadDir(tsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		oid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || oid == 0 {
			continue
		}
		link := filepath.Join(tsDir, e.Name())
		loc, err := os.Readlink(link)
		if err != nil {
			// An in-place tablespace (a directory) was already walked with the data directory.
			continue
		}
		if !filepath.IsAbs(loc) {
			loc = filepath.Join(tsDir, loc)
		}
		m.Tablespaces = append(m.Tablespaces, Tablespace{OID: uint32(oid), Location: loc})
		if err := walkTree(loc, "pg_tblspc/"+e.Name(), false, m, &files, nil); err != nil {
			return nil, err
		}
	}
	if control == nil {
		return nil, fmt.Errorf("%s has no global/pg_control: not a data directory", pgdata)
	}
	return append(files, *control), nil
}

// walkTree adds the directories and files under root (stored under prefix) that a
// base backup copies.
func walkTree(root, prefix string, top bool, m *Manifest, files *[]backupFile, control **backupFile) error {
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != root { // dropped during the backup
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		name := e.Name()
		if p == root {
			if prefix != "" {
				m.Dirs = append(m.Dirs, DirEntry{Path: prefix, Mode: 0o700})
			}
			return nil
		}
		full := rel
		if prefix != "" {
			full = prefix + "/" + rel
		}
		if strings.HasPrefix(name, "pgsql_tmp") || name == "pg_internal.init" {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if top && !strings.Contains(rel, "/") && skipTopFile(name) && !e.IsDir() {
			return nil
		}
		if top && rel == "pg_tblspc" {
			m.Dirs = append(m.Dirs, DirEntry{Path: full, Mode: 0o700})
			entries, err := os.ReadDir(p)
			if err != nil {
				return err
			}
			for _, te := range entries { // in-place tablespaces are plain directories
				if te.IsDir() {
					if err := walkTree(filepath.Join(p, te.Name()), "pg_tblspc/"+te.Name(), false, m, files, nil); err != nil {
						return err
					}
				}
			}
			return fs.SkipDir
		}
		st, err := os.Stat(p) // follows symlinks: a linked pg_wal or config file is copied as what it points to
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if st.IsDir() {
			m.Dirs = append(m.Dirs, DirEntry{Path: full, Mode: uint32(st.Mode().Perm())})
			if top && skipContents(rel) {
				if rel == "pg_wal" {
					m.Dirs = append(m.Dirs, DirEntry{Path: "pg_wal/archive_status", Mode: uint32(st.Mode().Perm())})
				}
				return fs.SkipDir
			}
			if e.Type()&fs.ModeSymlink != 0 {
				// WalkDir does not follow links: walk the linked directory itself.
				target, err := filepath.EvalSymlinks(p)
				if err != nil {
					return err
				}
				m.Dirs = m.Dirs[:len(m.Dirs)-1] // walkTree records it again
				return walkTree(target, full, false, m, files, nil)
			}
			return nil
		}
		if !st.Mode().IsRegular() {
			return nil
		}
		if unloggedMainFork(p, name) {
			return nil
		}
		f := backupFile{rel: full, abs: p, mode: st.Mode().Perm()}
		if top && rel == "global/pg_control" {
			*control = &f
			return nil
		}
		*files = append(*files, f)
		return nil
	})
}

// unloggedMainFork reports whether a relation file belongs to an unlogged relation
// (one with an init fork beside it) and is not the init fork itself: such files are
// reset from the init fork at recovery, so a backup leaves them out.
func unloggedMainFork(p, name string) bool {
	dir := path.Base(filepath.Dir(p))
	if _, err := strconv.ParseUint(dir, 10, 32); err != nil {
		return false // only database directories hold relation files
	}
	node := name
	if i := strings.IndexAny(node, "._"); i >= 0 {
		node = node[:i]
	}
	if _, err := strconv.ParseUint(node, 10, 32); err != nil {
		return false
	}
	if strings.HasPrefix(name[len(node):], "_init") {
		return false
	}
	_, err := os.Stat(filepath.Join(filepath.Dir(p), node+"_init"))
	return err == nil
}

// copyFiles stores files with cfg.Jobs workers, each with its own compressor.
func (r *Repository) copyFiles(ctx context.Context, cfg *Config, id string, files []backupFile, m *Manifest, progress func()) error {
	// pg_control goes last, after every other file is stored.
	last := files[len(files)-1]
	rest := files[:len(files)-1]
	entries, err := r.parallel(ctx, cfg, len(rest), func(c *codec, i int) (FileEntry, error) {
		return r.storeFile(ctx, c, id, rest[i])
	}, progress)
	if err != nil {
		return err
	}
	fe, err := r.storeFile(ctx, r.codec, id, last)
	if err != nil {
		return err
	}
	for _, e := range append(entries, fe) {
		if e.Path != "" { // vanished files leave an empty entry
			m.Files = append(m.Files, e)
		}
	}
	return nil
}

// parallel runs fn for 0..n-1 on cfg.Jobs workers, each with its own codec, and
// returns the results in order. The first error cancels the rest.
func (r *Repository) parallel(ctx context.Context, cfg *Config, n int, fn func(c *codec, i int) (FileEntry, error), progress func()) ([]FileEntry, error) {
	out := make([]FileEntry, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	var mu sync.Mutex
	for w := 0; w < cfg.Jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newCodec(cfg.compression(), cfg.CompressionLevel)
			defer c.close()
			for i := range next {
				fe, err := fn(c, i)
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
					continue
				}
				out[i] = fe
				if progress != nil {
					mu.Lock()
					progress()
					mu.Unlock()
				}
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// storeFile copies one data file into the backup. A file that vanished since the walk
// (a dropped table) is skipped: WAL replay removes it anyway.
func (r *Repository) storeFile(ctx context.Context, c *codec, id string, f backupFile) (FileEntry, error) {
	src, err := os.Open(f.abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return FileEntry{}, nil
		}
		return FileEntry{}, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return FileEntry{}, err
	}
	w, err := r.Store.Create(ctx, backupDataKey(id, f.rel))
	if err != nil {
		return FileEntry{}, err
	}
	t, err := c.encode(w, src)
	if err != nil {
		_ = w.Abort()
		return FileEntry{}, fmt.Errorf("store %s: %w", f.abs, err)
	}
	if err := w.Commit(ctx); err != nil {
		return FileEntry{}, err
	}
	return FileEntry{Path: f.rel, Size: t.Size, SHA256: t.Checksum(), Stored: t.PayloadSize + trailerSize,
		Mode: uint32(f.mode), ModTime: st.ModTime().UTC()}, nil
}

// storeBytes stores data as a blob under key.
func (r *Repository) storeBytes(ctx context.Context, key string, data []byte) (FileEntry, error) {
	w, err := r.Store.Create(ctx, key)
	if err != nil {
		return FileEntry{}, err
	}
	t, err := r.codec.encode(w, strings.NewReader(string(data)))
	if err != nil {
		_ = w.Abort()
		return FileEntry{}, err
	}
	if err := w.Commit(ctx); err != nil {
		return FileEntry{}, err
	}
	return FileEntry{Size: t.Size, SHA256: t.Checksum(), Stored: t.PayloadSize + trailerSize}, nil
}

// waitForWAL waits until every segment of the backup's WAL range is archived.
func (r *Repository) waitForWAL(ctx context.Context, m *Manifest, timeout time.Duration, progress func()) error {
	start, _ := ParseWALName(m.StartWAL)
	stop, _ := ParseWALName(m.StopWAL)
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	next := start.SegNo(m.WALSegmentSize)
	last := stop.SegNo(m.WALSegmentSize)
	for next <= last {
		name := SegmentName(m.Timeline, next, m.WALSegmentSize)
		w, _ := ParseWALName(name)
		_, err := r.Store.Stat(ctx, walKey(w))
		if err == nil {
			next++
			continue
		}
		if !errors.Is(err, repo.ErrNotFound) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("WAL segment %s was not archived within backup_wal_timeout (%s): is archive_command set to walmgrd archive?", name, timeout)
		}
		if progress != nil {
			progress()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// readManifest loads a backup's manifest; ErrNotFound (wrapped) for an incomplete backup.
func (r *Repository) readManifest(ctx context.Context, id string) (*Manifest, error) {
	obj, err := r.Store.Open(ctx, manifestKey(id))
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	var buf strings.Builder
	if _, err := r.codec.decode(&buf, obj); err != nil {
		return nil, fmt.Errorf("backup %s: manifest: %w", id, err)
	}
	m, err := ParseManifest([]byte(buf.String()))
	if err != nil {
		return nil, err
	}
	if m.ID != id {
		return nil, fmt.Errorf("backup %s: manifest is for backup %s: %w", id, m.ID, ErrCorrupt)
	}
	return m, nil
}

// backupState is a backup as found in the repository.
type backupState struct {
	ID       string
	Manifest *Manifest // nil: incomplete (no manifest) or unreadable
	Err      error     // why the manifest could not be read
	Stored   int64
	Modified time.Time
}

// backups lists every backup directory, oldest first.
func (r *Repository) backups(ctx context.Context) ([]backupState, error) {
	objs, err := r.Store.List(ctx, "backups")
	if err != nil {
		return nil, err
	}
	byID := map[string]*backupState{}
	var ids []string
	for _, o := range objs {
		rest := strings.TrimPrefix(o.Key, "backups/")
		id, _, _ := strings.Cut(rest, "/")
		if !ValidBackupID(id) {
			continue
		}
		b := byID[id]
		if b == nil {
			b = &backupState{ID: id}
			byID[id] = b
			ids = append(ids, id)
		}
		b.Stored += o.Size
		if o.ModTime.After(b.Modified) {
			b.Modified = o.ModTime
		}
	}
	sort.Strings(ids)
	out := make([]backupState, 0, len(ids))
	for _, id := range ids {
		b := byID[id]
		m, err := r.readManifest(ctx, id)
		switch {
		case err == nil:
			b.Manifest = m
		case errors.Is(err, repo.ErrNotFound):
		default:
			b.Err = err
		}
		out = append(out, *b)
	}
	sort.SliceStable(out, func(i, j int) bool { return backupTime(out[i]).Before(backupTime(out[j])) })
	return out, nil
}

// backupTime orders backups by when they ended (by their ID for incomplete ones),
// never by WAL names: timelines and LSNs say nothing about age across a restore.
func backupTime(b backupState) time.Time {
	if b.Manifest != nil {
		return b.Manifest.StopTime
	}
	t, err := time.Parse("20060102T150405Z", strings.SplitN(b.ID, "-", 2)[0])
	if err != nil {
		return b.Modified
	}
	return t
}
