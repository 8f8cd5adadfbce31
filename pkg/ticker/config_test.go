package ticker

import (
	"strings"
	"testing"

	"github.com/skytools-go/skytools/pkg/lifecycle"
)

func TestConfigValidation(t *testing.T) {
	for _, c := range []struct {
		name, text string
		problems   []string
	}{
		{"defaults", "", nil},
		{"example", `connstr = "host=/var/run/postgresql"
databases = ["app", "billing"]
ticker_period = "10ms"
fail_after = "5m"`, nil},
		{"url", `connstr = "postgres://pgqd@db1:5432?sslmode=require"`, nil},
		{"dbname in connstr", `connstr = "host=/tmp dbname=app"`, []string{"connstr: must not name a database"}},
		{"dbname in url", `connstr = "postgres://db1/app"`, []string{"connstr: must not name a database"}},
		{"bad connstr", `connstr = "host=/tmp port=notaport"`, []string{"connstr: "}},
		{"too fast", `ticker_period = "1ms"`, []string{"ticker_period: must be at least 10ms"}},
		{"zero periods", `maint_period = "0s"
check_period = "10ms"`, []string{"maint_period: must be at least 1s", "check_period: must be at least 1s"}},
		{"duplicate database", `databases = ["a", "a", ""]`, []string{`databases: lists "a" twice`, "databases: contains an empty name"}},
		{"negative fail_after", `fail_after = "-1s"`, []string{"fail_after: must not be negative"}},
		{"empty initial database", `initial_database = ""`, []string{"initial_database: must not be empty"}},
		{"old ini key", `ticker_period = "1s"
base_connstr = "host=/tmp"`, []string{"base_connstr: unknown key"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			err := lifecycle.Decode("pgqd.toml", c.text, &cfg)
			if len(c.problems) == 0 {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want %q", c.problems)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(c.problems) {
				t.Fatalf("problems %q, want %q", lines, c.problems)
			}
			for i, p := range c.problems {
				if !strings.HasPrefix(lines[i], "pgqd.toml: "+p) {
					t.Errorf("problem %q, want prefix %q", lines[i], "pgqd.toml: "+p)
				}
			}
		})
	}
}

func TestMaintOpStatements(t *testing.T) {
	arg := func(s string) *string { return &s }
	for _, c := range []struct {
		op      maintOp
		sql     string
		args    int
		wantErr bool
	}{
		{maintOp{"pgq.maint_rotate_tables_step1", arg("orders")}, `SELECT "pgq"."maint_rotate_tables_step1"($1)`, 1, false},
		{maintOp{"pgq.maint_rotate_tables_step2", nil}, `SELECT "pgq"."maint_rotate_tables_step2"()`, 0, false},
		{maintOp{"vacuum", arg("pgq.tick")}, `VACUUM "pgq"."tick"`, 0, false},
		{maintOp{"Vacuum Analyze", arg("londiste.completed")}, `VACUUM ANALYZE "londiste"."completed"`, 0, false},
		{maintOp{"vacuum", nil}, "", 0, true},
		{maintOp{"pgq.x; drop table y", nil}, "", 0, true},
		{maintOp{"a.b.c", nil}, "", 0, true},
	} {
		sql, args, err := c.op.statement()
		if (err != nil) != c.wantErr || sql != c.sql || len(args) != c.args {
			t.Errorf("%v: %q %v %v", c.op, sql, args, err)
		}
	}
	for v, want := range map[any]bool{nil: false, int32(0): false, int32(3): true, int64(-1): true, "0": false, "2": true, "x": false, true: true} {
		if got := wantsRepeat(v); got != want {
			t.Errorf("wantsRepeat(%#v) = %v", v, got)
		}
	}
}

func TestBackoffGrowsWithJitterAndResets(t *testing.T) {
	b := backoff{min: 1e9, max: 8e9}
	var prev float64
	for i := 0; i < 6; i++ {
		d := float64(b.next())
		if d < 0.8e9 || d > 8e9*1.2 {
			t.Fatalf("step %d: %v out of bounds", i, d)
		}
		if i > 0 && i < 4 && d < prev*1.2 {
			t.Fatalf("step %d did not grow: %v after %v", i, d, prev)
		}
		prev = d
	}
	b.reset()
	if d := b.next(); d > 1.2e9 {
		t.Fatalf("after reset: %v", d)
	}
}
