package walmgr

import (
	"context"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"
)

// runControl runs one replay-control function (pg_promote, pg_wal_replay_pause,
// pg_wal_replay_resume) on the role's server and says what happened.
func runControl(ctx context.Context, cfg *Config, override, what, sql string) (string, error) {
	if override == "" {
		if err := cfg.need("connstr", cfg.ConnStr, what); err != nil {
			return "", err
		}
	}
	conn, err := connect(ctx, cfg, override)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var inRecovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if !inRecovery {
		return "", fmt.Errorf("%s: the server is not in recovery (already a primary)", what)
	}
	var ok any
	if err := conn.QueryRow(ctx, sql).Scan(&ok); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	switch what {
	case "promote":
		if b, isBool := ok.(bool); isBool && !b {
			return "", fmt.Errorf("promote: the server did not finish promotion within 60s")
		}
		return "promoted: the server now accepts writes", nil
	case "pause":
		return "WAL replay paused", nil
	}
	return "WAL replay resumed", nil
}

// Setup creates the repository and configures archiving on the primary.
func Setup(ctx context.Context, cfg *Config, configPath, override string, out io.Writer, log *zap.Logger) error {
	created, err := InitRepository(ctx, cfg)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if created {
		fmt.Fprintf(out, "created repository %s\n", cfg.Repository)
	} else {
		fmt.Fprintf(out, "repository %s already set up\n", cfg.Repository)
	}
	if override == "" && cfg.ConnStr == "" {
		fmt.Fprintln(out, "no connstr: archive settings not changed")
		return nil
	}
	self, err := selfCommand("", configPath)
	if err != nil {
		return err
	}
	conn, err := connect(ctx, cfg, override)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var walLevel, archiveMode, archiveLibrary string
	if err := conn.QueryRow(ctx, `SELECT current_setting('wal_level'), current_setting('archive_mode'),
		coalesce(current_setting('archive_library', true), '')`).Scan(&walLevel, &archiveMode, &archiveLibrary); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	stmts := []string{
		"ALTER SYSTEM SET archive_mode = 'on'",
		"ALTER SYSTEM SET archive_command = " + confQuote(self+" archive %p %f"),
	}
	if walLevel == "minimal" {
		stmts = append(stmts, "ALTER SYSTEM SET wal_level = 'replica'")
	}
	if archiveLibrary != "" {
		// PostgreSQL 15 ignores archive_command while archive_library is set.
		stmts = append(stmts, "ALTER SYSTEM SET archive_library = ''")
		fmt.Fprintf(out, "archive_library was %q: cleared, or archive_command would be ignored\n", archiveLibrary)
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("setup: %s: %w", s, err)
		}
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("setup: reload: %w", err)
	}
	// archive_mode and wal_level are read only at server start: compare the values the
	// running server uses with what was just set.
	var pending []string
	if archiveMode == "off" {
		pending = append(pending, "archive_mode")
	}
	if walLevel == "minimal" {
		pending = append(pending, "wal_level")
	}
	fmt.Fprintf(out, "archive_command = '%s archive %%p %%f'\n", self)
	if len(pending) > 0 {
		fmt.Fprintf(out, "RESTART NEEDED: %s only take effect after a server restart\n", strings.Join(pending, ", "))
	} else {
		fmt.Fprintln(out, "archiving configured; no restart needed")
	}
	log.Debug("archiving configured", zap.Strings("pending_restart", pending))
	return nil
}
