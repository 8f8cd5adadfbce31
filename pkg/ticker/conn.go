package ticker

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// Timeouts for the statements pgqd runs. A statement that outlives its timeout is
// cancelled with a cancel request (the connection survives); if the server does not
// answer that within cancelGrace the connection is closed.
const (
	connectTimeout = 10 * time.Second
	tickTimeout    = 10 * time.Second
	retryTimeout   = 60 * time.Second
	maintTimeout   = 10 * time.Minute
	cancelGrace    = 5 * time.Second
)

// connConfig is the pgx config for database db from the base connection string.
func connConfig(base, db string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		return nil, fmt.Errorf("connstr: %w", err)
	}
	cfg.Database = db
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "pgqd"
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > connectTimeout {
		cfg.ConnectTimeout = connectTimeout
	}
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelGrace}
	}
	return cfg, nil
}

func connect(ctx context.Context, base, db string) (*pgx.Conn, error) {
	cfg, err := connConfig(base, db)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout+cancelGrace)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return conn, nil
}

// closeConn closes a connection without waiting on a cancelled context.
func closeConn(conn *pgx.Conn) {
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cancelGrace)
	defer cancel()
	_ = conn.Close(ctx)
}
