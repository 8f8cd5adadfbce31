package sql_test

import (
	"context"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// ourHelpers are functions of our pgq schema that PgQ 3.5 does not have: the
// triggers' PL/pgSQL helpers.
var ourHelpers = map[string]bool{
	"_urlencode": true, "_row_fields": true, "_urlencode_row": true, "_json_row": true, "_trigger_event": true,
	"_insert_event_tree": true, "_table_meta": true, "_refresh_insert_event_raw": true,
}

// catalogLines describes the objects of a schema as sorted text lines: functions with
// argument names and types, OUT columns, result, SECURITY DEFINER, strictness,
// volatility and grants; tables with columns, defaults, constraints, indexes, storage
// options and grants; sequences with grants.
func catalogLines(t *testing.T, conn *pgx.Conn, nsp string) []string {
	t.Helper()
	const sql = `
SELECT 'function ' || p.proname || '(' || pg_get_function_arguments(p.oid) || ') -> ' || pg_get_function_result(p.oid)
       || CASE WHEN p.prosecdef THEN ' SECURITY DEFINER' ELSE '' END
       || CASE WHEN p.proisstrict THEN ' STRICT' ELSE '' END
       || ' volatility=' || p.provolatile::text
       || ' acl=' || coalesce(array_to_string(ARRAY(SELECT x::text FROM unnest(p.proacl) x ORDER BY 1), ','), '')
  FROM pg_proc p WHERE p.pronamespace = $1::text::regnamespace
UNION ALL
SELECT 'relation ' || c.relname || ' kind=' || c.relkind::text
       || ' options=' || coalesce(array_to_string(c.reloptions, ','), '')
       || ' acl=' || coalesce(array_to_string(ARRAY(SELECT x::text FROM unnest(c.relacl) x ORDER BY 1), ','), '')
  FROM pg_class c WHERE c.relnamespace = $1::text::regnamespace
UNION ALL
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') || ' pos=' || a.attnum
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relnamespace = $1::text::regnamespace AND c.relkind = 'r'
UNION ALL
SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = $1::text::regnamespace
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = $1::text::regnamespace
UNION ALL
SELECT 'inherits ' || inhrelid::regclass::text || ' from ' || inhparent::regclass::text
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relnamespace = $1::text::regnamespace
UNION ALL
SELECT 'schema acl=' || coalesce(array_to_string(ARRAY(SELECT x::text FROM unnest(nspacl) x ORDER BY 1), ','), '')
  FROM pg_namespace WHERE nspname = $1::text`
	rows, err := conn.Query(context.Background(), sql, nsp)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return lines
}

// TestCatalogMatchesOriginal compares our pgq schema with the original extension's,
// object by object, after creating the same queue in both (per-queue objects count).
func TestCatalogMatchesOriginal(t *testing.T) {
	t.Parallel()
	ours, orig := pg.DB(t).Conn(t), extDB(t).Conn(t)
	for _, c := range []*pgx.Conn{ours, orig} {
		q(t, c, "SELECT pgq.create_queue('cat_q')")
	}
	o, e := catalogLines(t, ours, "pgq"), catalogLines(t, orig, "pgq")
	if len(e) < 150 || len(o) < len(e) {
		t.Fatalf("catalog too small: original %d lines, ours %d", len(e), len(o))
	}
	t.Logf("compared %d catalog lines", len(e))
	var extra []string
	in := map[string]bool{}
	for _, l := range o {
		in[l] = true
	}
	for _, l := range e {
		if !in[l] {
			t.Errorf("original has, ours lacks or differs:\n  %s", l)
		}
		delete(in, l)
	}
	for l := range in {
		name := strings.TrimPrefix(l, "function ")
		if i := strings.IndexByte(name, '('); strings.HasPrefix(l, "function ") && ourHelpers[name[:i]] {
			continue
		}
		extra = append(extra, l)
	}
	sort.Strings(extra)
	for _, l := range extra {
		t.Errorf("ours has, original lacks:\n  %s", l)
	}
}

// TestRolesMatchOriginal checks the three roles and their memberships.
func TestRolesMatchOriginal(t *testing.T) {
	t.Parallel()
	c := pg.DB(t).Conn(t)
	got := val[string](t, c, `
SELECT string_agg(r.rolname || ' login=' || r.rolcanlogin || ' member_of=' ||
       coalesce((SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m
                  JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), ''), '; ' ORDER BY r.rolname)
  FROM pg_roles r WHERE r.rolname IN ('pgq_reader', 'pgq_writer', 'pgq_admin')`)
	want := "pgq_admin login=false member_of=pgq_reader,pgq_writer; pgq_reader login=false member_of=; pgq_writer login=false member_of="
	if got != want {
		t.Fatalf("roles:\n got %s\nwant %s", got, want)
	}
}

// TestVersionMatchesVersionFile keeps pgq.version() and sql/pgq/VERSION (and the same
// for pgq_coop) in step, and checks the version reads as newer than any PgQ 3.5.x.
func TestVersionMatchesVersionFile(t *testing.T) {
	t.Parallel()
	c := pg.DB(t).Conn(t)
	for _, s := range []string{"pgq", "pgq_coop"} {
		b, err := os.ReadFile(s + "/VERSION")
		if err != nil {
			t.Fatal(err)
		}
		file := strings.TrimSpace(string(b))
		fn := val[string](t, c, "SELECT "+s+".version()")
		rec := val[string](t, c, "SELECT version FROM skytools.schema_version WHERE schema_name = $1", s)
		if fn != file || rec != file {
			t.Errorf("%s: version() %q, VERSION file %q, schema_version %q", s, fn, file, rec)
		}
		if !strings.HasPrefix(fn, "3.") {
			t.Errorf("%s.version() = %q, must start with 3.", s, fn)
		}
	}
	var newer bool
	if err := c.QueryRow(context.Background(),
		"SELECT string_to_array(pgq.version(), '.')::int[] > '{3,5,99}'::int[]").Scan(&newer); err != nil || !newer {
		t.Fatalf("pgq.version() not newer than 3.5.99: %v", err)
	}
}
