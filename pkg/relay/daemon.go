package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/lifecycle"
	"github.com/skytools-go/skytools/pkg/pgq"
	"go.uber.org/zap"
)

// Tool describes one relay daemon: its name and how to build its batch handler.
type Tool[C any] struct {
	// Name is the binary's name ("queue-mover"); metric names start with it
	// (dashes become underscores).
	Name string
	// Summary and Help are the --help texts.
	Summary, Help string
	// Load reads and validates a config file.
	Load func(path string) (*C, error)
	// Relay returns the relay keys inside the tool's config.
	Relay func(cfg *C) *Config
	// NewHandler builds the batch handler for a configuration, at start and on every
	// reload. The handler must write to the destination only through Batch.Tx and
	// count what it skips or writes with tally.
	NewHandler func(cfg *C, log *zap.Logger, tally *Tally) (pgq.Handler, error)
}

// Daemon runs one relay consumer under the lifecycle; see the package documentation.
type Daemon[C any] struct {
	tool    Tool[C]
	h       *lifecycle.Host
	log     *zap.Logger
	m       *metrics
	tally   *Tally
	reloads chan *run[C]
	stopped chan struct{} // closed when Run returns
	first   *run[C]

	mu        sync.Mutex
	batches   int64
	events    int64
	skipped   int64
	lag       time.Duration
	lastBatch time.Time
	lastErr   string
	lastErrAt time.Time
}

// run is one configuration's consumer and the pools it uses.
type run[C any] struct {
	cfg      *C
	src, dst *pgxpool.Pool
	consumer *pgq.Consumer
}

func (r *run[C]) close() {
	r.src.Close()
	r.dst.Close()
}

// New builds the daemon from its first configuration; nothing connects yet.
func New[C any](tool Tool[C], cfg *C, h *lifecycle.Host) (*Daemon[C], error) {
	d := &Daemon[C]{tool: tool, h: h, log: h.Log, reloads: make(chan *run[C]), stopped: make(chan struct{})}
	d.m = newMetrics(h.Metrics, strings.ReplaceAll(tool.Name, "-", "_"))
	d.tally = newTally(d.m)
	r, err := d.prepare(cfg)
	if err != nil {
		return nil, err
	}
	d.first = r
	return d, nil
}

// prepare builds the pools, handler and consumer for cfg without connecting.
func (d *Daemon[C]) prepare(cfg *C) (*run[C], error) {
	rc := d.tool.Relay(cfg)
	src, err := NewPool(rc.SrcDB, d.tool.Name+"/"+rc.Consumer)
	if err != nil {
		return nil, fmt.Errorf("src_db: %w", err)
	}
	dst, err := NewPool(rc.DstDB, d.tool.Name+"/"+rc.Consumer)
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("dst_db: %w", err)
	}
	r := &run[C]{cfg: cfg, src: src, dst: dst}
	h, err := d.tool.NewHandler(cfg, d.log, d.tally)
	if err != nil {
		r.close()
		return nil, err
	}
	pc := rc.consumerConfig()
	pc.Target = dst
	pc.Logger = d.log
	pc.Observer = pgq.Observer{
		Ready:    d.h.Notify.Ready,
		Progress: d.progress,
		Batch:    d.batchDone,
		Error:    d.failed,
	}
	if r.consumer, err = pgq.NewConsumer(src, pc, h); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// NewPool makes a lazily connecting pool for a connection string, with
// application_name set unless the string sets one.
func NewPool(connstr, appName string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(connstr)
	if err != nil {
		return nil, err
	}
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = appName
	}
	pc.MaxConns = max(pc.MaxConns, 4)
	return pgxpool.NewWithConfig(context.Background(), pc)
}

// Run consumes until ctx ends, restarting the consumer with each reloaded
// configuration. It returns the consumer's error when that needs an operator.
func (d *Daemon[C]) Run(ctx context.Context) error {
	defer close(d.stopped)
	r := d.first
	for {
		rc := d.tool.Relay(r.cfg)
		d.log.Info("starting", zap.String("queue", rc.Queue), zap.String("consumer", rc.Consumer))
		d.status()
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.consumer.Run(rctx) }()
		var next *run[C]
		var err error
		select {
		case err = <-done:
		case next = <-d.reloads:
			cancel()
			err = <-done
		case <-ctx.Done():
			err = <-done
		}
		cancel()
		r.close()
		if next == nil || err != nil {
			if next != nil {
				next.close()
			}
			d.h.Notify.Status("stopped")
			return err
		}
		r = next
	}
}

// Reload prepares the consumer for the new configuration and hands it to Run, which
// stops the current one (its batch in progress gets the consumer's stop grace) and
// starts the new one.
func (d *Daemon[C]) Reload(ctx context.Context, cfg *C) error {
	r, err := d.prepare(cfg)
	if err != nil {
		return err
	}
	select {
	case d.reloads <- r:
		return nil
	case <-d.stopped:
		r.close()
		return errors.New("the daemon has stopped")
	case <-ctx.Done():
		r.close()
		return ctx.Err()
	}
}

func (d *Daemon[C]) progress() {
	d.h.Watchdog.Beat()
}

func (d *Daemon[C]) batchDone(res pgq.BatchResult) {
	skipped := d.tally.commit(res.Skipped)
	d.m.batches.Inc()
	if res.Skipped {
		d.m.alreadyApplied.Inc()
	}
	d.m.events.Add(float64(res.Events))
	d.m.lag.Set(res.Lag.Seconds())
	d.m.lastTick.Set(float64(res.Tick))
	d.mu.Lock()
	d.batches++
	d.events += res.Events
	d.skipped += skipped
	d.lag = res.Lag
	d.lastBatch = time.Now()
	d.mu.Unlock()
	d.status()
}

func (d *Daemon[C]) failed(err error) {
	d.tally.discard()
	d.m.errors.Inc()
	d.mu.Lock()
	d.lastErr, d.lastErrAt = err.Error(), time.Now()
	d.mu.Unlock()
	d.status()
}

// status sends the STATUS= line: totals, lag, and the last error while no batch has
// succeeded since.
func (d *Daemon[C]) status() {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%d batches, %d events", d.batches, d.events)
	if d.skipped > 0 {
		fmt.Fprintf(&b, ", %d skipped", d.skipped)
	}
	if !d.lastBatch.IsZero() {
		fmt.Fprintf(&b, ", lag %s", d.lag.Round(time.Millisecond))
	}
	if d.lastErr != "" && d.lastErrAt.After(d.lastBatch) {
		fmt.Fprintf(&b, "; retrying after error: %s", oneLine(d.lastErr))
	}
	d.h.Notify.Status("%s", b.String())
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
