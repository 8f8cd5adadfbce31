package relay

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestInstanceName(t *testing.T) {
	for path, want := range map[string]string{
		"/etc/skytools/queue-mover/shard1.toml": "shard1",
		"orders.toml":                           "orders",
		"dir/name.with.dots.toml":               "name.with.dots",
		"noext":                                 "noext",
	} {
		if got := InstanceName(path); got != want {
			t.Errorf("InstanceName(%q) = %q, want %q", path, got, want)
		}
	}
}

// What a handler counts reaches the metrics only when its batch commits: a failed
// attempt's counts are dropped (the batch comes again and counts again), and a batch
// found already applied adds nothing.
func TestTallyCountsOnlyCommittedBatches(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry(), "tool")
	tl := newTally(m)
	skipped := func() float64 { return testutil.ToFloat64(m.skipped.WithLabelValues("bad", "public.t")) }
	rows := func() float64 { return testutil.ToFloat64(m.rows.WithLabelValues("public.t")) }

	tl.Begin()
	tl.Skip("bad", "public.t", 2)
	tl.Wrote("public.t", 10)
	tl.discard() // the attempt failed
	tl.Begin()
	tl.Skip("bad", "public.t", 2)
	tl.Wrote("public.t", 10)
	if n := tl.commit(false); n != 2 || skipped() != 2 || rows() != 10 {
		t.Fatalf("after one committed batch: commit %d, skipped %v, rows %v; want 2, 2, 10", n, skipped(), rows())
	}
	tl.Skip("bad", "public.t", 5) // left over from an attempt whose handler did not finish
	if n := tl.commit(true); n != 0 || skipped() != 2 {
		t.Fatalf("a batch found applied counted %d (skipped %v)", n, skipped())
	}
	tl.Begin()
	if n := tl.commit(false); n != 0 || skipped() != 2 || rows() != 10 {
		t.Fatalf("an empty batch changed the counts: %d, %v, %v", n, skipped(), rows())
	}
}
