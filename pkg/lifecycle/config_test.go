package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type tableCfg struct {
	Name  string   `toml:"name"`
	Keep  string   `toml:"keep"`
	Every Duration `toml:"every"`
}

func (t *tableCfg) SetDefaults() { t.Keep = "latest" }

type testCfg struct {
	Common
	Connstr   string              `toml:"connstr"`
	Period    Duration            `toml:"period"`
	Databases []string            `toml:"databases"`
	Count     int                 `toml:"count"`
	Enabled   bool                `toml:"enabled"`
	Tables    []tableCfg          `toml:"table"`
	Targets   map[string]tableCfg `toml:"target"`
}

func (c *testCfg) Validate() error {
	var ps Problems
	c.Common.Validate(&ps)
	if c.Connstr == "" {
		ps.Addf("connstr", "is required")
	}
	if c.Period <= 0 {
		ps.Addf("period", "must be positive, got %s", c.Period)
	}
	for i, t := range c.Tables {
		if t.Name == "" {
			ps.Addf(fmt.Sprintf("table[%d].name", i), "is required")
		}
	}
	return ps.Err()
}

func decodeTest(t *testing.T, text string) (*testCfg, error) {
	t.Helper()
	cfg := &testCfg{Period: Duration(time.Second), Count: 3}
	err := Decode("test.toml", text, cfg)
	return cfg, err
}

func problems(t *testing.T, err error) []string {
	t.Helper()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("want *ConfigError, got %T %v", err, err)
	}
	return strings.Split(ce.Error(), "\n")
}

func TestDecodeValidConfigKeepsDefaultsAndReadsEveryKind(t *testing.T) {
	cfg, err := decodeTest(t, `
connstr = "host=/tmp"
databases = ["app", "billing"]
enabled = true
metrics_listen = "127.0.0.1:9187"
log_level = "debug"

[[table]]
name = "orders"
every = "5m"

[[table]]
name = "users"
keep = "all"

[target.archive]
name = "x"
`)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Period != Duration(time.Second) || cfg.Count != 3 {
		t.Fatalf("defaults lost: %+v", cfg)
	}
	if cfg.Connstr != "host=/tmp" || len(cfg.Databases) != 2 || !cfg.Enabled || cfg.MetricsListen != "127.0.0.1:9187" || cfg.LogLevel != "debug" {
		t.Fatalf("values: %+v", cfg)
	}
	if len(cfg.Tables) != 2 || cfg.Tables[0].Keep != "latest" || cfg.Tables[1].Keep != "all" || time.Duration(cfg.Tables[0].Every) != 5*time.Minute {
		t.Fatalf("tables (with per-element defaults): %+v", cfg.Tables)
	}
	if cfg.Targets["archive"].Name != "x" || cfg.Targets["archive"].Keep != "latest" {
		t.Fatalf("map of tables: %+v", cfg.Targets)
	}
}

func TestDecodeNamesEveryProblemWithItsKey(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string
	}{
		{"unknown key", "connstr = \"x\"\nticker_perod = \"1s\"\n", []string{"test.toml: ticker_perod: unknown key"}},
		{"misplaced key in array of tables", "connstr = \"x\"\n[[table]]\nname = \"t\"\nconnstr = \"y\"\n", []string{"test.toml: table[0].connstr: unknown key"}},
		{"unknown table", "connstr = \"x\"\n[pgqd]\nperiod = \"1s\"\n", []string{"test.toml: pgqd: unknown key"}},
		{"duration without unit", "connstr = \"x\"\nperiod = 5\n", []string{`test.toml: period: invalid duration "5": write a string with a unit, such as "500ms" or "3s"`}},
		{"bad duration", "connstr = \"x\"\nperiod = \"soon\"\n", []string{`test.toml: period: invalid duration "soon"`}},
		{"wrong type", "connstr = 5\n", []string{"test.toml: connstr: wrong type: want a string"}},
		{"list as string", "connstr = \"x\"\ndatabases = \"app\"\n", []string{"test.toml: databases: wrong type: want an array of strings"}},
		{"syntax", "connstr = = 1\n", []string{"test.toml: line 1: expected value"}},
		{"validation, all at once", "period = \"-1s\"\nmetrics_listen = \"nope\"\nlog_level = \"loud\"\n[[table]]\nkeep = \"all\"\n", []string{
			"test.toml: metrics_listen: want host:port",
			"test.toml: log_level: unknown log level \"loud\"",
			"test.toml: connstr: is required",
			"test.toml: period: must be positive, got -1s",
			"test.toml: table[0].name: is required",
		}},
		{"several decode problems at once", "connstr = 1\nfoo = 2\nperiod = \"x\"\n", []string{
			"test.toml: connstr: wrong type",
			"test.toml: foo: unknown key",
			"test.toml: period: invalid duration",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeTest(t, c.text)
			got := problems(t, err)
			if len(got) != len(c.want) {
				t.Fatalf("got %d problems %q, want %d", len(got), got, len(c.want))
			}
			for i := range c.want {
				if !strings.HasPrefix(got[i], c.want[i]) {
					t.Errorf("problem %d = %q, want prefix %q", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.toml")
	err := Load(path, &testCfg{})
	got := problems(t, err)
	if len(got) != 1 || got[0] != path+": cannot read config: no such file or directory" {
		t.Fatalf("got %q", got)
	}
}

func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ok.toml")
	if err := os.WriteFile(path, []byte("connstr = \"dbname=x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &testCfg{Period: Duration(time.Second)}
	if err := Load(path, cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Connstr != "dbname=x" {
		t.Fatalf("connstr %q", cfg.Connstr)
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1h2m3.5s")); err != nil {
		t.Fatal(err)
	}
	if time.Duration(d) != time.Hour+2*time.Minute+3500*time.Millisecond {
		t.Fatalf("got %v", time.Duration(d))
	}
	b, _ := d.MarshalText()
	if string(b) != "1h2m3.5s" {
		t.Fatalf("marshal %q", b)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"connstr = \"x\"\n", "period = \"1s\"\n[[table]]\nname=\"a\"\n", "[target.a]\nkeep=1\n",
		"databases = [1, \"a\"]\n", "x = {a = 1}\n", "period = 1970-01-01T00:00:00Z\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		cfg := &testCfg{Period: Duration(time.Second)}
		err := Decode("fuzz.toml", text, cfg)
		if err == nil {
			return
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || len(ce.Problems) == 0 {
			t.Fatalf("error is not a ConfigError with problems: %T %v", err, err)
		}
		for _, p := range ce.Problems {
			if p.Message == "" {
				t.Fatalf("problem without message for key %q", p.Key)
			}
		}
	})
}
