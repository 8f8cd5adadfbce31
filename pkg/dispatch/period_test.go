package dispatch

import (
	"strings"
	"testing"
	"time"
)

func TestParseTimestamp(t *testing.T) {
	cases := []struct {
		in     string
		want   string // RFC 3339 with nanoseconds
		offset bool
		err    string
	}{
		{in: "2024-01-02", want: "2024-01-02T00:00:00Z"},
		{in: "2024-01-02 03:04:05", want: "2024-01-02T03:04:05Z"},
		{in: "2024-01-02T03:04:05.5", want: "2024-01-02T03:04:05.5Z"},
		{in: "2009-09-19 11:59:48.599+00", want: "2009-09-19T11:59:48.599Z", offset: true},
		{in: "2024-02-29 23:30:00-05", want: "2024-02-29T23:30:00-05:00", offset: true},
		{in: "2024-06-30 10:00:00.123456+05:30", want: "2024-06-30T10:00:00.123456+05:30", offset: true},
		{in: "1900-01-01 00:00:00+00:09:21", want: "1900-01-01T00:00:00+00:09", offset: true},
		{in: "2009-09-19T11:59:48.599+00:00", want: "2009-09-19T11:59:48.599Z", offset: true},
		{in: "infinity", err: "want YYYY-MM-DD"},
		{in: "2024-01-02 BC", err: "want HH:MM:SS"},
		{in: "2024-13-02", err: "out of range"},
		{in: "2023-02-29", err: "no such day"},
		{in: "2024-01-02 03:04", err: "want HH:MM:SS"},
		{in: "2024-01-02 03:04:05 x", err: "unexpected text"},
		{in: "2024-01-02 03:04:05.", err: "bad fraction"},
		{in: "2024-01-02 03:04:05+1", err: "bad offset"},
		{in: "", err: "want YYYY-MM-DD"},
	}
	for _, tc := range cases {
		got, off, err := ParseTimestamp(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if s := got.Format(time.RFC3339Nano); s != tc.want || off != tc.offset {
			t.Errorf("%q: %s offset=%v, want %s offset=%v", tc.in, s, off, tc.want, tc.offset)
		}
	}
}

func TestPeriods(t *testing.T) {
	at := time.Date(2024, 12, 31, 23, 59, 59, 999, time.UTC)
	cases := []struct {
		p           Period
		start, next string
		suffix      string
	}{
		{Hour, "2024-12-31T23:00:00Z", "2025-01-01T00:00:00Z", "_2024_12_31_23"},
		{Day, "2024-12-31T00:00:00Z", "2025-01-01T00:00:00Z", "_2024_12_31"},
		{Month, "2024-12-01T00:00:00Z", "2025-01-01T00:00:00Z", "_2024_12"},
		{Year, "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", "_2024"},
	}
	for _, tc := range cases {
		s := tc.p.Start(at)
		if got := s.Format(time.RFC3339); got != tc.start {
			t.Errorf("%s start %s, want %s", tc.p, got, tc.start)
		}
		if got := tc.p.Next(s).Format(time.RFC3339); got != tc.next {
			t.Errorf("%s next %s, want %s", tc.p, got, tc.next)
		}
		if got := tc.p.Suffix(s); got != tc.suffix {
			t.Errorf("%s suffix %s, want %s", tc.p, got, tc.suffix)
		}
	}
	if Period("week").Valid() || !Month.Valid() {
		t.Error("Valid")
	}
}

// No input makes the timestamp parser panic; what it accepts prints back the same
// date.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"2024-01-02", "2024-01-02 03:04:05.123+05:30", "2024-01-02T03:04:05-00:00:01", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, _, err := ParseTimestamp(s)
		if err != nil {
			return
		}
		if got := ts.Format("2006-01-02"); got != s[:10] {
			t.Fatalf("%q parsed as date %s", s, got)
		}
	})
}
