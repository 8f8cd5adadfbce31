package ticker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/skytools-go/skytools/pkg/lifecycle"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// setupPgqDB creates database name in c with the flavour's PgQ and a fast queue.
func setupPgqDB(t *testing.T, c *pgtest.Cluster, f flavour, name, queue string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	admin, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	exec(t, admin, "CREATE DATABASE "+name)
	conn, err := c.Connect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if err := f.install(ctx, conn); err != nil {
		t.Fatalf("install pgq (%s): %v", f.name, err)
	}
	createFastQueue(t, conn, queue)
	return conn
}

func TestDiscoversDatabasesDroppedAndCreatedWhileRunning(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		ctx := context.Background()
		c := pgtest.NewCluster(t)
		db1 := setupPgqDB(t, c, f, "app", "orders")
		db2 := setupPgqDB(t, c, f, "billing", "invoices")
		r := runDaemon(t, testConfig(c)) // no databases listed: discovery
		ticksPast(t, db1, "orders", 3)
		ticksPast(t, db2, "invoices", 3)
		waitFor(t, 30*time.Second, "postgres (no pgq) seen as such", func() (bool, error) {
			for _, s := range r.d.snapshots() {
				if s.db == "postgres" && s.state == stateAbsent {
					return true, nil
				}
			}
			return false, nil
		})

		db2.Close(ctx)
		admin, err := c.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(ctx)
		exec(t, admin, "DROP DATABASE billing WITH (FORCE)")
		waitFor(t, 30*time.Second, "the dropped database forgotten", func() (bool, error) {
			for _, s := range r.d.snapshots() {
				if s.db == "billing" {
					return false, nil
				}
			}
			return true, nil
		})
		db3 := setupPgqDB(t, c, f, "late", "events")
		ticksPast(t, db3, "events", 3)
		before, _ := lastTick(db1, "orders")
		ticksPast(t, db1, "orders", before) // untouched by the others' fate
	})
}

func TestRecoversWhenPostgreSQLRestarts(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		ctx := context.Background()
		c := pgtest.NewCluster(t)
		conn := setupPgqDB(t, c, f, "app", "q")
		conn.Close(ctx)
		r := runDaemon(t, testConfig(c, "app"))
		reconnect := func() *pgx.Conn {
			conn, err := c.Connect(ctx, "app")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close(context.Background()) })
			return conn
		}
		conn = reconnect()
		ticksPast(t, conn, "q", 3)
		conn.Close(ctx)

		if err := c.Crash(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "worker notices the outage", func() (bool, error) {
			s := r.d.snapshots()
			return len(s) == 1 && s[0].state == stateDown, nil
		})
		if !strings.Contains(r.d.status(), "down: app") {
			t.Fatalf("status during outage: %q", r.d.status())
		}
		if !r.d.healthy() {
			t.Fatal("a worker waiting for its database counts as unhealthy (the watchdog would restart pgqd)")
		}
		if err := c.StartAgain(ctx); err != nil {
			t.Fatal(err)
		}
		conn = reconnect()
		before, _ := lastTick(conn, "q")
		ticksPast(t, conn, "q", before)
		waitFor(t, 30*time.Second, "worker running again", func() (bool, error) {
			s := r.d.snapshots()
			return len(s) == 1 && s[0].state == stateRunning, nil
		})
	})
}

func TestFailAfterEndsTheDaemonWhenADatabaseStaysDown(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		c := pgtest.NewCluster(t)
		conn := setupPgqDB(t, c, f, "app", "q")
		conn.Close(context.Background())
		cfg := testConfig(c, "app")
		cfg.FailAfter = lifecycle.Duration(1500 * time.Millisecond)
		r := runDaemon(t, cfg)
		waitFor(t, 30*time.Second, "running", func() (bool, error) {
			s := r.d.snapshots()
			return len(s) == 1 && s[0].state == stateRunning, nil
		})
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		ended, err := r.wait(60 * time.Second)
		if !ended {
			t.Fatal("pgqd did not give up after fail_after")
		}
		if err == nil || !strings.Contains(err.Error(), "database app unreachable") || !strings.Contains(err.Error(), "fail_after 1.5s") {
			t.Fatalf("Run returned %v", err)
		}
	})
}

func TestMaintenanceRunsEveryVacuumAndKeepsGoing(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		ctx := context.Background()
		c := pgtest.NewCluster(t, pgtest.Conf("autovacuum = off"))
		conn := setupPgqDB(t, c, f, "app", "q")
		rows, err := conn.Query(ctx, "SELECT t FROM pgq.maint_tables_to_vacuum() t")
		if err != nil {
			t.Fatal(err)
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(tables) < 2 {
			t.Fatalf("maint_tables_to_vacuum with autovacuum off: %v %v", tables, err)
		}
		runDaemon(t, testConfig(c, "app"))
		waitFor(t, 60*time.Second, fmt.Sprintf("all of %v vacuumed", tables), func() (bool, error) {
			var missing int
			err := conn.QueryRow(ctx, `SELECT count(*) FROM unnest($1::text[]) t
				WHERE NOT EXISTS (SELECT 1 FROM pg_stat_all_tables s
				                   WHERE s.schemaname || '.' || s.relname = t AND s.vacuum_count > 0)`, tables).Scan(&missing)
			return err == nil && missing == 0, err
		})
	})
}
