package ticker

import (
	"context"
	"fmt"
	"strconv"
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
// A positive statementTimeout becomes the session's statement_timeout.
func connConfig(base, db string, statementTimeout time.Duration) (*pgx.ConnConfig, error) {
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
	if statementTimeout > 0 {
		cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(statementTimeout.Milliseconds(), 10)
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > connectTimeout {
		cfg.ConnectTimeout = connectTimeout
	}
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelGrace}
	}
	return cfg, nil
}

func connect(ctx context.Context, base, db string, statementTimeout time.Duration) (*pgx.Conn, error) {
	return connectWithNotices(ctx, base, db, statementTimeout, nil)
}

// connectWithNotices is connect with a handler for the NOTICEs the server sends; it
// runs in the goroutine that reads the connection's results.
func connectWithNotices(ctx context.Context, base, db string, statementTimeout time.Duration, onNotice func(string)) (*pgx.Conn, error) {
	cfg, err := connConfig(base, db, statementTimeout)
	if err != nil {
		return nil, err
	}
	if onNotice != nil {
		// The tick connection: see burstBody for why it does not wait long for locks.
		cfg.RuntimeParams["lock_timeout"] = strconv.FormatInt(tickLockTimeout.Milliseconds(), 10)
		cfg.RuntimeParams["client_min_messages"] = "notice"
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { onNotice(n.Message) }
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
