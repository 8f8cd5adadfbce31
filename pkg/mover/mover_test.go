package mover_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/pgtest"
	"github.com/skytools-go/skytools/pkg/relay/relaytest"
)

// Two sources (fan-in) moved into one destination queue: every event arrives once,
// with its type, data, extras (NULL and empty kept apart) and time; ids are the
// destination's own, so the two streams never collide.
func TestMovesEveryEventExactlyWithItsPayloadAndTime(t *testing.T) {
	relaytest.EachFlavor(t, func(t *testing.T, fl relaytest.Flavor) {
		a := setup(t, fl, "a")
		b := &env{t: t, src: relaytest.DB(t, servers.Src, fl), dst: a.dst, dstPool: a.dstPool}
		b.srcPool = b.src.Pool(t)
		relaytest.Queue(t, b.srcPool, "q", "b")
		relaytest.Ticker(t, b.srcPool, "q")

		produceTagged(t, a.srcPool, "q", "a", 0, 1000)
		produceTagged(t, b.srcPool, "q", "b", 5000, 700)
		pa := relaytest.NewProcess(t, "queue-mover", "a")
		pa.WriteConfig(a.config(""))
		pa.Start()
		pb := relaytest.NewProcess(t, "queue-mover", "b")
		pb.WriteConfig(b.config("min_count = 100\nmin_interval = \"100ms\""))
		pb.Start()
		produceTagged(t, a.srcPool, "q", "a", 1000, 333)
		produceTagged(t, b.srcPool, "q", "b", 5700, 1)

		relaytest.WaitFor(t, time.Minute, "source a moved", relaytest.Drained(t, a.srcPool, "q", "a"))
		relaytest.WaitFor(t, time.Minute, "source b moved", relaytest.Drained(t, b.srcPool, "q", "b"))

		moved := events(t, a.dstPool, "moved")
		want := append(events(t, a.srcPool, "q"), events(t, b.srcPool, "q")...)
		if len(moved) != len(want) || len(want) != 2034 {
			t.Fatalf("moved %d events, sources have %d (want 2034)", len(moved), len(want))
		}
		// Each source's events arrive in their order; the two streams interleave.
		var fromA, fromB []row
		for _, r := range moved {
			if r.Ex3.String == "b" {
				fromB = append(fromB, r)
			} else {
				fromA = append(fromA, r)
			}
		}
		for name, pair := range map[string][2][]row{"a": {fromA, want[:1333]}, "b": {fromB, want[1333:]}} {
			got, exp := pair[0], pair[1]
			if len(got) != len(exp) {
				t.Fatalf("source %s: %d events moved, want %d", name, len(got), len(exp))
			}
			for i := range exp {
				if !got[i].Time.Equal(exp[i].Time) {
					t.Fatalf("source %s event %d: time %v, want %v", name, i, got[i].Time, exp[i].Time)
				}
				got[i].Time = exp[i].Time
				if !reflect.DeepEqual(got[i], exp[i]) {
					t.Fatalf("source %s event %d:\n got %+v\nwant %+v", name, i, got[i], exp[i])
				}
			}
		}
		dstIDs := ids(t, a.dstPool, "moved")
		if len(slices.Compact(slices.Clone(dstIDs))) != len(dstIDs) {
			t.Fatal("duplicate event ids in the destination queue")
		}
		// The destination's sequence moved once per event, as insert_event does.
		last := relaytest.Val[int64](t, a.dstPool, "SELECT pgq.seq_getval(queue_event_seq) FROM pgq.queue WHERE queue_name = 'moved'")
		if last != dstIDs[len(dstIDs)-1] {
			t.Fatalf("destination sequence at %d, last id %d: want one value per event", last, dstIDs[len(dstIDs)-1])
		}
		// The metrics count what was moved.
		pa.WaitMetric(`queue_mover_rows_written_total{table="moved"}`, 1333)
		pa.WaitMetric("queue_mover_events_total", 1333)
		pa.Signal(syscall.SIGTERM)
		if code := pa.Wait(time.Minute); code != 0 {
			t.Fatalf("exit code %d after SIGTERM", code)
		}
	})
}

// kill -9 while the batch's writes are done but the destination transaction has not
// committed, and again after it committed but before the source batch was finished:
// after each restart, every event is in the destination exactly once.
func TestKill9BeforeAndAfterTheTargetCommitNeitherLosesNorRepeats(t *testing.T) {
	relaytest.EachFlavor(t, func(t *testing.T, fl relaytest.Flavor) {
		e := setupStill(t, fl, "mover")
		relaytest.Exec(t, e.dstPool, fmt.Sprintf(pgq.PositionTableDDL, "pgq_position"))
		p := relaytest.NewProcess(t, "queue-mover", "mover")
		p.WriteConfig(e.config(""))

		// 1: stopped at the position update, the last statement before the commit.
		before := relaytest.NewGate(t, e.dst, 1)
		before.Guard("pgq_position", "INSERT OR UPDATE", "true")
		produce(t, e.srcPool, "q", 0, 500)
		if _, ok, err := pgq.Tick(context.Background(), e.srcPool, "q"); err != nil || !ok {
			t.Fatalf("tick: %v %v", ok, err)
		}
		p.Start()
		before.WaitBlocked(time.Minute)
		p.Kill()
		before.Open()
		if n := len(events(t, e.dstPool, "moved")); n != 0 {
			t.Fatalf("%d events in the destination after a kill before the commit", n)
		}

		// 2: stopped in finish_batch in the source, after the destination committed.
		after := relaytest.NewGate(t, e.src, 2)
		after.Guard("pgq.subscription", "UPDATE", "OLD.sub_batch IS NOT NULL AND NEW.sub_batch IS NULL")
		p.Start()
		after.WaitBlocked(time.Minute)
		p.Kill()
		if n := len(events(t, e.dstPool, "moved")); n != 500 {
			t.Fatalf("%d events in the destination after a kill after the commit, want 500", n)
		}
		after.Open()
		relaytest.Ticker(t, e.srcPool, "q")

		// 3: traffic goes on; the restarted mover finishes the applied batch without
		// applying it again, and moves the rest.
		produce(t, e.srcPool, "q", 500, 700)
		p.Start()
		produce(t, e.srcPool, "q", 1200, 300)
		relaytest.WaitFor(t, time.Minute, "everything moved", relaytest.Drained(t, e.srcPool, "q", "mover"))
		moved, src := events(t, e.dstPool, "moved"), events(t, e.srcPool, "q")
		if len(moved) != 1500 || len(src) != 1500 {
			t.Fatalf("destination has %d events, source %d; want 1500 each", len(moved), len(src))
		}
		for i := range src {
			if moved[i].Data != src[i].Data || !moved[i].Time.Equal(src[i].Time) {
				t.Fatalf("event %d: moved %+v, source %+v", i, moved[i], src[i])
			}
		}
		p.WaitMetric("queue_mover_batches_already_applied_total", 1)
		p.StopInSync()
	})
}

// The daemon under a notify socket: READY=1, STATUS= with the totals, watchdog pings,
// SIGHUP with a new dst_queue (a bad file is refused and the old config kept), and
// SIGTERM with STOPPING=1 and exit 0.
func TestNotifyReloadAndStop(t *testing.T) {
	t.Parallel()
	e := setup(t, relaytest.Ours, "orders")
	relaytest.Queue(t, e.dstPool, "other", "")
	p := relaytest.NewProcess(t, "queue-mover", "orders")
	p.WriteConfig(e.config(""))
	produce(t, e.srcPool, "q", 0, 120)
	p.Start()
	p.Notify.Until(t, time.Minute, "status with the totals", func(m string) bool {
		return strings.HasPrefix(m, "STATUS=") && strings.Contains(m, " batches, 120 events, lag ")
	})
	p.Notify.Until(t, time.Minute, "watchdog ping", pgtest.Is("WATCHDOG=1"))

	// A broken file: logged, old config kept.
	if err := writeFile(p.Config, "queue = 3\n"); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	p.Notify.Until(t, time.Minute, "RELOADING=1", pgtest.Is("RELOADING=1"))
	p.Notify.Until(t, time.Minute, "READY=1", pgtest.Is("READY=1"))
	produce(t, e.srcPool, "q", 120, 10)
	relaytest.WaitFor(t, time.Minute, "events moved with the old config", relaytest.Drained(t, e.srcPool, "q", "orders"))
	if n := len(events(t, e.dstPool, "moved")); n != 130 {
		t.Fatalf("%d events in moved, want 130", n)
	}
	if !strings.Contains(p.Stderr(), "new configuration rejected") {
		t.Fatalf("bad reload not logged:\n%s", p.Stderr())
	}

	p.WriteConfig(strings.Replace(e.config(""), `dst_queue = "moved"`, `dst_queue = "other"`, 1))
	p.Signal(syscall.SIGHUP)
	p.Notify.Until(t, time.Minute, "READY=1 after reload", pgtest.Is("READY=1"))
	produce(t, e.srcPool, "q", 130, 7)
	relaytest.WaitFor(t, time.Minute, "events moved to the new queue", func() bool { return len(events(t, e.dstPool, "other")) == 7 })
	if n := len(events(t, e.dstPool, "moved")); n != 130 {
		t.Fatalf("%d events in moved after the reload, want 130", n)
	}

	p.Signal(syscall.SIGTERM)
	p.Notify.Until(t, time.Minute, "STOPPING=1", pgtest.Is("STOPPING=1"))
	if code := p.Wait(time.Minute); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
}

// A destination queue that does not exist needs an operator: the daemon says which
// and exits 1 (systemd restarts it), rather than retrying forever.
func TestMissingDestinationQueueEndsTheDaemon(t *testing.T) {
	t.Parallel()
	e := setup(t, relaytest.Ours, "lost")
	p := relaytest.NewProcess(t, "queue-mover", "lost")
	p.WriteConfig(strings.Replace(e.config(""), `dst_queue = "moved"`, `dst_queue = "nowhere"`, 1))
	produce(t, e.srcPool, "q", 0, 3)
	p.Start()
	if code := p.Wait(time.Minute); code != 1 || !strings.Contains(p.Stderr(), "destination queue nowhere: ") || !strings.Contains(p.Stderr(), "queue not found") {
		t.Fatalf("exit %d, want 1 naming the queue:\n%s", code, p.Stderr())
	}
}
