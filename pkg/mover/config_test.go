package mover_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/mover"
)

// The shipped example passes --check-config.
func TestExampleConfigPassesCheckConfig(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	path := "../../deploy/examples/queue-mover.toml"
	if code := cli.Main(context.Background(), mover.Tool(), []string{"-c", path, "--check-config"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

func TestConfigDefaultsAndProblems(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := mover.LoadConfig(write("shard7.toml", `src_db = "dbname=a"
dst_db = "postgres://h/b"
queue = "orders"`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Consumer != "shard7" || cfg.DstQueue != "orders" || cfg.FetchSize != 1000 || cfg.SortBufferMB != 16 || cfg.PositionTable != "pgq_position" {
		t.Fatalf("defaults: %+v", cfg)
	}

	_, err = mover.LoadConfig(write("bad.toml", `src_db = "host=x port=notaport"
queue = ""
consumer = "a.b"
fetch_size = 0
loop_delay = "1h"
min_lag = "-1s"
metrics_listen = "nonsense"
position_table = "a.b.c"
dst_qeue = "x"`))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"bad.toml: dst_qeue: unknown key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	// Without the unknown key, every value problem is reported at once.
	_, err = mover.LoadConfig(write("bad2.toml", `src_db = "host=x port=notaport"
queue = ""
consumer = "a.b"
fetch_size = 0
sort_buffer_mb = -1
loop_delay = "1h"
min_lag = "-1s"
metrics_listen = "nonsense"
position_table = "a.b.c"`))
	for _, want := range []string{"src_db: ", "dst_db: required", "queue: required", "consumer: must not contain a dot",
		"fetch_size: want 1 to 1000000", "sort_buffer_mb: want 0 to 4096", "loop_delay: want 10ms to 1m", "min_lag: must not be negative",
		"metrics_listen: want host:port", "position_table: want TABLE or SCHEMA.TABLE"} {
		if err == nil || !strings.Contains(err.Error(), "bad2.toml: "+want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
