// Package relay is what queue-mover and dispatcher share: a PgQ consumer that reads a
// queue in one database (src_db) and applies every batch to another database (dst_db)
// exactly once, run as a systemd daemon, with the admin commands to manage its
// registration and position.
//
// # Exactly once
//
// Nothing here re-implements delivery: the consumer is a [pgq.Consumer] with
// Config.Target set to the destination pool. Each batch is applied in one transaction
// of the destination database (Batch.Tx), which also stores the consumer's position
// (the batch's end tick) in the position table there (position_table, default
// pgq_position); the batch is finished in the source only after that commit. A kill
// at any point therefore either rolls the batch back (it comes again) or leaves it
// applied and recorded (it is finished, not applied again, on restart). The tool's
// handler must do all its writes through Batch.Tx and nothing else.
//
// # The daemon
//
//	Run ─▶ pools for src_db and dst_db ─▶ pgq.Consumer.Run ─┬─ Observer.Ready: READY=1 (first round trip)
//	  ▲                                                     ├─ Observer.Progress: watchdog beat, STATUS=
//	  │                                                     ├─ Observer.Batch: metrics, STATUS=
//	  └──── SIGHUP: stop the consumer (the batch in ◀───────┴─ Observer.Error: metrics, STATUS=
//	        progress finishes within its grace), swap the
//	        config, start again with the new one
//
// A reload restarts the consumer loop with the new configuration and a new handler;
// the process, its metrics and its readiness stay. Errors that may pass (a database
// restarting, a malformed event the operator is about to deal with) are retried by the
// consumer with backoff and shown in STATUS= and the errors metric; errors that need
// an operator (queue or registration missing, lost position) end the daemon with exit
// code 1 and systemd restarts it.
//
// # Per-batch tallies
//
// A handler counts what it skipped with [Tally]; the counts reach the metrics only when
// the batch commits, so a batch that is rolled back and retried is not counted twice.
package relay
