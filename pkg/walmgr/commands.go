package walmgr

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/lifecycle"
	"go.uber.org/zap"
)

// FetchFatalExit is fetch's exit code for anything but "not archived": above 125, so
// PostgreSQL aborts recovery instead of treating the failure as the end of the archive.
const FetchFatalExit = 128

// Tool describes the walmgrd binary for cli.Main.
func Tool() cli.Tool {
	return cli.Tool{
		Name:        "walmgrd",
		Summary:     "WAL archiving, base backups, point-in-time restore and standby management",
		Daemon:      runDaemon,
		CheckConfig: cli.CheckConfig(LoadConfig),
		Commands: []*cli.Command{
			archiveCommand(), fetchCommand(), backupCommand(), listCommand(), verifyCommand(),
			cleanupCommand(), restoreCommand(), promoteCommand(), pauseCommand(), resumeCommand(),
			setupCommand(), prefetchCommand(),
		},
		Help: "Configuration keys and operations: docs/walmgrd.md.",
	}
}

// loadEnvConfig reads -c FILE for a command.
func loadEnvConfig(env *cli.Env) (*Config, error) {
	if env.ConfigPath == "" {
		return nil, cli.Usagef("no config file: run %s -c FILE COMMAND", env.Tool)
	}
	return LoadConfig(env.ConfigPath)
}

// withRepository opens the config's repository for the length of fn.
func withRepository(ctx context.Context, env *cli.Env, fn func(*Config, *Repository) error) error {
	cfg, err := loadEnvConfig(env)
	if err != nil {
		return err
	}
	r, err := OpenRepository(ctx, cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	return fn(cfg, r)
}

func archiveCommand() *cli.Command {
	return &cli.Command{
		Name: "archive", Args: "PATH NAME", MinArgs: 2, MaxArgs: 2,
		Summary: "archive_command: store WAL file PATH (%p) as NAME (%f), durably",
		Help: `Use as archive_command = 'walmgrd -c FILE archive %p %f'.
Exit 0 only once the file is compressed, checksummed and durable in the repository.
An identical file already archived is success; a different one under the same name is
an error (the new file is kept under quarantine/ in the repository) and archiving stops
until someone looks.`,
		Run: func(ctx context.Context, env *cli.Env, args []string) error {
			return withRepository(ctx, env, func(_ *Config, r *Repository) error {
				res, err := r.Archive(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				env.Log.Debug("archived", zap.String("wal", res.Name), zap.Bool("already_archived", res.Existed),
					zap.Int64("size", res.Size), zap.Int64("stored", res.Stored), zap.Duration("took", res.Duration))
				return nil
			})
		},
	}
}

func fetchCommand() *cli.Command {
	return &cli.Command{
		Name: "fetch", Args: "NAME PATH", MinArgs: 2, MaxArgs: 2,
		Summary: "restore_command: restore archived NAME (%f) to PATH (%p), verified",
		Help: fmt.Sprintf(`Use as restore_command = 'walmgrd -c FILE fetch %%f %%p'.
Exit 0: restored and checksum verified. Exit 1: not in the archive (PostgreSQL's "not
found"). Exit %d: anything else (corrupt file, unreadable or missing repository, bad
config), which makes PostgreSQL stop recovery rather than end it early.`, FetchFatalExit),
		Run: func(ctx context.Context, env *cli.Env, args []string) error {
			err := withRepository(ctx, env, func(cfg *Config, r *Repository) error {
				if cfg.FetchPrefetch > 0 && takePrefetched(args[0], args[1]) {
					startPrefetch(env, cfg, args[0], args[1])
					return nil
				}
				_, err := r.Fetch(ctx, args[0], args[1])
				if err == nil && cfg.FetchPrefetch > 0 {
					startPrefetch(env, cfg, args[0], args[1])
				}
				return err
			})
			if err == nil || errors.Is(err, ErrNotArchived) {
				return err
			}
			return &cli.ExitError{Code: FetchFatalExit, Err: err}
		},
	}
}

func backupCommand() *cli.Command {
	var label string
	return &cli.Command{
		Name: "backup", MaxArgs: 0,
		Summary: "take a base backup of the running server (connstr, pgdata)",
		Help: `Takes a non-exclusive base backup on one session, stores every file compressed and
checksummed, writes backup_label and tablespace_map into the backup, and marks the backup
complete (writes its manifest) only once its whole WAL range is in the archive.`,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&label, "label", "walmgrd", "backup `label` passed to pg_backup_start")
		},
		Run: func(ctx context.Context, env *cli.Env, _ []string) error {
			return withRepository(ctx, env, func(cfg *Config, r *Repository) error {
				m, err := r.Backup(ctx, cfg, env.Log, BackupOptions{Label: label})
				if err != nil {
					return err
				}
				content, stored := m.Size()
				fmt.Fprintf(env.Stdout, "backup %s complete: %s, stored %s, WAL %s to %s\n",
					m.ID, humanBytes(content), humanBytes(stored), m.StartWAL, m.StopWAL)
				return nil
			})
		},
	}
}

func listCommand() *cli.Command {
	return &cli.Command{
		Name: "list", MaxArgs: 0,
		Summary: "list backups with size, time and WAL range, and the archived WAL",
		Run: func(ctx context.Context, env *cli.Env, _ []string) error {
			return withRepository(ctx, env, func(_ *Config, r *Repository) error {
				return r.List(ctx, env.Stdout)
			})
		},
	}
}

func verifyCommand() *cli.Command {
	var backupID string
	return &cli.Command{
		Name: "verify", MaxArgs: 0,
		Summary: "check every file of every backup and WAL continuity per timeline",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&backupID, "backup", "", "verify only backup `ID` (and its WAL)")
		},
		Run: func(ctx context.Context, env *cli.Env, _ []string) error {
			return withRepository(ctx, env, func(_ *Config, r *Repository) error {
				rep, err := r.Verify(ctx, backupID)
				if err != nil {
					return err
				}
				rep.Print(env.Stdout)
				if n := len(rep.Problems); n > 0 {
					return fmt.Errorf("repository %s: verify found %d problem(s)", r.Path, n)
				}
				return nil
			})
		},
	}
}

func cleanupCommand() *cli.Command {
	var dryRun bool
	return &cli.Command{
		Name: "cleanup", MaxArgs: 0,
		Summary: "apply retention: keep keep_backups complete backups and the WAL they need",
		Flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&dryRun, "dry-run", false, "say what would be deleted, delete nothing")
		},
		Run: func(ctx context.Context, env *cli.Env, _ []string) error {
			return withRepository(ctx, env, func(cfg *Config, r *Repository) error {
				res, err := r.Cleanup(ctx, cfg.KeepBackups, dryRun, env.Log)
				if err != nil {
					return err
				}
				verb := "deleted"
				if dryRun {
					verb = "would delete"
				}
				fmt.Fprintf(env.Stdout, "%s %d backup(s), %d WAL file(s), %d abandoned temporary file(s); kept %d backup(s)\n",
					verb, len(res.Backups), res.WALFiles, res.Temporary, res.Kept)
				return nil
			})
		},
	}
}

// tablespaceFlag collects repeated --tablespace-map OID=DIR.
type tablespaceFlag map[uint32]string

func (t tablespaceFlag) String() string { return fmt.Sprint(map[uint32]string(t)) }

func (t tablespaceFlag) Set(s string) error {
	oid, dir, ok := strings.Cut(s, "=")
	var n uint32
	if _, err := fmt.Sscanf(oid, "%d", &n); !ok || err != nil || n == 0 || !strings.HasPrefix(dir, "/") {
		return fmt.Errorf("want OID=/absolute/dir, got %q", s)
	}
	t[n] = dir
	return nil
}

func restoreCommand() *cli.Command {
	var o RestoreOptions
	ts := tablespaceFlag{}
	return &cli.Command{
		Name: "restore", Args: "[OPTIONS] DATADIR", MinArgs: 1, MaxArgs: 1,
		Summary: "prepare DATADIR from a backup for point-in-time recovery or as a standby",
		Help: `Restores a base backup into DATADIR (which must be empty or absent unless --force),
verifying every file, and configures recovery: restore_command, the recovery target, and
recovery.signal, or standby.signal plus primary_conninfo with --standby. Start the server
on DATADIR afterwards. Without --backup the newest complete backup that ends before the
target is used.`,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.BackupID, "backup", "", "restore backup `ID` (default: the newest suitable one)")
			fs.StringVar(&o.TargetTime, "target-time", "", "recover up to `TIME` (recovery_target_time)")
			fs.StringVar(&o.TargetLSN, "target-lsn", "", "recover up to `LSN` (recovery_target_lsn)")
			fs.StringVar(&o.TargetXID, "target-xid", "", "recover up to transaction `XID` (recovery_target_xid)")
			fs.StringVar(&o.TargetName, "target-name", "", "recover up to restore point `NAME` (recovery_target_name)")
			fs.BoolVar(&o.TargetImmediate, "target-immediate", false, "stop as soon as the backup is consistent")
			fs.BoolVar(&o.TargetExclusive, "target-exclusive", false, "stop just before the target instead of just after it")
			fs.StringVar(&o.TargetAction, "target-action", "", "`ACTION` at the target: promote, pause or shutdown (PostgreSQL's default: pause)")
			fs.StringVar(&o.TargetTimeline, "target-timeline", "", "recovery_target_timeline `TL`: latest (default), current or a number")
			fs.BoolVar(&o.Standby, "standby", false, "make a standby: standby.signal and primary_conninfo")
			fs.BoolVar(&o.NoArchive, "no-archive", false, "restored server does not archive (a copy beside the original)")
			fs.BoolVar(&o.Force, "force", false, "empty a non-empty DATADIR first (never one with a running server)")
			fs.Var(ts, "tablespace-map", "put tablespace OID in DIR: `OID=DIR` (repeatable)")
		},
		Run: func(ctx context.Context, env *cli.Env, args []string) error {
			o.DataDir = args[0]
			o.Tablespaces = ts
			return withRepository(ctx, env, func(cfg *Config, r *Repository) error {
				o.ConfigPath = env.ConfigPath
				m, err := r.Restore(ctx, cfg, env.Log, o)
				if err != nil {
					return err
				}
				mode := "recovery.signal"
				if o.Standby {
					mode = "standby.signal"
				}
				fmt.Fprintf(env.Stdout, "restored backup %s into %s (%s); start the server to begin recovery\n", m.ID, o.DataDir, mode)
				return nil
			})
		},
	}
}

func sqlCommand(name, summary, help, sql string) *cli.Command {
	return &cli.Command{
		Name: name, MaxArgs: 0, Summary: summary, Help: help,
		Run: func(ctx context.Context, env *cli.Env, _ []string) error {
			cfg, err := loadEnvConfig(env)
			if err != nil {
				return err
			}
			msg, err := runControl(ctx, cfg, env.DB, name, sql)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, msg)
			return nil
		},
	}
}

func promoteCommand() *cli.Command {
	return sqlCommand("promote", "promote the standby to primary (pg_promote, waits up to 60s)",
		"Ends recovery on the server at connstr (or -d) and waits until it accepts writes.",
		"SELECT pg_promote(true, 60)")
}

func pauseCommand() *cli.Command {
	return sqlCommand("pause", "pause WAL replay on the standby (pg_wal_replay_pause)", "",
		"SELECT pg_wal_replay_pause()")
}

func resumeCommand() *cli.Command {
	return sqlCommand("resume", "resume WAL replay on the standby (pg_wal_replay_resume)",
		"Also ends a recovery paused at its target (recovery_target_action = pause), which then promotes.",
		"SELECT pg_wal_replay_resume()")
}

func setupCommand() *cli.Command {
	return &cli.Command{
		Name: "setup", MaxArgs: 0,
		Summary: "create the repository and configure archiving on the primary (ALTER SYSTEM)",
		Help: `Creates the repository if needed, then sets archive_mode = on, archive_command to
this walmgrd with this config, and wal_level = replica if it was minimal, with ALTER
SYSTEM, reloads, and says whether a restart is needed for the change to take effect.`,
		Run: func(ctx context.Context, env *cli.Env, _ []string) error {
			cfg, err := loadEnvConfig(env)
			if err != nil {
				return err
			}
			return Setup(ctx, cfg, env.ConfigPath, env.DB, env.Stdout, env.Log)
		},
	}
}

func runDaemon(ctx context.Context, env *cli.Env) error {
	return cli.RunDaemon(ctx, env, cli.DaemonSpec[Config]{
		Load:   LoadConfig,
		Common: func(c *Config) lifecycle.Common { return c.Common },
		New:    NewDaemon,
	})
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
