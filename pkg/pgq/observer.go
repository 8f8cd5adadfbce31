package pgq

import (
	"sync"
	"time"
)

// Observer lets a daemon follow a [Consumer] without the consumer knowing about
// systemd or metrics. Every field is optional. The functions are called from the
// consumer's own goroutines and must return quickly.
//
// A daemon typically wires it like this:
//
//	pgq.Observer{
//		Ready:    notifier.Ready,  // READY=1 after the first database round trip
//		Progress: watchdog.Beat,   // WATCHDOG=1 only while the loop moves
//		Batch:    metrics.observe, // per-batch counters
//	}
type Observer struct {
	// Ready is called once per Run, after the first successful round trip to the
	// source database (and, with a target, after the target is usable).
	Ready func()
	// Progress is called whenever the consumer loop shows it is not stuck: after each
	// pass (a batch, an empty poll or a failed attempt), after each block of events
	// read from a batch, and at least every Config.LoopDelay while it waits (idle, or
	// backing off after a failure). A handler that blocks, or a query that hangs,
	// stops the calls: beat a watchdog from here, with LoopDelay well below its
	// interval.
	Progress func()
	// Batch is called after each batch is finished (committed).
	Batch func(BatchResult)
	// Error is called for each failed attempt that the consumer will retry after a
	// backoff. Errors that end Run are returned by Run instead.
	Error func(error)
}

func (o *Observer) ready() {
	if o.Ready != nil {
		o.Ready()
	}
}

func (o *Observer) progress() {
	if o.Progress != nil {
		o.Progress()
	}
}

// BatchResult describes one finished batch.
type BatchResult struct {
	ID       int64
	PrevTick int64
	Tick     int64
	Events   int64 // events read by the handler
	Retried  int64 // events put into the retry queue (per event or whole batch)
	Lag      time.Duration
	Duration time.Duration // from asking for the batch to its commit
	// Skipped is true when an exactly-once consumer found the batch already applied
	// in the target (a restart after the target committed) and only finished it.
	Skipped bool
}

// Stats is a snapshot of a consumer's counters since it was created.
type Stats struct {
	Batches   int64 // batches finished
	Events    int64 // events read by the handler in finished batches
	Retried   int64 // events sent to the retry queue
	Errors    int64 // failed attempts (retried after backoff)
	LastBatch int64 // id of the last finished batch
	LastTick  int64 // end tick of the last finished batch: the consumer's position
	Lag       time.Duration
	// LastBatchAt is when the last batch was finished; LastPollAt when the consumer
	// last asked for a batch (with or without success).
	LastBatchAt time.Time
	LastPollAt  time.Time
	// LastError is the most recent retried error and when it happened; it stays set
	// after later successes (compare LastErrorAt with LastPollAt).
	LastError   error
	LastErrorAt time.Time
	// Ready is true once the first round trip of the current Run has succeeded.
	Ready bool
}

// stats is the mutable state behind Stats.
type stats struct {
	mu sync.Mutex
	s  Stats
}

func (st *stats) snapshot() Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.s
}

func (st *stats) update(f func(*Stats)) {
	st.mu.Lock()
	defer st.mu.Unlock()
	f(&st.s)
}
