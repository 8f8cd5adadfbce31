package sql_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// TestPrivilegesPerRole checks what each role may do, against the original, including
// firing a trigger (which inserts as the role changing the table).
func TestPrivilegesPerRole(t *testing.T) {
	t.Parallel()
	differential(t, func(tr *transcript, db *pgtest.Database) {
		plain := "plain_" + db.Name
		q(t, tr.conn, "CREATE ROLE "+pgx.Identifier{plain}.Sanitize())
		tr.do("SELECT pgq.create_queue('pq')")
		fastTicks(t, tr.conn, "pq")
		tr.do("SELECT pgq.insert_event('pq', 'x', 'y')")
		q(t, tr.conn, "CREATE TABLE trg_t (id int PRIMARY KEY)")
		q(t, tr.conn, "GRANT ALL ON trg_t TO PUBLIC")
		q(t, tr.conn, "CREATE TRIGGER t AFTER INSERT ON trg_t FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('pq')")
		calls := []string{
			"INSERT INTO trg_t SELECT coalesce(max(id), 0) + 1 FROM trg_t",
			"SELECT pgq.create_queue('pq2') >= 0",
			"SELECT pgq.insert_event('pq', 'a', 'b') > 0",
			"SELECT pgq.current_event_table('pq')",
			"SELECT pgq.register_consumer('pq', 'c_' || current_user)",
			"SELECT pgq.next_batch('pq', 'c_' || current_user) IS NULL",
			"SELECT pgq.ticker('pq') > 0",
			"SELECT count(*) FROM pgq.get_queue_info()",
			"SELECT count(*) FROM pgq.get_consumer_info()",
			"SELECT pgq.version() IS NOT NULL",
			"SELECT count(*) FROM pgq.queue",
			"SELECT count(*) FROM pgq.event_1",
			"SELECT count(*) FROM pgq.event_1_0",
			"SELECT count(*) FROM pgq.retry_queue",
			"SELECT pgq.maint_retry_events()",
			"SELECT pgq.seq_getval('pgq.event_1_id_seq') > 0",
			"SELECT pgq.force_tick('pq') > 0",
			"SELECT pgq.unregister_consumer('pq', 'c_' || current_user)",
			"SELECT pgq.insert_event_raw('pq', NULL, NULL, NULL, NULL, 't', 'd', NULL, NULL, NULL, NULL) > 0",
		}
		for _, role := range []string{"pgq_reader", "pgq_writer", "pgq_admin", plain} {
			q(t, tr.conn, "SET ROLE "+pgx.Identifier{role}.Sanitize())
			for _, c := range calls {
				tr.do(c)
			}
			q(t, tr.conn, "RESET ROLE")
		}
	})
}
