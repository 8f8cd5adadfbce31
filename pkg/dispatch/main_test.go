package dispatch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/pgtest"
	"github.com/skytools-go/skytools/pkg/relay/relaytest"
)

var servers = relaytest.NewServers()

func TestMain(m *testing.M) { os.Exit(servers.Main(m)) }

// accountsDDL is a pgbench_accounts-like table with columns of many types, so that
// both trigger payload formats and the COPY into the destination are exercised.
const accountsDDL = `(aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler text,
 mtime timestamptz NOT NULL DEFAULT now(), flag bool, price numeric(12,2), tags text[], doc jsonb, day date)`

// env is a source database with queue "q", consumer "disp" and triggered tables,
// and an empty destination database, on two servers.
type env struct {
	t        *testing.T
	src, dst *pgtest.Database
	srcPool  *pgxpool.Pool
	dstPool  *pgxpool.Pool
	rnd      *rand.Rand
}

func setup(t *testing.T, fl relaytest.Flavor) *env {
	t.Helper()
	e := &env{t: t, src: relaytest.DB(t, servers.Src, fl), dst: servers.Dst.DB(t), rnd: rand.New(rand.NewPCG(1, 2))}
	e.srcPool, e.dstPool = e.src.Pool(t), e.dst.Pool(t)
	relaytest.Queue(t, e.srcPool, "q", "disp")
	relaytest.Exec(t, e.srcPool, `
CREATE TABLE acc_url `+accountsDDL+`;
CREATE TABLE acc_json `+accountsDDL+`;
CREATE TABLE hist (tid int, aid int, delta int, note text, mtime timestamptz DEFAULT now());
CREATE TABLE other (id int PRIMARY KEY, v text);
CREATE TRIGGER q AFTER INSERT OR UPDATE OR DELETE ON acc_url FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('q');
CREATE TRIGGER q AFTER INSERT OR UPDATE OR DELETE ON acc_json FOR EACH ROW EXECUTE PROCEDURE pgq.jsontriga('q');
CREATE TRIGGER q AFTER INSERT ON hist FOR EACH ROW EXECUTE PROCEDURE pgq.jsontriga('q');
CREATE TRIGGER q AFTER INSERT OR UPDATE OR DELETE ON other FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('q');
CREATE TRIGGER t AFTER TRUNCATE ON hist FOR EACH STATEMENT EXECUTE PROCEDURE pgq.jsontriga('q')`)
	return e
}

// config is a dispatcher config for the env.
func (e *env) config(mode, extra string) string {
	return fmt.Sprintf("mode = %q\nsrc_db = %q\ndst_db = %q\nqueue = \"q\"\nloop_delay = \"50ms\"\nfetch_size = 200\n%s",
		mode, e.src.ConnString, e.dst.ConnString, extra)
}

// traffic runs n pgbench-like transactions: each changes a few accounts (inserts,
// balance updates, deletes; the same change in acc_url and acc_json), appends to
// hist, and touches the unconfigured table other. It returns how many events of
// other it made.
func (e *env) traffic(n int) (otherEvents int) {
	e.t.Helper()
	ctx := context.Background()
	fillers := []string{"", "plain", "tab\there", "line\nbreak", `back\slash`, "ünï €", "a&b=c%d+e"}
	for i := 0; i < n; i++ {
		err := pgx.BeginFunc(ctx, e.srcPool, func(tx pgx.Tx) error {
			for j := 0; j < 1+e.rnd.IntN(4); j++ {
				aid := 1 + e.rnd.IntN(300)
				var sql string
				var args []any
				switch op := e.rnd.IntN(10); {
				case op < 4:
					filler := any(fillers[e.rnd.IntN(len(fillers))])
					if e.rnd.IntN(5) == 0 {
						filler = nil
					}
					sql = `INSERT INTO %s VALUES ($1, $2, 0, $3, now() - make_interval(days => $2), $4, $5, $6, $7, current_date - $2)
ON CONFLICT (aid) DO UPDATE SET filler = excluded.filler, flag = excluded.flag`
					args = []any{aid, e.rnd.IntN(40), filler, e.rnd.IntN(2) == 0, fmt.Sprintf("%d.%02d", e.rnd.IntN(1000), e.rnd.IntN(100)),
						[]string{"x", "y z", `q"uote`}, fmt.Sprintf(`{"k": %d, "s": "v\"w"}`, aid)}
				case op < 8:
					sql = `UPDATE %s SET abalance = abalance + $2, mtime = clock_timestamp() WHERE aid = $1`
					args = []any{aid, e.rnd.IntN(1000) - 500}
				default:
					sql = `DELETE FROM %s WHERE aid = $1`
					args = []any{aid}
				}
				for _, tbl := range []string{"acc_url", "acc_json"} {
					if _, err := tx.Exec(ctx, fmt.Sprintf(sql, tbl), args...); err != nil {
						return err
					}
				}
				if _, err := tx.Exec(ctx, `INSERT INTO hist (tid, aid, delta, note) VALUES ($1, $2, $3, $4)`, i, aid, j, fillers[j]); err != nil {
					return err
				}
			}
			if i%10 == 0 {
				otherEvents++
				_, err := tx.Exec(ctx, `INSERT INTO other VALUES ($1, 'x') ON CONFLICT (id) DO UPDATE SET v = other.v || 'x'`, i%30)
				return err
			}
			return nil
		})
		if err != nil {
			e.t.Fatal(err)
		}
	}
	return otherEvents
}

// rows returns a table's rows as JSON text, sorted: a row-by-row comparison of two
// tables is a comparison of these lists.
func rows(t testing.TB, db *pgxpool.Pool, query string) []string {
	t.Helper()
	rs, err := db.Query(context.Background(), "SELECT row_to_json(r)::text FROM ("+query+") r")
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	out, err := pgx.CollectRows(rs, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// sameRows fails the test unless the two lists are equal, showing the first
// difference.
func sameRows(t testing.TB, what string, got, want []string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: the expected side is empty: the test proves nothing", what)
	}
	if slices.Equal(got, want) {
		return
	}
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i] != want[i] {
			t.Fatalf("%s: %d rows, want %d; first difference:\n got %s\nwant %s", what, len(got), len(want), got[i], want[i])
		}
	}
	t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
}
