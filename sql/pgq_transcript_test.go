package sql_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// transcript records what a scenario's statements returned, raised and warned, so the
// same scenario run against our pgq and the original extension can be compared line by
// line. Only values that do not depend on time or txids belong in it.
type transcript struct {
	t     testing.TB
	conn  *pgx.Conn
	lines []string
	warns []string
}

// newTranscript connects to db with a notice handler that records warnings.
func newTranscript(t testing.TB, db *pgtest.Database) *transcript {
	t.Helper()
	tr := &transcript{t: t}
	cfg, err := pgx.ParseConfig(db.ConnString)
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if n.Severity == "WARNING" {
			tr.warns = append(tr.warns, n.Message)
		}
	}
	tr.conn, err = pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.conn.Close(context.Background()) })
	return tr
}

// do runs sql on conn (the transcript's own when nil) and records its rows or error.
func (tr *transcript) on(conn *pgx.Conn, sql string, args ...any) {
	tr.t.Helper()
	if conn == nil {
		conn = tr.conn
	}
	tr.warns = nil
	rows, err := conn.Query(context.Background(), sql, args...)
	var out []string
	if err == nil {
		for rows.Next() {
			vals, verr := rows.Values()
			if verr != nil {
				err = verr
				break
			}
			cells := make([]string, len(vals))
			for i, v := range vals {
				cells[i] = formatCell(v)
				if rows.FieldDescriptions()[i].Name == "ev_txid" {
					cells[i] = "<txid>"
				}
			}
			out = append(out, "("+strings.Join(cells, ", ")+")")
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	line := strings.Join(strings.Fields(sql), " ")
	if len(args) > 0 {
		line += fmt.Sprintf(" %v", args)
	}
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe):
		line += " => ERROR: " + pe.Message
	case err != nil:
		tr.t.Fatalf("%s: %v", sql, err)
	default:
		line += " => " + strings.Join(out, " ")
	}
	if len(tr.warns) > 0 {
		line += " WARNING: " + strings.Join(tr.warns, " | ")
	}
	tr.lines = append(tr.lines, line)
}

func (tr *transcript) do(sql string, args ...any) { tr.t.Helper(); tr.on(nil, sql, args...) }

func formatCell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return "<time>"
	case string:
		return fmt.Sprintf("%q", x)
	default:
		return fmt.Sprint(x)
	}
}

// compareTranscripts fails with the first differing lines.
func compareTranscripts(t *testing.T, ours, orig []string) {
	t.Helper()
	if len(ours) < 10 {
		t.Fatalf("transcript too short: %d lines", len(ours))
	}
	n := len(ours)
	if len(orig) > n {
		n = len(orig)
	}
	bad := 0
	for i := 0; i < n; i++ {
		var a, b string
		if i < len(ours) {
			a = ours[i]
		}
		if i < len(orig) {
			b = orig[i]
		}
		if a != b {
			j := 0
			for j < len(a) && j < len(b) && a[j] == b[j] {
				j++
			}
			from := max(0, j-200)
			t.Errorf("line %d differs at byte %d:\n  ours:     ...%s\n  original: ...%s", i+1, j,
				a[from:min(len(a), j+200)], b[from:min(len(b), j+200)])
			if bad++; bad > 10 {
				t.FailNow()
			}
		}
	}
	t.Logf("%d transcript lines identical", len(ours))
}

// differential runs scenario against our pgq and the original extension and compares
// the transcripts.
func differential(t *testing.T, scenario func(tr *transcript, db *pgtest.Database)) {
	t.Helper()
	origDB := extDB(t)
	oursDB := pg.DB(t)
	ours, orig := newTranscript(t, oursDB), newTranscript(t, origDB)
	scenario(ours, oursDB)
	scenario(orig, origDB)
	compareTranscripts(t, ours.lines, orig.lines)
}

// settleRotation runs maint_rotate_tables_step2 until no queue waits for it. Ours
// defers step2 while another session (autovacuum, say) holds an old snapshot.
func settleRotation(t testing.TB, conn *pgx.Conn) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		q(t, conn, "SELECT pgq.maint_rotate_tables_step2()")
		if !val[bool](t, conn, "SELECT EXISTS (SELECT 1 FROM pgq.queue WHERE queue_switch_step2 IS NULL)") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("rotation step2 never settled")
		}
	}
}
