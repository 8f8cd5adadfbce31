package relay

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a relay daemon's Prometheus collectors, named after the tool
// (queue_mover_batches_total, dispatcher_batches_total, ...).
type metrics struct {
	batches        prometheus.Counter
	alreadyApplied prometheus.Counter
	events         prometheus.Counter
	errors         prometheus.Counter
	lag            prometheus.Gauge
	lastTick       prometheus.Gauge
	skipped        *prometheus.CounterVec
	rows           *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, prefix string) *metrics {
	m := &metrics{
		batches:        prometheus.NewCounter(prometheus.CounterOpts{Name: prefix + "_batches_total", Help: "Batches finished (applied to the destination, or found applied there after a restart)."}),
		alreadyApplied: prometheus.NewCounter(prometheus.CounterOpts{Name: prefix + "_batches_already_applied_total", Help: "Batches found applied in the destination after a restart and only finished in the source."}),
		events:         prometheus.NewCounter(prometheus.CounterOpts{Name: prefix + "_events_total", Help: "Events read from the source queue in finished batches."}),
		errors:         prometheus.NewCounter(prometheus.CounterOpts{Name: prefix + "_errors_total", Help: "Failed batch attempts (retried after a backoff)."}),
		lag:            prometheus.NewGauge(prometheus.GaugeOpts{Name: prefix + "_lag_seconds", Help: "Age of the end tick of the last finished batch when it was taken."}),
		lastTick:       prometheus.NewGauge(prometheus.GaugeOpts{Name: prefix + "_last_tick", Help: "End tick of the last finished batch: the consumer's position."}),
		skipped:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: prefix + "_events_skipped_total", Help: "Events not applied, by reason (unconfigured table, operation the mode does not apply, truncate, bad payload with on_bad_event = skip) and source table."}, []string{"reason", "table"}),
		rows:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: prefix + "_rows_written_total", Help: "Rows (or events) written to the destination, by destination table or queue."}, []string{"table"}),
	}
	reg.MustRegister(m.batches, m.alreadyApplied, m.events, m.errors, m.lag, m.lastTick, m.skipped, m.rows)
	return m
}

// Tally counts what a handler skipped and wrote in the batch in progress; the counts
// go to the metrics when the batch commits and are dropped when it fails.
type Tally struct {
	m       *metrics
	mu      sync.Mutex
	skipped map[[2]string]int64
	rows    map[string]int64
}

func newTally(m *metrics) *Tally {
	return &Tally{m: m, skipped: map[[2]string]int64{}, rows: map[string]int64{}}
}

// Begin starts a batch: whatever an earlier, failed attempt counted is dropped.
func (t *Tally) Begin() { t.discard() }

// Skip counts n events of table not applied, for reason.
func (t *Tally) Skip(reason, table string, n int64) {
	t.mu.Lock()
	t.skipped[[2]string{reason, table}] += n
	t.mu.Unlock()
}

// Wrote counts n rows written to table (or events to a queue).
func (t *Tally) Wrote(table string, n int64) {
	t.mu.Lock()
	t.rows[table] += n
	t.mu.Unlock()
}

// commit adds the batch's counts to the metrics and returns how many events were
// skipped. A batch found already applied (its handler did not run) adds nothing.
func (t *Tally) commit(alreadyApplied bool) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n int64
	if !alreadyApplied {
		for k, v := range t.skipped {
			t.m.skipped.WithLabelValues(k[0], k[1]).Add(float64(v))
			n += v
		}
		for k, v := range t.rows {
			t.m.rows.WithLabelValues(k).Add(float64(v))
		}
	}
	clear(t.skipped)
	clear(t.rows)
	return n
}

func (t *Tally) discard() {
	t.mu.Lock()
	clear(t.skipped)
	clear(t.rows)
	t.mu.Unlock()
}
