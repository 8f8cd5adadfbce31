package dispatch

import (
	"fmt"
	"strconv"
	"time"
)

// Period is how long one partition covers.
type Period string

// The partition periods.
const (
	Hour  Period = "hour"
	Day   Period = "day"
	Month Period = "month"
	Year  Period = "year"
)

// Valid reports whether p is one of the periods.
func (p Period) Valid() bool {
	switch p {
	case Hour, Day, Month, Year:
		return true
	}
	return false
}

// Start returns the start of the period that holds t (in t's location).
func (p Period) Start(t time.Time) time.Time {
	y, m, d := t.Date()
	switch p {
	case Hour:
		return time.Date(y, m, d, t.Hour(), 0, 0, 0, t.Location())
	case Day:
		return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
	case Month:
		return time.Date(y, m, 1, 0, 0, 0, 0, t.Location())
	default:
		return time.Date(y, 1, 1, 0, 0, 0, 0, t.Location())
	}
}

// Next returns the start of the period after the one starting at start.
func (p Period) Next(start time.Time) time.Time {
	switch p {
	case Hour:
		return start.Add(time.Hour)
	case Day:
		return start.AddDate(0, 0, 1)
	case Month:
		return start.AddDate(0, 1, 0)
	default:
		return start.AddDate(1, 0, 0)
	}
}

// Suffix is the partition name suffix of the period starting at start:
// _YYYY, _YYYY_MM, _YYYY_MM_DD or _YYYY_MM_DD_HH.
func (p Period) Suffix(start time.Time) string {
	switch p {
	case Hour:
		return start.Format("_2006_01_02_15")
	case Day:
		return start.Format("_2006_01_02")
	case Month:
		return start.Format("_2006_01")
	default:
		return start.Format("_2006")
	}
}

// ParseTimestamp reads a date or timestamp as PostgreSQL prints it (ISO DateStyle:
// "2024-01-02", "2024-01-02 03:04:05.123456+01", offsets "+01", "+05:30" or
// "+05:30:15") or as pgq.jsontriga writes it ("2024-01-02T03:04:05+00:00"). The
// result is in a fixed zone of the given offset when there is one (hasOffset), else
// the wall-clock time in UTC. Infinite and BC values are refused.
func ParseTimestamp(s string) (t time.Time, hasOffset bool, err error) {
	bad := func(why string) (time.Time, bool, error) {
		return time.Time{}, false, fmt.Errorf("timestamp %q: %s", clip(s), why)
	}
	num := func(at, n int) (int, bool) {
		if at+n > len(s) {
			return 0, false
		}
		for i := at; i < at+n; i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
		}
		v, _ := strconv.Atoi(s[at : at+n])
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 2)
	d, ok3 := num(8, 2)
	if !ok1 || !ok2 || !ok3 || s[4] != '-' || s[7] != '-' {
		return bad("want YYYY-MM-DD at the start")
	}
	var h, mi, sec, nsec int
	i := 10
	if i < len(s) && (s[i] == ' ' || s[i] == 'T') {
		var ok4, ok5, ok6 bool
		h, ok4 = num(i+1, 2)
		mi, ok5 = num(i+4, 2)
		sec, ok6 = num(i+7, 2)
		if !ok4 || !ok5 || !ok6 || s[i+3] != ':' || s[i+6] != ':' {
			return bad("want HH:MM:SS after the date")
		}
		i += 9
		if i < len(s) && s[i] == '.' {
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			frac := s[i+1 : j]
			if frac == "" || len(frac) > 9 {
				return bad("bad fraction of a second")
			}
			f, _ := strconv.Atoi(frac + "000000000"[len(frac):])
			nsec = f
			i = j
		}
	}
	loc := time.UTC
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		sign := 1
		if s[i] == '-' {
			sign = -1
		}
		oh, ok := num(i+1, 2)
		if !ok {
			return bad("bad offset")
		}
		off := oh * 3600
		i += 3
		for _, mult := range []int{60, 1} {
			if i < len(s) && s[i] == ':' {
				v, ok := num(i+1, 2)
				if !ok {
					return bad("bad offset")
				}
				off += v * mult
				i += 3
			}
		}
		loc = time.FixedZone("", sign*off)
		hasOffset = true
	}
	if i != len(s) {
		return bad("unexpected text after the timestamp")
	}
	if mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 {
		return bad("out of range")
	}
	t = time.Date(y, time.Month(mo), d, h, mi, sec, nsec, loc)
	if t.Day() != d {
		return bad("no such day")
	}
	return t, hasOffset, nil
}
