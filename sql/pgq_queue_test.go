package sql_test

import (
	"context"
	"strings"
	"testing"

	"github.com/skytools-go/skytools/pkg/pgtest"
)

const batchCols = `SELECT ev_id, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4 FROM pgq.get_batch_events($1)`

// nextBatch records next_batch_info's stable fields.
const nextBatchInfo = `SELECT batch_id, cur_tick_id, prev_tick_id, cur_tick_event_seq, prev_tick_event_seq,
       cur_tick_time IS NOT NULL, prev_tick_time IS NOT NULL FROM pgq.next_batch_info($1, $2)`

// TestDifferentialQueueAPI runs the administration, producer and consumer API, with its
// errors and warnings, against ours and the original and compares every result.
func TestDifferentialQueueAPI(t *testing.T) {
	t.Parallel()
	differential(t, func(tr *transcript, db *pgtest.Database) {
		tr.do("SELECT pgq.create_queue('dq')")
		tr.do("SELECT pgq.create_queue('dq')")
		tr.do("SELECT pgq.create_queue(NULL)")
		tr.do("SELECT queue_id, queue_name, queue_ntables, queue_cur_table, queue_rotation_period, queue_switch_step2 IS NOT NULL, queue_external_ticker, queue_disable_insert, queue_ticker_paused, queue_ticker_max_count, queue_ticker_max_lag, queue_ticker_idle_period, queue_per_tx_limit, queue_data_pfx, queue_event_seq, queue_tick_seq, queue_extra_maint FROM pgq.queue")
		tr.do("SELECT tick_queue, tick_id, tick_event_seq FROM pgq.tick ORDER BY 1, 2")
		tr.do("SELECT pgq.set_queue_config('dq', 'ticker_max_lag', '0')")
		tr.do("SELECT pgq.set_queue_config('dq', 'ticker_idle_period', '0')")
		tr.do("SELECT pgq.set_queue_config('dq', 'bogus', '1')")
		tr.do("SELECT pgq.set_queue_config('nope', 'ticker_max_lag', '1')")
		tr.do("SELECT pgq.set_queue_config('dq', NULL, '1')")
		tr.do("SELECT pgq.set_queue_config('dq', 'ticker_max_count', 'x')")
		tr.do("SELECT pgq.register_consumer('dq', 'c1')")
		tr.do("SELECT pgq.register_consumer('dq', 'c1')")
		tr.do("SELECT pgq.register_consumer('dq', 'c2')")
		tr.do("SELECT pgq.register_consumer('nope', 'c1')")
		tr.do("SELECT pgq.register_consumer_at('dq', 'c3', 999)")
		tr.do("SELECT co_id, co_name FROM pgq.consumer ORDER BY 1")
		tr.do("SELECT pgq.next_batch('dq', 'c1')")
		tr.do("SELECT pgq.next_batch('dq', 'nobody')")
		tr.do("SELECT pgq.next_batch(NULL, 'c1')")
		tr.do("SELECT pgq.insert_event('dq', 'ev1', 'data1')")
		tr.do("SELECT pgq.insert_event('dq', 'ev2', 'data2', 'e1', 'e2', 'e3', 'e4')")
		tr.do("SELECT pgq.insert_event('nope', 'ev', 'data')")
		tr.do("SELECT pgq.insert_event(NULL, 'ev', 'data')")
		tr.do("SELECT pgq.insert_event_raw('dq', 100, NULL, NULL, 7, 'raw', 'rawdata', NULL, NULL, NULL, NULL)")
		tr.do("SELECT pgq.current_event_table('dq')")
		tr.do("SELECT pgq.current_event_table('nope')")
		tr.do("BEGIN")
		tr.do("SELECT pgq.insert_event('dq', 'rolled', 'back')")
		tr.do("ROLLBACK")
		tr.do("SELECT pgq.ticker('dq')")
		tr.do("SELECT pgq.ticker('nope')")
		tr.do(nextBatchInfo, "dq", "c1")
		tr.do(nextBatchInfo, "dq", "c1")
		tr.do("SELECT queue_name, consumer_name, prev_tick_id, tick_id, seq_start, seq_end, batch_start IS NOT NULL, lag IS NOT NULL FROM pgq.get_batch_info(1)")
		tr.do("SELECT * FROM pgq.get_batch_info(777)")
		tr.do(batchCols, 1)
		tr.do("SELECT pgq.batch_event_tables(1)")
		tr.do("SELECT pgq.event_retry(1, 2, 0)")
		tr.do("SELECT pgq.event_retry(1, 2, 0)")
		tr.do("SELECT pgq.event_retry(1, 999, 0)")
		tr.do("SELECT pgq.event_retry(555, 1, 0)")
		tr.do("SELECT pgq.batch_retry(1, 0)")
		tr.do("SELECT pgq.batch_retry(555, 0)")
		tr.do("SELECT ev_queue, ev_id, ev_txid, ev_owner, ev_retry, ev_type, ev_data, ev_extra1 FROM pgq.retry_queue ORDER BY ev_id")
		tr.do("SELECT pgq.finish_batch(1)")
		tr.do("SELECT pgq.finish_batch(1)")
		tr.do(batchCols, 1)
		tr.do("SELECT queue_name, consumer_name, last_tick, current_batch, next_tick, pending_events, lag IS NOT NULL, last_seen IS NOT NULL FROM pgq.get_consumer_info()")
		tr.do("SELECT queue_name, consumer_name FROM pgq.get_consumer_info('dq')")
		tr.do("SELECT queue_name, consumer_name FROM pgq.get_consumer_info('dq', 'c2')")
		tr.do("SELECT queue_name, queue_ntables, queue_cur_table, queue_ticker_max_count, ev_new, last_tick_id, ticker_lag IS NOT NULL FROM pgq.get_queue_info()")
		tr.do("SELECT queue_name, ev_new, last_tick_id FROM pgq.get_queue_info('dq')")
		// retries come back to their owner only
		tr.do("UPDATE pgq.retry_queue SET ev_retry_after = now() - interval '1 hour'")
		tr.do("SELECT pgq.maint_retry_events()")
		tr.do("SELECT pgq.maint_retry_events()")
		tr.do("SELECT pgq.maint_retry_events()")
		tr.do("SELECT pgq.ticker('dq')")
		tr.do(nextBatchInfo, "dq", "c1")
		tr.do(batchCols, 2)
		tr.do("SELECT pgq.finish_batch(2)")
		tr.do(nextBatchInfo, "dq", "c2")
		tr.do(batchCols, 3)
		tr.do("SELECT pgq.finish_batch(3)")
		tr.do(nextBatchInfo, "dq", "c2")
		tr.do(batchCols, 4)
		tr.do("SELECT pgq.finish_batch(4)")
		// per-transaction limit and disabled inserts
		tr.do("UPDATE pgq.queue SET queue_per_tx_limit = 2")
		tr.do("BEGIN")
		tr.do("SELECT pgq.insert_event('dq', 'l1', '')")
		tr.do("SELECT pgq.insert_event('dq', 'l2', '')")
		tr.do("SELECT pgq.insert_event('dq', 'l3', '')")
		tr.do("ROLLBACK")
		tr.do("BEGIN")
		tr.do("SELECT pgq.insert_event('dq', 'l1', '')")
		tr.do("COMMIT")
		tr.do("BEGIN")
		tr.do("SELECT pgq.insert_event('dq', 'l1', '')")
		tr.do("SELECT pgq.insert_event('dq', 'l2', '')")
		tr.do("COMMIT")
		tr.do("UPDATE pgq.queue SET queue_per_tx_limit = 0")
		tr.do("SELECT pgq.insert_event('dq', 'l0', '')")
		tr.do("UPDATE pgq.queue SET queue_per_tx_limit = NULL, queue_disable_insert = true")
		tr.do("SELECT pgq.insert_event('dq', 'dis', '')")
		tr.do("SELECT pgq.current_event_table('dq')")
		tr.do("SET session_replication_role = replica")
		tr.do("SELECT pgq.insert_event('dq', 'replica', '')")
		tr.do("SET session_replication_role = origin")
		tr.do("UPDATE pgq.queue SET queue_disable_insert = false")
		tr.do("SELECT pgq.seq_getval('pgq.event_1_id_seq')")
		tr.do("SELECT pgq.seq_setval('pgq.event_1_id_seq', 5)")
		tr.do("SELECT pgq.seq_setval('pgq.event_1_id_seq', 500)")
		tr.do("SELECT pgq.seq_getval('pgq.event_1_id_seq')")
		tr.do("SELECT pgq.quote_fqname('a.b'), pgq.quote_fqname('Tbl'), pgq.quote_fqname('x.y.z'), pgq.quote_fqname(NULL)")
		tr.do("SELECT pgq.ticker('dq')")
		tr.do(nextBatchInfo, "dq", "c1")
		tr.do(batchCols, 5)
		tr.do("SELECT pgq.finish_batch(5)")
		// force_tick bumps the sequence; the ticker then ticks an idle queue
		tr.do("UPDATE pgq.queue SET queue_ticker_max_lag = '1 hour', queue_ticker_idle_period = '1 hour'")
		tr.do("SELECT pgq.ticker('dq')")
		tr.do("SELECT pgq.force_tick('dq')")
		tr.do("SELECT pgq.seq_getval('pgq.event_1_id_seq')")
		tr.do("SELECT pgq.ticker('dq')")
		tr.do("SELECT pgq.force_tick('nope')")
		tr.do("SELECT pgq.ticker()")
		// custom batches join ticks
		tr.do("UPDATE pgq.queue SET queue_ticker_max_lag = '0', queue_ticker_idle_period = '0'")
		tr.do("SELECT pgq.insert_event('dq', 'c', '1')")
		tr.do("SELECT pgq.ticker('dq')")
		tr.do("SELECT pgq.insert_event('dq', 'c', '2')")
		tr.do("SELECT pgq.ticker('dq')")
		tr.do("SELECT batch_id, cur_tick_id, prev_tick_id FROM pgq.next_batch_custom('dq', 'c2', NULL, 2000, NULL)")
		tr.do("SELECT batch_id, cur_tick_id, prev_tick_id FROM pgq.next_batch_custom('dq', 'c2', '1 hour', NULL, NULL)")
		tr.do("SELECT batch_id, cur_tick_id, prev_tick_id FROM pgq.next_batch_custom('dq', 'c2', NULL, 1, NULL)")
		tr.do(batchCols, 6)
		tr.do("SELECT * FROM pgq.find_tick_helper(1, 1, now(), 1, 1000000, NULL)")
		tr.do("SELECT next_tick_id FROM pgq.find_tick_helper(1, 1, (SELECT tick_time FROM pgq.tick WHERE tick_id = 1), 1, NULL, '0 seconds')")
		// external ticker
		tr.do("SELECT pgq.create_queue('ext')")
		tr.do("SELECT pgq.ticker('ext', 10, now(), 50)")
		tr.do("SELECT pgq.set_queue_config('ext', 'external_ticker', 'true')")
		tr.do("SELECT pgq.ticker('ext')")
		tr.do("SELECT pgq.ticker('ext', 10, now(), 50)")
		tr.do("SELECT pgq.seq_getval('pgq.event_2_tick_seq'), pgq.seq_getval('pgq.event_2_id_seq')")
		tr.do("SELECT pgq.ticker('ext', 11, now(), 40)")
		tr.do("SELECT pgq.seq_getval('pgq.event_2_id_seq')")
		tr.do("SELECT pgq.set_queue_config('ext', 'ticker_paused', 'true')")
		tr.do("SELECT pgq.ticker('ext', 12, now(), 60)")
		tr.do("SELECT pgq.set_queue_config('ext', 'external_ticker', 'false')")
		tr.do("SELECT pgq.ticker('ext')")
		tr.do("SELECT pgq.ticker()")
		// event_retry_raw, unregister, drop
		tr.do("SELECT pgq.event_retry_raw('dq', 'c1', now(), 42, now(), 3, 't', 'd', '1', '2', '3', '4')")
		tr.do("SELECT pgq.event_retry_raw('dq', 'nobody', now(), 42, now(), 3, 't', 'd', '1', '2', '3', '4')")
		tr.do("SELECT pgq.event_retry_raw('dq', 'c1', now(), NULL, now(), NULL, 't', 'd', NULL, NULL, NULL, NULL)")
		tr.do("SELECT ev_id, ev_owner, ev_retry, ev_type FROM pgq.retry_queue ORDER BY ev_id")
		tr.do("SELECT pgq.drop_queue('dq')")
		tr.do("SELECT pgq.unregister_consumer('dq', 'c1')")
		tr.do("SELECT pgq.unregister_consumer('dq', 'c1')")
		tr.do("SELECT count(*) FROM pgq.retry_queue")
		tr.do("SELECT co_name FROM pgq.consumer ORDER BY 1")
		tr.do("SELECT pgq.drop_queue('dq', true)")
		tr.do("SELECT pgq.drop_queue('dq')")
		tr.do("SELECT pgq.drop_queue('nope', true)")
		tr.do("SELECT co_name FROM pgq.consumer ORDER BY 1")
		tr.do("SELECT count(*) FROM pg_class WHERE relname LIKE 'event\\_1%'")
		tr.do("SELECT tick_queue, count(*) FROM pgq.tick GROUP BY 1 ORDER BY 1")
		tr.do("SELECT pgq.create_queue('dq')")
		tr.do("SELECT queue_id, queue_data_pfx FROM pgq.queue ORDER BY 1")
		tr.do("SELECT pgq.grant_perms('nope')")
		tr.do("SELECT pgq.tune_storage('nope'), pgq.tune_storage('dq')")
		tr.do("SELECT pgq.upgrade_schema() >= 0")
		tr.do("SELECT * FROM pgq.maint_tables_to_vacuum()")
		tr.do("SELECT func_name, func_arg FROM pgq.maint_operations()")
		tr.do("SELECT pgq.version() LIKE '3.%'")
	})
}

// TestDifferentialLongTransaction checks the batch visibility rule against the original:
// a transaction open across several ticks lands in the batch of the tick after its
// commit, also when it is more than 100 txids behind (the IN-list path).
func TestDifferentialLongTransaction(t *testing.T) {
	t.Parallel()
	differential(t, func(tr *transcript, db *pgtest.Database) {
		long := db.Conn(t)
		tr.do("SELECT pgq.create_queue('lq')")
		tr.do("SELECT pgq.set_queue_config('lq', 'ticker_max_lag', '0')")
		tr.do("SELECT pgq.set_queue_config('lq', 'ticker_idle_period', '0')")
		tr.do("SELECT pgq.register_consumer('lq', 'c')")
		tr.on(long, "BEGIN")
		tr.on(long, "SELECT pgq.insert_event('lq', 'long', '1')")
		for round := 0; round < 3; round++ {
			for i := 0; i < 60; i++ {
				q(t, tr.conn, "SELECT pgq.insert_event('lq', 'short', $1::int::text)", i)
			}
			tr.do("SELECT pgq.ticker('lq') IS NOT NULL")
			tr.do("SELECT count(*), min(ev_data), max(ev_data) FROM pgq.get_batch_events(pgq.next_batch('lq', 'c'))")
			tr.do("SELECT pgq.finish_batch(pgq.next_batch('lq', 'c'))")
		}
		tr.on(long, "SELECT pgq.insert_event('lq', 'long', '2')")
		tr.on(long, "COMMIT")
		tr.do("SELECT pgq.insert_event('lq', 'after', '1')")
		tr.do("SELECT pgq.ticker('lq') IS NOT NULL")
		tr.do(nextBatchInfo, "lq", "c")
		tr.do("SELECT pgq.batch_event_sql(4) LIKE '%order by 1'")
		tr.do("SELECT ev_id, ev_type, ev_data FROM pgq.get_batch_events(4)")
		tr.do("SELECT pgq.finish_batch(4)")
	})
}

// TestRolledBackProducerIsNeverDelivered: an aborted transaction's events never appear,
// and the ticker still counts them as activity (sequence based).
func TestRolledBackProducerIsNeverDelivered(t *testing.T) {
	t.Parallel()
	c := pg.DB(t).Conn(t)
	q(t, c, "SELECT pgq.create_queue('rq')")
	fastTicks(t, c, "rq")
	q(t, c, "SELECT pgq.register_consumer('rq', 'c')")
	q(t, c, "BEGIN")
	for i := 0; i < 5; i++ {
		q(t, c, "SELECT pgq.insert_event('rq', 'gone', 'x')")
	}
	q(t, c, "ROLLBACK")
	q(t, c, "SELECT pgq.insert_event('rq', 'kept', 'y')")
	evs := drain(t, c, "rq", "c")
	if len(evs) != 1 || *evs[0].Type != "kept" || evs[0].ID != 6 {
		t.Fatalf("events %v, want only 'kept' with id 6", evs)
	}
	if n := val[int64](t, c, "SELECT ev_new FROM pgq.get_queue_info('rq')"); n != 0 {
		t.Fatalf("ev_new %d after tick", n)
	}
}

// TestGetBatchCursor streams a batch through a cursor with an extra condition.
func TestGetBatchCursor(t *testing.T) {
	t.Parallel()
	differential(t, func(tr *transcript, db *pgtest.Database) {
		tr.do("SELECT pgq.create_queue('cq')")
		tr.do("SELECT pgq.register_consumer('cq', 'c')")
		tr.do("SELECT pgq.insert_event('cq', 'ty' || (i % 3), 'd' || i) FROM generate_series(1, 20) i")
		tr.do("SELECT pgq.force_tick('cq')")
		tr.do("SELECT pgq.ticker('cq')")
		tr.do("SELECT pgq.next_batch('cq', 'c')")
		tr.do("BEGIN")
		tr.do("SELECT ev_id, ev_type FROM pgq.get_batch_cursor(1, 'walker', 3, 'ev_type = ''ty1''')")
		tr.do("FETCH 2 FROM walker")
		tr.do("FETCH 10 FROM walker")
		tr.do("CLOSE walker")
		tr.do("SELECT ev_id FROM pgq.get_batch_cursor(1, 'Walker2', 0)")
		tr.do("FETCH 3 FROM \"Walker2\"")
		tr.do("SELECT count(*) FROM pgq.get_batch_cursor(1, NULL, 5, NULL)")
		tr.do("SELECT count(*) FROM pgq.get_batch_cursor(NULL, 'x', 5)")
		tr.do("COMMIT")
		tr.do("SELECT ev_id FROM pgq.get_batch_cursor(99, 'nope', 5)")
	})
}

// TestCreateQueueMakesTickOneAndObjects checks the per-queue objects and first tick.
func TestCreateQueueMakesTickOneAndObjects(t *testing.T) {
	t.Parallel()
	c := pg.DB(t).Conn(t)
	q(t, c, "SELECT pgq.create_queue('a')")
	got := val[string](t, c, `SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class
		WHERE relnamespace = 'pgq'::regnamespace AND relname LIKE 'event\_1%'`)
	want := "event_1,event_1_0,event_1_0_txid_idx,event_1_1,event_1_1_txid_idx,event_1_2,event_1_2_txid_idx,event_1_id_seq,event_1_tick_seq"
	if got != want {
		t.Fatalf("objects %s", got)
	}
	if n := val[int64](t, c, "SELECT tick_event_seq FROM pgq.tick WHERE tick_queue = 1 AND tick_id = 1"); n != 1 {
		t.Fatalf("tick 1 event seq %d", n)
	}
	var ctx = context.Background()
	if _, err := c.Exec(ctx, "DROP SCHEMA pgq CASCADE"); err != nil {
		t.Fatal(err)
	}
}

// TestInsertPathsStaticAndDynamic: after create_queue the insert functions have static
// inserts for the queue's tables; a queue they do not know yet takes the dynamic path;
// every insert lands in the queue's current table.
func TestInsertPathsStaticAndDynamic(t *testing.T) {
	t.Parallel()
	c := pg.DB(t).Conn(t)
	q(t, c, "ALTER TABLE pgq.queue ALTER COLUMN queue_ntables SET DEFAULT 4")
	q(t, c, "SELECT pgq.create_queue('sq')")
	q(t, c, "ALTER TABLE pgq.queue ALTER COLUMN queue_ntables SET DEFAULT 3")
	for _, fn := range []string{"pgq.insert_event_raw(text,bigint,timestamptz,integer,integer,text,text,text,text,text,text)",
		"pgq.insert_event(text,text,text,text,text,text,text)"} {
		src := val[string](t, c, "SELECT prosrc FROM pg_proc WHERE oid = $1::regprocedure", fn)
		if !strings.Contains(src, "INSERT INTO pgq.event_1_3 ") {
			t.Fatalf("%s has no static insert for pgq.event_1_3:\n%s", fn, src)
		}
	}
	if !val[bool](t, c, "SELECT prosecdef FROM pg_proc WHERE oid = 'pgq.insert_event(text,text,text,text,text,text,text)'::regprocedure") {
		t.Fatal("insert_event(7) lost SECURITY DEFINER")
	}
	q(t, c, "SELECT pgq.insert_event('sq', 'static', '1')")
	// a queue row the generated code has not seen: the dynamic path
	q(t, c, "UPDATE pgq.queue SET queue_cur_table = 3")
	q(t, c, "SELECT pgq.insert_event('sq', 'static3', '2')")
	q(t, c, "SELECT pgq.insert_event_raw('sq', 77, NULL, NULL, NULL, 'raw', '3', 'a', 'b', 'c', 'd')")
	q(t, c, "INSERT INTO pgq.queue (queue_id, queue_name, queue_data_pfx, queue_event_seq, queue_tick_seq) VALUES (99, 'manual', 'pgq.event_1', 'pgq.event_1_id_seq', 'pgq.event_1_tick_seq')")
	q(t, c, "SELECT pgq.insert_event('manual', 'dynamic', '4')")
	q(t, c, "DELETE FROM pgq.queue WHERE queue_id = 99")
	got := val[string](t, c, `SELECT string_agg(tableoid::regclass || ' ' || ev_id || ' ' || ev_type || ' ' || ev_data
		|| ' ' || coalesce(ev_extra1 || ev_extra4, '-'), '; ' ORDER BY ev_id) FROM pgq.event_1`)
	want := "pgq.event_1_0 1 static 1 -; pgq.event_1_3 2 static3 2 -; pgq.event_1_0 4 dynamic 4 -; pgq.event_1_3 77 raw 3 ad"
	if got != want {
		t.Fatalf("events:\n%s\nwant:\n%s", got, want)
	}
}

// TestDifferentialMoreAPI covers the rest: every set_queue_config parameter, repositioning
// a consumer with an open batch, retries by timestamp, queue_extra_maint and rotation rows
// in maint_operations, ticker() counting several queues, fresh sequences.
func TestDifferentialMoreAPI(t *testing.T) {
	t.Parallel()
	differential(t, func(tr *transcript, db *pgtest.Database) {
		tr.do("SELECT pgq.create_queue('a'), pgq.create_queue('b')")
		tr.do("SELECT pgq.seq_getval('pgq.event_1_id_seq'), pgq.seq_getval('pgq.event_1_tick_seq')")
		for _, kv := range [][2]string{{"ticker_max_count", "7"}, {"ticker_max_lag", "0"}, {"ticker_idle_period", "0"},
			{"ticker_paused", "false"}, {"rotation_period", "1 hour"}, {"external_ticker", "false"}, {"ticker_max_count", "-"}} {
			tr.do("SELECT pgq.set_queue_config('a', $1, $2)", kv[0], kv[1])
		}
		tr.do("SELECT queue_ticker_max_count, queue_ticker_max_lag, queue_ticker_idle_period, queue_rotation_period FROM pgq.queue WHERE queue_name = 'a'")
		tr.do("SELECT pgq.set_queue_config('b', 'ticker_max_lag', '0')")
		tr.do("SELECT pgq.set_queue_config('b', 'ticker_idle_period', '0')")
		tr.do("SELECT pgq.ticker()")
		tr.do("SELECT pgq.insert_event('a', 'x', '1'), pgq.insert_event('b', 'y', '2')")
		tr.do("SELECT pgq.ticker()")
		tr.do("SELECT pgq.register_consumer('a', 'c')")
		tr.do("SELECT pgq.insert_event('a', 'x', '2')")
		tr.do("SELECT pgq.ticker()")
		tr.do("SELECT pgq.next_batch('a', 'c')")
		tr.do("SELECT pgq.event_retry(1, 4::bigint, now() - interval '1 hour')")
		tr.do("SELECT pgq.register_consumer_at('a', 'c', 2)")
		tr.do("SELECT last_tick, current_batch, next_tick FROM pgq.get_consumer_info('a', 'c')")
		tr.do("SELECT pgq.finish_batch(1)")
		tr.do("SELECT pgq.maint_retry_events()")
		tr.do("SELECT pgq.ticker()")
		tr.do(nextBatchInfo, "a", "c")
		tr.do(batchCols, 2)
		tr.do("SELECT pgq.finish_batch(2)")
		tr.do("SELECT * FROM pgq.get_batch_cursor(2, NULL, 10)")
		tr.do("UPDATE pgq.queue SET queue_extra_maint = ARRAY['public.f1', 'public.f2'] WHERE queue_name = 'b'")
		tr.do("UPDATE pgq.queue SET queue_rotation_period = '0', queue_switch_time = now() - interval '1 day'")
		tr.do("SELECT func_name, func_arg FROM pgq.maint_operations()")
		tr.do("UPDATE pgq.queue SET queue_switch_step2 = NULL WHERE queue_name = 'b'")
		tr.do("UPDATE pgq.queue SET queue_rotation_period = '1 day'")
		tr.do("SELECT func_name, func_arg FROM pgq.maint_operations()")
		tr.do("SELECT pgq.maint_rotate_tables_step1('nope'), pgq.maint_rotate_tables_step1(NULL)")
		tr.do("SELECT pgq.grant_perms('a'), pgq.tune_storage('a')")
		tr.do("SELECT pgq.set_queue_config('a', 'ticker_paused', 'true')")
		tr.do("SELECT pgq.insert_event('a', 'paused', 'still inserts')")
		tr.do("SELECT pgq.ticker('a')")
		tr.do("SELECT pgq.ticker()")
		tr.do("SELECT pgq.force_tick('a')")
	})
}

// TestDifferentialTickerRules drives pgq.ticker's decisions by moving the last ticks'
// times: with new events it waits for max_count events or max_lag; idle, it backs off
// (not before max_lag/2, not before twice the previous interval unless idle_period
// passed). ev_per_sec comes from fixed tick times and sequence values.
func TestDifferentialTickerRules(t *testing.T) {
	t.Parallel()
	differential(t, func(tr *transcript, db *pgtest.Database) {
		tick := "SELECT pgq.ticker('tq') IS NOT NULL"
		// the last tick L and the one before it P, seconds before now()
		at := func(lAgo, pAgo int) {
			q(t, tr.conn, `UPDATE pgq.tick SET tick_time = now() - make_interval(secs => $1)
			                WHERE tick_id = (SELECT max(tick_id) FROM pgq.tick)`, lAgo)
			q(t, tr.conn, `UPDATE pgq.tick SET tick_time = now() - make_interval(secs => $1)
			                WHERE tick_id = (SELECT max(tick_id) - 1 FROM pgq.tick)`, pAgo)
		}
		tr.do("SELECT pgq.create_queue('tq')")
		tr.do("SELECT pgq.set_queue_config('tq', 'ticker_max_count', '10')")
		// max_lag 30 s, idle_period 10 min: seconds of margin for a slow machine
		tr.do("SELECT pgq.set_queue_config('tq', 'ticker_max_lag', '30 seconds')")
		tr.do("SELECT pgq.set_queue_config('tq', 'ticker_idle_period', '10 minutes')")
		tr.do(tick) // only tick 1 exists: always ticks
		at(10, 50)
		tr.do(tick) // idle, lag 10 < max_lag/2
		at(20, 50)
		tr.do(tick) // idle, lag 20 < 2 * (L - P) = 60 and < idle_period
		at(70, 100)
		tr.do(tick) // idle, lag 70 >= 2 * 30
		at(610, 10000)
		tr.do(tick) // idle, lag 610 >= idle_period
		tr.do("SELECT pgq.insert_event('tq', 'e', 'd') FROM generate_series(1, 3)")
		at(10, 1000)
		tr.do(tick) // 3 new events, lag 10 < max_lag
		at(40, 1000)
		tr.do(tick) // lag 40 >= max_lag
		tr.do("SELECT pgq.insert_event('tq', 'e', 'd') FROM generate_series(1, 12)")
		at(0, 1000)
		tr.do(tick) // 12 >= max_count
		tr.do("SELECT tick_id, tick_event_seq FROM pgq.tick ORDER BY tick_id")
		q(t, tr.conn, "UPDATE pgq.tick SET tick_time = '2020-01-01 00:00:00+00'::timestamptz + make_interval(secs => tick_id * 2)")
		tr.do("SELECT ev_per_sec, ev_new, last_tick_id FROM pgq.get_queue_info('tq')")
		tr.do("SELECT pgq.insert_event('tq', 'e', 'd')")
		tr.do("SELECT ev_new FROM pgq.get_queue_info('tq')")
		var got []string
		for _, l := range tr.lines {
			if strings.HasPrefix(l, tick) {
				got = append(got, strings.TrimPrefix(l, tick+" => "))
			}
		}
		if want := "(true) (false) (false) (true) (true) (false) (true) (true)"; strings.Join(got, " ") != want {
			t.Errorf("%s: tick decisions %s, want %s", db.Name, strings.Join(got, " "), want)
		}
	})
}
