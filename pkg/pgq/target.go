package pgq

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// positionStore keeps an exactly-once consumer's position in its target database:
// one row per (queue, consumer) with the end tick of the last batch applied there.
//
// Why a table of our own rather than pgq_ext: pgq_ext is a separate extension that is
// not packaged for Debian and not installable on managed PostgreSQL, while one small
// table can be created by the consumer's own role (or by an operator from
// [PositionTableDDL]). Tracking the tick (as pgq_ext's completed_tick and Python's
// SerialConsumer do) rather than the batch id is what makes a lost position
// detectable and a rewind possible: a batch runs from the previous tick to the
// current one, so the stored tick must equal one of the two.
type positionStore struct {
	pool            *pgxpool.Pool
	table           string // sanitized identifier
	queue, consumer string
}

// PositionTableDDL is the statement that creates an exactly-once consumer's position
// table (the %s is the table name). The consumer runs it itself when the table is
// missing; run it by hand where the consumer's role may not create tables.
const PositionTableDDL = `CREATE TABLE IF NOT EXISTS %s (
    queue_name    text        NOT NULL,
    consumer_name text        NOT NULL,
    last_tick_id  bigint      NOT NULL,
    batch_id      bigint,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue_name, consumer_name)
)`

// Statements on the position table (%s: the table).
const (
	positionExistsSQL = `SELECT to_regclass($1) IS NOT NULL`
	lockPositionSQL   = `SELECT last_tick_id FROM %s WHERE queue_name = $1 AND consumer_name = $2 FOR UPDATE`
	// insertPositionSQL is a plain INSERT: two processes that both started without a
	// position must not both commit, so the second fails on the primary key.
	insertPositionSQL = `INSERT INTO %s (queue_name, consumer_name, last_tick_id, batch_id) VALUES ($1, $2, $3, $4)`
	updatePositionSQL = `UPDATE %s SET last_tick_id = $3, batch_id = $4, updated_at = now() WHERE queue_name = $1 AND consumer_name = $2`
	readPositionSQL   = `SELECT last_tick_id FROM %s WHERE queue_name = $1 AND consumer_name = $2`
	deletePositionSQL = `DELETE FROM %s WHERE queue_name = $1 AND consumer_name = $2`
)

func newPositionStore(pool *pgxpool.Pool, table, queue, consumer string) *positionStore {
	return &positionStore{pool: pool, table: splitName(table).Sanitize(), queue: queue, consumer: consumer}
}

func (p *positionStore) sql(format string) string { return fmt.Sprintf(format, p.table) }

func (p *positionStore) who() who { return who{queue: p.queue, consumer: p.consumer} }

// ensure creates the table when it is missing.
func (p *positionStore) ensure(ctx context.Context) error {
	var ok bool
	if err := p.pool.QueryRow(ctx, positionExistsSQL, p.table).Scan(&ok); err != nil {
		return p.who().wrap("target: look up position table "+p.table, err)
	}
	if ok {
		return nil
	}
	if _, err := p.pool.Exec(ctx, p.sql(PositionTableDDL)); err != nil {
		return p.who().wrap("target: create position table "+p.table, err)
	}
	return nil
}

// lock reads and locks the position in tx; ok is false when none is stored.
func (p *positionStore) lock(ctx context.Context, tx pgx.Tx) (tick int64, ok bool, err error) {
	err = tx.QueryRow(ctx, p.sql(lockPositionSQL), p.queue, p.consumer).Scan(&tick)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return tick, err == nil, err
}

func (p *positionStore) store(ctx context.Context, tx pgx.Tx, existed bool, tick, batch int64) error {
	q := insertPositionSQL
	if existed {
		q = updatePositionSQL
	}
	_, err := tx.Exec(ctx, p.sql(q), p.queue, p.consumer, tick, batch)
	return err
}

// processTarget applies b exactly once to the target database:
//
//  1. lock the stored position in a target transaction;
//  2. stored == b.Tick: already applied (we crashed after the target commit), so
//     only finish the batch; stored is neither b.PrevTick nor b.Tick: lost position;
//  3. run the handler in the target transaction and store b.Tick there;
//  4. commit the target, then finish the batch in the source.
func (c *Consumer) processTarget(ctx context.Context, conn *pgx.Conn, b *Batch) (BatchResult, error) {
	res := BatchResult{ID: b.ID, PrevTick: b.PrevTick, Tick: b.Tick, Lag: b.Lag}
	b.noRetry = "exactly-once consumers (Config.Target) cannot retry single events"
	p := c.pos
	ttx, err := p.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: beginWorkSQL})
	if err != nil {
		return res, p.who().wrap("target: begin", err)
	}
	defer func() { _ = ttx.Rollback(context.WithoutCancel(ctx)) }()
	stored, existed, err := p.lock(ctx, ttx)
	if err != nil {
		return res, p.who().wrap("target: read position", err)
	}
	switch {
	case existed && stored == b.Tick:
		_ = ttx.Rollback(ctx)
		c.log.Info("batch already applied to the target; finishing it", zap.Int64("batch", b.ID), zap.Int64("tick", b.Tick))
		res.Skipped = true
		return res, c.finishApplied(ctx, b)
	case existed && stored != b.PrevTick:
		return res, who{b.Queue, b.Consumer, b.ID}.fail("target: check position", ErrLostPosition,
			"target %s has tick %d, the queue hands out ticks %d..%d; rewind the queue to the target (Rewind) or forget the target's position (ResetPosition)",
			p.table, stored, b.PrevTick, b.Tick)
	}

	if err := c.startReading(ctx, conn, b); err != nil {
		return res, err
	}
	defer b.stopReading(context.WithoutCancel(ctx))
	b.Tx = ttx
	herr := c.handle(ctx, b)
	res.Events = b.read
	b.stopReading(ctx)
	if herr != nil {
		return res, herr
	}
	if err := p.store(ctx, ttx, existed, b.Tick, b.ID); err != nil {
		return res, p.who().wrap("target: store position", err)
	}
	c.crashPoint("before-target-commit")
	if err := ttx.Commit(ctx); err != nil {
		return res, p.who().wrap("target: commit", err)
	}
	c.crashPoint("after-target-commit")
	// The batch is applied: from here on it may be finished by us or by another
	// process under the same name that found it applied.
	if err := c.finishApplied(ctx, b); err != nil {
		return res, err
	}
	c.crashPoint("after-commit")
	return res, nil
}

// finishApplied finishes a batch that is applied to the target, in its own source
// transaction. Another process under the same name may have finished it already.
func (c *Consumer) finishApplied(ctx context.Context, b *Batch) error {
	return pgx.BeginFunc(ctx, c.src, func(tx pgx.Tx) error {
		if err := c.finish(ctx, tx, b); err != nil && !errors.Is(err, ErrBatchNotFound) {
			return err
		}
		return nil
	})
}

// Position returns the exactly-once consumer's position stored in the target: the
// end tick of the last batch applied there (ok is false when none is stored).
func (c *Consumer) Position(ctx context.Context) (tick int64, ok bool, err error) {
	p, err := c.targetStore("position")
	if err != nil {
		return 0, false, err
	}
	if err := p.ensure(ctx); err != nil {
		return 0, false, err
	}
	err = p.pool.QueryRow(ctx, p.sql(readPositionSQL), p.queue, p.consumer).Scan(&tick)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, p.who().wrap("target: read position", err)
	}
	return tick, true, nil
}

// Rewind moves the consumer's position in the queue back (or forward) to the tick
// stored in the target, the repair for [ErrLostPosition] when the target is right,
// e.g. after the target was restored from a backup. The queue must still have that
// tick ([ErrTickNotFound] otherwise).
func (c *Consumer) Rewind(ctx context.Context) error {
	tick, ok, err := c.Position(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return c.who.fail("rewind", ErrLostPosition, "the target has no position to rewind to")
	}
	if _, err := RegisterAt(ctx, c.src, c.cfg.Queue, c.cfg.Consumer, tick); err != nil {
		return err
	}
	c.log.Warn("queue position rewound to the target's tick", zap.Int64("tick", tick))
	return nil
}

// ResetPosition forgets the position stored in the target, the repair for
// [ErrLostPosition] when the queue is right: the next batch is applied from wherever
// the consumer stands in the queue.
func (c *Consumer) ResetPosition(ctx context.Context) error {
	p, err := c.targetStore("reset position")
	if err != nil {
		return err
	}
	if err := p.ensure(ctx); err != nil {
		return err
	}
	if _, err := p.pool.Exec(ctx, p.sql(deletePositionSQL), p.queue, p.consumer); err != nil {
		return p.who().wrap("target: reset position", err)
	}
	c.log.Warn("target position forgotten")
	return nil
}

func (c *Consumer) targetStore(op string) (*positionStore, error) {
	if c.pos == nil {
		return nil, c.who.fail(op, errConfig, "the consumer has no Target")
	}
	return c.pos, nil
}
