package pgq_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgq"
)

func TestDetectTellsOursFromTheExtension(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		db := fl.db(t)
		in, err := pgq.Detect(context.Background(), db.Pool(t))
		if err != nil {
			t.Fatal(err)
		}
		want := pgq.Skytools
		if fl.name == "original" {
			want = pgq.Extension
		}
		if in.Flavor != want || !strings.HasPrefix(in.Version, "3.") || in.Coop != (want == pgq.Skytools) {
			t.Fatalf("Detect = %+v (%s), want %s with a 3.x version", in, in.Flavor, want)
		}
	})
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		cl := pg.Cluster(t)
		in, err := pgq.Detect(context.Background(), cl.DB(t).Pool(t))
		if err != nil || in.Flavor != pgq.NotInstalled || in.Version != "" {
			t.Fatalf("Detect on a plain database = %+v, %v", in, err)
		}
	})
}

func TestAdminCallsAndTheirErrors(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		db := fl.db(t)
		p := db.Pool(t)
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		isErr := func(err, want error, what string) {
			t.Helper()
			if !errors.Is(err, want) {
				t.Fatalf("%s: got %v, want %v", what, err, want)
			}
		}

		created, err := pgq.CreateQueue(ctx, p, "orders")
		if must(err); !created {
			t.Fatal("CreateQueue reported an existing queue")
		}
		if created, err = pgq.CreateQueue(ctx, p, "orders"); err != nil || created {
			t.Fatalf("second CreateQueue: %v, %v", created, err)
		}
		qi, err := pgq.GetQueueInfo(ctx, p, "orders")
		must(err)
		if qi.Name != "orders" || qi.NTables != 3 || qi.TickerMaxCount != 500 || qi.TickerMaxLag != 3*time.Second ||
			qi.TickerIdlePeriod != time.Minute || qi.RotationPeriod != 2*time.Hour || qi.LastTick != 1 {
			t.Fatalf("queue info %+v", qi)
		}
		must(pgq.SetQueueParam(ctx, p, "orders", pgq.ParamTickerMaxCount, "100"))
		must(pgq.SetQueueParam(ctx, p, "orders", pgq.ParamTickerMaxLag, "0"))
		must(pgq.SetQueueParam(ctx, p, "orders", pgq.ParamTickerIdlePeriod, "0"))
		if err := pgq.SetQueueParam(ctx, p, "orders", "no_such_param", "1"); err == nil {
			t.Fatal("SetQueueParam accepted an unknown parameter")
		}
		isErr(pgq.SetQueueParam(ctx, p, "nope", pgq.ParamTickerPaused, "true"), pgq.ErrQueueNotFound, "SetQueueParam on a missing queue")
		qs, err := pgq.Queues(ctx, p)
		must(err)
		if len(qs) != 1 || qs[0].TickerMaxCount != 100 {
			t.Fatalf("Queues = %+v", qs)
		}
		_, err = pgq.GetQueueInfo(ctx, p, "nope")
		isErr(err, pgq.ErrQueueNotFound, "GetQueueInfo on a missing queue")

		if created, err := pgq.Register(ctx, p, "orders", "c"); err != nil || !created {
			t.Fatalf("Register: %v %v", created, err)
		}
		if created, err := pgq.Register(ctx, p, "orders", "c"); err != nil || created {
			t.Fatalf("second Register: %v %v", created, err)
		}
		_, err = pgq.Register(ctx, p, "nope", "c")
		isErr(err, pgq.ErrQueueNotFound, "Register on a missing queue")
		_, err = pgq.RegisterAt(ctx, p, "orders", "c", 999)
		isErr(err, pgq.ErrTickNotFound, "RegisterAt a missing tick")
		_, err = pgq.Insert(ctx, p, "nope", pgq.NewEvent("t", "d"))
		isErr(err, pgq.ErrQueueNotFound, "Insert into a missing queue")

		last, err := pgq.ForceTick(ctx, p, "orders")
		must(err)
		tick, ok, err := pgq.Tick(ctx, p, "orders")
		if err != nil || !ok || tick <= last {
			t.Fatalf("Tick after ForceTick: %d %v %v (last was %d)", tick, ok, err, last)
		}
		_, err = pgq.ForceTick(ctx, p, "nope")
		isErr(err, pgq.ErrQueueNotFound, "ForceTick on a missing queue")

		var batch int64
		must(p.QueryRow(ctx, "SELECT pgq.next_batch('orders', 'c')").Scan(&batch))
		bi, err := pgq.GetBatchInfo(ctx, p, batch)
		must(err)
		if bi.Queue != "orders" || bi.Consumer != "c" || bi.PrevTick != 1 || bi.Tick != tick || bi.TickAt.Before(bi.PrevTickAt) {
			t.Fatalf("batch info %+v", bi)
		}
		ci, err := pgq.GetConsumerInfo(ctx, p, "orders", "c")
		must(err)
		if ci.Queue != "orders" || ci.Consumer != "c" || ci.LastTick != 1 || ci.CurrentBatch != batch || ci.NextTick != tick {
			t.Fatalf("consumer info %+v", ci)
		}
		_, err = p.Exec(ctx, "SELECT pgq.finish_batch($1)", batch)
		must(err)
		_, err = pgq.GetBatchInfo(ctx, p, batch)
		isErr(err, pgq.ErrBatchNotFound, "GetBatchInfo on a finished batch")
		_, err = p.Exec(ctx, "SELECT * FROM pgq.get_batch_events($1)", batch)
		if !errors.Is(pgq.Classify(err), pgq.ErrBatchNotFound) {
			t.Fatalf("get_batch_events on a finished batch classified as %v", err)
		}
		_, err = pgq.GetConsumerInfo(ctx, p, "orders", "nobody")
		isErr(err, pgq.ErrNotSubscribed, "GetConsumerInfo of an unregistered consumer")
		cs, err := pgq.Consumers(ctx, p, "")
		if must(err); len(cs) != 1 {
			t.Fatalf("Consumers = %+v", cs)
		}

		err = pgq.DropQueue(ctx, p, "orders", false)
		isErr(err, pgq.ErrQueueInUse, "DropQueue with a consumer")
		if removed, err := pgq.Unregister(ctx, p, "orders", "c"); err != nil || !removed {
			t.Fatalf("Unregister: %v %v", removed, err)
		}
		if removed, err := pgq.Unregister(ctx, p, "orders", "c"); err != nil || removed {
			t.Fatalf("second Unregister: %v %v", removed, err)
		}
		must(pgq.DropQueue(ctx, p, "orders", false))
		isErr(pgq.DropQueue(ctx, p, "orders", true), pgq.ErrQueueNotFound, "DropQueue of a dropped queue")
	})
}

func TestRunStopsWithANamedErrorWhenNotRegistered(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		e := setup(t, fl)
		c, err := pgq.NewConsumer(e.pool, fastConfig(e.queue, "ghost"), &collector{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = c.Run(ctx)
		if !errors.Is(err, pgq.ErrNotSubscribed) {
			t.Fatalf("Run of an unregistered consumer: %v, want ErrNotSubscribed", err)
		}
		if msg := err.Error(); !strings.Contains(msg, `queue "q"`) || !strings.Contains(msg, `consumer "ghost"`) {
			t.Fatalf("error %q does not name queue and consumer", msg)
		}
	})
}

func TestConfigValidateNamesEveryProblem(t *testing.T) {
	t.Parallel()
	err := pgq.Config{MinCount: -1, LoopDelay: -time.Second, DeadInterval: time.Second}.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"Queue is empty", "Consumer is empty", "MinCount", "LoopDelay", "DeadInterval is only for subconsumers"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %q", err, want)
		}
	}
	if err := (pgq.Config{Queue: "q", Consumer: "c"}).Validate(); err != nil {
		t.Fatalf("minimal config rejected: %v", err)
	}
}
