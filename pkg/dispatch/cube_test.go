package dispatch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/relay/relaytest"
)

const cubeTables = `
[[table]]
name = "orders"            # keep = "latest" by default

[[table]]
name = "orders_j"
keep = "all"
`

// Cube mode under traffic with inserts, updates and deletes: each day table of
// "orders" holds the last image of each key changed that day, each day table of
// "orders_j" every row version of that day (the source keeps the expected contents
// with triggers of its own, keyed by the transaction's day, which is ev_time's).
// Events dated across a day boundary land in the two days' tables.
func TestCubeModeKeepsLatestOrAllPerPeriod(t *testing.T) {
	relaytest.EachFlavor(t, func(t *testing.T, fl relaytest.Flavor) {
		e := setup(t, fl)
		relaytest.Exec(t, e.srcPool, `
CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric);
CREATE TABLE orders_j (LIKE orders INCLUDING ALL);
CREATE TABLE expect_latest (day text, id int, status text, amount numeric, PRIMARY KEY (day, id));
CREATE TABLE expect_all (day text, id int, status text, amount numeric);
CREATE FUNCTION expect() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE d text := to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM_DD');
BEGIN
  IF TG_TABLE_NAME = 'orders' THEN
    INSERT INTO expect_latest VALUES (d, NEW.id, NEW.status, NEW.amount)
      ON CONFLICT (day, id) DO UPDATE SET status = excluded.status, amount = excluded.amount;
  ELSE
    INSERT INTO expect_all VALUES (d, NEW.id, NEW.status, NEW.amount);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER x AFTER INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION expect();
CREATE TRIGGER x AFTER INSERT OR UPDATE ON orders_j FOR EACH ROW EXECUTE FUNCTION expect();
CREATE TRIGGER q AFTER INSERT OR UPDATE OR DELETE ON orders FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('q');
CREATE TRIGGER q AFTER INSERT OR UPDATE OR DELETE ON orders_j FOR EACH ROW EXECUTE PROCEDURE pgq.jsontriga('q')`)
		relaytest.Exec(t, e.dstPool, `
CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric);
CREATE TABLE orders_j (id int PRIMARY KEY, status text, amount numeric)`)
		relaytest.Ticker(t, e.srcPool, "q")
		p := relaytest.NewProcess(t, "dispatcher", "disp")
		p.WriteConfig(e.config("cube", "min_count = 40\nmin_interval = \"30ms\"\n"+cubeTables))
		p.Start()

		ctx := context.Background()
		var deleted int64
		for i := 0; i < 400; i++ {
			id := 1 + e.rnd.IntN(60)
			var sql string
			switch op := e.rnd.IntN(10); {
			case op < 4:
				sql = `INSERT INTO %[1]s VALUES ($1, 'new', $2) ON CONFLICT (id) DO UPDATE SET status = 'again', amount = excluded.amount`
			case op < 9:
				sql = `UPDATE %[1]s SET status = 'paid', amount = amount + $2 WHERE id = $1`
			default:
				sql = `DELETE FROM %[1]s WHERE id = $1 AND $2::int IS NOT NULL`
			}
			for _, tbl := range []string{"orders", "orders_j"} {
				tag, err := e.srcPool.Exec(ctx, strings.ReplaceAll(sql, "%[1]s", tbl), id, e.rnd.IntN(100))
				if err != nil {
					t.Fatal(err)
				}
				if tbl == "orders" && tag.Delete() {
					deleted += tag.RowsAffected()
				}
			}
		}
		// Two events dated either side of a midnight, as a producer may write them.
		relaytest.Exec(t, e.srcPool, `SELECT pgq.insert_event_raw('q', NULL, '2023-12-31 23:59:59.999+00', NULL, NULL, 'I:id', 'id=9001&status=late&amount=1', 'public.orders', NULL, NULL, NULL),
		       pgq.insert_event_raw('q', NULL, '2024-01-01 00:00:00+00', NULL, NULL, 'U:id', 'id=9001&status=early&amount=2', 'public.orders', NULL, NULL, NULL)`)
		relaytest.WaitFor(t, time.Minute, "the queue consumed", relaytest.Drained(t, e.srcPool, "q", "disp"))

		days := relaytest.Val[[]string](t, e.srcPool, "SELECT array_agg(DISTINCT day) FROM expect_latest")
		for _, day := range days {
			sameRows(t, "orders_"+day, rows(t, e.dstPool, "SELECT * FROM orders_"+day),
				rows(t, e.srcPool, "SELECT id, status, amount FROM expect_latest WHERE day = '"+day+"'"))
			sameRows(t, "orders_j_"+day, rows(t, e.dstPool, "SELECT * FROM orders_j_"+day),
				rows(t, e.srcPool, "SELECT id, status, amount FROM expect_all WHERE day = '"+day+"'"))
		}
		sameRows(t, "orders_2023_12_31", rows(t, e.dstPool, "SELECT * FROM orders_2023_12_31"), []string{`{"id":9001,"status":"late","amount":1}`})
		sameRows(t, "orders_2024_01_01", rows(t, e.dstPool, "SELECT * FROM orders_2024_01_01"), []string{`{"id":9001,"status":"early","amount":2}`})
		if n := relaytest.Val[int64](t, e.dstPool, "SELECT count(*) FROM ONLY orders"); n != 0 {
			t.Fatalf("%d rows in the template table itself", n)
		}
		if deleted == 0 {
			t.Fatal("the traffic deleted nothing")
		}
		p.WaitMetric(`dispatcher_events_skipped_total{reason="operation",table="public.orders"}`, float64(deleted))
	})
}
