// Package dispatch is the dispatcher: it consumes a queue of row-change events written
// by PgQ's triggers (pgq.logutriga's urlencoded rows or pgq.jsontriga's JSON) and
// applies them to tables in another database, exactly once, in one of three modes.
// It is the successor of SkyTools' table_dispatcher, cube_dispatcher and bulk_loader.
//
// # Every mode
//
// Each batch is applied in one transaction of the destination database together with
// the consumer's position (pkg/relay, on pkg/pgq's Target). Within a batch:
//
//   - An event is routed by its table, ev_extra1 ("schema.table", as the triggers
//     write it). Events of tables without a [[table]] entry are skipped and counted
//     (dispatcher_events_skipped_total{reason="unconfigured"}), never silently lost
//     from view; TRUNCATE events are skipped, counted and logged.
//   - The event is decoded by [ParseChange]. A malformed event (an undecodable
//     payload, a missing or NULL key, a part_field that is missing, NULL or not a
//     timestamp) fails the whole batch with an error naming the event id, so nothing
//     of the batch is applied; the consumer retries it after a backoff until an
//     operator acts. With on_bad_event = "skip" it is logged, counted
//     (reason="bad_event") and left out instead.
//   - The destination's columns are read from the catalog once per table and batch.
//     Each row is written with the columns it shares with the destination, in the
//     destination's order: columns the destination lacks are dropped, and columns
//     the row lacks take their defaults.
//   - Rows go in with COPY (text format), buffered per destination table and column
//     list and sent when the batch ends or the buffers pass 8 MiB.
//
// # Mode "table" (table_dispatcher)
//
// INSERT events (other operations are skipped and counted) go into time partitions of
// the target table. The partition time is part_field's value, or the event's time
// (ev_time) without part_field. A timestamptz value is taken as an instant in UTC;
// a timestamp or date as its wall-clock value. The period (part_period: hour, day,
// month, year) starting at or before that time names the partition: target_YYYY,
// target_YYYY_MM, target_YYYY_MM_DD or target_YYYY_MM_DD_HH.
//
// If the target is a native partitioned table (PARTITION BY RANGE on one column,
// which part_field defaults to), a missing partition is created as
// CREATE TABLE name PARTITION OF target FOR VALUES FROM (start) TO (end), with the
// bounds in UTC (the batch runs with TimeZone = UTC), and the rows are copied into the
// target, so PostgreSQL routes each one. A partition that would overlap one created
// by someone else under another name is taken as covering the period. Otherwise the
// partition is a table of its own, created by part_template (by default a child of
// the target: CREATE TABLE {part} (LIKE {parent} INCLUDING ALL) INHERITS ({parent})),
// and rows are copied into it.
// Existence is checked once per partition and batch.
//
// # Mode "cube" (cube_dispatcher)
//
// INSERT and UPDATE events (DELETEs are skipped and counted) of any number of tables
// go into per-period tables of their target keyed by the event's time, created from
// part_template (children of the target by default; the target itself stays empty). With
// keep = "latest" each period table holds one row per primary key: within the batch
// the last image of each key wins, then one DELETE removes those keys from the period
// table and one COPY writes the images. With keep = "all" every row version is
// appended (the default template then leaves out indexes, so a primary key of the
// target does not refuse a second version).
//
// # Mode "bulk" (bulk_loader)
//
// INSERT, UPDATE and DELETE events of any number of tables are folded per primary
// key: within the batch only each key's final state matters (a row image, or gone).
// Then, per target table in the order tables first appear in the batch, one DELETE
// removes every key the batch touched and one COPY writes the final images of the
// keys that still exist:
//
//	I            -> delete (nothing there) + copy image
//	U, U, U      -> delete old row         + copy last image
//	I, D  or U, D-> delete                 (nothing copied)
//	D, I         -> delete old row         + copy new image
//
// The DELETE is DELETE FROM target WHERE (pk) IN (SELECT ... FROM unnest($1::text[],
// ...)) with each key column cast to its type, so it uses the target's key index.
// Events of tables without a primary key can only be INSERTs (the triggers refuse
// the rest) and are copied as they come. The target may differ from the source name
// (target key), which is how tables are renamed or moved to another schema.
package dispatch
