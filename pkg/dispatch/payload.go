package dispatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
)

// Op is the kind of row change an event carries.
type Op byte

// The operations of trigger events.
const (
	OpInsert   Op = 'I'
	OpUpdate   Op = 'U'
	OpDelete   Op = 'D'
	OpTruncate Op = 'R'
)

func (o Op) String() string {
	switch o {
	case OpInsert:
		return "INSERT"
	case OpUpdate:
		return "UPDATE"
	case OpDelete:
		return "DELETE"
	case OpTruncate:
		return "TRUNCATE"
	}
	return fmt.Sprintf("Op(%q)", byte(o))
}

// Row is a row image: column names in table order and their values as PostgreSQL
// text (a value that is not Valid is NULL).
type Row struct {
	Cols []string
	Vals []pgtype.Text
}

// Get returns the value of column col and whether the row has that column.
func (r Row) Get(col string) (pgtype.Text, bool) {
	for i, c := range r.Cols {
		if c == col {
			return r.Vals[i], true
		}
	}
	return pgtype.Text{}, false
}

// Change is a trigger event decoded: the operation, the primary key columns, and the
// row (the new row for INSERT and UPDATE, the old one for DELETE; empty for TRUNCATE).
type Change struct {
	Op   Op
	PKey []string
	Row  Row
}

// ParseChange decodes a trigger event from its ev_type and ev_data, in either of the
// two formats: pgq.logutriga's (type "I:pk1,pk2", data urlencoded) or pgq.jsontriga's
// (type a JSON object with op, table and pkey; data a JSON object). Every primary key
// column must be in the row. pgq.sqltriga's SQL fragments are refused.
func ParseChange(typ, data string) (Change, error) {
	if strings.HasPrefix(typ, "{") {
		return parseJSONChange(typ, data)
	}
	return parseURLChange(typ, data)
}

func parseURLChange(typ, data string) (Change, error) {
	var c Change
	op, pk, hasPK := strings.Cut(typ, ":")
	switch {
	case op == "R" && !hasPK:
		c.Op = OpTruncate
		return c, nil
	case len(op) != 1 || !strings.Contains("IUD", op):
		return c, fmt.Errorf("event type %q: not a logutriga or jsontriga row event", clip(typ))
	case !hasPK:
		return c, fmt.Errorf("event type %q: an SQL fragment (pgq.sqltriga); use pgq.logutriga or pgq.jsontriga", clip(typ))
	}
	c.Op = Op(op[0])
	if pk != "" {
		c.PKey = strings.Split(pk, ",")
		for _, k := range c.PKey {
			if k == "" {
				return c, fmt.Errorf("event type %q: empty primary key column", clip(typ))
			}
		}
	}
	row, err := ParseURLEncoded(data)
	if err != nil {
		return c, err
	}
	c.Row = row
	return c, c.check()
}

// check verifies that a row change has a row, and all primary key columns in it.
func (c Change) check() error {
	if len(c.Row.Cols) == 0 {
		return fmt.Errorf("%s event without a row", c.Op)
	}
	for _, k := range c.PKey {
		if _, ok := c.Row.Get(k); !ok {
			return fmt.Errorf("primary key column %q is not in the row", k)
		}
	}
	if (c.Op == OpUpdate || c.Op == OpDelete) && len(c.PKey) == 0 {
		return fmt.Errorf("%s event without a primary key", c.Op)
	}
	return nil
}

// ParseURLEncoded decodes a row as pgq.logutriga writes it: "col=value&col2=value2",
// values percent-encoded with "+" for a space; a column without "=" is NULL and
// "col=" is an empty string. Names and values may use either case of hex digits.
func ParseURLEncoded(data string) (Row, error) {
	var r Row
	if data == "" {
		return r, nil
	}
	seen := map[string]bool{}
	for _, pair := range strings.Split(data, "&") {
		k, v, hasValue := strings.Cut(pair, "=")
		name, err := unescape(k)
		if err != nil {
			return Row{}, fmt.Errorf("column name %q: %w", clip(k), err)
		}
		if name == "" {
			return Row{}, fmt.Errorf("empty column name in %q", clip(data))
		}
		if seen[name] {
			return Row{}, fmt.Errorf("column %q appears twice", clip(name))
		}
		seen[name] = true
		val := pgtype.Text{}
		if hasValue {
			s, err := unescape(v)
			if err != nil {
				return Row{}, fmt.Errorf("column %q: %w", clip(name), err)
			}
			val = pgtype.Text{String: s, Valid: true}
		}
		r.Cols = append(r.Cols, name)
		r.Vals = append(r.Vals, val)
	}
	return r, nil
}

// unescape undoes the urlencoding of one name or value.
func unescape(s string) (string, error) {
	if !strings.ContainsAny(s, "%+") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b.WriteByte(' ')
		case '%':
			if i+2 >= len(s) {
				return "", fmt.Errorf("truncated escape %q", s[i:])
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("bad escape %q", s[i:i+3])
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// jsonType is pgq.jsontriga's ev_type.
type jsonType struct {
	Op    string   `json:"op"`
	Table []string `json:"table"`
	PKey  []string `json:"pkey"`
}

func parseJSONChange(typ, data string) (Change, error) {
	var c Change
	var jt jsonType
	dec := json.NewDecoder(strings.NewReader(typ))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jt); err != nil {
		return c, fmt.Errorf("event type %q: %w", clip(typ), err)
	}
	switch jt.Op {
	case "INSERT":
		c.Op = OpInsert
	case "UPDATE":
		c.Op = OpUpdate
	case "DELETE":
		c.Op = OpDelete
	case "TRUNCATE":
		c.Op = OpTruncate
		return c, nil
	default:
		return c, fmt.Errorf("event type %q: unknown op %q", clip(typ), clip(jt.Op))
	}
	for _, k := range jt.PKey {
		if k == "" {
			return c, fmt.Errorf("event type %q: empty primary key column", clip(typ))
		}
	}
	c.PKey = jt.PKey
	row, err := ParseJSONRow(data)
	if err != nil {
		return c, err
	}
	c.Row = row
	return c, c.check()
}

// ParseJSONRow decodes a row as pgq.jsontriga writes it: a JSON object in column
// order. null is NULL; a string is its text; numbers keep their literal; true and
// false become the text bool input accepts; a nested object or array (never written
// by jsontriga, which sends json columns as strings) is kept as JSON text.
func ParseJSONRow(data string) (Row, error) {
	var r Row
	dec := json.NewDecoder(strings.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return r, fmt.Errorf("row %q: %w", clip(data), err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return r, fmt.Errorf("row %q: not a JSON object", clip(data))
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Row{}, fmt.Errorf("row %q: %w", clip(data), err)
		}
		name := tok.(string) // object keys are always strings
		if seen[name] {
			return Row{}, fmt.Errorf("column %q appears twice", clip(name))
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return Row{}, fmt.Errorf("column %q: %w", clip(name), err)
		}
		v, err := jsonValue(raw)
		if err != nil {
			return Row{}, fmt.Errorf("column %q: %w", clip(name), err)
		}
		r.Cols = append(r.Cols, name)
		r.Vals = append(r.Vals, v)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return Row{}, fmt.Errorf("row %q: %w", clip(data), err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Row{}, fmt.Errorf("row %q: data after the object", clip(data))
	}
	return r, nil
}

func jsonValue(raw json.RawMessage) (pgtype.Text, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case string(raw) == "null":
		return pgtype.Text{}, nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return pgtype.Text{}, err
		}
		return pgtype.Text{String: s, Valid: true}, nil
	case raw[0] == '{' || raw[0] == '[':
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return pgtype.Text{}, err
		}
		return pgtype.Text{String: b.String(), Valid: true}, nil
	}
	return pgtype.Text{String: string(raw), Valid: true}, nil // number, true, false
}

// clip shortens text quoted in error messages.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
