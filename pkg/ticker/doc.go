// Package ticker is pgqd: it keeps every PgQ queue of a PostgreSQL cluster ticking and
// maintained. It works with skytools' own PgQ SQL and with the original C extension
// (any pgq.version() that is NULL or starts with a digit >= 3).
//
// # Databases
//
// The daemon serves the databases listed in the config, or, when the list is empty,
// every database that allows connections (listed from initial_database every
// check_period). Each database gets its own worker; workers fail independently.
//
// # The per-database state machine
//
//	           ┌─────────────────────── backoff (1s doubling to 60s, jittered) ◀──┐
//	           ▼                                                                  │ error
//	     ┌──────────┐  ok   ┌───────────┐ has pgq ┌──────────────────────────────┐│
//	──▶  │ connect  │─────▶ │ check pgq │────────▶│ running                      │┘
//	     └──────────┘       └───────────┘         │  every ticker_period: a tick │
//	          │ fail             │ no pgq /       │  pass (+NOTIFY of new ticks) │
//	          ▼                  │ old version    │  connection recycled after   │
//	       backoff               ▼                │  connection_lifetime         │
//	                         absent: recheck      └──────────────────────────────┘
//	                         after check_period     maintenance + retry loop on a
//	                                                second connection, so a long
//	                                                VACUUM never delays ticks
//
// A worker that cannot reach its database reports it down; with fail_after set, the
// daemon exits 1 once any database has been down that long, so systemd restarts it
// and alerts. In discovery mode a database that no longer exists is dropped at the
// next discovery instead.
//
// # Ticking
//
// A tick pass calls pgq.ticker(queue) for every queue that is neither paused nor
// externally ticked, which applies PgQ's own rules (ticker_max_count, ticker_max_lag,
// ticker_idle_period). PgQ decides that a queue is idle by its event sequence, so an
// insert whose sequence value was taken before a tick but which committed after it
// ("in flight") used to wait for the idle back-off, seconds at a time. For a queue the
// ticker left alone, the pass therefore checks whether committed events exist that the
// last tick does not cover; if so it calls pgq.force_tick and pgq.ticker, so the event
// is ticked right away. A new tick is announced with NOTIFY on pgq.TickChannel(queue),
// payload the tick id, in the transaction that made it, so consumers wake exactly
// when it becomes visible.
//
// Passes run in bursts: one DO block per second runs ticker_period-spaced passes,
// each its own transaction, sleeping in between, and reports its ticks per queue in a
// final NOTICE. At a 10ms period this keeps the client asleep instead of waking it a
// hundred times a second, which in Go costs more CPU than the ticking itself. A
// burst stops early when the set of queues changes, and the next one covers the new
// set. With ticker_period of a second or more every burst is a single pass.
//
// # Maintenance
//
// Every maint_period the rows of pgq.maint_operations() run one by one, each in its own
// transaction, each repeated while its first result column is non-zero; "vacuum" rows
// run VACUUM (the original pgqd stopped the round after the first VACUUM). Every
// retry_period pgq.maint_retry_events() runs until it returns 0.
//
// # Health
//
// The daemon pings the systemd watchdog only while every worker's loop makes progress
// (a database being down is progress: the worker is retrying). READY=1 is sent after
// the first database answered.
package ticker
