package pgq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// Handler processes one batch. Returning nil finishes the batch (committing Batch.Tx
// with it); returning an error rolls back Batch.Tx and the same batch is handed out
// again after a backoff, unless the error is [RetryBatch].
type Handler interface {
	HandleBatch(ctx context.Context, b *Batch) error
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(ctx context.Context, b *Batch) error

// HandleBatch calls f(ctx, b).
func (f HandlerFunc) HandleBatch(ctx context.Context, b *Batch) error { return f(ctx, b) }

// Config configures a [Consumer]. Queue and Consumer are required; every other field
// has a working default.
type Config struct {
	Queue    string // the queue to consume
	Consumer string // this consumer's registered name

	// Subconsumer makes this a cooperative consumer (pgq_coop): several processes
	// with the same Consumer and distinct Subconsumer names share the consumer's
	// batches, each batch going to one of them.
	Subconsumer string
	// DeadInterval, for a subconsumer: a batch held by another subconsumer that has
	// shown no activity for this long is taken over. 0 never takes over.
	DeadInterval time.Duration

	// Tables, when set, restricts the handler to events whose ev_extra1 (the source
	// table of trigger events) is one of these; a name without a schema means
	// "public.". Other events are skipped (and finished with the batch).
	Tables []string

	// MinCount, MinInterval: make batches bigger by spanning several ticks until the
	// batch has about MinCount events or covers MinInterval (pgq.next_batch_custom).
	MinCount    int
	MinInterval time.Duration
	// MinLag keeps the consumer at least this far behind the newest tick.
	MinLag time.Duration

	// FetchSize is how many events Batch.Fetch returns at a time (default 1000).
	FetchSize int
	// SortBuffer is how much memory, in bytes, the consumer may use to sort a batch's
	// events itself (default 16 MiB; negative: never). Events come in event id order;
	// having PostgreSQL sort them is most of the batch query's cost, and it sends
	// nothing until it has sorted them all. So a batch expected to fit (by the
	// ticks' event counts and the size of the events seen so far) is read unsorted
	// and sorted by the consumer; a larger one is sorted by PostgreSQL and streamed,
	// FetchSize events at a time. The consumer keeps up to about SortBuffer bytes
	// of events (twice that while its buffer grows), plus FetchSize events while
	// streaming. A batch found too big midway has its query cancelled, which
	// PostgreSQL logs as "canceling statement due to user request".
	SortBuffer int
	// LoopDelay is how long to wait for a new tick when there is no batch, unless
	// pgqd's NOTIFY (see [TickChannel]) comes first (default 1s).
	LoopDelay time.Duration
	// NoNotify turns off listening for tick notifications: the consumer polls every
	// LoopDelay. Use it where LISTEN is impossible (some connection poolers).
	NoNotify bool
	// BackoffMin and BackoffMax bound the wait after a failed attempt; it doubles
	// with each consecutive failure, with random jitter (defaults 1s and 30s).
	BackoffMin time.Duration
	BackoffMax time.Duration
	// StopGrace is how long a batch in progress may run on after Run's context is
	// cancelled, to finish rather than roll back (default 10s; negative: roll back
	// at once).
	StopGrace time.Duration

	// Target makes the consumer exactly-once into another database: Batch.Tx is a
	// transaction there, in which the consumer's position is stored and committed
	// with the handler's work; the batch is finished in the queue's database only
	// after that commit. See "Exactly once" in the package documentation.
	Target *pgxpool.Pool
	// PositionTable is the table in the target database holding positions, created
	// on first use (default "pgq_position"; may be schema-qualified).
	PositionTable string

	// Logger receives the consumer's log, with fields queue and consumer
	// (default: no logging).
	Logger *zap.Logger
	// Observer receives life signs and per-batch results, for daemons.
	Observer Observer
}

// errConfig marks configuration errors (never retried).
var errConfig = errors.New("invalid consumer configuration")

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if c.Queue == "" {
		add("Queue is empty")
	}
	if c.Consumer == "" {
		add("Consumer is empty")
	}
	if strings.Contains(c.Subconsumer, ".") {
		add("Subconsumer %q must not contain a dot", c.Subconsumer)
	}
	if c.DeadInterval != 0 && c.Subconsumer == "" {
		add("DeadInterval is only for subconsumers (Subconsumer is empty)")
	}
	for name, v := range map[string]time.Duration{"MinInterval": c.MinInterval, "MinLag": c.MinLag, "LoopDelay": c.LoopDelay,
		"BackoffMin": c.BackoffMin, "BackoffMax": c.BackoffMax, "DeadInterval": c.DeadInterval} {
		if v < 0 {
			add("%s is negative (%s)", name, v)
		}
	}
	if c.MinCount < 0 {
		add("MinCount is negative (%d)", c.MinCount)
	}
	if c.FetchSize < 0 {
		add("FetchSize is negative (%d)", c.FetchSize)
	}
	if c.BackoffMin > 0 && c.BackoffMax > 0 && c.BackoffMax < c.BackoffMin {
		add("BackoffMax (%s) is below BackoffMin (%s)", c.BackoffMax, c.BackoffMin)
	}
	if c.Target != nil && c.Subconsumer != "" {
		add("Target (exactly-once) cannot be combined with Subconsumer: cooperative batches complete out of order")
	}
	if c.PositionTable != "" && c.Target == nil {
		add("PositionTable is set without Target")
	}
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", errConfig, strings.Join(probs, "; "))
}

func (c *Config) setDefaults() {
	if c.FetchSize == 0 {
		c.FetchSize = 1000
	}
	if c.SortBuffer == 0 {
		c.SortBuffer = 16 << 20
	}
	if c.LoopDelay == 0 {
		c.LoopDelay = time.Second
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = time.Second
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.StopGrace == 0 {
		c.StopGrace = 10 * time.Second
	}
	if c.Target != nil && c.PositionTable == "" {
		c.PositionTable = "pgq_position"
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Consumer reads a queue batch by batch and hands each batch to a [Handler]. Create it
// with [NewConsumer] and call [Consumer.Run].
type Consumer struct {
	cfg    Config
	src    *pgxpool.Pool
	h      Handler
	log    *zap.Logger
	who    who
	name   string   // the name the batch is registered under: consumer or consumer.sub
	tables []string // Config.Tables, schema-qualified
	pos    *positionStore
	stats  stats
	sort   sortBuffer // where batches are sorted (Config.SortBuffer)

	running atomic.Bool
	// hook, set only by this package's tests, is called at named points of a batch
	// (see crashPoints) so a test can kill the process there.
	hook func(point string)
}

// NewConsumer makes a consumer of the queue in the database of src, calling h for
// each batch. While it works it holds two connections of src (one streams the
// batch's events, the other carries Batch.Tx) and, unless NoNotify, a third one
// listening for ticks, so src must allow at least two.
func NewConsumer(src *pgxpool.Pool, cfg Config, h Handler) (*Consumer, error) {
	if src == nil || h == nil {
		return nil, fmt.Errorf("%w: NewConsumer needs a pool and a handler", errConfig)
	}
	if src.Config().MaxConns < 2 {
		return nil, fmt.Errorf("%w: the pool allows %d connection(s); a consumer needs 2", errConfig, src.Config().MaxConns)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	c := &Consumer{cfg: cfg, src: src, h: h, name: cfg.Consumer, sort: sortBuffer{limit: cfg.SortBuffer}}
	if cfg.Subconsumer != "" {
		c.name = cfg.Consumer + "." + cfg.Subconsumer
	}
	c.who = who{queue: cfg.Queue, consumer: c.name}
	fields := []zap.Field{zap.String("queue", cfg.Queue), zap.String("consumer", cfg.Consumer)}
	if cfg.Subconsumer != "" {
		fields = append(fields, zap.String("subconsumer", cfg.Subconsumer))
	}
	c.log = cfg.Logger.With(fields...)
	for _, t := range cfg.Tables {
		if !strings.Contains(t, ".") {
			t = "public." + t
		}
		c.tables = append(c.tables, t)
	}
	if cfg.Target != nil {
		c.pos = newPositionStore(cfg.Target, cfg.PositionTable, cfg.Queue, cfg.Consumer)
	}
	return c, nil
}

// Register subscribes the consumer to its queue (a subconsumer through pgq_coop). It
// reports false when it was already registered. A new consumer sees the events of
// ticks after the queue's latest tick.
func (c *Consumer) Register(ctx context.Context) (bool, error) {
	if c.cfg.Subconsumer != "" {
		return RegisterSubconsumer(ctx, c.src, c.cfg.Queue, c.cfg.Consumer, c.cfg.Subconsumer)
	}
	return Register(ctx, c.src, c.cfg.Queue, c.cfg.Consumer)
}

// Unregister removes the consumer's registration (a subconsumer's only; it fails with
// ErrActiveBatch while the subconsumer holds a batch). It reports false when there
// was none.
func (c *Consumer) Unregister(ctx context.Context) (bool, error) {
	if c.cfg.Subconsumer != "" {
		return UnregisterSubconsumer(ctx, c.src, c.cfg.Queue, c.cfg.Consumer, c.cfg.Subconsumer)
	}
	return Unregister(ctx, c.src, c.cfg.Queue, c.cfg.Consumer)
}

// Stats returns a snapshot of the consumer's counters; safe to call at any time.
func (c *Consumer) Stats() Stats { return c.stats.snapshot() }

// Run consumes until ctx is cancelled, then returns nil; a batch in progress gets
// Config.StopGrace to finish, else it is rolled back (and comes again next time).
//
// Failures that may pass (a lost connection, a restarting server, a handler error)
// are logged, reported to Observer.Error and retried after a growing backoff with
// jitter; the connections are re-established through the pools. Run returns an error
// only for what retrying cannot fix: a missing queue, registration or pgq, a lost
// position, or a corrupt PgQ state.
//
// Run does not register the consumer: call [Consumer.Register] (or pgq.Register) once
// beforehand. A Consumer runs one Run at a time.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return c.who.fail("run", errConfig, "the consumer is already running")
	}
	defer c.running.Store(false)
	c.stats.update(func(s *Stats) { s.Ready = false })

	wake := make(chan struct{}, 1)
	if !c.cfg.NoNotify {
		lctx, stop := context.WithCancel(ctx)
		defer stop()
		l := &listener{pool: c.src, channel: TickChannel(c.cfg.Queue), wake: wake, log: c.log,
			backoffMin: c.cfg.BackoffMin, backoffMax: c.cfg.BackoffMax}
		done := make(chan struct{})
		go func() { defer close(done); l.run(lctx) }()
		defer func() { stop(); <-done }()
	}

	c.log.Info("consumer started")
	failures := 0
	ready := false
	for {
		if ctx.Err() != nil {
			c.log.Info("consumer stopped")
			return nil
		}
		select { // a notification that came before this pass is covered by it
		case <-wake:
		default:
		}
		got, err := c.pass(ctx, &ready)
		c.cfg.Observer.progress()
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, context.Canceled) {
				c.log.Info("consumer stopped; the batch in progress was rolled back")
				return nil
			}
			if !Retryable(err) {
				c.log.Error("consumer cannot go on", zap.Error(err))
				return err
			}
			failures++
			delay := backoff(c.cfg.BackoffMin, c.cfg.BackoffMax, failures)
			c.stats.update(func(s *Stats) {
				s.Errors++
				s.LastError, s.LastErrorAt = err, time.Now()
			})
			c.log.Warn("consumer pass failed; will retry", zap.Error(err), zap.Duration("backoff", delay), zap.Int("failures", failures))
			if c.cfg.Observer.Error != nil {
				c.cfg.Observer.Error(err)
			}
			if !c.wait(ctx, delay, nil) {
				c.log.Info("consumer stopped")
				return nil
			}
			continue
		}
		failures = 0
		if got {
			continue
		}
		c.wait(ctx, c.cfg.LoopDelay, wake)
	}
}

// wait waits d, or until ctx is done or a wake-up comes (wake may be nil), calling
// Observer.Progress every LoopDelay meanwhile: waiting is not being stuck. It
// reports false when ctx is done.
func (c *Consumer) wait(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		t := time.NewTimer(min(left, c.cfg.LoopDelay))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-wake:
			t.Stop()
			return true
		case <-t.C:
		}
		c.cfg.Observer.progress()
	}
}

// pass asks for one batch and processes it; got reports whether there was one.
func (c *Consumer) pass(ctx context.Context, ready *bool) (got bool, err error) {
	if !*ready && c.pos != nil {
		if err := c.pos.ensure(ctx); err != nil {
			return false, err
		}
	}
	conn, err := c.src.Acquire(ctx)
	if err != nil {
		return false, c.who.wrap("connect", err)
	}
	defer conn.Release()

	started := time.Now()
	b, err := c.nextBatch(ctx, conn.Conn())
	c.stats.update(func(s *Stats) { s.LastPollAt = time.Now() })
	if err != nil {
		return false, err
	}
	if !*ready {
		*ready = true
		c.stats.update(func(s *Stats) { s.Ready = true })
		c.log.Info("consumer connected")
		c.cfg.Observer.ready()
	}
	if b == nil {
		return false, nil
	}

	// From here on the batch runs under its own context: a stop request lets it
	// finish for up to StopGrace.
	bctx, release := graceContext(ctx, c.cfg.StopGrace)
	defer release()
	var res BatchResult
	if c.pos != nil {
		res, err = c.processTarget(bctx, conn.Conn(), b)
	} else {
		res, err = c.process(bctx, conn.Conn(), b)
	}
	if err != nil {
		if bctx.Err() != nil && ctx.Err() != nil {
			return true, context.Canceled
		}
		return true, err
	}
	res.Duration = time.Since(started)
	c.stats.update(func(s *Stats) {
		s.Batches++
		s.Events += res.Events
		s.Retried += res.Retried
		s.LastBatch, s.LastTick, s.Lag = res.ID, res.Tick, res.Lag
		s.LastBatchAt = time.Now()
	})
	c.log.Debug("batch finished", zap.Int64("batch", res.ID), zap.Int64("tick", res.Tick),
		zap.Int64("events", res.Events), zap.Int64("retried", res.Retried), zap.Bool("skipped", res.Skipped),
		zap.Duration("lag", res.Lag), zap.Duration("duration", res.Duration))
	if c.cfg.Observer.Batch != nil {
		c.cfg.Observer.Batch(res)
	}
	return true, nil
}

const (
	// nextBatchSQL opens (or returns the still open) next batch of an ordinary
	// consumer, in its own transaction, so the batch's ticks are fixed before any work.
	// The batch's event query comes along, saving a round trip per batch.
	nextBatchSQL = `SELECT batch_id, prev_tick_id, cur_tick_id, prev_tick_time, cur_tick_time,
       extract(epoch FROM clock_timestamp() - cur_tick_time)::float8,
       CASE WHEN batch_id IS NOT NULL THEN pgq.batch_event_sql(batch_id) END,
       cur_tick_event_seq - prev_tick_event_seq
  FROM pgq.next_batch_custom($1, $2,
       CASE WHEN $3::float8 > 0 THEN make_interval(secs => $3) END,
       nullif($4::int4, 0),
       CASE WHEN $5::float8 > 0 THEN make_interval(secs => $5) END)`

	// coopNextBatchSQL does the same for a subconsumer through pgq_coop; the batch's
	// ticks are then read with coopBatchInfoSQL.
	coopNextBatchSQL = `SELECT pgq_coop.next_batch_custom($1, $2, $3,
       CASE WHEN $4::float8 > 0 THEN make_interval(secs => $4) END,
       nullif($5::int4, 0),
       CASE WHEN $6::float8 > 0 THEN make_interval(secs => $6) END,
       CASE WHEN $7::float8 > 0 THEN make_interval(secs => $7) END)`
	coopBatchInfoSQL = `SELECT prev_tick_id, tick_id, batch_start, batch_end, extract(epoch FROM lag)::float8,
       seq_end - seq_start
  FROM pgq.get_batch_info($1)`
)

// nextBatch returns the consumer's next batch (nil when there is none yet) with its
// ticks, times and lag.
func (c *Consumer) nextBatch(ctx context.Context, conn *pgx.Conn) (*Batch, error) {
	cfg := &c.cfg
	var (
		id                      pgtype.Int8
		prev, cur               pgtype.Int8
		prevTime, curTime       pgtype.Timestamptz
		lag                     pgtype.Float8
		sql                     pgtype.Text
		est                     pgtype.Int8 // the events the ticks' sequence values say
		minLag, minIval, deadIv = cfg.MinLag.Seconds(), cfg.MinInterval.Seconds(), cfg.DeadInterval.Seconds()
	)
	if cfg.Subconsumer == "" {
		err := conn.QueryRow(ctx, nextBatchSQL, cfg.Queue, cfg.Consumer, minLag, cfg.MinCount, minIval).
			Scan(&id, &prev, &cur, &prevTime, &curTime, &lag, &sql, &est)
		if err != nil {
			return nil, c.who.wrap("next batch", err)
		}
	} else {
		err := conn.QueryRow(ctx, coopNextBatchSQL, cfg.Queue, cfg.Consumer, cfg.Subconsumer, minLag, cfg.MinCount, minIval, deadIv).
			Scan(&id)
		if err != nil {
			return nil, c.who.wrap("next batch (coop)", err)
		}
		if id.Valid {
			err := conn.QueryRow(ctx, coopBatchInfoSQL, id.Int64).Scan(&prev, &cur, &prevTime, &curTime, &lag, &est)
			if err != nil {
				return nil, who{c.who.queue, c.who.consumer, id.Int64}.wrap("batch info", err)
			}
		}
	}
	if !id.Valid {
		return nil, nil
	}
	if !est.Valid || est.Int64 < 0 {
		est.Int64 = -1
	}
	return &Batch{
		ID:           id.Int64,
		Queue:        cfg.Queue,
		Consumer:     c.name,
		PrevTick:     prev.Int64,
		Tick:         cur.Int64,
		PrevTickTime: prevTime.Time,
		TickTime:     curTime.Time,
		Lag:          time.Duration(lag.Float64 * float64(time.Second)),
		fetch:        cfg.FetchSize,
		progress:     cfg.Observer.Progress,
		sql:          sql.String,
		est:          est.Int64,
	}, nil
}

// beginWorkSQL begins Batch.Tx. The transaction is open while the handler works
// through the batch, which may take longer than an idle_in_transaction_session_timeout
// meant for the application's ordinary sessions allows (a stuck handler is the
// watchdog's business: see Observer.Progress).
const beginWorkSQL = "BEGIN; SET LOCAL idle_in_transaction_session_timeout = 0"

const (
	finishBatchSQL     = `SELECT pgq.finish_batch($1)`
	coopFinishBatchSQL = `SELECT pgq_coop.finish_batch($1)`
	batchRetrySQL      = `SELECT pgq.batch_retry($1, $2)`
)

// process runs the handler for b in a transaction of the queue's database and
// finishes the batch in that same transaction. The events are read through a
// second connection (conn), so that the handler can use Batch.Tx while they stream.
func (c *Consumer) process(ctx context.Context, conn *pgx.Conn, b *Batch) (BatchResult, error) {
	res := BatchResult{ID: b.ID, PrevTick: b.PrevTick, Tick: b.Tick, Lag: b.Lag}
	if err := c.startReading(ctx, conn, b); err != nil {
		return res, err
	}
	defer b.stopReading(context.WithoutCancel(ctx))
	wconn, err := c.src.Acquire(ctx)
	if err != nil {
		return res, b.err("connect", err)
	}
	defer wconn.Release()
	tx, err := wconn.BeginTx(ctx, pgx.TxOptions{BeginQuery: beginWorkSQL})
	if err != nil {
		return res, b.err("begin", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	b.Tx = tx
	herr := c.handle(ctx, b)
	res.Events = b.read
	b.stopReading(ctx)
	var rb *retryBatchError
	if errors.As(herr, &rb) {
		_ = tx.Rollback(ctx)
		return c.retryBatch(ctx, wconn.Conn(), b, rb.after, res)
	}
	if herr != nil {
		return res, herr
	}
	n, err := b.applyRetries(ctx)
	if err != nil {
		return res, err
	}
	res.Retried = n
	c.crashPoint("before-finish")
	if err := c.finish(ctx, tx, b); err != nil {
		return res, err
	}
	if err := tx.Commit(ctx); err != nil {
		return res, b.err("commit", err)
	}
	c.crashPoint("after-commit")
	return res, nil
}

// startReading starts streaming the batch's events on conn.
func (c *Consumer) startReading(ctx context.Context, conn *pgx.Conn, b *Batch) error {
	if err := b.open(ctx, conn, c.tables, &c.sort); err != nil {
		return b.err("read batch", err)
	}
	return nil
}

// retryBatch puts every event of b into the retry queue and finishes b.
func (c *Consumer) retryBatch(ctx context.Context, conn *pgx.Conn, b *Batch, after time.Duration, res BatchResult) (BatchResult, error) {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		secs := int(after.Round(time.Second) / time.Second)
		var n int64
		if err := tx.QueryRow(ctx, batchRetrySQL, b.ID, secs).Scan(&n); err != nil {
			return b.err("retry batch", err)
		}
		res.Retried = n
		return c.finish(ctx, tx, b)
	})
	if err != nil {
		return res, err
	}
	c.log.Info("batch sent to the retry queue", zap.Int64("batch", b.ID), zap.Int64("events", res.Retried), zap.Duration("after", after))
	return res, nil
}

// finish finishes b in tx. A batch that is no longer active was finished by someone
// else (another process under the same consumer name): committing our work too would
// apply it twice, so that is an error.
func (c *Consumer) finish(ctx context.Context, tx pgx.Tx, b *Batch) error {
	q := finishBatchSQL
	if c.cfg.Subconsumer != "" {
		q = coopFinishBatchSQL
	}
	var n int
	if err := tx.QueryRow(ctx, q, b.ID).Scan(&n); err != nil {
		return b.err("finish batch", err)
	}
	if n != 1 {
		return who{b.Queue, b.Consumer, b.ID}.fail("finish batch", ErrBatchNotFound, "the batch was finished by another process")
	}
	return nil
}

// handle calls the handler, turning a panic into an error.
func (c *Consumer) handle(ctx context.Context, b *Batch) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v\n%s", r, debug.Stack())
		}
	}()
	if err := c.h.HandleBatch(ctx, b); err != nil {
		var rb *retryBatchError
		if errors.As(err, &rb) {
			return err
		}
		return &Error{Op: "handle batch", Queue: b.Queue, Consumer: b.Consumer, Batch: b.ID, Err: err}
	}
	return nil
}

func (c *Consumer) crashPoint(point string) {
	if c.hook != nil {
		c.hook(point)
	}
}

// backoff is the wait before attempt number failures+1: doubling from min, capped at
// max, then drawn uniformly from its upper half so that many consumers restarting
// together spread out.
func backoff(min, max time.Duration, failures int) time.Duration {
	d := min
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + rand.N(half+1)
}

// sleep waits for d or until ctx is done; it reports false in the latter case.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// graceContext returns a context that outlives ctx by grace: it is cancelled grace
// after ctx is (at once for a negative grace). release frees its resources.
func graceContext(ctx context.Context, grace time.Duration) (context.Context, func()) {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if grace < 0 {
		stop := context.AfterFunc(ctx, cancel)
		return bctx, func() { stop(); cancel() }
	}
	var timer atomic.Pointer[time.Timer]
	stop := context.AfterFunc(ctx, func() { timer.Store(time.AfterFunc(grace, cancel)) })
	return bctx, func() {
		stop()
		if t := timer.Load(); t != nil {
			t.Stop()
		}
		cancel()
	}
}
