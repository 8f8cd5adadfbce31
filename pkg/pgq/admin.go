package pgq

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Queue administration, registration and information: thin, typed wrappers of PgQ's
// SQL API. Each runs one statement through the given Querier, so it takes part in the
// caller's transaction when given a pgx.Tx.

const (
	createQueueSQL   = `SELECT pgq.create_queue($1)`
	dropQueueSQL     = `SELECT pgq.drop_queue($1, $2)`
	setQueueParamSQL = `SELECT pgq.set_queue_config($1, $2, $3)`
	registerSQL      = `SELECT pgq.register_consumer($1, $2)`
	registerAtSQL    = `SELECT pgq.register_consumer_at($1, $2, $3)`
	unregisterSQL    = `SELECT pgq.unregister_consumer($1, $2)`
	registerSubSQL   = `SELECT pgq_coop.register_subconsumer($1, $2, $3)`
	unregisterSubSQL = `SELECT pgq_coop.unregister_subconsumer($1, $2, $3, 0)`
	forceTickSQL     = `SELECT pgq.force_tick($1)`
	// tickSQL ticks one queue the way pgqd does: the tick and its NOTIFY in one
	// transaction, so listeners are woken exactly when the tick becomes visible.
	tickSQL = `SELECT t, pg_notify($2, t::text) FROM pgq.ticker($1) t WHERE t IS NOT NULL`
)

// CreateQueue creates queue with its event tables and first tick. It reports false
// when the queue already existed (and leaves it alone).
func CreateQueue(ctx context.Context, db Querier, queue string) (created bool, err error) {
	var n int
	if err := db.QueryRow(ctx, createQueueSQL, queue).Scan(&n); err != nil {
		return false, who{queue: queue}.wrap("create queue", err)
	}
	return n == 1, nil
}

// DropQueue drops queue and all its events. Without force it fails with
// [ErrQueueInUse] while consumers are registered; with force it unregisters them.
func DropQueue(ctx context.Context, db Querier, queue string, force bool) error {
	var n int
	err := db.QueryRow(ctx, dropQueueSQL, queue, force).Scan(&n)
	return who{queue: queue}.wrap("drop queue", err)
}

// Queue parameters that [SetQueueParam] can change.
const (
	ParamTickerMaxCount   = "ticker_max_count"   // events that force a tick (integer)
	ParamTickerMaxLag     = "ticker_max_lag"     // longest time between ticks with events (interval)
	ParamTickerIdlePeriod = "ticker_idle_period" // longest time between ticks without events (interval)
	ParamTickerPaused     = "ticker_paused"      // true stops ticking (boolean)
	ParamRotationPeriod   = "rotation_period"    // how long an event table is written before the next (interval)
	ParamExternalTicker   = "external_ticker"    // ticks come from elsewhere, as on a cascaded branch (boolean)
)

// SetQueueParam sets one of the queue's Param* settings; value is in PostgreSQL's text
// form ("500", "3 seconds", "true").
func SetQueueParam(ctx context.Context, db Querier, queue, param, value string) error {
	var n int
	err := db.QueryRow(ctx, setQueueParamSQL, queue, param, value).Scan(&n)
	return who{queue: queue}.wrap("set queue parameter "+param, err)
}

// Register subscribes consumer to queue at the queue's latest tick: it will see the
// events of every later tick. It reports false when the consumer was already
// registered (its position is then left alone). The queue must have a tick
// ([ErrNoTicks] otherwise; CreateQueue makes one).
func Register(ctx context.Context, db Querier, queue, consumer string) (created bool, err error) {
	var n int
	if err := db.QueryRow(ctx, registerSQL, queue, consumer).Scan(&n); err != nil {
		return false, who{queue, consumer, 0}.wrap("register consumer", err)
	}
	return n == 1, nil
}

// RegisterAt subscribes consumer to queue at tick, or moves an existing consumer there
// (dropping its active batch): its next batch starts after that tick. This rewinds or
// skips ahead; [ErrTickNotFound] if the queue no longer has the tick.
func RegisterAt(ctx context.Context, db Querier, queue, consumer string, tick int64) (created bool, err error) {
	var n int
	if err := db.QueryRow(ctx, registerAtSQL, queue, consumer, tick).Scan(&n); err != nil {
		return false, who{queue, consumer, 0}.wrap("register consumer at tick", err)
	}
	return n == 1, nil
}

// Unregister removes consumer from queue, with its pending retry events and, for a
// cooperative consumer, all its subconsumers. It reports false when the consumer was
// not registered.
func Unregister(ctx context.Context, db Querier, queue, consumer string) (removed bool, err error) {
	var n int
	if err := db.QueryRow(ctx, unregisterSQL, queue, consumer).Scan(&n); err != nil {
		return false, who{queue, consumer, 0}.wrap("unregister consumer", err)
	}
	return n > 0, nil
}

// RegisterSubconsumer registers subconsumer sub of the cooperative consumer (and the
// consumer itself if needed) through pgq_coop. It reports false when it existed.
func RegisterSubconsumer(ctx context.Context, db Querier, queue, consumer, sub string) (created bool, err error) {
	var n int
	if err := db.QueryRow(ctx, registerSubSQL, queue, consumer, sub).Scan(&n); err != nil {
		return false, who{queue, consumer + "." + sub, 0}.wrap("register subconsumer", err)
	}
	return n == 1, nil
}

// UnregisterSubconsumer removes subconsumer sub; it fails with [ErrActiveBatch] while
// the subconsumer holds a batch (finish it, or let another subconsumer take it over).
func UnregisterSubconsumer(ctx context.Context, db Querier, queue, consumer, sub string) (removed bool, err error) {
	var n int
	if err := db.QueryRow(ctx, unregisterSubSQL, queue, consumer, sub).Scan(&n); err != nil {
		return false, who{queue, consumer + "." + sub, 0}.wrap("unregister subconsumer", err)
	}
	return n == 1, nil
}

// ForceTick asks for a tick of queue at the ticker's next call regardless of its
// thresholds, and returns the queue's current last tick id: wait until the last tick
// id passes it. Paused and externally ticked queues are left alone.
func ForceTick(ctx context.Context, db Querier, queue string) (lastTick int64, err error) {
	var t pgtype.Int8
	if err := db.QueryRow(ctx, forceTickSQL, queue).Scan(&t); err != nil {
		return 0, who{queue: queue}.wrap("force tick", err)
	}
	if !t.Valid {
		return 0, who{queue: queue}.fail("force tick", ErrQueueNotFound, "")
	}
	return t.Int64, nil
}

// Tick runs PgQ's ticker for queue once, as pgqd does: if a tick is due (see the
// queue's ticker_* parameters) it is made and announced on [TickChannel] in the same
// transaction. It returns the new tick id, or ok=false when no tick was due. Only one
// ticker may run per queue at a time: leave it to pgqd where pgqd runs.
func Tick(ctx context.Context, db Querier, queue string) (tick int64, ok bool, err error) {
	var note string
	err = db.QueryRow(ctx, tickSQL, queue, TickChannel(queue)).Scan(&tick, &note)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, who{queue: queue}.wrap("tick", err)
	}
	return tick, true, nil
}

// QueueInfo is the state and settings of one queue (pgq.get_queue_info).
type QueueInfo struct {
	Name             string
	NTables          int           // number of rotating event tables
	CurTable         int           // the table being written
	RotationPeriod   time.Duration // how long a table is written before the next
	SwitchTime       time.Time     // when the current table started
	ExternalTicker   bool
	TickerPaused     bool
	TickerMaxCount   int
	TickerMaxLag     time.Duration
	TickerIdlePeriod time.Duration
	TickerLag        time.Duration // time since the last tick
	EventsPerSec     float64       // over the last ticks; 0 when unknown
	NewEvents        int64         // events (sequence values) not yet in a tick
	LastTick         int64
}

type queueInfoRow struct {
	QueueName             string             `db:"queue_name"`
	QueueNtables          int32              `db:"queue_ntables"`
	QueueCurTable         int32              `db:"queue_cur_table"`
	QueueRotationPeriod   pgtype.Interval    `db:"queue_rotation_period"`
	QueueSwitchTime       pgtype.Timestamptz `db:"queue_switch_time"`
	QueueExternalTicker   bool               `db:"queue_external_ticker"`
	QueueTickerPaused     bool               `db:"queue_ticker_paused"`
	QueueTickerMaxCount   int32              `db:"queue_ticker_max_count"`
	QueueTickerMaxLag     pgtype.Interval    `db:"queue_ticker_max_lag"`
	QueueTickerIdlePeriod pgtype.Interval    `db:"queue_ticker_idle_period"`
	TickerLag             pgtype.Interval    `db:"ticker_lag"`
	EvPerSec              pgtype.Float8      `db:"ev_per_sec"`
	EvNew                 pgtype.Int8        `db:"ev_new"`
	LastTickID            pgtype.Int8        `db:"last_tick_id"`
}

func (r queueInfoRow) info() QueueInfo {
	return QueueInfo{
		Name:             r.QueueName,
		NTables:          int(r.QueueNtables),
		CurTable:         int(r.QueueCurTable),
		RotationPeriod:   duration(r.QueueRotationPeriod),
		SwitchTime:       r.QueueSwitchTime.Time,
		ExternalTicker:   r.QueueExternalTicker,
		TickerPaused:     r.QueueTickerPaused,
		TickerMaxCount:   int(r.QueueTickerMaxCount),
		TickerMaxLag:     duration(r.QueueTickerMaxLag),
		TickerIdlePeriod: duration(r.QueueTickerIdlePeriod),
		TickerLag:        duration(r.TickerLag),
		EventsPerSec:     r.EvPerSec.Float64,
		NewEvents:        r.EvNew.Int64,
		LastTick:         r.LastTickID.Int64,
	}
}

const queueInfoSQL = `SELECT * FROM pgq.get_queue_info($1)`

// Queues returns every queue of the database, ordered by name.
func Queues(ctx context.Context, db Querier) ([]QueueInfo, error) {
	return queueInfos(ctx, db, nil)
}

// GetQueueInfo returns one queue's state and settings, or [ErrQueueNotFound].
func GetQueueInfo(ctx context.Context, db Querier, queue string) (QueueInfo, error) {
	qs, err := queueInfos(ctx, db, &queue)
	if err != nil {
		return QueueInfo{}, err
	}
	if len(qs) == 0 {
		return QueueInfo{}, who{queue: queue}.fail("queue info", ErrQueueNotFound, "")
	}
	return qs[0], nil
}

func queueInfos(ctx context.Context, db Querier, queue *string) ([]QueueInfo, error) {
	w := who{}
	if queue != nil {
		w.queue = *queue
	}
	rs, err := collect[queueInfoRow](ctx, db, w, "queue info", queueInfoSQL, queue)
	if err != nil {
		return nil, err
	}
	out := make([]QueueInfo, len(rs))
	for i, r := range rs {
		out[i] = r.info()
	}
	return out, nil
}

// ConsumerInfo is the state of one registration (pgq.get_consumer_info). Cooperative
// subconsumers appear as "consumer.sub".
type ConsumerInfo struct {
	Queue         string
	Consumer      string
	Lag           time.Duration // age of the consumer's position tick; 0 for an idle subconsumer
	LastSeen      time.Duration // time since the consumer last asked for or finished a batch
	LastTick      int64         // the consumer's position: its next batch starts after this tick
	CurrentBatch  int64         // the active batch, 0 if none
	NextTick      int64         // end tick of the active batch, 0 if none
	PendingEvents int64         // ticked events not yet consumed (from sequence values: approximate)
}

type consumerInfoRow struct {
	QueueName     string          `db:"queue_name"`
	ConsumerName  string          `db:"consumer_name"`
	Lag           pgtype.Interval `db:"lag"`
	LastSeen      pgtype.Interval `db:"last_seen"`
	LastTick      pgtype.Int8     `db:"last_tick"`
	CurrentBatch  pgtype.Int8     `db:"current_batch"`
	NextTick      pgtype.Int8     `db:"next_tick"`
	PendingEvents pgtype.Int8     `db:"pending_events"`
}

const consumerInfoSQL = `SELECT * FROM pgq.get_consumer_info($1, $2)`

// Consumers returns the registrations on queue, or on every queue when queue is "".
func Consumers(ctx context.Context, db Querier, queue string) ([]ConsumerInfo, error) {
	var q *string
	if queue != "" {
		q = &queue
	}
	return consumerInfos(ctx, db, who{queue: queue}, q, nil)
}

// GetConsumerInfo returns one consumer's registration on queue, or [ErrNotSubscribed].
func GetConsumerInfo(ctx context.Context, db Querier, queue, consumer string) (ConsumerInfo, error) {
	w := who{queue: queue, consumer: consumer}
	cs, err := consumerInfos(ctx, db, w, &queue, &consumer)
	if err != nil {
		return ConsumerInfo{}, err
	}
	if len(cs) == 0 {
		return ConsumerInfo{}, w.fail("consumer info", ErrNotSubscribed, "")
	}
	return cs[0], nil
}

func consumerInfos(ctx context.Context, db Querier, w who, queue, consumer *string) ([]ConsumerInfo, error) {
	rs, err := collect[consumerInfoRow](ctx, db, w, "consumer info", consumerInfoSQL, queue, consumer)
	if err != nil {
		return nil, err
	}
	out := make([]ConsumerInfo, len(rs))
	for i, r := range rs {
		out[i] = ConsumerInfo{
			Queue:         r.QueueName,
			Consumer:      r.ConsumerName,
			Lag:           duration(r.Lag),
			LastSeen:      duration(r.LastSeen),
			LastTick:      r.LastTick.Int64,
			CurrentBatch:  r.CurrentBatch.Int64,
			NextTick:      r.NextTick.Int64,
			PendingEvents: r.PendingEvents.Int64,
		}
	}
	return out, nil
}

// BatchInfo describes an active batch (pgq.get_batch_info).
type BatchInfo struct {
	Queue      string
	Consumer   string
	PrevTick   int64     // the batch holds events committed after this tick ...
	Tick       int64     // ... and up to this one
	PrevTickAt time.Time // time of PrevTick
	TickAt     time.Time // time of Tick
	Lag        time.Duration
	SeqStart   int64 // event sequence at PrevTick
	SeqEnd     int64 // event sequence at Tick
}

type batchInfoRow struct {
	QueueName    pgtype.Text        `db:"queue_name"`
	ConsumerName pgtype.Text        `db:"consumer_name"`
	BatchStart   pgtype.Timestamptz `db:"batch_start"`
	BatchEnd     pgtype.Timestamptz `db:"batch_end"`
	PrevTickID   pgtype.Int8        `db:"prev_tick_id"`
	TickID       pgtype.Int8        `db:"tick_id"`
	Lag          pgtype.Interval    `db:"lag"`
	SeqStart     pgtype.Int8        `db:"seq_start"`
	SeqEnd       pgtype.Int8        `db:"seq_end"`
}

const batchInfoSQL = `SELECT * FROM pgq.get_batch_info($1)`

// GetBatchInfo describes an active batch, or returns [ErrBatchNotFound].
func GetBatchInfo(ctx context.Context, db Querier, batch int64) (BatchInfo, error) {
	w := who{batch: batch}
	rs, err := collect[batchInfoRow](ctx, db, w, "batch info", batchInfoSQL, batch)
	if err != nil {
		return BatchInfo{}, err
	}
	if len(rs) != 1 || !rs[0].TickID.Valid {
		return BatchInfo{}, w.fail("batch info", ErrBatchNotFound, "")
	}
	r := rs[0]
	return BatchInfo{
		Queue:      r.QueueName.String,
		Consumer:   r.ConsumerName.String,
		PrevTick:   r.PrevTickID.Int64,
		Tick:       r.TickID.Int64,
		PrevTickAt: r.BatchStart.Time,
		TickAt:     r.BatchEnd.Time,
		Lag:        duration(r.Lag),
		SeqStart:   r.SeqStart.Int64,
		SeqEnd:     r.SeqEnd.Int64,
	}, nil
}

// Flavor says which PgQ implementation a database has.
type Flavor int

const (
	// NotInstalled: no pgq schema.
	NotInstalled Flavor = iota
	// Skytools: this project's PgQ in PL/pgSQL, installed by pgqd install
	// (recorded in skytools.schema_version).
	Skytools
	// Extension: the original PgQ, installed with CREATE EXTENSION pgq.
	Extension
	// Unrecorded: a pgq schema that is neither, e.g. the original's SQL run by hand.
	Unrecorded
)

func (f Flavor) String() string {
	switch f {
	case Skytools:
		return "skytools"
	case Extension:
		return "extension"
	case Unrecorded:
		return "unrecorded"
	}
	return "not installed"
}

// Installation is what [Detect] found in a database.
type Installation struct {
	Flavor  Flavor
	Version string // pgq.version(); "" when it returns NULL or pgq is missing
	Coop    bool   // the pgq_coop schema is there (cooperative consumers)
}

// detectSQL looks at the catalogs only, so it works without any pgq privilege.
const detectSQL = `SELECT
  EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'pgq'),
  EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pgq'),
  to_regclass('skytools.schema_version') IS NOT NULL,
  EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'pgq_coop')`

const oursSQL = `SELECT EXISTS (SELECT 1 FROM skytools.schema_version WHERE schema_name = 'pgq')`

const versionSQL = `SELECT pgq.version()`

// Detect tells which PgQ the database has and its version: ours is recognised by its
// row in skytools.schema_version, the original by pg_extension.
func Detect(ctx context.Context, db Querier) (Installation, error) {
	var schema, ext, meta, coop bool
	if err := db.QueryRow(ctx, detectSQL).Scan(&schema, &ext, &meta, &coop); err != nil {
		return Installation{}, who{}.wrap("detect pgq", err)
	}
	in := Installation{Coop: coop}
	switch {
	case !schema:
		return in, nil
	case ext:
		in.Flavor = Extension
	default:
		in.Flavor = Unrecorded
		if meta {
			var ours bool
			if err := db.QueryRow(ctx, oursSQL).Scan(&ours); err != nil {
				return Installation{}, who{}.wrap("detect pgq", err)
			}
			if ours {
				in.Flavor = Skytools
			}
		}
	}
	var v pgtype.Text
	if err := db.QueryRow(ctx, versionSQL).Scan(&v); err != nil {
		return Installation{}, who{}.wrap("detect pgq: pgq.version()", err)
	}
	in.Version = v.String
	return in, nil
}

// collect runs a query and reads its rows into structs by column name.
func collect[R any](ctx context.Context, db Querier, w who, op, sql string, args ...any) ([]R, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, w.wrap(op, err)
	}
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByName[R])
	if err != nil {
		return nil, w.wrap(op, err)
	}
	return rs, nil
}

// duration converts an interval, counting a month as 30 days as PostgreSQL's
// extract(epoch) does; NULL is 0.
func duration(iv pgtype.Interval) time.Duration {
	if !iv.Valid {
		return 0
	}
	return time.Duration(iv.Microseconds)*time.Microsecond +
		time.Duration(iv.Days)*24*time.Hour +
		time.Duration(iv.Months)*30*24*time.Hour
}
