package relaytest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// Gate stops a daemon at a chosen statement of its batch, so that a test can kill it
// exactly there. The gate is an advisory lock the test holds in a database; a trigger
// installed with Guard makes every transaction that fires it wait for that lock. The
// daemon's transaction then sits inside the guarded statement (with everything before
// it done and nothing after it) until the gate opens.
type Gate struct {
	t    *testing.T
	conn *pgx.Conn
	key  int64
}

// NewGate closes a gate in db.
func NewGate(t *testing.T, db *pgtest.Database, key int64) *Gate {
	t.Helper()
	g := &Gate{t: t, conn: db.Conn(t), key: key}
	Exec(t, g.conn, "SELECT pg_advisory_lock($1)", key)
	Exec(t, g.conn, fmt.Sprintf(`CREATE OR REPLACE FUNCTION public.relaytest_gate_%d() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(%d); RETURN NEW; END $$`, key, key))
	return g
}

// Guard makes row changes of table wait at the gate: BEFORE INSERT OR UPDATE, when
// the SQL condition when (on OLD and NEW; "true" for every row) holds.
func (g *Gate) Guard(table, ops, when string) {
	g.t.Helper()
	Exec(g.t, g.conn, fmt.Sprintf(`CREATE TRIGGER relaytest_gate_%d BEFORE %s ON %s FOR EACH ROW WHEN (%s)
EXECUTE FUNCTION public.relaytest_gate_%d()`, g.key, ops, table, when, g.key))
}

// WaitBlocked waits until a transaction of the gate's database waits at the gate
// (other tests' databases on the same server have gates of their own).
func (g *Gate) WaitBlocked(timeout time.Duration) {
	g.t.Helper()
	WaitFor(g.t, timeout, "a transaction waiting at the gate", func() bool {
		var n int
		err := g.conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks
 WHERE locktype = 'advisory' AND NOT granted AND ((classid::bigint << 32) | objid::bigint) = $1
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, g.key).Scan(&n)
		if err != nil {
			g.t.Fatal(err)
		}
		return n > 0
	})
	if testing.Verbose() {
		var q string
		_ = g.conn.QueryRow(context.Background(), `SELECT string_agg(a.query, ' | ') FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database()`).Scan(&q)
		g.t.Logf("gate %d blocks: %s", g.key, q)
	}
}

// Open lets the waiting transactions (and all later ones) through.
func (g *Gate) Open() {
	g.t.Helper()
	Exec(g.t, g.conn, "SELECT pg_advisory_unlock($1)", g.key)
}
