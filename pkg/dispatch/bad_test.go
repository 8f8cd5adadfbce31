package dispatch_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgtest"
	"github.com/skytools-go/skytools/pkg/relay/relaytest"
)

// A malformed event stops its batch with an error naming the event: nothing of the
// batch is applied, the daemon keeps retrying and says so in STATUS=. A SIGHUP with
// on_bad_event = "skip" applies the batch without it, counted; SIGTERM stops cleanly.
func TestBadPayloadStopsTheBatchUntilReloadedWithSkip(t *testing.T) {
	relaytest.EachFlavor(t, func(t *testing.T, fl relaytest.Flavor) {
		e := setup(t, fl)
		e.dwSchema()
		relaytest.Ticker(t, e.srcPool, "q")
		p := relaytest.NewProcess(t, "dispatcher", "disp")
		p.WriteConfig(e.config("bulk", bulkTables))
		p.Start()

		e.traffic(20)
		relaytest.WaitFor(t, time.Minute, "the first traffic applied", relaytest.Drained(t, e.srcPool, "q", "disp"))
		e.checkBulk()
		before := rows(t, e.dstPool, "SELECT * FROM dw.accounts_u")

		// One transaction: good changes around two bad events (a broken escape, and
		// a jsontriga row that is not an object).
		var badID int64
		err := e.srcPool.QueryRow(t.Context(), `WITH a AS (INSERT INTO acc_url VALUES (1001, 1, 0) RETURNING 1),
 b AS (SELECT pgq.insert_event('q', 'I:aid', 'aid=%zz&bid=1', 'public.acc_url', NULL, NULL, NULL) AS id),
 c AS (SELECT pgq.insert_event('q', '{"op":"INSERT","table":["public","acc_json"],"pkey":["aid"]}', '[1]', 'public.acc_json', NULL, NULL, NULL)),
 d AS (INSERT INTO acc_json VALUES (1001, 1, 0) RETURNING 1)
SELECT id FROM a, b, c, d`).Scan(&badID)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("event %d (table public.acc_url): column \"aid\": bad escape", badID)
		p.Notify.Until(t, time.Minute, "STATUS= naming the bad event", func(m string) bool {
			return strings.HasPrefix(m, "STATUS=") && strings.Contains(m, "retrying after error") && strings.Contains(m, want)
		})
		relaytest.WaitFor(t, time.Minute, "a second attempt", func() bool { return p.Metric("dispatcher_errors_total") >= 2 })
		sameRows(t, "dw.accounts_u while the batch fails", rows(t, e.dstPool, "SELECT * FROM dw.accounts_u"), before)
		if !strings.Contains(p.Stderr(), fmt.Sprintf("event %d (table public.acc_url)", badID)) {
			t.Fatalf("the log does not name the event:\n%s", p.Stderr())
		}

		p.WriteConfig(e.config("bulk", "on_bad_event = \"skip\"\n"+bulkTables))
		p.Signal(syscall.SIGHUP)
		p.Notify.Until(t, time.Minute, "READY=1 after reload", pgtest.Is("READY=1"))
		relaytest.WaitFor(t, time.Minute, "the queue consumed", relaytest.Drained(t, e.srcPool, "q", "disp"))
		e.checkBulk()
		for _, tbl := range []string{"public.acc_url", "public.acc_json"} {
			p.WaitMetric(`dispatcher_events_skipped_total{reason="bad_event",table="`+tbl+`"}`, 1)
		}
		p.Signal(syscall.SIGTERM)
		p.Notify.Until(t, time.Minute, "STOPPING=1", pgtest.Is("STOPPING=1"))
		if code := p.Wait(time.Minute); code != 0 {
			t.Fatalf("exit code %d after SIGTERM", code)
		}
	})
}
