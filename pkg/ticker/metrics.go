package ticker

import "github.com/prometheus/client_golang/prometheus"

// metrics are pgqd's Prometheus collectors. Per-queue and per-consumer figures come
// from pgq.get_queue_info() and pgq.get_consumer_info(), refreshed every stats_period.
type metrics struct {
	up            *prometheus.GaugeVec
	errors        *prometheus.CounterVec
	passes        *prometheus.CounterVec
	ticks         *prometheus.CounterVec
	earlyTicks    *prometheus.CounterVec
	maintOps      *prometheus.CounterVec
	retried       *prometheus.CounterVec
	tickerLag     *prometheus.GaugeVec
	eventsPerSec  *prometheus.GaugeVec
	pending       *prometheus.GaugeVec
	lastTick      *prometheus.GaugeVec
	consumerLag   *prometheus.GaugeVec
	consumerSeen  *prometheus.GaugeVec
	consumerAhead *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	db := []string{"database"}
	q := []string{"database", "queue"}
	c := []string{"database", "queue", "consumer"}
	m := &metrics{
		up:            prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqd_database_up", Help: "1 when pgqd is connected to the database and ticking its queues, 0 when it is not (down, or no pgq)."}, db),
		errors:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqd_database_errors_total", Help: "Errors talking to the database (connect, tick, maintenance, retry)."}, db),
		passes:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqd_ticker_passes_total", Help: "Tick passes run (one call of pgq.ticker per queue each)."}, db),
		ticks:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqd_ticks_total", Help: "Ticks created by pgqd."}, q),
		earlyTicks:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqd_early_ticks_total", Help: "Of those, ticks of low-latency queues made as soon as events committed, between regular ticker calls."}, q),
		maintOps:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqd_maintenance_operations_total", Help: "Maintenance operations run (rows of pgq.maint_operations, with repeats)."}, db),
		retried:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgqd_retry_events_total", Help: "Retry events moved back into their queues."}, db),
		tickerLag:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqd_queue_ticker_lag_seconds", Help: "Age of the queue's newest tick."}, q),
		eventsPerSec:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqd_queue_events_per_second", Help: "Events per second over the queue's recent ticks (pgq.get_queue_info ev_per_sec)."}, q),
		pending:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqd_queue_pending_events", Help: "Events inserted since the newest tick, not yet in any batch (ev_new)."}, q),
		lastTick:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqd_queue_last_tick_id", Help: "Id of the queue's newest tick."}, q),
		consumerLag:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqd_consumer_lag_seconds", Help: "Age of the newest tick the consumer has finished."}, c),
		consumerSeen:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqd_consumer_last_seen_seconds", Help: "Time since the consumer last asked for or finished a batch."}, c),
		consumerAhead: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgqd_consumer_pending_events", Help: "Ticked events the consumer has not processed yet."}, c),
	}
	reg.MustRegister(m.up, m.errors, m.passes, m.ticks, m.earlyTicks, m.maintOps, m.retried, m.tickerLag, m.eventsPerSec,
		m.pending, m.lastTick, m.consumerLag, m.consumerSeen, m.consumerAhead)
	return m
}

// forgetDatabase removes every series of a database pgqd no longer serves.
func (m *metrics) forgetDatabase(db string) {
	l := prometheus.Labels{"database": db}
	for _, v := range []*prometheus.GaugeVec{m.up, m.tickerLag, m.eventsPerSec, m.pending, m.lastTick, m.consumerLag, m.consumerSeen, m.consumerAhead} {
		v.DeletePartialMatch(l)
	}
	for _, v := range []*prometheus.CounterVec{m.errors, m.passes, m.ticks, m.earlyTicks, m.maintOps, m.retried} {
		v.DeletePartialMatch(l)
	}
}

// forgetQueueStats removes a database's per-queue and per-consumer gauges before they
// are set again, so dropped queues and consumers disappear.
func (m *metrics) forgetQueueStats(db string) {
	l := prometheus.Labels{"database": db}
	for _, v := range []*prometheus.GaugeVec{m.tickerLag, m.eventsPerSec, m.pending, m.lastTick, m.consumerLag, m.consumerSeen, m.consumerAhead} {
		v.DeletePartialMatch(l)
	}
}
