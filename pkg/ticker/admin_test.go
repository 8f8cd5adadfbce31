package ticker

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/skytools-go/skytools/pkg/cli"
)

// pgqdCommand runs a pgqd command line in-process.
func pgqdCommand(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), Tool(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func expectCommand(t *testing.T, wantCode int, wantOut string, args ...string) string {
	t.Helper()
	code, out, errb := pgqdCommand(t, args...)
	if code != wantCode || !strings.Contains(out+errb, wantOut) {
		t.Fatalf("pgqd %s: exit %d, stdout %q, stderr %q; want exit %d and %q", strings.Join(args, " "), code, out, errb, wantCode, wantOut)
	}
	return out
}

func TestAdminCommands(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		db := f.shared.DB(t)
		d := []string{"-d", db.ConnString}
		cmd := func(args ...string) []string { return append(append([]string{}, d...), args...) }

		expectCommand(t, 0, "queue orders created", cmd("create-queue", "orders")...)
		expectCommand(t, 0, "queue orders already exists", cmd("create-queue", "orders")...)
		expectCommand(t, 0, "consumer mover registered on queue orders", cmd("register", "orders", "mover")...)
		expectCommand(t, 0, "already registered", cmd("register", "orders", "mover")...)
		expectCommand(t, 0, "queue orders: ticker_max_lag = 0", cmd("set-queue", "orders", "ticker_max_lag", "0")...)
		expectCommand(t, 0, "queue orders: ticker_max_count = 10", cmd("set-queue", "orders", "queue_ticker_max_count", "10")...)
		expectCommand(t, 1, "orders", cmd("set-queue", "orders", "no_such_param", "1")...)
		expectCommand(t, 1, `queue "nosuch"`, cmd("register", "nosuch", "c")...)
		expectCommand(t, 2, "usage: pgqd register QUEUE CONSUMER", cmd("register", "orders")...)

		// status, as a table and as JSON
		out := expectCommand(t, 0, "QUEUE", cmd("status")...)
		for _, want := range []string{"database " + db.Name + ": pgq", "orders", "mover", "CONSUMER"} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
		out = expectCommand(t, 0, "{", cmd("status", "--json")...)
		var r statusReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		wantFlavor := map[string]string{"ours": "skytools", "original": "extension"}[f.name]
		if r.Database != db.Name || r.PgQ.Flavor != wantFlavor || len(r.Queues) != 1 || r.Queues[0].Name != "orders" ||
			r.Queues[0].Consumers != 1 || len(r.Consumers) != 1 || r.Consumers[0].Name != "mover" {
			t.Fatalf("status --json: %+v", r)
		}

		// tick waits for pgqd: without it, it times out; with it, it reports the tick.
		expectCommand(t, 1, "no tick within 300ms: is pgqd running", cmd("tick", "orders", "--timeout", "300ms")...)
		runDaemon(t, testConfig(db.Cluster, db.Name))
		expectCommand(t, 0, "queue orders: tick ", cmd("tick", "orders", "--timeout", "30s")...)

		expectCommand(t, 1, "use --force", cmd("drop-queue", "orders")...)
		expectCommand(t, 0, "consumer mover unregistered", cmd("unregister", "orders", "mover")...)
		expectCommand(t, 0, "was not registered", cmd("unregister", "orders", "mover")...)
		expectCommand(t, 0, "consumer c2 registered", cmd("register", "orders", "c2")...)
		expectCommand(t, 0, "queue orders dropped", cmd("drop-queue", "orders", "--force")...)
		out = expectCommand(t, 0, "no queues", cmd("status")...)
		if !strings.Contains(out, "no consumers") {
			t.Fatalf("status after drop:\n%s", out)
		}
	})
}

func TestStatusWithoutPgqSaysHowToInstall(t *testing.T) {
	db := flavours[0].shared.Cluster(t).DB(t) // a plain database from template1
	expectCommand(t, 1, "install it with: pgqd -d", "-d", db.ConnString, "status")
}

func TestInstallCommandIsIdempotent(t *testing.T) {
	db := flavours[0].shared.Cluster(t).DB(t)
	expectCommand(t, 0, "installed", "-d", db.ConnString, "install")
	expectCommand(t, 0, "already installed, nothing to do", "-d", db.ConnString, "install")
}

func TestInstallRefusesTheExtension(t *testing.T) {
	for _, f := range flavours {
		if f.name != "original" {
			continue
		}
		db := f.shared.DB(t)
		expectCommand(t, 1, "part of extension pgq", "-d", db.ConnString, "install")
	}
}
