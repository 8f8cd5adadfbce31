package sql_test

import (
	"testing"

	"github.com/skytools-go/skytools/pkg/pgtest"
)

// allTypes is a table with a column of most built-in types (and a domain, an enum, a
// composite, a range and arrays), and rows with awkward values: NULLs, empty strings,
// quotes, backslashes, separators, control characters, non-ASCII text, infinities.
const allTypes = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TABLE public.all_types (
    id int PRIMARY KEY, i2 int2, i8 int8, num numeric(12,3), f4 float4, f8 float8, ok bool,
    txt text, vc varchar(20), ch char(5), ba bytea, d date, tm time, tmtz timetz, ts timestamp,
    tstz timestamptz, iv interval, js json, jsb jsonb, u uuid, ip inet, net cidr, mac macaddr,
    ia int[], ta text[], pt point, o oid, m mood, p pair, r int4range, b bit(3), vb varbit,
    tsv tsvector, dom posint, mon money, "Mixed Case" text, "select" text)`

const allTypesRows = `
INSERT INTO all_types VALUES
 (1, 1, 2, 3.5, 1.5, 2.25, true, 'plain', 'vc', 'ab', '\x00ff', '2009-09-19', '11:59:48.599', '11:59:48+02',
  '2009-09-19 11:59:48.599', '2009-09-19 11:59:48.599+00', '1 day 2 hours', '{"a": [false, null, true]}',
  '{"b": 1, "a": "x"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '10.0.0.1', '10.0.0.0/8', '08:00:2b:01:02:03',
  '{1,NULL,3}', '{"a b","c,d",NULL,"e\"f"}', '(1,2)', 42, 'happy', '(7,"x y")', '[1,5)', B'101', B'11',
  'a fat cat', 5, 12.34, 'mixed', 'kw'),
 (2, NULL, NULL, NULL, 'NaN', '-Infinity', false, '', '', '', '', 'infinity', NULL, NULL, '-infinity', 'infinity',
  NULL, 'null', '[]', NULL, '::1', NULL, NULL, '{}', '{}', NULL, NULL, 'sad', NULL, 'empty', NULL, NULL,
  NULL, NULL, NULL, NULL, NULL),
 (3, -32768, -9223372036854775808, -0.001, -0, 1e-300, NULL, E'tab\there\nnew line\\back ''quote'' "dq" & = + % ~ ü € 😀 \x01',
  'x&y=z', ' sp', E'\\x5c', '0001-01-01 BC', '24:00', '00:00:00-14:59', '2000-02-29 23:59:59.999999',
  '1999-12-31 23:59:59.5-08', '-1 year +3 mons', '"str"', '{"k": "v\u00fc"}', '00000000-0000-0000-0000-000000000000',
  '192.168.0.1/24', '::/0', 'ff:ff:ff:ff:ff:ff', '{{1,2},{3,4}}', '{"(",")",","}', '(-1.5,2e10)', 4294967295,
  'ok', '(,)', '(,)', B'000', B'', E'a:1 b''c:2', 2147483647, -1.5, E'q\"uote', E'back\\slash')`

// TestDifferentialTriggers inserts, updates, deletes and truncates through all three
// triggers with every option, and compares the queued events and errors with the
// original C triggers, byte for byte.
func TestDifferentialTriggers(t *testing.T) {
	t.Parallel()
	differential(t, func(tr *transcript, db *pgtest.Database) {
		tr.do("SELECT pgq.create_queue('tq')")
		q(t, tr.conn, allTypes)
		for _, trg := range []string{"logutriga", "sqltriga", "jsontriga"} {
			tr.do("CREATE TRIGGER a_" + trg + " AFTER INSERT OR UPDATE OR DELETE ON all_types FOR EACH ROW EXECUTE PROCEDURE pgq." + trg + "('tq')")
			tr.do("CREATE TRIGGER b_" + trg + "_tr AFTER TRUNCATE ON all_types FOR EACH STATEMENT EXECUTE PROCEDURE pgq." + trg + "('tq')")
		}
		tr.do(allTypesRows)
		tr.do("UPDATE all_types SET txt = txt || '!', ts = ts + interval '1 second' WHERE id IN (1, 3)")
		tr.do("UPDATE all_types SET ok = ok WHERE id = 1")
		tr.do("UPDATE all_types SET id = 10 WHERE id = 2")
		tr.do("DELETE FROM all_types WHERE id = 2")
		tr.do("SET DateStyle = 'SQL, DMY'")
		tr.do("SET TimeZone = 'America/New_York'")
		tr.do("SET extra_float_digits = 0")
		tr.do("SET bytea_output = 'escape'")
		tr.do("UPDATE all_types SET num = num + 1 WHERE id = 1")
		tr.do("RESET DateStyle")
		tr.do("RESET TimeZone")
		tr.do("RESET extra_float_digits")
		tr.do("RESET bytea_output")
		tr.do("TRUNCATE all_types")

		// options
		tr.do(`CREATE TABLE opts (nr int, col1 text, col2 text, dat1 text, PRIMARY KEY (nr, col1))`)
		tr.do(`CREATE TRIGGER o1 AFTER INSERT OR UPDATE OR DELETE ON opts FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('tq', 'backup', 'ignore=dat1')`)
		tr.do(`CREATE TRIGGER o2 AFTER INSERT OR UPDATE OR DELETE ON opts FOR EACH ROW EXECUTE PROCEDURE pgq.sqltriga('tq', 'backup', 'ignore=dat1', 'pkey=nr')`)
		tr.do(`CREATE TRIGGER o3 AFTER INSERT OR UPDATE OR DELETE ON opts FOR EACH ROW EXECUTE PROCEDURE pgq.jsontriga('tq', 'backup', 'ev_extra3=$$333$$', 'ev_extra1=(nr+3)::text', 'ev_extra2=col1||col2')`)
		tr.do(`CREATE TRIGGER o4 AFTER INSERT OR UPDATE OR DELETE ON opts FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('tq', 'when=col2=''foo''', 'ev_type=''custom''', 'ev_data=nr::text', 'ev_extra4=dat1')`)
		tr.do(`INSERT INTO opts VALUES (1, 'col1', 'foo', 'a'), (2, 'x', 'bar', NULL)`)
		tr.do(`UPDATE opts SET dat1 = 'b' WHERE nr = 1`)
		tr.do(`UPDATE opts SET col2 = 'foo', dat1 = 'c' WHERE nr = 2`)
		tr.do(`UPDATE opts SET dat1 = dat1`)
		tr.do(`UPDATE opts SET col1 = 'y' WHERE nr = 2`)
		tr.do(`DELETE FROM opts WHERE nr = 1`)

		// BEFORE trigger with SKIP; deny; no primary key; magic columns; local role
		tr.do(`CREATE TABLE skipped (id int PRIMARY KEY, v text)`)
		tr.do(`CREATE TRIGGER s BEFORE INSERT OR UPDATE OR DELETE ON skipped FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('tq', 'SKIP')`)
		tr.do(`INSERT INTO skipped VALUES (1, 'a')`)
		tr.do(`SELECT count(*) FROM skipped`)
		tr.do(`CREATE TABLE before_plain (id int PRIMARY KEY, v text)`)
		tr.do(`CREATE TRIGGER s BEFORE INSERT OR UPDATE OR DELETE ON before_plain FOR EACH ROW EXECUTE PROCEDURE pgq.sqltriga('tq')`)
		tr.do(`INSERT INTO before_plain VALUES (1, 'a')`)
		tr.do(`DELETE FROM before_plain`)
		tr.do(`SELECT count(*) FROM before_plain`)
		tr.do(`CREATE TABLE denied (id int PRIMARY KEY)`)
		tr.do(`CREATE TRIGGER d AFTER INSERT OR UPDATE OR DELETE ON denied FOR EACH ROW EXECUTE PROCEDURE pgq.jsontriga('tq', 'deny')`)
		tr.do(`CREATE TRIGGER dt AFTER TRUNCATE ON denied FOR EACH STATEMENT EXECUTE PROCEDURE pgq.jsontriga('tq', 'deny')`)
		tr.do(`INSERT INTO denied VALUES (1)`)
		tr.do(`TRUNCATE denied`)
		tr.do(`CREATE TABLE nopk (a int, b text)`)
		for _, trg := range []string{"logutriga", "sqltriga", "jsontriga"} {
			tr.do(`CREATE TRIGGER n_` + trg + ` AFTER INSERT OR UPDATE OR DELETE ON nopk FOR EACH ROW EXECUTE PROCEDURE pgq.` + trg + `('tq')`)
		}
		tr.do(`INSERT INTO nopk VALUES (1, 'x')`)
		tr.do(`UPDATE nopk SET b = 'y'`)
		tr.do(`DELETE FROM nopk`)
		tr.do(`CREATE TABLE magic (id int PRIMARY KEY, v text, _pgq_ev_type text, _pgq_ev_extra2 text)`)
		tr.do(`CREATE TRIGGER m AFTER INSERT ON magic FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('tq')`)
		tr.do(`INSERT INTO magic VALUES (1, 'v', 'mtype', 'mextra'), (2, 'w', NULL, NULL)`)
		tr.do(`CREATE TABLE badmagic (id int PRIMARY KEY, _pgq_ev_bogus text)`)
		tr.do(`CREATE TRIGGER m AFTER INSERT ON badmagic FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('tq')`)
		tr.do(`INSERT INTO badmagic VALUES (1, 'x')`)
		tr.do(`SET session_replication_role = local`)
		tr.do(`INSERT INTO nopk VALUES (9, 'local')`)
		tr.do(`RESET session_replication_role`)

		// errors
		tr.do(`CREATE TABLE errs (id int PRIMARY KEY, v text)`)
		tr.do(`CREATE TRIGGER e1 AFTER INSERT ON errs FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('tq', 'bogus')`)
		tr.do(`INSERT INTO errs VALUES (1, 'a')`)
		tr.do(`DROP TRIGGER e1 ON errs`)
		tr.do(`CREATE TRIGGER e2 AFTER INSERT ON errs FOR EACH ROW EXECUTE PROCEDURE pgq.sqltriga()`)
		tr.do(`INSERT INTO errs VALUES (1, 'a')`)
		tr.do(`DROP TRIGGER e2 ON errs`)
		tr.do(`CREATE TRIGGER e3 AFTER INSERT ON errs FOR EACH STATEMENT EXECUTE PROCEDURE pgq.jsontriga('tq')`)
		tr.do(`INSERT INTO errs VALUES (1, 'a')`)
		tr.do(`DROP TRIGGER e3 ON errs`)
		tr.do(`CREATE TRIGGER e4 AFTER INSERT ON errs FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('tq', 'SKIP')`)
		tr.do(`INSERT INTO errs VALUES (1, 'a')`)
		tr.do(`DROP TRIGGER e4 ON errs`)
		tr.do(`CREATE TRIGGER e5 AFTER INSERT ON errs FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('tq', 'when=v')`)
		tr.do(`INSERT INTO errs VALUES (1, 'a')`)
		tr.do(`DROP TRIGGER e5 ON errs`)
		tr.do(`CREATE TRIGGER e6 AFTER INSERT ON errs FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('tq', 'when=v = ''x''')`)
		tr.do(`INSERT INTO errs VALUES (1, NULL)`)
		tr.do(`DROP TRIGGER e6 ON errs`)
		tr.do(`CREATE TRIGGER e7 AFTER TRUNCATE ON errs FOR EACH STATEMENT EXECUTE PROCEDURE pgq.logutriga('tq', 'ignore=v')`)
		tr.do(`TRUNCATE errs`)
		tr.do(`DROP TRIGGER e7 ON errs`)
		tr.do(`CREATE TRIGGER e8 AFTER TRUNCATE ON errs FOR EACH STATEMENT EXECUTE PROCEDURE pgq.logutriga('tq', 'backup')`)
		tr.do(`TRUNCATE errs`)
		tr.do(`DROP TRIGGER e8 ON errs`)
		tr.do(`CREATE TRIGGER e9 AFTER TRUNCATE ON errs FOR EACH STATEMENT EXECUTE PROCEDURE pgq.logutriga('tq', 'pkey=v')`)
		tr.do(`TRUNCATE errs`)
		tr.do(`DROP TRIGGER e9 ON errs`)
		tr.do(`CREATE TRIGGER e10 AFTER TRUNCATE ON errs FOR EACH STATEMENT EXECUTE PROCEDURE pgq.logutriga('tq', 'ev_extra1=1')`)
		tr.do(`TRUNCATE errs`)
		tr.do(`DROP TRIGGER e10 ON errs`)
		tr.do(`CREATE TRIGGER e11 AFTER INSERT ON errs FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('nosuchqueue')`)
		tr.do(`INSERT INTO errs VALUES (1, 'a')`)

		tr.do(`SELECT ev_id, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4 FROM pgq.event_1 ORDER BY ev_id`)
	})
}
