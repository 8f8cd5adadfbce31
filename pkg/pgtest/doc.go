// Package pgtest starts private PostgreSQL clusters for tests and end-to-end runs.
//
// No test in this project talks to a mocked database: each test package gets a real
// server that this package starts itself, and each test its own database in it.
//
//	var pg = pgtest.NewShared()                               // one cluster per test package
//	func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		db := pg.DB(t)                                        // fresh database from the template
//		pool := db.Pool(t)
//		...
//	}
//
// Tests that need their own server settings (WAL archiving, a standby) start a cluster
// of their own with [NewCluster] and options such as [WALLevel], [Archive], [Conf] and
// [StandbyOf].
//
// # How a cluster is made
//
// The binaries come from $PGBINDIR, else `pg_config --bindir`, else the newest
// /usr/lib/postgresql/*/bin. PostgreSQL refuses to run as root, so when the test runs as
// root the servers run as $PGTEST_USER (default "postgres", else "nobody") with
// supplementary groups cleared, in a base directory that user owns ($PGTEST_DIR, default
// $TMPDIR/skytools-pgtest-UID). One initdb per PostgreSQL version is cached there and
// copied for each cluster (much faster than initdb). Servers listen on a unix socket in
// the cluster's own directory only (TCP on request), with fsync off. Each cluster
// directory records the test process that owns it; a later run removes clusters whose
// owner is gone and stops their servers ("orphan sweep"), and a server whose test
// process dies is told to quit by the kernel (parent-death signal).
//
// When a test fails, the part of the server log written during the test is printed.
//
// # When PostgreSQL is missing
//
// Tests skip, unless PGTEST_REQUIRE=1 (set by .ci/run): then they fail, so CI can never
// pass by silently skipping the database tests.
package pgtest
