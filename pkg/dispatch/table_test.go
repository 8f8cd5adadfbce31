package dispatch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/relay/relaytest"
)

const tableModeTables = `
[[table]]
name = "clicks"           # native partitioned target, partitioned by ts

[[table]]
name = "visits"
target = "visits_by_month"
part_field = "ts"
part_period = "month"

[[table]]
name = "pings"            # partitions by event time
part_period = "hour"
`

// Table mode: inserts go into partitions by part_field across day and month
// boundaries (and offsets), native partitions of a partitioned target are created
// on demand (one pre-made under another name is used), template tables for a plain
// target, by event time without part_field; updates and deletes are skipped and
// counted.
func TestTableModePartitionsAcrossPeriodBoundaries(t *testing.T) {
	relaytest.EachFlavor(t, func(t *testing.T, fl relaytest.Flavor) {
		e := setup(t, fl)
		relaytest.Exec(t, e.srcPool, `
CREATE TABLE clicks (id int PRIMARY KEY, ts timestamptz NOT NULL, url text, referrer text);
CREATE TABLE visits (id int PRIMARY KEY, ts timestamp, who text);
CREATE TABLE pings (id int PRIMARY KEY, v text);
CREATE TRIGGER q AFTER INSERT OR UPDATE OR DELETE ON clicks FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('q');
CREATE TRIGGER q AFTER INSERT OR UPDATE OR DELETE ON visits FOR EACH ROW EXECUTE PROCEDURE pgq.jsontriga('q');
CREATE TRIGGER q AFTER INSERT ON pings FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('q');
CREATE TABLE clicks_inserted (LIKE clicks); CREATE TABLE visits_inserted (LIKE visits)`)
		relaytest.Exec(t, e.dstPool, `
CREATE TABLE clicks (id int, ts timestamptz NOT NULL, url text, loaded_at timestamptz DEFAULT now()) PARTITION BY RANGE (ts);
CREATE TABLE clicks_jan1 PARTITION OF clicks FOR VALUES FROM ('2024-01-01 00:00+00') TO ('2024-01-02 00:00+00');
CREATE TABLE visits_by_month (id int PRIMARY KEY, ts timestamp, who text);
CREATE TABLE pings (id int, v text)`)
		relaytest.Ticker(t, e.srcPool, "q")
		p := relaytest.NewProcess(t, "dispatcher", "disp")
		p.WriteConfig(e.config("table", tableModeTables))
		p.Start()

		stamps := []string{
			"2024-01-01 00:00:00+00", "2024-01-01 23:59:59.999999+00", "2024-01-02 00:00:00+00",
			"2024-01-31 23:59:59+00", "2024-02-01 00:00:00+00", "2024-03-01 00:30:00+01", // = Feb 29 23:30 UTC
			"2024-02-29 20:00:00-05", "2023-12-31 23:59:59+00", "2024-12-31 12:00:00+00",
		}
		for i := 0; i < 90; i++ {
			ts := stamps[i%len(stamps)]
			relaytest.Exec(t, e.srcPool, `WITH c AS (INSERT INTO clicks VALUES ($1, $2, $3, 'r'))
INSERT INTO visits VALUES ($1, ($2::timestamptz AT TIME ZONE 'UTC') + make_interval(hours => $1 % 3), $3)`,
				i, ts, fmt.Sprintf("/page/%d", i))
		}
		relaytest.Exec(t, e.srcPool, `INSERT INTO pings SELECT g, 'p' FROM generate_series(1, 10) g;
INSERT INTO clicks_inserted SELECT * FROM clicks; INSERT INTO visits_inserted SELECT * FROM visits;
UPDATE clicks SET url = 'changed' WHERE id < 10; DELETE FROM visits WHERE id < 5`)
		relaytest.WaitFor(t, time.Minute, "the queue consumed", relaytest.Drained(t, e.srcPool, "q", "disp"))

		// Row by row: what was inserted (updates and deletes are not applied).
		sameRows(t, "clicks", rows(t, e.dstPool, "SELECT id, ts, url FROM clicks"), rows(t, e.srcPool, "SELECT id, ts, url FROM clicks_inserted"))
		sameRows(t, "visits_by_month", rows(t, e.dstPool, "SELECT * FROM visits_by_month"), rows(t, e.srcPool, "SELECT * FROM visits_inserted"))
		sameRows(t, "pings", rows(t, e.dstPool, "SELECT * FROM pings"), rows(t, e.srcPool, "SELECT * FROM pings"))

		// Every row sits in the partition of its period.
		misplaced := relaytest.Val[int64](t, e.dstPool, `SELECT count(*) FROM clicks
 WHERE tableoid::regclass::text <> CASE WHEN ts >= '2024-01-01 00:00+00' AND ts < '2024-01-02 00:00+00' THEN 'clicks_jan1'
       ELSE 'clicks_' || to_char(ts AT TIME ZONE 'UTC', 'YYYY_MM_DD') END`)
		if misplaced != 0 {
			t.Fatalf("%d clicks in the wrong partition", misplaced)
		}
		parts := relaytest.Val[int64](t, e.dstPool, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'clicks'::regclass")
		if parts != 8 { // jan1 (pre-made), jan2, jan31, feb1, feb29, mar1 (-05), dec31 2023, dec31 2024
			t.Fatalf("clicks has %d partitions, want 8", parts)
		}
		misplaced = relaytest.Val[int64](t, e.dstPool, `SELECT count(*) FROM visits_by_month
 WHERE tableoid::regclass::text <> 'visits_by_month_' || to_char(ts, 'YYYY_MM')`)
		if n := relaytest.Val[int64](t, e.dstPool, "SELECT count(*) FROM ONLY visits_by_month"); misplaced != 0 || n != 0 {
			t.Fatalf("visits_by_month: %d rows in the wrong table, %d in the parent", misplaced, n)
		}
		var hourTables int64
		if err := e.dstPool.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE tablename ~ '^pings_\d{4}_\d\d_\d\d_\d\d$'`).Scan(&hourTables); err != nil || hourTables == 0 {
			t.Fatalf("no hourly pings tables (%v)", err)
		}
		p.WaitMetric(`dispatcher_events_skipped_total{reason="operation",table="public.clicks"}`, 10)
		p.WaitMetric(`dispatcher_events_skipped_total{reason="operation",table="public.visits"}`, 5)
	})
}
