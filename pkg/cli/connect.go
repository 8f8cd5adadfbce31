package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ConnString turns the -d argument into a libpq connection string: a connection
// string ("host=db1 dbname=app") or URL ("postgres://db1/app") is used as given, a bare
// word is a database name. Empty means "only the PG* environment variables".
func ConnString(db string) string {
	s := strings.TrimSpace(db)
	if s == "" || strings.Contains(s, "=") || strings.Contains(s, "://") {
		return s
	}
	return "dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Connect opens a connection to the database named by -d, with application_name set
// to the tool's name unless the connection string sets one.
func (e *Env) Connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(ConnString(e.DB))
	if err != nil {
		return nil, Usagef("-d: %v", err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = e.Tool
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", cfg.Database, err)
	}
	return conn, nil
}
