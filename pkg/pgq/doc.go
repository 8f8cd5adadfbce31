// Package pgq produces and consumes PgQ events from Go: inserting events in the
// application's own transactions, consuming a queue batch by batch at least once or
// exactly once, cooperative consumers, and the administrative calls the skytools
// daemons use. It works with this project's PgQ (installed by pgqd install) and with
// the original PgQ extension alike.
//
// # Concepts
//
// A queue holds events (type, data and four extra text fields). A ticker (pgqd)
// periodically records a tick: a snapshot of which transactions have committed. The
// events of the transactions that committed between two consecutive ticks form a
// batch. Every registered consumer sees every event, batch by batch, in tick order;
// a consumer's position is the tick where its last finished batch ended. Batches are
// never split, so all events of one producing transaction arrive together, and
// within a batch events come in event id order.
//
// Delivery is driven by ticks: an event becomes consumable at the first tick after
// its transaction commits. pgqd announces each tick with a NOTIFY on [TickChannel],
// so a waiting consumer starts the new batch at once instead of polling.
//
// # Producing
//
// [Insert] adds one event inside the caller's transaction (a pgx.Tx, or a pool or
// connection for a transaction of its own): the event exists if and only if the
// transaction commits.
//
//	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
//		// ... the business change ...
//		_, err := pgq.Insert(ctx, tx, "orders", pgq.NewEvent("order.created", payload))
//		return err
//	})
//
// The payload fields are nullable ([pgtype.Text]); [Text] makes a non-NULL value and
// the zero value is NULL, so NULL and "" stay different end to end.
//
// [InsertEvents] writes many events with one COPY into the queue's current event
// table, and [CopyEvents] writes exact copies (event id and time kept), as when
// moving events from one queue to another. Both run in the caller's transaction and
// are safe against the queue's table rotation at every isolation level: the
// transaction takes its txid before it looks up the current table, and under
// REPEATABLE READ or SERIALIZABLE against the original extension (which can settle a
// rotation under a snapshot that predates it) the queue row is locked FOR KEY SHARE,
// so the insert fails with a serialization error instead of writing events no batch
// would ever read. This project's PgQ closes that race in the database itself.
//
// # Consuming
//
// A [Consumer] runs a loop around a [Handler], which receives one [Batch] at a time:
//
//	c, err := pgq.NewConsumer(pool, pgq.Config{Queue: "orders", Consumer: "mailer"},
//		pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
//			for ev, err := range b.Events(ctx) {
//				if err != nil {
//					return err
//				}
//				// ... handle ev; write to the queue's database through b.Tx ...
//			}
//			return nil
//		}))
//	...
//	err = c.Run(ctx)
//
// Registration is explicit: register the consumer once ([Consumer.Register] or
// [Register]) before the first Run; a new consumer starts at the queue's latest tick.
// [Consumer.Unregister] removes it (and stops the queue's tables from being kept for
// it).
//
// Events come in blocks ([Batch.Fetch], Config.FetchSize events per block, or the
// iterator [Batch.Events]), in event id order. A batch that fits in
// Config.SortBuffer is read whole, unsorted, and sorted by the consumer, which spares
// PostgreSQL the batch query's ORDER BY, most of its cost; a bigger one is sorted by
// PostgreSQL and streamed (the batch's query, pgq.batch_event_sql, runs as one result
// that the client reads as the handler asks), so a batch of any size takes bounded
// memory in the consumer. The server's statement_timeout does not apply to it.
// Config.Tables restricts the events to some source tables (ev_extra1), and
// Config.MinCount, MinInterval and MinLag shape batches as pgq.next_batch_custom does.
//
// While there is no batch the consumer waits for the next tick's notification, or
// Config.LoopDelay at most (the polling fallback, also used with NoNotify and while
// the listening connection is being re-established).
//
// # Delivery guarantees
//
// The handler's work in Batch.Tx and the end of the batch (pgq.finish_batch) are
// committed in one transaction of the queue's database. So:
//
//   - Work done through Batch.Tx happens exactly once: a crash or error before the
//     commit rolls back both, and the same batch (same id, same events) is handed
//     out again; after the commit, the batch is done.
//   - Work done elsewhere (another database, a message broker, an HTTP call) is
//     at-least-once: after a crash between that work and the commit, the batch comes
//     again. Make it idempotent, or use a Target.
//
// A handler error rolls back Batch.Tx and the batch is retried after a backoff.
// [Batch.Retry] sends single events to the retry queue (they come back to this
// consumer only, in a later batch, with Event.Retry counting the deliveries), and
// returning [RetryBatch] does the same for all events of the batch while the consumer
// moves on. Retries are recorded in the batch's transaction.
//
// # Exactly once into another database
//
// With Config.Target set to a pool of another database, Batch.Tx is a transaction
// there, and the consumer's position (the batch's end tick) is stored in a table of
// that database in the same transaction (Config.PositionTable, "pgq_position" by
// default, created on first use; see [PositionTableDDL]). The batch is finished in
// the queue's database only after that commit. On every batch the stored tick is
// compared with the batch's ticks:
//
//   - equal to the batch's start: not applied yet, apply it;
//   - equal to the batch's end: applied, but the crash came before the batch was
//     finished: finish it without applying it again;
//   - anything else: the two databases disagree (a restored backup, a consumer moved
//     by hand). Run stops with [ErrLostPosition] rather than guess; repair with
//     [Consumer.Rewind] (the queue goes back to the target's tick) or
//     [Consumer.ResetPosition] (the target forgets its tick).
//
// A crash at any point therefore neither loses nor repeats a batch. Per-event
// retries are not available in this mode: a batch is applied whole.
//
// # Cooperative consumers
//
// With Config.Subconsumer, several processes share one consumer's stream through
// pgq_coop: each batch goes to one of them, and batches are processed in parallel
// (and may finish out of order). A subconsumer that dies holding a batch keeps it
// until another one, configured with DeadInterval, sees it silent for that long and
// takes the batch over. pgq_coop comes with this project's PgQ; Debian does not
// package it for the original extension.
//
// # Running in a daemon
//
// Run blocks until its context is cancelled and then returns nil. A batch in progress
// gets Config.StopGrace to finish; after that its context is cancelled and its
// transaction rolled back (it comes again next time). Failures that may pass (the
// server restarting, a killed connection, a handler error) are logged, reported to
// Observer.Error and retried with exponential backoff and jitter; Run returns an
// error only for what needs an operator: a missing queue, registration or PgQ, a lost
// position, an inconsistent PgQ state.
//
// [Observer] connects the loop to systemd without a dependency on it: Ready after
// the first successful database round trip (READY=1), Progress from every pass of the
// loop, every block of events and every idle wake-up (beat the watchdog there: a stuck
// handler or query stops the beats), Batch after each finished batch, Error for each
// retried failure. [Consumer.Stats] returns counters for status lines and metrics.
// Logs go to Config.Logger with fields queue and consumer.
//
// # Errors
//
// Every error of a PgQ call is an [*Error] naming the operation, queue, consumer and
// batch, and matching one of the sentinels (ErrQueueNotFound, ErrNotSubscribed,
// ErrBatchNotFound, ...) with errors.Is. PgQ raises plain exceptions, so the
// classification reads SQLSTATE first and then PgQ's fixed exception texts
// (P0001 from PL/pgSQL, XX000 from the original's C functions); the texts are part
// of PgQ's tested interface and identical in both implementations. [Retryable]
// tells the errors worth retrying.
//
// # Administration
//
// [CreateQueue], [DropQueue], [SetQueueParam], [Register], [RegisterAt], [Unregister],
// [RegisterSubconsumer], [UnregisterSubconsumer], [Queues], [GetQueueInfo],
// [Consumers], [GetConsumerInfo], [GetBatchInfo], [ForceTick], [Tick] and [Detect]
// wrap PgQ's SQL API with typed results; each is one statement through a [Querier].
// [Detect] tells this project's PgQ (a row in skytools.schema_version) from the
// original extension (pg_extension).
//
// # Connections
//
// A consumer takes its connections from the pool it is given: while it works, one
// streams the batch's events and one carries Batch.Tx, and a third is taken out of
// the pool for good to LISTEN (unless NoNotify). A Target pool gives one more for the
// target transaction.
package pgq
