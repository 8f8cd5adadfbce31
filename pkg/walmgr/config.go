package walmgr

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/skytools-go/skytools/pkg/lifecycle"
)

// Config is one walmgrd role (master or standby): the file given with -c.
type Config struct {
	lifecycle.Common

	// Repository is the directory archived WAL and base backups live in.
	Repository string `toml:"repository"`
	// PGData is this role's data directory (backups read it).
	PGData string `toml:"pgdata"`
	// ConnStr reaches this role's server (backup, setup, promote, daemon checks).
	ConnStr string `toml:"connstr"`
	// Compression of stored files: "zstd" or "none".
	Compression string `toml:"compression"`
	// CompressionLevel is the zstd level, 1 (fastest) to 19 (smallest).
	CompressionLevel int `toml:"compression_level"`
	// KeepBackups is how many complete base backups retention keeps (at least 1).
	KeepBackups int `toml:"keep_backups"`
	// BackupSchedule makes the daemon take a base backup when the newest complete
	// backup is older than this; "0s" or unset disables scheduled backups.
	BackupSchedule lifecycle.Duration `toml:"backup_schedule"`
	// PrimaryConnInfo is written as primary_conninfo by restore --standby.
	PrimaryConnInfo string `toml:"primary_conninfo"`
	// FastCheckpoint asks pg_backup_start for an immediate checkpoint.
	FastCheckpoint bool `toml:"fast_checkpoint"`
	// BackupWALTimeout bounds the wait for a backup's last WAL segment to be archived.
	BackupWALTimeout lifecycle.Duration `toml:"backup_wal_timeout"`
	// CheckInterval is how often the daemon checks archiving and the schedule.
	CheckInterval lifecycle.Duration `toml:"check_interval"`
	// ArchiveStaleAfter makes the daemon warn when nothing was archived for this long
	// while the server wrote WAL; "0s" disables the warning.
	ArchiveStaleAfter lifecycle.Duration `toml:"archive_stale_after"`
	// FetchPrefetch is how many following segments fetch decompresses ahead.
	FetchPrefetch int `toml:"fetch_prefetch"`
	// Jobs is how many files backup, restore and verify process at once.
	Jobs int `toml:"jobs"`
}

// DefaultConfig returns a config with every default filled in.
func DefaultConfig() Config {
	return Config{
		Compression:       "zstd",
		CompressionLevel:  3,
		KeepBackups:       2,
		FastCheckpoint:    true,
		BackupWALTimeout:  lifecycle.Duration(10 * time.Minute),
		CheckInterval:     lifecycle.Duration(30 * time.Second),
		ArchiveStaleAfter: lifecycle.Duration(15 * time.Minute),
		Jobs:              2,
	}
}

// Validate reports every problem with its key.
func (c *Config) Validate() error {
	var ps lifecycle.Problems
	c.Common.Validate(&ps)
	if c.Repository == "" {
		ps.Addf("repository", "required: the repository directory")
	} else if !filepath.IsAbs(c.Repository) {
		ps.Addf("repository", "must be an absolute path, got %q", c.Repository)
	}
	if c.PGData != "" && !filepath.IsAbs(c.PGData) {
		ps.Addf("pgdata", "must be an absolute path, got %q", c.PGData)
	}
	switch c.Compression {
	case "zstd", "none":
	default:
		ps.Addf("compression", "want \"zstd\" or \"none\", got %q", c.Compression)
	}
	if c.CompressionLevel < 1 || c.CompressionLevel > 19 {
		ps.Addf("compression_level", "want 1 to 19, got %d", c.CompressionLevel)
	}
	if c.KeepBackups < 1 {
		ps.Addf("keep_backups", "want at least 1 (the newest complete backup is never deleted), got %d", c.KeepBackups)
	}
	if c.BackupSchedule < 0 {
		ps.Addf("backup_schedule", "must not be negative")
	} else if c.BackupSchedule > 0 && c.BackupSchedule < lifecycle.Duration(time.Minute) {
		ps.Addf("backup_schedule", "want at least 1m between backups, got %s", c.BackupSchedule)
	}
	if c.BackupWALTimeout <= 0 {
		ps.Addf("backup_wal_timeout", "must be positive")
	}
	if c.CheckInterval < lifecycle.Duration(100*time.Millisecond) {
		ps.Addf("check_interval", "want at least 100ms, got %s", c.CheckInterval)
	}
	if c.ArchiveStaleAfter < 0 {
		ps.Addf("archive_stale_after", "must not be negative")
	}
	if c.FetchPrefetch < 0 || c.FetchPrefetch > 64 {
		ps.Addf("fetch_prefetch", "want 0 to 64, got %d", c.FetchPrefetch)
	}
	if c.Jobs < 1 || c.Jobs > 64 {
		ps.Addf("jobs", "want 1 to 64, got %d", c.Jobs)
	}
	return ps.Err()
}

// LoadConfig reads and validates a config file.
func LoadConfig(path string) (*Config, error) {
	cfg := DefaultConfig()
	if err := lifecycle.Load(path, &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Config) compression() Compression {
	if c.Compression == "none" {
		return CompressNone
	}
	return CompressZstd
}

// need reports a key a command cannot work without.
func (c *Config) need(key, value, command string) error {
	if value == "" {
		return &lifecycle.ConfigError{Problems: []lifecycle.Problem{{Key: key, Message: fmt.Sprintf("required by %s", command)}}}
	}
	return nil
}
