package dispatch

import (
	"fmt"
	"slices"
	"strings"

	"github.com/skytools-go/skytools/pkg/lifecycle"
	"github.com/skytools-go/skytools/pkg/relay"
)

// The modes.
const (
	ModeTable = "table"
	ModeCube  = "cube"
	ModeBulk  = "bulk"
)

// Config is the dispatcher's configuration file.
type Config struct {
	relay.Config
	// Mode is "table", "cube" or "bulk".
	Mode string `toml:"mode"`
	// OnBadEvent is "stop" (a malformed event fails the batch, which is retried until
	// an operator acts) or "skip" (it is logged, counted and left out).
	OnBadEvent string `toml:"on_bad_event"`
	// Tables are the source tables to apply, one [[table]] each; events of other
	// tables are skipped and counted.
	Tables []Table `toml:"table"`
}

// Table is one [[table]] of the config.
type Table struct {
	// Name is the source table as the trigger names it in ev_extra1
	// ("schema.table"; a bare name means "public.").
	Name string `toml:"name"`
	// Target is the destination table; default: Name.
	Target string `toml:"target"`
	// PartField (table mode) is the column whose timestamp picks the partition;
	// default: the event's time, or the partition key of a partitioned target.
	PartField string `toml:"part_field"`
	// PartPeriod (table and cube modes): "hour", "day" (default), "month" or "year".
	PartPeriod Period `toml:"part_period"`
	// PartTemplate (table and cube modes, plain targets) creates a missing partition;
	// see DefaultTemplate.
	PartTemplate string `toml:"part_template"`
	// Keep (cube mode): "latest" (default) keeps one row per key and period, "all"
	// every row version.
	Keep string `toml:"keep"`
}

// Templates for partitions of plain target tables: a child table inheriting from the
// target, so that queries on the target see every period; for keep = "all" without
// the target's indexes, so a primary key does not refuse a second version of a row.
// Placeholders: {part}
// and {parent} (quoted, schema-qualified), {schema} and {name} (the partition's,
// quoted), {start} and {end} (the period's bounds as quoted timestamp literals).
const (
	DefaultTemplate        = "CREATE TABLE {part} (LIKE {parent} INCLUDING ALL) INHERITS ({parent})"
	DefaultTemplateKeepAll = "CREATE TABLE {part} (LIKE {parent} INCLUDING DEFAULTS) INHERITS ({parent})"
)

// DefaultConfig returns the defaults for the config file at path.
func DefaultConfig(path string) Config {
	return Config{Config: relay.Defaults(relay.InstanceName(path)), OnBadEvent: "stop"}
}

// LoadConfig reads a config file over the defaults and validates it.
func LoadConfig(path string) (*Config, error) {
	cfg := DefaultConfig(path)
	if err := lifecycle.Load(path, &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate reports every problem with its key, and fills in the per-table defaults.
func (c *Config) Validate() error {
	var ps lifecycle.Problems
	c.Config.Validate(&ps)
	switch c.Mode {
	case ModeTable, ModeCube, ModeBulk:
	case "":
		ps.Addf("mode", `required: "table", "cube" or "bulk"`)
	default:
		ps.Addf("mode", `want "table", "cube" or "bulk", got %q`, c.Mode)
	}
	if c.OnBadEvent != "stop" && c.OnBadEvent != "skip" {
		ps.Addf("on_bad_event", `want "stop" or "skip", got %q`, c.OnBadEvent)
	}
	if len(c.Tables) == 0 {
		ps.Addf("table", "at least one [[table]] is required")
	}
	seen := map[string]bool{}
	for i := range c.Tables {
		c.Tables[i].validate(&ps, fmt.Sprintf("table[%d]", i), c.Mode, seen)
	}
	return ps.Err()
}

func (t *Table) validate(ps *lifecycle.Problems, key, mode string, seen map[string]bool) {
	if t.Name == "" {
		ps.Addf(key+".name", "required: the source table")
	} else if !validName(t.Name) {
		ps.Addf(key+".name", "want TABLE or SCHEMA.TABLE, got %q", t.Name)
	} else {
		t.Name = qualify(t.Name)
		if seen[t.Name] {
			ps.Addf(key+".name", "%s is configured twice", t.Name)
		}
		seen[t.Name] = true
	}
	if t.Target == "" {
		t.Target = t.Name
	} else if !validName(t.Target) {
		ps.Addf(key+".target", "want TABLE or SCHEMA.TABLE, got %q", t.Target)
	} else {
		t.Target = qualify(t.Target)
	}
	only := func(k, val string, modes ...string) {
		if val != "" && !slices.Contains(modes, mode) {
			ps.Addf(key+"."+k, "only for mode %s", strings.Join(modes, " or "))
		}
	}
	only("part_field", t.PartField, ModeTable)
	only("part_period", string(t.PartPeriod), ModeTable, ModeCube)
	only("part_template", t.PartTemplate, ModeTable, ModeCube)
	only("keep", t.Keep, ModeCube)
	if mode == ModeTable || mode == ModeCube {
		if t.PartPeriod == "" {
			t.PartPeriod = Day
		} else if !t.PartPeriod.Valid() {
			ps.Addf(key+".part_period", `want "hour", "day", "month" or "year", got %q`, t.PartPeriod)
		}
	}
	if mode == ModeCube {
		switch t.Keep {
		case "":
			t.Keep = "latest"
		case "latest", "all":
		default:
			ps.Addf(key+".keep", `want "latest" or "all", got %q`, t.Keep)
		}
	}
	if t.PartTemplate != "" && !strings.Contains(t.PartTemplate, "{part}") {
		ps.Addf(key+".part_template", "must create {part}")
	}
	if t.PartTemplate == "" && (mode == ModeTable || mode == ModeCube) {
		t.PartTemplate = DefaultTemplate
		if t.Keep == "all" {
			t.PartTemplate = DefaultTemplateKeepAll
		}
	}
}

// validName accepts "table" and "schema.table" (unquoted, as ev_extra1 has them).
func validName(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) > 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, "\"\x00 ") {
			return false
		}
	}
	return true
}

// qualify adds "public." to a bare table name.
func qualify(s string) string {
	if strings.Contains(s, ".") {
		return s
	}
	return "public." + s
}
