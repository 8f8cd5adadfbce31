package lifecycle

import (
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Problem is one thing wrong with a configuration: the key (a dotted path such as
// "table[1].name", empty when the problem is not about one key) and what is wrong.
type Problem struct {
	Key     string
	Message string
}

func (p Problem) String() string {
	if p.Key == "" {
		return p.Message
	}
	return p.Key + ": " + p.Message
}

// Problems collects every problem a Validate method finds, so that a user fixes a
// config file in one round instead of one error at a time.
type Problems []Problem

// Addf records a problem with key.
func (ps *Problems) Addf(key, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// Err returns nil when no problem was recorded, else the problems as an error.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return &ConfigError{Problems: append([]Problem(nil), ps...)}
}

// ConfigError is a configuration that cannot be used. Error prints one line per
// problem: "FILE: key: problem".
type ConfigError struct {
	File     string
	Problems []Problem
}

func (e *ConfigError) Error() string {
	lines := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		if e.File != "" {
			lines = append(lines, e.File+": "+p.String())
		} else {
			lines = append(lines, p.String())
		}
	}
	return strings.Join(lines, "\n")
}

// Validator is implemented by config structs that check their values after decoding.
// Validate should return Problems.Err() so every problem is reported with its key.
type Validator interface {
	Validate() error
}

// Load reads the TOML file at path into cfg (a pointer to a struct with its defaults
// already set), rejecting unknown keys, and then runs cfg's Validate method if it has
// one. Every failure is a *ConfigError naming the file.
func Load(path string, cfg any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return &ConfigError{File: path, Problems: []Problem{{Message: "cannot read config: " + errMessage(err)}}}
	}
	return decode(path, string(data), cfg)
}

// Decode is Load for a config already in memory; name is used in error messages.
func Decode(name, text string, cfg any) error {
	return decode(name, text, cfg)
}

func decode(name, text string, cfg any) error {
	rv := reflect.ValueOf(cfg)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("lifecycle.Load: cfg must be a pointer to a struct, not %T", cfg)
	}
	var raw map[string]toml.Primitive
	md, err := toml.Decode(text, &raw)
	if err != nil {
		return &ConfigError{File: name, Problems: []Problem{syntaxProblem(err)}}
	}
	d := decoder{md: md}
	d.structFields("", raw, rv.Elem())
	if len(d.problems) == 0 {
		if v, ok := cfg.(Validator); ok {
			if err := v.Validate(); err != nil {
				var ce *ConfigError
				if errors.As(err, &ce) {
					d.problems = append(d.problems, ce.Problems...)
				} else {
					d.problems = append(d.problems, Problem{Message: err.Error()})
				}
			}
		}
	}
	if len(d.problems) > 0 {
		return &ConfigError{File: name, Problems: d.problems}
	}
	return nil
}

func syntaxProblem(err error) Problem {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return Problem{Message: fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message)}
	}
	return Problem{Message: err.Error()}
}

// decoder walks the struct and the TOML document together, key by key, so that each
// problem is reported with the full path of the key it concerns.
type decoder struct {
	md       toml.MetaData
	problems []Problem
}

func (d *decoder) add(key, format string, args ...any) {
	d.problems = append(d.problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// structFields decodes every key of raw into the matching field of the struct sv.
func (d *decoder) structFields(prefix string, raw map[string]toml.Primitive, sv reflect.Value) {
	fields := map[string]reflect.Value{}
	collectFields(sv, fields)
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		path := joinKey(prefix, k)
		f, ok := fields[k]
		if !ok {
			d.add(path, "unknown key")
			continue
		}
		d.value(path, raw[k], f)
	}
}

// value decodes one TOML value into v, recursing into tables and arrays of tables.
func (d *decoder) value(path string, prim toml.Primitive, v reflect.Value) {
	t := v.Type()
	switch {
	case isTable(t):
		var sub map[string]toml.Primitive
		if err := d.md.PrimitiveDecode(prim, &sub); err != nil {
			d.add(path, "must be a table")
			return
		}
		d.structFields(path, sub, v)
	case t.Kind() == reflect.Slice && isTable(t.Elem()):
		var subs []map[string]toml.Primitive
		if err := d.md.PrimitiveDecode(prim, &subs); err != nil {
			d.add(path, "must be an array of tables ([[%s]])", path)
			return
		}
		out := reflect.MakeSlice(t, len(subs), len(subs))
		for i, sub := range subs {
			elem := out.Index(i)
			setDefaults(elem)
			d.structFields(fmt.Sprintf("%s[%d]", path, i), sub, elem)
		}
		v.Set(out)
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && isTable(t.Elem()):
		var subs map[string]map[string]toml.Primitive
		if err := d.md.PrimitiveDecode(prim, &subs); err != nil {
			d.add(path, "must be a table of tables")
			return
		}
		out := reflect.MakeMapWithSize(t, len(subs))
		for name, sub := range subs {
			elem := reflect.New(t.Elem()).Elem()
			setDefaults(elem)
			d.structFields(joinKey(path, name), sub, elem)
			out.SetMapIndex(reflect.ValueOf(name), elem)
		}
		v.Set(out)
	default:
		tmp := reflect.New(t)
		if err := d.md.PrimitiveDecode(prim, tmp.Interface()); err != nil {
			var pe toml.ParseError
			if errors.As(err, &pe) {
				d.add(path, "%s", pe.Message)
			} else {
				d.add(path, "wrong type: want %s", describeType(t))
			}
			return
		}
		v.Set(tmp.Elem())
	}
}

// Defaulter is implemented by the element types of arrays and maps of tables
// ([[table]] entries) that have defaults: SetDefaults runs on each new element before
// its keys are decoded.
type Defaulter interface {
	SetDefaults()
}

func setDefaults(v reflect.Value) {
	if d, ok := v.Addr().Interface().(Defaulter); ok {
		d.SetDefaults()
	}
}

// isTable reports whether t is decoded from a TOML table: a struct that does not decode
// itself from text.
func isTable(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	return !reflect.PointerTo(t).Implements(reflect.TypeFor[interface{ UnmarshalText([]byte) error }]())
}

// collectFields maps TOML key names to the fields of sv, including those promoted from
// embedded structs (such as Common).
func collectFields(sv reflect.Value, out map[string]reflect.Value) {
	st := sv.Type()
	for i := 0; i < st.NumField(); i++ {
		sf := st.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("toml")
		if tag == "-" {
			continue
		}
		if sf.Anonymous && tag == "" && sf.Type.Kind() == reflect.Struct {
			collectFields(sv.Field(i), out)
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		out[name] = sv.Field(i)
	}
}

func describeType(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[Duration]():
		return `a duration string such as "500ms" or "3s"`
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "a "), "an ") + "s"
	default:
		return t.String()
	}
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// errMessage strips the path from *fs.PathError, which the caller already prints.
func errMessage(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Duration is a time.Duration written in TOML as a string with a unit ("500ms", "3s",
// "2h30m"). Bare numbers are refused: a unitless "1" is too easy to misread.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: write a string with a unit, such as \"500ms\" or \"3s\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// String formats the duration as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// Common holds the keys every daemon's config has. Embed it in the tool's Config
// (without a toml tag) so its keys sit at the top level of the file.
type Common struct {
	// MetricsListen is "host:port" for the Prometheus endpoint; empty disables it.
	MetricsListen string `toml:"metrics_listen"`
	// LogLevel is debug, info, warn or error; -v and -q override it.
	LogLevel string `toml:"log_level"`
}

// Validate checks the common keys and records problems in ps.
func (c Common) Validate(ps *Problems) {
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil || port == "" {
			ps.Addf("metrics_listen", "want host:port such as \"127.0.0.1:9187\", got %q", c.MetricsListen)
		}
	}
	if c.LogLevel != "" {
		if _, err := ParseLevel(c.LogLevel); err != nil {
			ps.Addf("log_level", "%v", err)
		}
	}
}
