package mover_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/relay/relaytest"
)

// The admin commands through the binary: register, status, the lost position that a
// destination restored from a backup causes (the daemon refuses to guess and exits
// 1), rewind to the destination's tick, reset of a destination position that is
// wrong, and unregister.
func TestCommandsRegisterRewindResetUnregister(t *testing.T) {
	t.Parallel()
	e := setupStill(t, relaytest.Ours, "")
	ctx := context.Background()
	p := relaytest.NewProcess(t, "queue-mover", "ops")
	p.WriteConfig(e.config(""))
	run := func(want string, args ...string) string {
		t.Helper()
		out, code := p.Run(args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("queue-mover %s: exit %d, want output with %q:\n%s", strings.Join(args, " "), code, want, out)
		}
		return out
	}
	tick := func() int64 {
		t.Helper()
		id, ok, err := pgq.Tick(ctx, e.srcPool, "q")
		if err != nil || !ok {
			t.Fatalf("tick: %v %v", ok, err)
		}
		return id
	}
	moveAll := func() {
		t.Helper()
		p.Start()
		relaytest.WaitFor(t, time.Minute, "everything moved", relaytest.QueueDone(t, e.srcPool, "q", "ops"))
		p.Signal(syscall.SIGTERM)
		if code := p.Wait(time.Minute); code != 0 {
			t.Fatalf("exit %d", code)
		}
	}
	moved := func() int { return len(events(t, e.dstPool, "moved")) }

	run("not registered", "status")
	run("consumer ops registered on queue q", "register")
	run("was already registered", "register")
	produce(t, e.srcPool, "q", 0, 100)
	t1 := tick()
	moveAll()
	run("in sync", "status")

	// The destination is restored from a backup taken at t1 while the source went on.
	produce(t, e.srcPool, "q", 100, 50)
	tick()
	moveAll()
	relaytest.Exec(t, e.dstPool, "UPDATE pgq_position SET last_tick_id = $1", t1)
	relaytest.Exec(t, e.dstPool, "DELETE FROM pgq.event_template WHERE ev_id > (SELECT ev_id FROM pgq.event_template ORDER BY ev_id OFFSET 99 LIMIT 1)")
	if n := moved(); n != 100 {
		t.Fatalf("%d events after the simulated restore, want 100", n)
	}
	run("LOST POSITION", "status")
	produce(t, e.srcPool, "q", 150, 5) // the next batch shows the disagreement
	tick()
	p.Start()
	if code := p.Wait(time.Minute); code != 1 || !strings.Contains(p.Stderr(), "lost position") {
		t.Fatalf("daemon with a lost position: exit %d, want 1 naming it:\n%s", code, p.Stderr())
	}
	run("rewound to tick", "rewind")
	moveAll()
	if n := moved(); n != 155 {
		t.Fatalf("%d events after the rewind, want 155", n)
	}

	// A destination position that is simply wrong: forget it, go on from the source.
	relaytest.Exec(t, e.dstPool, "UPDATE pgq_position SET last_tick_id = 999999")
	run("LOST POSITION", "status")
	run("destination position of consumer ops on queue q cleared", "reset")
	run("no position yet", "status")
	produce(t, e.srcPool, "q", 155, 10)
	tick()
	moveAll()
	if n := moved(); n != 165 {
		t.Fatalf("%d events after the reset, want 165", n)
	}
	run("in sync", "status", "--json")

	run("consumer ops unregistered from queue q", "unregister")
	out := run("not registered", "status")
	if !strings.Contains(out, "destination tick  -") {
		t.Fatalf("the destination position survived unregister:\n%s", out)
	}
}
