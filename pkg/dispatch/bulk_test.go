package dispatch_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/relay/relaytest"
)

const bulkTables = `
[[table]]
name = "acc_url"
target = "dw.accounts_u"

[[table]]
name = "public.acc_json"
target = "dw.accounts_j"

[[table]]
name = "hist"
target = "dw.history"
`

// dwSchema makes the bulk destination tables.
func (e *env) dwSchema() {
	relaytest.Exec(e.t, e.dstPool, `CREATE SCHEMA dw;
CREATE TABLE dw.accounts_u `+accountsDDL+`;
CREATE TABLE dw.accounts_j `+accountsDDL+`;
CREATE TABLE dw.history (tid int, aid int, delta int, note text, mtime timestamptz)`)
}

// checkBulk compares the destination with the source row by row.
func (e *env) checkBulk() {
	e.t.Helper()
	sameRows(e.t, "dw.accounts_u", rows(e.t, e.dstPool, "SELECT * FROM dw.accounts_u"), rows(e.t, e.srcPool, "SELECT * FROM acc_url"))
	sameRows(e.t, "dw.accounts_j", rows(e.t, e.dstPool, "SELECT * FROM dw.accounts_j"), rows(e.t, e.srcPool, "SELECT * FROM acc_json"))
	sameRows(e.t, "dw.history", rows(e.t, e.dstPool, "SELECT * FROM dw.history"), rows(e.t, e.srcPool, "SELECT * FROM hist"))
}

// Bulk mode under pgbench-like traffic with inserts, updates and deletes, from
// logutriga and jsontriga: the destination equals the source row by row; events of
// the unconfigured table and TRUNCATEs are skipped and counted.
func TestBulkModeAppliesTrafficRowByRowEqual(t *testing.T) {
	relaytest.EachFlavor(t, func(t *testing.T, fl relaytest.Flavor) {
		e := setup(t, fl)
		e.dwSchema()
		relaytest.Ticker(t, e.srcPool, "q")
		p := relaytest.NewProcess(t, "dispatcher", "disp")
		p.WriteConfig(e.config("bulk", "min_count = 50\nmin_interval = \"30ms\"\n"+bulkTables))
		other := e.traffic(100)
		p.Start()
		other += e.traffic(300)
		relaytest.WaitFor(t, time.Minute, "the queue consumed", relaytest.Drained(t, e.srcPool, "q", "disp"))
		e.checkBulk()
		p.WaitMetric(`dispatcher_events_skipped_total{reason="unconfigured",table="public.other"}`, float64(other))
		// A TRUNCATE of a configured table is skipped and counted, not applied.
		hist := relaytest.Val[int64](t, e.dstPool, "SELECT count(*) FROM dw.history")
		relaytest.Exec(t, e.srcPool, "TRUNCATE hist")
		relaytest.WaitFor(t, time.Minute, "the TRUNCATE consumed", relaytest.Drained(t, e.srcPool, "q", "disp"))
		p.WaitMetric(`dispatcher_events_skipped_total{reason="truncate",table="public.hist"}`, 1)
		if n := relaytest.Val[int64](t, e.dstPool, "SELECT count(*) FROM dw.history"); n != hist || n == 0 {
			t.Fatalf("dw.history has %d rows after the skipped TRUNCATE, want %d", n, hist)
		}
		if n := p.Metric("dispatcher_errors_total"); n != 0 {
			t.Fatalf("%v errors", n)
		}
	})
}

// kill -9 before and after the destination commit in bulk mode: after the restart
// the destination equals the source, nothing lost, nothing applied twice (history
// has no key: a repeated batch would duplicate its rows).
func TestBulkModeKill9BeforeAndAfterTheTargetCommit(t *testing.T) {
	relaytest.EachFlavor(t, func(t *testing.T, fl relaytest.Flavor) {
		e := setup(t, fl)
		e.dwSchema()
		relaytest.Exec(t, e.dstPool, fmt.Sprintf(pgq.PositionTableDDL, "pgq_position"))
		p := relaytest.NewProcess(t, "dispatcher", "disp")
		p.WriteConfig(e.config("bulk", bulkTables))
		e.traffic(150)
		tick := func() {
			if _, ok, err := pgq.Tick(t.Context(), e.srcPool, "q"); err != nil || !ok {
				t.Fatalf("tick: %v %v", ok, err)
			}
		}
		tick()

		before := relaytest.NewGate(t, e.dst, 1)
		before.Guard("pgq_position", "INSERT OR UPDATE", "true")
		p.Start()
		before.WaitBlocked(time.Minute)
		p.Kill()
		before.Open()
		if n := relaytest.Val[int64](t, e.dstPool, "SELECT count(*) FROM dw.history"); n != 0 {
			t.Fatalf("%d history rows after a kill before the commit", n)
		}

		after := relaytest.NewGate(t, e.src, 2)
		after.Guard("pgq.subscription", "UPDATE", "OLD.sub_batch IS NOT NULL AND NEW.sub_batch IS NULL")
		p.Start()
		after.WaitBlocked(time.Minute)
		p.Kill()
		e.checkBulk() // the first batch is the whole of the traffic so far
		after.Open()

		relaytest.Ticker(t, e.srcPool, "q")
		p.Start()
		e.traffic(100)
		relaytest.WaitFor(t, time.Minute, "the queue consumed", relaytest.Drained(t, e.srcPool, "q", "disp"))
		e.checkBulk()
		p.WaitMetric("dispatcher_batches_already_applied_total", 1)
		p.StopInSync()
	})
}

// kill -9 wherever the daemon happens to be, five times while traffic flows, and a
// last restart: the destination equals the source row by row.
func TestBulkModeSurvivesRepeatedKill9UnderTraffic(t *testing.T) {
	t.Parallel()
	e := setup(t, relaytest.Ours)
	e.dwSchema()
	relaytest.Ticker(t, e.srcPool, "q")
	p := relaytest.NewProcess(t, "dispatcher", "disp")
	p.WriteConfig(e.config("bulk", bulkTables))
	for round := 0; round < 5; round++ {
		p.Start()
		e.traffic(30)
		relaytest.WaitFor(t, time.Minute, "a batch applied", func() bool { return p.Metric("dispatcher_batches_total") >= 1 })
		e.traffic(10)
		p.Kill()
	}
	p.Start()
	relaytest.WaitFor(t, time.Minute, "the queue consumed", relaytest.Drained(t, e.srcPool, "q", "disp"))
	e.checkBulk()
}
