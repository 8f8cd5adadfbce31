package ticker

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/skytools-go/skytools/pkg/lifecycle"
	"go.uber.org/zap"
)

// Daemon is pgqd: a supervisor of one worker per database.
type Daemon struct {
	h   *lifecycle.Host
	log *zap.Logger
	m   *metrics
	cfg atomic.Pointer[Config]

	reloads    chan reloadRequest
	rediscover chan struct{}

	mu             sync.Mutex
	workers        map[string]*worker
	discoveryDown  time.Time // when initial_database became unreachable; zero when fine
	discoveryError string
}

type reloadRequest struct {
	cfg  *Config
	done chan error
}

// New builds pgqd from its config.
func New(cfg *Config, h *lifecycle.Host) (*Daemon, error) {
	d := &Daemon{
		h:          h,
		log:        h.Log,
		m:          newMetrics(h.Metrics),
		reloads:    make(chan reloadRequest),
		rediscover: make(chan struct{}, 1),
		workers:    map[string]*worker{},
	}
	d.cfg.Store(cfg)
	return d, nil
}

func (d *Daemon) config() *Config { return d.cfg.Load() }

func (d *Daemon) discovering() bool { return len(d.config().Databases) == 0 }

// answered is called after any successful database round trip: systemd learns that
// pgqd is up.
func (d *Daemon) answered() { d.h.Notify.Ready() }

// requestDiscovery asks the main loop to list the databases again now.
func (d *Daemon) requestDiscovery() {
	select {
	case d.rediscover <- struct{}{}:
	default:
	}
}

// Run serves the databases until ctx ends. It returns an error only when fail_after
// is exceeded.
func (d *Daemon) Run(ctx context.Context) error {
	cfg := d.config()
	d.log.Info("starting pgqd", zap.Strings("databases", cfg.Databases), zap.Duration("ticker_period", time.Duration(cfg.TickerPeriod)))
	defer d.stopAll()
	checkT := time.NewTimer(0)
	defer checkT.Stop()
	healthT := time.NewTicker(d.healthEvery())
	defer healthT.Stop()
	for {
		select {
		case <-ctx.Done():
			d.h.Notify.Status("stopping")
			return nil
		case <-checkT.C:
			d.syncDatabases(ctx)
			checkT.Reset(time.Duration(d.config().CheckPeriod))
		case <-d.rediscover:
			d.syncDatabases(ctx)
		case req := <-d.reloads:
			req.done <- d.apply(ctx, req.cfg)
			healthT.Reset(d.healthEvery()) // fail_after may have changed
		case <-healthT.C:
		}
		if err := d.checkFailAfter(); err != nil {
			return err
		}
		if d.healthy() {
			d.h.Watchdog.Beat()
		}
		d.h.Notify.Status("%s", d.status())
	}
}

// statusEvery is how often, at most, the STATUS= line is refreshed.
const statusEvery = 5 * time.Second

// healthEvery is how often the main loop checks health (beating the watchdog),
// refreshes STATUS= and checks fail_after. Every wake-up of an idle daemon costs CPU,
// so it wakes no more often than those need: a quarter of fail_after, when set.
func (d *Daemon) healthEvery() time.Duration {
	every := min(d.h.Watchdog.BeatEvery(), statusEvery)
	if fa := time.Duration(d.config().FailAfter); fa > 0 {
		every = min(every, max(fa/4, 100*time.Millisecond))
	}
	return every
}

// Reload applies a new configuration from the main loop.
func (d *Daemon) Reload(ctx context.Context, cfg *Config) error {
	req := reloadRequest{cfg: cfg, done: make(chan error, 1)}
	select {
	case d.reloads <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.done
}

func (d *Daemon) apply(ctx context.Context, cfg *Config) error {
	old := d.config()
	d.cfg.Store(cfg)
	if old.Connstr != cfg.Connstr || old.InitialDatabase != cfg.InitialDatabase {
		d.log.Info("connection settings changed: restarting every database worker")
		d.stopAll()
	}
	d.syncDatabases(ctx)
	d.mu.Lock()
	for _, w := range d.workers {
		w.configChanged()
	}
	d.mu.Unlock()
	return nil
}

// syncDatabases starts and stops workers so that they match the configured list, or
// the databases found in the cluster.
func (d *Daemon) syncDatabases(ctx context.Context) {
	cfg := d.config()
	want := cfg.Databases
	if len(want) == 0 {
		found, err := listDatabases(ctx, cfg)
		d.mu.Lock()
		if err != nil {
			if d.discoveryDown.IsZero() {
				d.discoveryDown = time.Now()
			}
			d.discoveryError = err.Error()
			d.mu.Unlock()
			if ctx.Err() == nil {
				d.m.errors.WithLabelValues(cfg.InitialDatabase).Inc()
				d.log.Error("cannot list databases", zap.String("database", cfg.InitialDatabase), zap.Error(err))
			}
			return
		}
		d.discoveryDown, d.discoveryError = time.Time{}, ""
		d.mu.Unlock()
		d.answered()
		want = found
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, w := range d.workers {
		if !slices.Contains(want, name) {
			d.log.Info("no longer serving database", zap.String("database", name))
			w.cancel()
			<-w.done
			delete(d.workers, name)
			d.m.forgetDatabase(name)
		}
	}
	for _, name := range want {
		if _, ok := d.workers[name]; ok {
			continue
		}
		w := newWorker(d, name)
		wctx, cancel := context.WithCancel(ctx)
		w.cancel = cancel
		d.workers[name] = w
		go w.run(wctx)
	}
}

// listDatabases returns the databases of the cluster that accept connections.
func listDatabases(ctx context.Context, cfg *Config) ([]string, error) {
	conn, err := connect(ctx, cfg.Connstr, cfg.InitialDatabase, 0)
	if err != nil {
		return nil, err
	}
	defer closeConn(conn)
	ctx, cancel := context.WithTimeout(ctx, tickTimeout)
	defer cancel()
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname")
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func (d *Daemon) stopAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.workers {
		w.cancel()
	}
	for name, w := range d.workers {
		<-w.done
		delete(d.workers, name)
		d.m.forgetDatabase(name)
	}
}

func (d *Daemon) snapshots() []workerSnapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]workerSnapshot, 0, len(d.workers))
	for _, w := range d.workers {
		out = append(out, w.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].db < out[j].db })
	return out
}

// healthy is false when any loop is stuck in a database call far beyond its timeout.
func (d *Daemon) healthy() bool {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.workers {
		if w.tickBusy.stuck(now) || w.maintBusy.stuck(now) {
			return false
		}
	}
	return true
}

// checkFailAfter returns an error when fail_after is set and a database (or, in
// discovery mode, initial_database) has been unreachable for that long.
func (d *Daemon) checkFailAfter() error {
	limit := time.Duration(d.config().FailAfter)
	if limit <= 0 {
		return nil
	}
	now := time.Now()
	d.mu.Lock()
	if !d.discoveryDown.IsZero() && now.Sub(d.discoveryDown) >= limit {
		err := fmt.Errorf("database %s unreachable for %s (fail_after %s): %s",
			d.config().InitialDatabase, now.Sub(d.discoveryDown).Round(time.Second), limit, d.discoveryError)
		d.mu.Unlock()
		return err
	}
	d.mu.Unlock()
	for _, s := range d.snapshots() {
		if s.state == stateDown && !s.downSince.IsZero() && now.Sub(s.downSince) >= limit {
			return fmt.Errorf("database %s unreachable for %s (fail_after %s): %s",
				s.db, now.Sub(s.downSince).Round(time.Second), limit, s.lastErr)
		}
	}
	return nil
}

// status is the one-line STATUS= text.
func (d *Daemon) status() string {
	snaps := d.snapshots()
	running, queues := 0, 0
	var down []string
	lastErr := ""
	for _, s := range snaps {
		switch s.state {
		case stateRunning:
			running++
			queues += s.queues
		case stateDown:
			down = append(down, s.db)
			lastErr = s.db + ": " + s.lastErr
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ticking %d queues in %d of %d databases", queues, running, len(snaps))
	if len(down) > 0 {
		fmt.Fprintf(&b, "; down: %s; last error: %s", strings.Join(down, ", "), oneLine(lastErr))
	}
	d.mu.Lock()
	if d.discoveryError != "" {
		fmt.Fprintf(&b, "; cannot list databases: %s", oneLine(d.discoveryError))
	}
	d.mu.Unlock()
	return b.String()
}
