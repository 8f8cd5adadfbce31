package dispatch_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/relay/relaytest"
)

// histRows returns every row the destination holds for hist: the template table and
// all tables made from it (hist_<period>), each read without its children.
func (e *env) histRows() []string {
	e.t.Helper()
	union := relaytest.Val[*string](e.t, e.dstPool, `SELECT string_agg(format('SELECT * FROM ONLY public.%I', tablename), ' UNION ALL ')
  FROM pg_tables WHERE schemaname = 'public' AND (tablename = 'hist' OR tablename ~ '^hist_\d')`)
	if union == nil {
		return nil
	}
	return rows(e.t, e.dstPool, *union)
}

// kill -9 before and after the destination commit in table and cube mode (bulk mode
// has its own test): after each restart the destination holds every hist row exactly
// once. hist has no key, so a batch applied twice would show as duplicate rows, and
// the partition/period tables a killed batch created are rolled back with it.
func TestTableAndCubeModesKill9BeforeAndAfterTheTargetCommit(t *testing.T) {
	for _, c := range []struct{ mode, table string }{
		{"table", "[[table]]\nname = \"hist\"\npart_field = \"mtime\"\npart_period = \"day\"\n"},
		{"cube", "[[table]]\nname = \"hist\"\nkeep = \"all\"\n"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			relaytest.EachFlavor(t, func(t *testing.T, fl relaytest.Flavor) {
				e := setup(t, fl)
				relaytest.Exec(t, e.dstPool, "CREATE TABLE hist (tid int, aid int, delta int, note text, mtime timestamptz)")
				relaytest.Exec(t, e.dstPool, fmt.Sprintf(pgq.PositionTableDDL, "pgq_position"))
				// Rows of the last days, so that table mode spreads them over partitions.
				relaytest.Exec(t, e.srcPool, "ALTER TABLE hist ALTER COLUMN mtime SET DEFAULT now() - make_interval(days => (random() * 3)::int)")
				p := relaytest.NewProcess(t, "dispatcher", "disp")
				p.WriteConfig(e.config(c.mode, c.table))
				e.traffic(150)
				if _, ok, err := pgq.Tick(t.Context(), e.srcPool, "q"); err != nil || !ok {
					t.Fatalf("tick: %v %v", ok, err)
				}

				before := relaytest.NewGate(t, e.dst, 1)
				before.Guard("pgq_position", "INSERT OR UPDATE", "true")
				p.Start()
				before.WaitBlocked(time.Minute)
				p.Kill()
				before.Open()
				if got := e.histRows(); len(got) != 0 {
					t.Fatalf("%d hist rows after a kill before the commit", len(got))
				}

				after := relaytest.NewGate(t, e.src, 2)
				after.Guard("pgq.subscription", "UPDATE", "OLD.sub_batch IS NOT NULL AND NEW.sub_batch IS NULL")
				p.Start()
				after.WaitBlocked(time.Minute)
				p.Kill()
				// The first batch is the whole of the traffic so far.
				sameRows(t, "hist after the target commit", e.histRows(), rows(t, e.srcPool, "SELECT * FROM hist"))
				after.Open()

				relaytest.Ticker(t, e.srcPool, "q")
				p.Start()
				e.traffic(100)
				relaytest.WaitFor(t, time.Minute, "the queue consumed", relaytest.Drained(t, e.srcPool, "q", "disp"))
				sameRows(t, "hist", e.histRows(), rows(t, e.srcPool, "SELECT * FROM hist"))
				p.WaitMetric("dispatcher_batches_already_applied_total", 1)
				periods := relaytest.Val[int64](t, e.dstPool, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^hist_\d'`)
				if periods == 0 || c.mode == "table" && periods < 2 {
					t.Fatalf("%d period tables of hist", periods)
				}
				p.StopInSync()
			})
		})
	}
}
