// Package mover is queue-mover: it consumes a queue in one database and re-inserts
// every event into a queue in another database, batch by batch, exactly once.
//
// # What is moved
//
// Each event keeps its type, data, the four extra fields (a NULL stays NULL, an empty
// string stays empty) and its original time (ev_time). It gets a new event id from the
// destination queue's sequence, and the mover's transaction as its txid, as any
// inserted event does: ids of two source queues moved into one destination queue (the
// classic fan-in of shard databases into a central one) never collide, and the
// destination's consumers see the moved events in a batch of the destination's ticks
// like any other.
//
// # Algorithm, per batch
//
//  1. The consumer (pkg/pgq with a Target, see pkg/relay) opens a transaction in the
//     destination database and checks the stored position against the batch.
//  2. In that transaction, pgq.EventTable finds the destination queue's current event
//     table safely against a table rotation: it takes the transaction's txid first, so
//     a rotation the lookup does not see commits after it and the batches covering us
//     read the old table too; under REPEATABLE READ or SERIALIZABLE with the original
//     PgQ it also locks the queue row FOR KEY SHARE, which fails rather than write into
//     a table no batch would read.
//  3. One COPY into that table streams the whole batch: events are read from the
//     source block by block (fetch_size) and written as they arrive, so memory stays
//     bounded whatever the batch size (a batch that fits in sort_buffer_mb is read
//     whole and sorted by the mover first; see pgq.Config.SortBuffer). ev_id is left to the column default (the
//     queue's sequence: one value per event, as insert_event takes).
//  4. The consumer stores the batch's end tick in the destination's position table,
//     commits, and then finishes the batch in the source.
//
// COPY writes the event table directly, so the destination role needs pgq_admin (or
// ownership of the queue's tables), as pgq's own bulk_insert_events does; it also
// bypasses queue_disable_insert and queue_per_tx_limit on the destination queue.
package mover
