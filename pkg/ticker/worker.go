package ticker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// Worker states, as shown by the status line and logs.
const (
	stateStarting = "starting"
	stateRunning  = "running"
	stateDown     = "down"   // cannot reach the database
	stateAbsent   = "no pgq" // reachable, but no usable pgq schema
	stateGone     = "gone"   // discovery mode: the database no longer exists
)

// busy records the database call a loop is in, so the daemon can tell a loop that is
// waiting (healthy) from one stuck in a call beyond its timeout (not healthy).
type busy struct {
	since atomic.Int64 // unix nanoseconds; 0 when not in a call
	limit atomic.Int64 // nanoseconds the current call may take
}

func (b *busy) enter(limit time.Duration) {
	b.limit.Store(int64(limit + 2*cancelGrace + time.Second))
	b.since.Store(time.Now().UnixNano())
}

func (b *busy) leave() { b.since.Store(0) }

// stuck reports whether the current call has run far beyond its timeout.
func (b *busy) stuck(now time.Time) bool {
	s := b.since.Load()
	return s != 0 && now.UnixNano()-s > b.limit.Load()
}

// worker serves one database: the tick loop (this goroutine) and the maintenance loop.
type worker struct {
	db  string
	d   *Daemon
	log *zap.Logger

	tickBusy, maintBusy busy

	mu        sync.Mutex
	state     string
	lastErr   string
	downSince time.Time
	queues    int
	version   string

	// counters for the stats line, reset when logged
	ticks, maintOps, retried atomic.Int64

	cancel context.CancelFunc
	done   chan struct{}
	// wakeTick and wakeMaint tell the loops that the periods may have changed.
	wakeTick, wakeMaint chan struct{}

	// proc is the tick session's temporary burst procedure (see burstBody); only the tick
	// loop's goroutine uses it.
	proc struct {
		body        string // the body installed; "" when none
		unavailable bool   // the role may not create temporary objects
	}
}

func newWorker(d *Daemon, db string) *worker {
	return &worker{
		db:        db,
		d:         d,
		log:       d.log.With(zap.String("database", db)),
		state:     stateStarting,
		done:      make(chan struct{}),
		wakeTick:  make(chan struct{}, 1),
		wakeMaint: make(chan struct{}, 1),
	}
}

// configChanged makes both loops recompute their timers from the new periods.
func (w *worker) configChanged() {
	for _, ch := range []chan struct{}{w.wakeTick, w.wakeMaint} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (w *worker) setState(state string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev := w.state
	w.state = state
	switch state {
	case stateDown:
		if w.downSince.IsZero() {
			w.downSince = time.Now()
		}
	default:
		w.downSince = time.Time{}
	}
	if err != nil {
		w.lastErr = err.Error()
	} else if state == stateRunning {
		w.lastErr = ""
	}
	up := 0.0
	if state == stateRunning {
		up = 1
	}
	w.d.m.up.WithLabelValues(w.db).Set(up)
	if prev != state {
		switch state {
		case stateRunning:
			w.log.Info("ticking", zap.String("pgq_version", w.version))
		case stateDown:
			w.log.Error("database unreachable", zap.Error(err))
		case stateAbsent, stateGone:
			w.log.Info("not serving database", zap.String("reason", state))
		}
	}
}

// snapshot is the worker's state for the status line and health checks.
type workerSnapshot struct {
	db, state, lastErr string
	downSince          time.Time
	queues             int
}

func (w *worker) snapshot() workerSnapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return workerSnapshot{db: w.db, state: w.state, lastErr: w.lastErr, downSince: w.downSince, queues: w.queues}
}

func (w *worker) fail(err error) {
	w.d.m.errors.WithLabelValues(w.db).Inc()
	w.mu.Lock()
	w.lastErr = err.Error()
	w.mu.Unlock()
}

// run is the worker's life: sessions (connect, check, tick) separated by waits.
func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	maintCtx, stopMaint := context.WithCancel(ctx)
	maintDone := make(chan struct{})
	maintStarted := false
	defer func() {
		stopMaint()
		if maintStarted {
			<-maintDone
		}
	}()
	startMaint := func() {
		if !maintStarted {
			maintStarted = true
			go w.maintLoop(maintCtx, maintDone)
		}
	}
	bo := backoff{min: time.Second, max: time.Minute}
	for {
		wait := w.session(ctx, startMaint, &bo)
		if ctx.Err() != nil {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// session connects, checks for pgq and ticks until an error, the connection's
// lifetime, or the end of ctx. It returns how long to wait before the next session.
func (w *worker) session(ctx context.Context, startMaint func(), bo *backoff) time.Duration {
	cfg := w.d.config()
	w.tickBusy.enter(connectTimeout)
	var notices []string
	conn, err := connectWithNotices(ctx, cfg.Connstr, w.db, maxBurst+tickTimeout, func(msg string) {
		notices = append(notices, msg)
	})
	w.tickBusy.leave()
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		w.fail(err)
		if w.d.discovering() && isSQLState(err, "3D000") {
			w.setState(stateGone, err)
			w.d.requestDiscovery()
			return time.Duration(cfg.CheckPeriod)
		}
		w.setState(stateDown, err)
		return bo.next()
	}
	defer closeConn(conn)
	w.proc.body, w.proc.unavailable = "", false // a new session has no temporary procedure
	w.d.answered()

	ok, version, err := w.checkPgq(ctx, conn)
	if err != nil {
		w.fail(err)
		w.setState(stateDown, err)
		return bo.next()
	}
	if !ok {
		w.mu.Lock()
		w.version = version
		w.mu.Unlock()
		w.setState(stateAbsent, nil)
		bo.reset()
		return time.Duration(cfg.CheckPeriod)
	}
	w.mu.Lock()
	w.version = version
	w.mu.Unlock()
	startMaint()

	err = w.tickLoop(ctx, conn, &notices)
	if ctx.Err() != nil {
		return 0
	}
	if err == nil { // connection lifetime reached: reconnect at once
		bo.reset()
		return 0
	}
	w.fail(err)
	w.setState(stateDown, err)
	return bo.next()
}

// checkPgq reports whether the database has a pgq schema pgqd can drive: the ticker
// function exists and pgq.version() is NULL (installed without an extension, as the
// original leaves it) or starts with a digit 3-9.
func (w *worker) checkPgq(ctx context.Context, conn *pgx.Conn) (bool, string, error) {
	ctx, cancel := context.WithTimeout(ctx, tickTimeout)
	defer cancel()
	w.tickBusy.enter(tickTimeout)
	defer w.tickBusy.leave()
	var hasTicker, hasVersion bool
	err := conn.QueryRow(ctx, `SELECT
	  EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'pgq' AND p.proname = 'ticker'),
	  EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'pgq' AND p.proname = 'version')`).Scan(&hasTicker, &hasVersion)
	if err != nil {
		return false, "", fmt.Errorf("look for pgq: %w", err)
	}
	if !hasTicker {
		return false, "", nil
	}
	var version *string
	if hasVersion {
		if err := conn.QueryRow(ctx, "SELECT pgq.version()").Scan(&version); err != nil {
			return false, "", fmt.Errorf("pgq.version(): %w", err)
		}
	}
	if version == nil {
		return true, "unknown (no extension record)", nil
	}
	if *version == "" || (*version)[0] < '3' || (*version)[0] > '9' {
		w.log.Warn("unsupported pgq version, not ticking", zap.String("pgq_version", *version))
		return false, *version, nil
	}
	return true, *version, nil
}

// tickLoop runs bursts of tick passes until an error (returned), the end of the
// connection's lifetime (nil) or of ctx (nil). notices collects the NOTICEs of the
// tick connection.
func (w *worker) tickLoop(ctx context.Context, conn *pgx.Conn, notices *[]string) error {
	connected := time.Now()
	lastStats := time.Now()
	first := true
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastStart, loaded time.Time
	var queues []queueRef // nil: read the list before the next burst
	var built []queueRef  // the list body was made for
	var body string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.wakeTick:
			// New periods: wait what remains of the new ticker_period, if anything.
			timer.Stop()
			timer.Reset(max(time.Duration(w.d.config().TickerPeriod)-time.Since(lastStart), 0))
			continue
		case <-timer.C:
		}
		cfg := w.d.config()
		period := time.Duration(cfg.TickerPeriod)
		lastStart = time.Now()
		if lastStart.Sub(connected) > time.Duration(cfg.ConnectionLifetime) {
			w.log.Debug("connection lifetime reached, reconnecting")
			return nil
		}
		// Small statements around a burst are not interrupted by shutdown. A burst's
		// time limit is the connection's statement_timeout; should the server or network
		// hang instead, the busy tracker stops the watchdog pings.
		qctx := context.WithoutCancel(ctx)
		w.tickBusy.enter(burstLength(period) + tickTimeout)
		// The first burst of a session and long periods make a single pass.
		single := first || period >= minBurst
		// The queue list (with each queue's ticker_max_lag and table count, which the
		// low-latency watch uses) is read for every multi-pass burst. Single passes use
		// names only; their own check notices a changed set of queues, and the list is
		// read again then, after an error, and once a minute.
		if queues == nil || !single || time.Since(loaded) > time.Minute {
			qs, err := loadQueues(qctx, conn)
			if err != nil {
				w.tickBusy.leave()
				return err
			}
			// The burst's PL/pgSQL depends on the queue list only.
			if body == "" || !slices.Equal(qs, built) {
				body, built = burstBody(qs), qs
			}
			queues, loaded = qs, time.Now()
			w.mu.Lock()
			w.queues = len(qs)
			w.mu.Unlock()
		}
		res, interrupted, err := w.runBurst(ctx, qctx, conn, queues, body, period, single, notices)
		if interrupted {
			// Shutdown or new settings: the pass in progress was rolled back (a tick
			// not made, nothing lost). The session ends; a reload reconnects at once
			// with the new settings, on a connection no stray cancel request can reach.
			w.tickBusy.leave()
			return nil
		}
		if err != nil && w.burstGaveWay(qctx, conn, queues, err) {
			// A queue was dropped, or a lock wait timed out: run the next burst at
			// once, with the queues as they are now.
			w.tickBusy.leave()
			w.log.Debug("tick burst gave way; starting the next one", zap.Error(err))
			queues = nil
			timer.Reset(0)
			continue
		}
		if err == nil && (first || time.Since(lastStats) >= time.Duration(cfg.StatsPeriod)) {
			// Figures for metrics and the stats line; failing to read them never stops
			// the ticking. A queue dropped meanwhile makes PgQ's info functions fail:
			// not worth an error, the next refresh will do.
			if serr := w.stats(qctx, conn, cfg); serr != nil && !w.burstGaveWay(qctx, conn, queues, serr) {
				w.fail(serr)
				w.log.Warn("cannot refresh queue figures", zap.Error(serr))
			}
			lastStats = time.Now()
		}
		w.tickBusy.leave()
		if err != nil {
			// A queue dropped or paused mid-burst fails it; the next session lists the
			// queues again.
			return err
		}
		if first {
			w.setState(stateRunning, nil)
			first = false
		}
		if res.changed {
			queues = nil // read the list again before the next burst
		}
		// A multi-pass burst slept after its last pass; after a single pass, wait
		// what remains of the period (or none when the queues changed).
		next := time.Duration(0)
		if single && !res.changed {
			next = period - time.Since(lastStart)
		}
		timer.Reset(max(next, 0))
	}
}

// runBurst runs one burst, cancelling it (with a cancel request: the session's
// connection survives) when ctx ends or the settings change. interrupted is true when
// it was cancelled that way.
func (w *worker) runBurst(ctx, qctx context.Context, conn *pgx.Conn, qs []queueRef, body string, period time.Duration, single bool, notices *[]string) (res burstResult, interrupted bool, err error) {
	bctx, stop := context.WithCancel(qctx)
	defer stop()
	done := make(chan struct{})
	var cancelled atomic.Bool
	go func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
		case <-w.wakeTick:
		}
		cancelled.Store(true)
		stop()
	}()
	res, err = w.burst(bctx, conn, qs, body, period, single, notices)
	close(done)
	if err != nil && cancelled.Load() {
		return res, true, nil
	}
	return res, false, err
}

// burstGaveWay reports whether a failed burst only gave way to a change of the queues
// (a queue dropped or paused mid-burst) or to a lock held elsewhere, rather than
// failing: then the session goes on.
func (w *worker) burstGaveWay(ctx context.Context, conn *pgx.Conn, queues []queueRef, err error) bool {
	if isSQLState(err, "55P03") { // lock_not_available: lock_timeout
		return true
	}
	if conn.PgConn().IsClosed() {
		return false
	}
	now, lerr := loadQueues(ctx, conn)
	return lerr == nil && fingerprint(now) != fingerprint(queues)
}

// burst runs one burst and accounts for its ticks.
func (w *worker) burst(ctx context.Context, conn *pgx.Conn, qs []queueRef, body string, period time.Duration, single bool, notices *[]string) (burstResult, error) {
	var sql string
	if !w.proc.unavailable {
		if body != w.proc.body {
			_, err := conn.Exec(ctx, createBurstProcedureSQL(body))
			switch {
			case isSQLState(err, "42501"): // insufficient_privilege: no TEMP on this database
				w.proc.unavailable = true
				w.log.Warn("no TEMP privilege: ticking with DO blocks, which cost more CPU (GRANT TEMP ON DATABASE to pgqd's role)", zap.Error(err))
			case err != nil:
				return burstResult{}, fmt.Errorf("tick: install the burst procedure: %w", err)
			default:
				w.proc.body = body
			}
		}
		if !w.proc.unavailable {
			sql = callBurstSQL(period, single)
		}
	}
	if sql == "" {
		sql = doBurstSQL(body, period, single)
	}
	*notices = (*notices)[:0]
	if _, err := conn.Exec(ctx, sql); err != nil {
		return burstResult{}, fmt.Errorf("tick: %w", err)
	}
	var res burstResult
	found := false
	for _, msg := range *notices {
		if strings.HasPrefix(msg, noticePrefix) {
			r, err := parseBurstNotice(msg, len(qs))
			if err != nil {
				return res, err
			}
			res, found = r, true
		}
	}
	if !found {
		return res, fmt.Errorf("tick: the burst sent no summary notice")
	}
	w.d.m.passes.WithLabelValues(w.db).Add(float64(res.passes))
	for i, n := range res.ticks {
		if n > 0 {
			w.d.m.ticks.WithLabelValues(w.db, qs[i].Name).Add(float64(n))
			w.ticks.Add(n)
		}
		if res.late[i] > 0 {
			w.log.Debug("ticked committed events PgQ took the queue for idle", zap.String("queue", qs[i].Name), zap.Int64("ticks", res.late[i]))
		}
		if res.early[i] > 0 {
			w.d.m.earlyTicks.WithLabelValues(w.db, qs[i].Name).Add(float64(res.early[i]))
		}
	}
	return res, nil
}

// stats refreshes the per-queue and per-consumer gauges and logs the stats line.
func (w *worker) stats(ctx context.Context, conn *pgx.Conn, cfg *Config) error {
	m := w.d.m
	type qrow struct {
		Name     string
		Lag      *float64
		EvPerSec *float64
		New      *int64
		LastTick *int64
	}
	rows, err := conn.Query(ctx, `SELECT queue_name, extract(epoch FROM ticker_lag)::float8, ev_per_sec, ev_new, last_tick_id FROM pgq.get_queue_info()`)
	if err != nil {
		return fmt.Errorf("pgq.get_queue_info(): %w", err)
	}
	qs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[qrow])
	if err != nil {
		return fmt.Errorf("pgq.get_queue_info(): %w", err)
	}
	type crow struct {
		Queue, Consumer string
		Lag, Seen       *float64
		Pending         *int64
	}
	rows, err = conn.Query(ctx, `SELECT queue_name, consumer_name, extract(epoch FROM lag)::float8, extract(epoch FROM last_seen)::float8, pending_events FROM pgq.get_consumer_info()`)
	if err != nil {
		return fmt.Errorf("pgq.get_consumer_info(): %w", err)
	}
	cs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[crow])
	if err != nil {
		return fmt.Errorf("pgq.get_consumer_info(): %w", err)
	}
	m.forgetQueueStats(w.db)
	m.up.WithLabelValues(w.db).Set(1)
	set := func(g interface{ Set(float64) }, v any) {
		switch x := v.(type) {
		case *float64:
			if x != nil {
				g.Set(*x)
			}
		case *int64:
			if x != nil {
				g.Set(float64(*x))
			}
		}
	}
	for _, q := range qs {
		set(m.tickerLag.WithLabelValues(w.db, q.Name), q.Lag)
		set(m.eventsPerSec.WithLabelValues(w.db, q.Name), q.EvPerSec)
		set(m.pending.WithLabelValues(w.db, q.Name), q.New)
		set(m.lastTick.WithLabelValues(w.db, q.Name), q.LastTick)
	}
	for _, c := range cs {
		set(m.consumerLag.WithLabelValues(w.db, c.Queue, c.Consumer), c.Lag)
		set(m.consumerSeen.WithLabelValues(w.db, c.Queue, c.Consumer), c.Seen)
		set(m.consumerAhead.WithLabelValues(w.db, c.Queue, c.Consumer), c.Pending)
	}
	w.log.Info("stats",
		zap.Int64("ticks", w.ticks.Swap(0)),
		zap.Int64("maint", w.maintOps.Swap(0)),
		zap.Int64("retry", w.retried.Swap(0)),
		zap.Int("queues", len(qs)),
		zap.Int("consumers", len(cs)))
	return nil
}

// maintLoop runs maintenance every maint_period and retry moves every retry_period,
// each round on a connection of its own, until ctx ends.
func (w *worker) maintLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	maintT := time.NewTimer(0)
	retryT := time.NewTimer(0)
	defer maintT.Stop()
	defer retryT.Stop()
	var lastMaint, lastRetry time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wakeMaint:
			cfg := w.d.config()
			maintT.Stop()
			maintT.Reset(max(time.Duration(cfg.MaintPeriod)-time.Since(lastMaint), 0))
			retryT.Stop()
			retryT.Reset(max(time.Duration(cfg.RetryPeriod)-time.Since(lastRetry), 0))
		case <-maintT.C:
			lastMaint = time.Now()
			maintT.Reset(w.round(ctx, "maintenance", func(ctx context.Context, conn *pgx.Conn) error {
				n, err := maintenance(ctx, conn)
				w.maintOps.Add(int64(n))
				w.d.m.maintOps.WithLabelValues(w.db).Add(float64(n))
				return err
			}, time.Duration(w.d.config().MaintPeriod)))
		case <-retryT.C:
			lastRetry = time.Now()
			retryT.Reset(w.round(ctx, "retry", func(ctx context.Context, conn *pgx.Conn) error {
				n, err := retryEvents(ctx, conn)
				w.retried.Add(n)
				w.d.m.retried.WithLabelValues(w.db).Add(float64(n))
				return err
			}, time.Duration(w.d.config().RetryPeriod)))
		}
	}
}

// round runs fn on a fresh connection if the database has pgq, and returns when to
// run the next round: after period, or sooner (20s) after an error.
func (w *worker) round(ctx context.Context, what string, fn func(context.Context, *pgx.Conn) error, period time.Duration) time.Duration {
	const errorRetry = 20 * time.Second
	w.maintBusy.enter(maintTimeout)
	defer w.maintBusy.leave()
	conn, err := connect(ctx, w.d.config().Connstr, w.db, 0)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Debug(what+": cannot connect", zap.Error(err))
		}
		return min(period, errorRetry)
	}
	defer closeConn(conn)
	ok, _, err := w.checkPgq(ctx, conn)
	if err != nil || !ok {
		return period
	}
	if err := fn(ctx, conn); err != nil {
		if ctx.Err() != nil {
			return period
		}
		w.fail(err)
		w.log.Error(what+" failed", zap.Error(err))
		return min(period, errorRetry)
	}
	return period
}

// backoff is a jittered exponential delay between reconnection attempts.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	// ±20% jitter so that many pgqd workers do not reconnect in lockstep.
	j := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(b.cur) * j)
}

func (b *backoff) reset() { b.cur = 0 }

func isSQLState(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// oneLine keeps a status line on one line.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
