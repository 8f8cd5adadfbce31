package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// tableMeta is what the dispatcher needs to know of a destination table.
type tableMeta struct {
	name        string         // schema.table, for messages and partition names
	ident       pgx.Identifier // quoted form
	cols        []string       // insertable columns in table order
	types       map[string]string
	partitioned bool   // a native partitioned table
	partStrat   string // "r", "l", "h"
	partKey     string // the single partition key column, "" for an expression or several
}

// tableMetaSQL reads a table's insertable columns with their types, and its
// partitioning, in one round trip.
const tableMetaSQL = `SELECT c.relkind = 'p',
       coalesce(pt.partstrat::text, ''),
       coalesce((SELECT a.attname FROM pg_catalog.pg_attribute a
                  WHERE pt.partnatts = 1 AND a.attrelid = c.oid AND a.attnum = pt.partattrs[0]), ''),
       array(SELECT a.attname::text FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              ORDER BY a.attnum),
       array(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              ORDER BY a.attnum)
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid = c.oid
 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`

// errNoTable is a destination table that does not exist.
var errNoTable = errors.New("table does not exist")

func loadMeta(ctx context.Context, tx pgx.Tx, name string) (*tableMeta, error) {
	schema, table, _ := strings.Cut(name, ".")
	m := &tableMeta{name: name, ident: pgx.Identifier{schema, table}, types: map[string]string{}}
	var types []string
	err := tx.QueryRow(ctx, tableMetaSQL, schema, table).Scan(&m.partitioned, &m.partStrat, &m.partKey, &m.cols, &types)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("destination table %s: %w", name, errNoTable)
	}
	if err != nil {
		return nil, fmt.Errorf("destination table %s: read its columns: %w", name, err)
	}
	for i, c := range m.cols {
		m.types[c] = types[i]
	}
	return m, nil
}

// project picks the row's values for the target's columns that the row has, in the
// target's order; columns the target lacks are left out.
func (m *tableMeta) project(r Row) (cols []string, vals []pgtype.Text) {
	for _, c := range m.cols {
		if v, ok := r.Get(c); ok {
			cols = append(cols, c)
			vals = append(vals, v)
		}
	}
	return cols, vals
}

// copyBuf collects rows for one COPY into one table, in COPY's text format.
type copyBuf struct {
	table pgx.Identifier
	name  string
	cols  []string
	buf   bytes.Buffer
	rows  int64
}

// add appends a row (values in the order of cols).
func (c *copyBuf) add(vals []pgtype.Text) {
	for i, v := range vals {
		if i > 0 {
			c.buf.WriteByte('\t')
		}
		if !v.Valid {
			c.buf.WriteString(`\N`)
			continue
		}
		writeCopyText(&c.buf, v.String)
	}
	c.buf.WriteByte('\n')
	c.rows++
}

// writeCopyText escapes a value for COPY's text format.
func writeCopyText(b *bytes.Buffer, s string) {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '\\':
			esc = `\\`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		case '\t':
			esc = `\t`
		default:
			continue
		}
		b.WriteString(s[start:i])
		b.WriteString(esc)
		start = i + 1
	}
	b.WriteString(s[start:])
}

// flush sends the collected rows with one COPY and empties the buffer.
func (c *copyBuf) flush(ctx context.Context, tx pgx.Tx) (int64, error) {
	if c.rows == 0 {
		return 0, nil
	}
	quoted := make([]string, len(c.cols))
	for i, col := range c.cols {
		quoted[i] = pgx.Identifier{col}.Sanitize()
	}
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN", c.table.Sanitize(), strings.Join(quoted, ", "))
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, &c.buf, sql)
	if err != nil {
		return 0, fmt.Errorf("destination table %s: copy %d rows: %w", c.name, c.rows, err)
	}
	n := c.rows
	c.buf.Reset()
	c.rows = 0
	if tag.RowsAffected() != n {
		return n, fmt.Errorf("destination table %s: copied %d rows, expected %d", c.name, tag.RowsAffected(), n)
	}
	return n, nil
}

// copies groups copy buffers by table and column list.
type copies struct {
	bufs  map[string]*copyBuf
	order []*copyBuf
	size  int
}

func (cs *copies) add(table pgx.Identifier, name string, cols []string, vals []pgtype.Text) {
	key := name + "\x00" + strings.Join(cols, "\x00")
	c := cs.bufs[key]
	if c == nil {
		if cs.bufs == nil {
			cs.bufs = map[string]*copyBuf{}
		}
		c = &copyBuf{table: table, name: name, cols: cols}
		cs.bufs[key] = c
		cs.order = append(cs.order, c)
	}
	before := c.buf.Len()
	c.add(vals)
	cs.size += c.buf.Len() - before
}

// flushAll sends every buffer; wrote is called with each table's row count.
func (cs *copies) flushAll(ctx context.Context, tx pgx.Tx, wrote func(table string, n int64)) error {
	for _, c := range cs.order {
		n, err := c.flush(ctx, tx)
		if err != nil {
			return err
		}
		if n > 0 {
			wrote(c.name, n)
		}
	}
	cs.size = 0
	return nil
}

// flushAt is how much COPY data a mode buffers before sending it.
const flushAt = 8 << 20

// deleteKeys deletes the rows of table whose primary key is one of keys (each a
// list of values in the order of pk), with one statement.
func deleteKeys(ctx context.Context, tx pgx.Tx, m *tableMeta, ident pgx.Identifier, name string, pk []string, keys [][]pgtype.Text) (int64, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	cols := make([]string, len(pk))
	sel := make([]string, len(pk))
	params := make([]string, len(pk))
	args := make([]any, len(pk))
	for i, k := range pk {
		typ, ok := m.types[k]
		if !ok {
			return 0, fmt.Errorf("destination table %s has no key column %q", name, k)
		}
		cols[i] = pgx.Identifier{k}.Sanitize()
		sel[i] = fmt.Sprintf("k%d::%s", i, typ)
		params[i] = fmt.Sprintf("$%d::text[]", i+1)
		vals := make([]pgtype.Text, len(keys))
		for j, key := range keys {
			vals[j] = key[i]
		}
		args[i] = vals
	}
	knames := make([]string, len(pk))
	for i := range knames {
		knames[i] = fmt.Sprintf("k%d", i)
	}
	sql := fmt.Sprintf("DELETE FROM %s WHERE (%s) IN (SELECT %s FROM unnest(%s) AS k(%s))",
		ident.Sanitize(), strings.Join(cols, ", "), strings.Join(sel, ", "), strings.Join(params, ", "), strings.Join(knames, ", "))
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil {
		return 0, fmt.Errorf("destination table %s: delete %d keys: %w", name, len(keys), err)
	}
	return tag.RowsAffected(), nil
}

// partition is one period's table of a destination.
type partition struct {
	name  string // schema.table
	ident pgx.Identifier
}

// partitionFor names the partition of parent for the period starting at start.
func partitionFor(parent *tableMeta, p Period, start time.Time) (partition, error) {
	schema, table := parent.ident[0], parent.ident[1]+p.Suffix(start)
	if len(table) > 63 {
		return partition{}, fmt.Errorf("partition name %s is longer than 63 bytes", table)
	}
	return partition{name: schema + "." + table, ident: pgx.Identifier{schema, table}}, nil
}

// ensurePartition creates the partition unless it exists: a native partition of a
// partitioned parent (a range partition that overlaps one made by someone else is
// taken as covered), else a table from the template.
func ensurePartition(ctx context.Context, tx pgx.Tx, parent *tableMeta, part partition, p Period, start time.Time, template string) error {
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", part.ident.Sanitize()).Scan(&exists); err != nil {
		return fmt.Errorf("partition %s: %w", part.name, err)
	}
	if exists {
		return nil
	}
	lo, hi := boundLiteral(parent, start), boundLiteral(parent, p.Next(start))
	if parent.partitioned {
		sql := fmt.Sprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (%s) TO (%s)",
			part.ident.Sanitize(), parent.ident.Sanitize(), lo, hi)
		sp, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		_, err = sp.Exec(ctx, sql)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P17" { // overlaps an existing partition
			return sp.Rollback(ctx)
		}
		if err != nil {
			_ = sp.Rollback(ctx)
			return fmt.Errorf("create partition %s of %s: %w", part.name, parent.name, err)
		}
		return sp.Commit(ctx)
	}
	sql := strings.NewReplacer(
		"{part}", part.ident.Sanitize(),
		"{parent}", parent.ident.Sanitize(),
		"{schema}", pgx.Identifier{part.ident[0]}.Sanitize(),
		"{name}", pgx.Identifier{part.ident[1]}.Sanitize(),
		"{start}", lo, "{end}", hi,
	).Replace(template)
	if _, err := tx.Exec(ctx, sql); err != nil {
		return fmt.Errorf("create partition %s from part_template: %w", part.name, err)
	}
	return nil
}

// boundLiteral is a period bound as an SQL literal fitting the partition key: with a
// UTC offset for timestamptz, a date for date, a plain timestamp otherwise.
func boundLiteral(parent *tableMeta, t time.Time) string {
	switch parent.types[parent.partKey] {
	case "timestamp with time zone":
		return "'" + t.Format("2006-01-02 15:04:05") + "+00'"
	case "date":
		return "'" + t.Format("2006-01-02") + "'"
	}
	return "'" + t.Format("2006-01-02 15:04:05") + "'"
}
