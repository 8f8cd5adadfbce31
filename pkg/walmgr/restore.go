package walmgr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skytools-go/skytools/pkg/walmgr/repo"
	"go.uber.org/zap"
)

// RestoreOptions say what to restore where, and how recovery should end.
type RestoreOptions struct {
	DataDir  string
	BackupID string
	// At most one target.
	TargetTime, TargetLSN, TargetXID, TargetName string
	TargetImmediate                              bool
	TargetExclusive                              bool
	TargetAction                                 string // promote, pause, shutdown; "" = server default
	TargetTimeline                               string // "" = latest
	Standby                                      bool
	Force                                        bool
	// NoArchive turns archiving off in the restored server: for a copy that runs
	// beside the original and must not write its own timeline into the repository.
	NoArchive bool
	// Tablespaces relocates tablespaces by OID; others go back where they were.
	Tablespaces map[uint32]string
	// ConfigPath is the config file the restore_command will name.
	ConfigPath string
	// Executable is the walmgrd the restore_command will run; default: this one.
	Executable string
}

func (o *RestoreOptions) check() error {
	n := 0
	for _, s := range []string{o.TargetTime, o.TargetLSN, o.TargetXID, o.TargetName} {
		if s != "" {
			n++
		}
	}
	if o.TargetImmediate {
		n++
	}
	if n > 1 {
		return fmt.Errorf("restore: give at most one of --target-time, --target-lsn, --target-xid, --target-name, --target-immediate")
	}
	switch o.TargetAction {
	case "", "promote", "pause", "shutdown":
	default:
		return fmt.Errorf("restore: --target-action %q: want promote, pause or shutdown", o.TargetAction)
	}
	if o.TargetAction != "" && n == 0 {
		return fmt.Errorf("restore: --target-action needs a recovery target")
	}
	if o.TargetLSN != "" {
		if _, err := ParseLSN(o.TargetLSN); err != nil {
			return fmt.Errorf("restore: --target-lsn: %w", err)
		}
	}
	if !filepath.IsAbs(o.DataDir) {
		return fmt.Errorf("restore: DATADIR %q must be an absolute path", o.DataDir)
	}
	return nil
}

// parseTargetTime reads the time forms people pass to recovery_target_time.
func parseTargetTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07",
		"2006-01-02 15:04:05.999999999 MST", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--target-time %q: want a time such as \"2026-11-21 10:30:00+00\"", s)
}

// chooseBackup picks the backup to restore: the one asked for, else the newest
// complete backup that ended before the target (one that ends after the target cannot
// reach consistency before it).
func (r *Repository) chooseBackup(ctx context.Context, o *RestoreOptions) (*Manifest, error) {
	if o.BackupID != "" {
		m, err := r.readManifest(ctx, o.BackupID)
		if err != nil {
			return nil, fmt.Errorf("restore: backup %s: %w (is it complete?)", o.BackupID, err)
		}
		return m, nil
	}
	all, err := r.backups(ctx)
	if err != nil {
		return nil, err
	}
	var targetTime time.Time
	if o.TargetTime != "" {
		if targetTime, err = parseTargetTime(o.TargetTime); err != nil {
			return nil, err
		}
	}
	targetLSN, _ := ParseLSN(o.TargetLSN)
	for i := len(all) - 1; i >= 0; i-- {
		m := all[i].Manifest
		if m == nil {
			continue
		}
		if !targetTime.IsZero() && !m.StopTime.Before(targetTime) {
			continue
		}
		if o.TargetLSN != "" && m.StopLSN > targetLSN {
			continue
		}
		return m, nil
	}
	return nil, fmt.Errorf("restore: repository %s has no complete backup that ends before the target", r.Path)
}

// Restore prepares o.DataDir from a backup and configures recovery.
func (r *Repository) Restore(ctx context.Context, cfg *Config, log *zap.Logger, o RestoreOptions) (*Manifest, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	m, err := r.chooseBackup(ctx, &o)
	if err != nil {
		return nil, err
	}
	log = log.With(zap.String("backup", m.ID), zap.String("datadir", o.DataDir))
	if os.Geteuid() == 0 {
		log.Warn("restoring as root: the files will belong to root, and PostgreSQL will not start on them until they are chowned to its user")
	}
	log.Info("restoring base backup")
	if err := prepareEmptyDir(o.DataDir, o.Force); err != nil {
		return nil, err
	}
	tsDirs := map[uint32]string{}
	for _, ts := range m.Tablespaces {
		dir := ts.Location
		if d, ok := o.Tablespaces[ts.OID]; ok {
			dir = d
		}
		if err := prepareEmptyDir(dir, o.Force); err != nil {
			return nil, fmt.Errorf("tablespace %d: %w", ts.OID, err)
		}
		tsDirs[ts.OID] = dir
	}
	target := func(rel string) string {
		if rest, ok := strings.CutPrefix(rel, "pg_tblspc/"); ok {
			oidStr, sub, _ := strings.Cut(rest, "/")
			if oid, err := strconv.ParseUint(oidStr, 10, 32); err == nil {
				if dir, ok := tsDirs[uint32(oid)]; ok {
					return filepath.Join(dir, filepath.FromSlash(sub))
				}
			}
		}
		return filepath.Join(o.DataDir, filepath.FromSlash(rel))
	}
	// Directories, parents first; tablespace roots become symlinks.
	dirs := append([]DirEntry(nil), m.Dirs...)
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].Path < dirs[j].Path })
	for _, d := range dirs {
		if rest, ok := strings.CutPrefix(d.Path, "pg_tblspc/"); ok && !strings.Contains(rest, "/") {
			if oid, err := strconv.ParseUint(rest, 10, 32); err == nil {
				if dir, ok := tsDirs[uint32(oid)]; ok {
					if err := os.Symlink(dir, filepath.Join(o.DataDir, "pg_tblspc", rest)); err != nil {
						return nil, fmt.Errorf("restore: %w", err)
					}
					continue
				}
			}
		}
		if err := os.MkdirAll(target(d.Path), fs.FileMode(d.Mode)|0o700); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	// Files; global/pg_control last, so that a restore that fails half way leaves a
	// directory no server will start from.
	var files, last []FileEntry
	for _, f := range m.Files {
		if f.Path == "tablespace_map" {
			continue // rewritten below with the locations actually used
		}
		if f.Path == "global/pg_control" {
			last = append(last, f)
		} else {
			files = append(files, f)
		}
	}
	for _, batch := range [][]FileEntry{files, last} {
		if _, err := r.parallel(ctx, cfg, len(batch), func(c *codec, i int) (FileEntry, error) {
			return FileEntry{}, r.restoreFile(ctx, c, m, batch[i], target(batch[i].Path))
		}, nil); err != nil {
			return nil, fmt.Errorf("restore %s: %w", m.ID, err)
		}
	}
	if len(m.Tablespaces) > 0 {
		// PostgreSQL recreates pg_tblspc links from tablespace_map when it starts from
		// backup_label: it must name where the tablespaces are now, never where the
		// source server keeps them.
		var tm strings.Builder
		for _, ts := range m.Tablespaces {
			fmt.Fprintf(&tm, "%d %s\n", ts.OID, tsDirs[ts.OID])
		}
		if err := writeFileSync(filepath.Join(o.DataDir, "tablespace_map"), []byte(tm.String()), 0o600); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	if err := writeRecoveryConfig(o, cfg); err != nil {
		return nil, err
	}
	for _, dir := range append([]string{o.DataDir}, mapValues(tsDirs)...) {
		if err := syncFilesystem(dir); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	log.Info("restore complete")
	return m, nil
}

func mapValues(m map[uint32]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// prepareEmptyDir makes sure dir exists and is empty. A non-empty dir is refused
// unless force, and never emptied while a server runs on it.
func prepareEmptyDir(dir string, force bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if len(entries) == 0 {
		return os.Chmod(dir, 0o700)
	}
	if !force {
		return fmt.Errorf("restore: %s is not empty (use --force to replace its contents)", dir)
	}
	if pid, ok := runningPostmaster(dir); ok {
		return fmt.Errorf("restore: a server (pid %d) is running on %s: stop it first", pid, dir)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("restore: empty %s: %w", dir, err)
		}
	}
	return nil
}

// runningPostmaster reads dir/postmaster.pid and checks whether that process lives.
func runningPostmaster(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 0 {
		return 0, false
	}
	err = syscall.Kill(pid, 0)
	return pid, err == nil || errors.Is(err, syscall.EPERM)
}

// restoreFile writes one file, verified against the manifest and the blob checksum.
func (r *Repository) restoreFile(ctx context.Context, c *codec, m *Manifest, f FileEntry, dest string) error {
	obj, err := r.Store.Open(ctx, backupDataKey(m.ID, f.Path))
	if err != nil {
		return err
	}
	defer obj.Close()
	out, err := os.OpenFile(dest, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fs.FileMode(f.Mode)|0o600)
	if err != nil {
		return err
	}
	t, err := c.decode(out, obj)
	if err == nil && t.Checksum() != f.SHA256 {
		err = fmt.Errorf("checksum %s, manifest says %s: %w", t.Checksum(), f.SHA256, ErrCorrupt)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	if !f.ModTime.IsZero() {
		_ = os.Chtimes(dest, f.ModTime, f.ModTime)
	}
	return nil
}

// recoveryKeys are the settings restore writes; older lines for them are removed from
// postgresql.auto.conf so that a backup of a restored server restores cleanly.
func isRecoveryKey(k string) bool {
	switch k {
	case "restore_command", "recovery_target", "recovery_target_time", "recovery_target_lsn", "recovery_target_xid",
		"recovery_target_name", "recovery_target_inclusive", "recovery_target_action", "recovery_target_timeline",
		"primary_conninfo":
		return true
	}
	return false
}

// confQuote quotes a value for postgresql.conf.
func confQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// shellQuote quotes a word for the shell that runs restore_command.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// selfCommand is "walmgrd -c CONFIG" for archive_command and restore_command.
func selfCommand(exe, configPath string) (string, error) {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return "", fmt.Errorf("find the walmgrd executable: %w", err)
		}
	}
	cfgAbs, err := filepath.Abs(configPath)
	if err != nil {
		return "", err
	}
	return shellQuote(exe) + " -c " + shellQuote(cfgAbs), nil
}

// writeRecoveryConfig writes the recovery settings into postgresql.auto.conf and the
// signal file that makes the server recover.
func writeRecoveryConfig(o RestoreOptions, cfg *Config) error {
	self, err := selfCommand(o.Executable, o.ConfigPath)
	if err != nil {
		return err
	}
	settings := [][2]string{{"restore_command", self + " fetch %f %p"}}
	add := func(k, v string) { settings = append(settings, [2]string{k, v}) }
	switch {
	case o.TargetTime != "":
		add("recovery_target_time", o.TargetTime)
	case o.TargetLSN != "":
		add("recovery_target_lsn", o.TargetLSN)
	case o.TargetXID != "":
		add("recovery_target_xid", o.TargetXID)
	case o.TargetName != "":
		add("recovery_target_name", o.TargetName)
	case o.TargetImmediate:
		add("recovery_target", "immediate")
	}
	if o.TargetExclusive {
		add("recovery_target_inclusive", "off")
	}
	if o.TargetAction != "" {
		add("recovery_target_action", o.TargetAction)
	}
	tl := o.TargetTimeline
	if tl == "" {
		tl = "latest"
	}
	add("recovery_target_timeline", tl)
	if o.Standby && cfg.PrimaryConnInfo != "" {
		add("primary_conninfo", cfg.PrimaryConnInfo)
	}
	if o.NoArchive {
		add("archive_mode", "off")
	}

	auto := filepath.Join(o.DataDir, "postgresql.auto.conf")
	var kept []string
	if f, err := os.Open(auto); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			k, _, _ := strings.Cut(strings.TrimSpace(line), "=")
			if k = strings.TrimSpace(k); isRecoveryKey(k) || (o.NoArchive && k == "archive_mode") {
				continue
			}
			kept = append(kept, line)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return fmt.Errorf("restore: read %s: %w", auto, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("restore: %w", err)
	}
	if len(kept) == 0 {
		kept = append(kept, "# Do not edit this file manually!", "# It will be overwritten by the ALTER SYSTEM command.")
	}
	for _, s := range settings {
		kept = append(kept, s[0]+" = "+confQuote(s[1]))
	}
	if err := writeFileSync(auto, []byte(strings.Join(kept, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	signal := "recovery.signal"
	if o.Standby {
		signal = "standby.signal"
	}
	if err := writeFileSync(filepath.Join(o.DataDir, signal), nil, 0o600); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

func writeFileSync(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncFilesystem flushes every directory under dir (file contents were fsynced as
// they were written) so the new names survive a crash.
func syncFilesystem(dir string) error {
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() {
			return nil
		}
		return repo.SyncDir(p)
	})
}
