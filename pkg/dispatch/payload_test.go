package dispatch

import (
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

func txt(s string) pgtype.Text { return pgtype.Text{String: s, Valid: true} }

var null = pgtype.Text{}

func TestParseChange(t *testing.T) {
	cases := []struct {
		name, typ, data string
		want            Change
		err             string
	}{
		// logutriga, as its regression output shows it
		{name: "logutriga insert", typ: "I:id", data: "id=1&txt=text1&val",
			want: Change{Op: OpInsert, PKey: []string{"id"}, Row: Row{[]string{"id", "txt", "val"}, []pgtype.Text{txt("1"), txt("text1"), null}}}},
		{name: "logutriga delete", typ: "D:id", data: "id=2&txt&val=1.5",
			want: Change{Op: OpDelete, PKey: []string{"id"}, Row: Row{[]string{"id", "txt", "val"}, []pgtype.Text{txt("2"), null, txt("1.5")}}}},
		{name: "logutriga composite key, escapes", typ: "U:nr,col1", data: "nr=1&col1=a+b%2bc&ts=2009-09-19+11%3a59%3a48.599%2b00&arr=%7bNULL%2cNULL%7d&e=",
			want: Change{Op: OpUpdate, PKey: []string{"nr", "col1"}, Row: Row{[]string{"nr", "col1", "ts", "arr", "e"},
				[]pgtype.Text{txt("1"), txt("a b+c"), txt("2009-09-19 11:59:48.599+00"), txt("{NULL,NULL}"), txt("")}}}},
		{name: "logutriga upper-case hex, utf-8", typ: "I:", data: "t=%C3%A4%e2%82%ac",
			want: Change{Op: OpInsert, Row: Row{[]string{"t"}, []pgtype.Text{txt("ä€")}}}},
		{name: "logutriga truncate", typ: "R", data: "", want: Change{Op: OpTruncate}},
		{name: "jsontriga insert", typ: `{"op":"INSERT","table":["public","trigger_base"],"pkey":["id"]}`,
			data: `{"id":1,"txt":"text1","val":null,"b":true,"n":1.50,"j":"{\"a\": [false, null, true]}","ts":"2009-09-19T11:59:48.599+00:00"}`,
			want: Change{Op: OpInsert, PKey: []string{"id"}, Row: Row{[]string{"id", "txt", "val", "b", "n", "j", "ts"},
				[]pgtype.Text{txt("1"), txt("text1"), null, txt("true"), txt("1.50"), txt(`{"a": [false, null, true]}`), txt("2009-09-19T11:59:48.599+00:00")}}}},
		{name: "jsontriga nested json kept as text", typ: `{"op":"UPDATE","table":["s","t"],"pkey":["a","b"]}`, data: `{"a":"x","b":2,"c":{"k": [1, 2]}}`,
			want: Change{Op: OpUpdate, PKey: []string{"a", "b"}, Row: Row{[]string{"a", "b", "c"}, []pgtype.Text{txt("x"), txt("2"), txt(`{"k":[1,2]}`)}}}},
		{name: "jsontriga no pkey insert", typ: `{"op":"INSERT","table":["public","t"],"pkey":[]}`, data: `{"a":""}`,
			want: Change{Op: OpInsert, PKey: []string{}, Row: Row{[]string{"a"}, []pgtype.Text{txt("")}}}},
		{name: "jsontriga truncate", typ: `{"op":"TRUNCATE","table":["public","t"],"pkey":[]}`, data: `{}`, want: Change{Op: OpTruncate}},

		{name: "sqltriga", typ: "I", data: "(id) values ('1')", err: "pgq.sqltriga"},
		{name: "application event", typ: "order.created", data: "x", err: "not a logutriga or jsontriga row event"},
		{name: "bad escape", typ: "I:id", data: "id=%zz", err: `column "id": bad escape "%zz"`},
		{name: "truncated escape", typ: "I:id", data: "id=1%4", err: "truncated escape"},
		{name: "empty column name", typ: "I:id", data: "id=1&&x=2", err: "empty column name"},
		{name: "duplicate column", typ: "I:id", data: "id=1&id=2", err: `column "id" appears twice`},
		{name: "pkey not in row", typ: "U:id", data: "x=1", err: `primary key column "id" is not in the row`},
		{name: "update without pkey", typ: "U:", data: "x=1", err: "UPDATE event without a primary key"},
		{name: "empty row", typ: "I:", data: "", err: "INSERT event without a row"},
		{name: "empty pkey column", typ: "D:a,", data: "a=1", err: "empty primary key column"},
		{name: "json bad op", typ: `{"op":"MERGE","table":["s","t"],"pkey":[]}`, data: `{}`, err: `unknown op "MERGE"`},
		{name: "json unknown type key", typ: `{"op":"INSERT","tbl":["s","t"],"pkey":[]}`, data: `{}`, err: "unknown field"},
		{name: "json row not an object", typ: `{"op":"INSERT","table":["s","t"],"pkey":[]}`, data: `[1]`, err: "not a JSON object"},
		{name: "json row truncated", typ: `{"op":"INSERT","table":["s","t"],"pkey":[]}`, data: `{"a":1`, err: "EOF"},
		{name: "json trailing data", typ: `{"op":"INSERT","table":["s","t"],"pkey":[]}`, data: `{"a":1} x`, err: "data after the object"},
		{name: "json duplicate column", typ: `{"op":"INSERT","table":["s","t"],"pkey":[]}`, data: `{"a":1,"a":2}`, err: "appears twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseChange(tc.typ, tc.data)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// urlencode encodes as pgq.logutriga does: [0-9A-Za-z_.-] literal, space as "+",
// everything else %xx in lower case.
func urlencode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '.', c == '-':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteString("%" + string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15]))
		}
	}
	return b.String()
}

// Whatever row logutriga encodes decodes to the same columns and values.
func FuzzURLEncodedRoundTrip(f *testing.F) {
	f.Add("id", "1", "txt", "a b&c=d%e+f", true)
	f.Add("x", "", "y", "", false)
	f.Add("ä", "€\t\n\\", "_.-", "{NULL,NULL}", true)
	f.Fuzz(func(t *testing.T, c1, v1, c2, v2 string, v2null bool) {
		if c1 == "" || c2 == "" || c1 == c2 {
			return
		}
		data := urlencode(c1) + "=" + urlencode(v1) + "&" + urlencode(c2)
		if !v2null {
			data += "=" + urlencode(v2)
		}
		r, err := ParseURLEncoded(data)
		if err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		want := Row{Cols: []string{c1, c2}, Vals: []pgtype.Text{txt(v1), null}}
		if !v2null {
			want.Vals[1] = txt(v2)
		}
		if !reflect.DeepEqual(r, want) {
			t.Fatalf("%q: got %+v, want %+v", data, r, want)
		}
	})
}

// No input makes the parser panic, and what it accepts is a consistent change.
func FuzzParseChange(f *testing.F) {
	f.Add("I:id", "id=1&txt=text1&val")
	f.Add("U:a,b", "a=1&b=%41&c")
	f.Add(`{"op":"INSERT","table":["public","t"],"pkey":["id"]}`, `{"id":1,"v":null,"w":{"x":[1]}}`)
	f.Add(`{"op":"DELETE","table":["public","t"],"pkey":["id"]}`, `{"id":"1"}`)
	f.Add("R", "")
	f.Fuzz(func(t *testing.T, typ, data string) {
		c, err := ParseChange(typ, data)
		if err != nil {
			return
		}
		if c.Op == OpTruncate {
			return
		}
		if len(c.Row.Cols) == 0 || len(c.Row.Cols) != len(c.Row.Vals) {
			t.Fatalf("accepted a change with %d columns and %d values", len(c.Row.Cols), len(c.Row.Vals))
		}
		for _, k := range c.PKey {
			if _, ok := c.Row.Get(k); !ok {
				t.Fatalf("accepted a change whose key column %q is not in the row", k)
			}
		}
		if (c.Op == OpUpdate || c.Op == OpDelete) && len(c.PKey) == 0 {
			t.Fatal("accepted an UPDATE or DELETE without a key")
		}
	})
}
