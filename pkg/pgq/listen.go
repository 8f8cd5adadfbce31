package pgq

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// listener keeps a dedicated connection LISTENing on a queue's tick channel and
// signals wake (without blocking: one pending signal covers any number of ticks).
// When the connection fails it reconnects after a backoff; meanwhile the consumer
// polls at its loop delay, so a lost listener costs latency, never events.
type listener struct {
	pool                   *pgxpool.Pool
	channel                string
	wake                   chan<- struct{}
	log                    *zap.Logger
	backoffMin, backoffMax time.Duration
}

func (l *listener) run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		failures++
		delay := backoff(l.backoffMin, l.backoffMax, failures)
		l.log.Warn("tick listener lost its connection; polling until it is back",
			zap.String("channel", l.channel), zap.Error(err), zap.Duration("backoff", delay))
		if !sleep(ctx, delay) {
			return
		}
	}
}

// listen takes a connection out of the pool for good (a connection that LISTENs must
// not serve anyone else) and waits for notifications on it until it fails.
func (l *listener) listen(ctx context.Context) error {
	pc, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack()
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
		return err
	}
	// A tick made before LISTEN took effect was not announced to us: look once.
	l.signal()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		l.signal()
	}
}

func (l *listener) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}
