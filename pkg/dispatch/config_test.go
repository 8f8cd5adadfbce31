package dispatch_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/dispatch"
)

// Every shipped example passes --check-config.
func TestExampleConfigsPassCheckConfig(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"dispatcher-table.toml", "dispatcher-cube.toml", "dispatcher-bulk.toml"} {
		var out, errb bytes.Buffer
		path := filepath.Join("../../deploy/examples", name)
		if code := cli.Main(context.Background(), dispatch.Tool(), []string{"-c", path, "--check-config"}, &out, &errb); code != 0 {
			t.Errorf("%s: exit %d: %s", name, code, errb.String())
		}
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
	const base = "src_db = \"dbname=a\"\ndst_db = \"dbname=b\"\nqueue = \"q\"\n"
	cfg, err := dispatch.LoadConfig(write("dw.toml", base+`mode = "cube"
[[table]]
name = "orders"
[[table]]
name = "s.lines"
target = "t.lines"
keep = "all"
part_period = "month"`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Tables[0], cfg.Tables[1]
	if cfg.Consumer != "dw" || cfg.OnBadEvent != "stop" || a.Name != "public.orders" || a.Target != "public.orders" ||
		a.PartPeriod != dispatch.Day || a.Keep != "latest" || a.PartTemplate != dispatch.DefaultTemplate ||
		b.Target != "t.lines" || b.PartTemplate != dispatch.DefaultTemplateKeepAll {
		t.Fatalf("defaults: %+v", cfg)
	}

	_, err = dispatch.LoadConfig(write("bad.toml", base+`mode = "bulk"
on_bad_event = "ignore"
[[table]]
name = "a"
keep = "all"
part_field = "ts"
[[table]]
name = "public.a"
target = "x.y.z"
[[table]]
`))
	for _, want := range []string{`on_bad_event: want "stop" or "skip"`, "table[0].keep: only for mode cube",
		"table[0].part_field: only for mode table", "table[1].name: public.a is configured twice",
		"table[1].target: want TABLE or SCHEMA.TABLE", "table[2].name: required"} {
		if err == nil || !strings.Contains(err.Error(), "bad.toml: "+want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	_, err = dispatch.LoadConfig(write("bad2.toml", base+`mode = "tables"
[[table]]
name = "a"
part_period = "week"
part_template = "CREATE TABLE x ()"`))
	for _, want := range []string{`mode: want "table", "cube" or "bulk"`} {
		if err == nil || !strings.Contains(err.Error(), "bad2.toml: "+want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	_, err = dispatch.LoadConfig(write("bad3.toml", base+`mode = "table"
[[table]]
name = "a"
part_period = "week"
part_template = "CREATE TABLE x ()"`))
	for _, want := range []string{`table[0].part_period: want "hour", "day", "month" or "year"`, "table[0].part_template: must create {part}"} {
		if err == nil || !strings.Contains(err.Error(), "bad3.toml: "+want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	_, err = dispatch.LoadConfig(write("bad4.toml", base))
	for _, want := range []string{"mode: required", "table: at least one [[table]] is required"} {
		if err == nil || !strings.Contains(err.Error(), "bad4.toml: "+want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
