package ticker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// maxRepeats bounds how often one maintenance operation is repeated in a round, in
// case a function keeps asking to be called again.
const maxRepeats = 10000

// maintOp is one row of pgq.maint_operations(): a function (with an optional text
// argument) or "vacuum"/"vacuum analyze" of a table.
type maintOp struct {
	Func string
	Arg  *string
}

func (op maintOp) String() string {
	if op.Arg == nil {
		return op.Func + "()"
	}
	return op.Func + "(" + *op.Arg + ")"
}

// isVacuum reports whether the row asks for VACUUM [ANALYZE] of a table.
func (op maintOp) isVacuum() bool {
	f := strings.ToLower(strings.TrimSpace(op.Func))
	return f == "vacuum" || f == "vacuum analyze"
}

// statement is the SQL that runs op.
func (op maintOp) statement() (string, []any, error) {
	if op.isVacuum() {
		if op.Arg == nil || *op.Arg == "" {
			return "", nil, errors.New("vacuum without a table")
		}
		return strings.ToUpper(strings.TrimSpace(op.Func)) + " " + quoteQualified(*op.Arg), nil, nil
	}
	if !validFuncName(op.Func) {
		return "", nil, fmt.Errorf("refusing maintenance function name %q", op.Func)
	}
	if op.Arg == nil {
		return "SELECT " + quoteQualified(op.Func) + "()", nil, nil
	}
	return "SELECT " + quoteQualified(op.Func) + "($1)", []any{*op.Arg}, nil
}

// validFuncName accepts "name" or "schema.name" of plain identifier characters, as
// pgq.maint_operations() produces; anything else is not run.
func validFuncName(s string) bool {
	if s == "" || strings.Count(s, ".") > 1 {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for _, r := range part {
			if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}

// wantsRepeat interprets the first result column: non-zero means "call me again".
func wantsRepeat(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int16, int32, int64, int:
		return fmt.Sprint(x) != "0"
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return err == nil && n != 0
	}
	return false
}

// maintenance runs one maintenance round: every row of pgq.maint_operations(), each
// in its own transaction (autocommit), repeated while it asks for it. It returns how
// many operations ran.
func maintenance(ctx context.Context, conn *pgx.Conn) (int, error) {
	ops, err := maintOps(ctx, conn)
	if err != nil {
		return 0, err
	}
	done := 0
	for _, op := range ops {
		sql, args, err := op.statement()
		if err != nil {
			return done, fmt.Errorf("maintenance %s: %w", op, err)
		}
		for i := 0; i < maxRepeats; i++ {
			again, err := runOp(ctx, conn, op, sql, args)
			if err != nil {
				return done, fmt.Errorf("maintenance %s: %w", op, err)
			}
			done++
			if !again {
				break
			}
		}
	}
	return done, nil
}

func runOp(ctx context.Context, conn *pgx.Conn, op maintOp, sql string, args []any) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, maintTimeout)
	defer cancel()
	if op.isVacuum() {
		_, err := conn.Exec(ctx, sql)
		return false, err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	again := false
	if rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return false, err
		}
		again = len(vals) > 0 && wantsRepeat(vals[0])
	}
	return again, rows.Err()
}

// maintOps reads the maintenance script. PgQ versions without maint_operations()
// get the equivalent built from the older functions.
func maintOps(ctx context.Context, conn *pgx.Conn) ([]maintOp, error) {
	ctx, cancel := context.WithTimeout(ctx, tickTimeout)
	defer cancel()
	var hasOps bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'pgq' AND p.proname = 'maint_operations')`).Scan(&hasOps)
	if err != nil {
		return nil, fmt.Errorf("maintenance: %w", err)
	}
	if hasOps {
		rows, err := conn.Query(ctx, "SELECT func_name, func_arg FROM pgq.maint_operations()")
		if err != nil {
			return nil, fmt.Errorf("pgq.maint_operations(): %w", err)
		}
		ops, err := pgx.CollectRows(rows, pgx.RowToStructByPos[maintOp])
		if err != nil {
			return nil, fmt.Errorf("pgq.maint_operations(): %w", err)
		}
		return ops, nil
	}
	rows, err := conn.Query(ctx, `
SELECT 'pgq.maint_rotate_tables_step1', queue_name FROM pgq.get_queue_info()
UNION ALL SELECT 'pgq.maint_rotate_tables_step2', NULL
UNION ALL SELECT 'vacuum', t FROM pgq.maint_tables_to_vacuum() t`)
	if err != nil {
		return nil, fmt.Errorf("maintenance (PgQ without maint_operations): %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[maintOp])
}

// retryEvents moves due retry events back into their queues until none are left and
// returns how many moved.
func retryEvents(ctx context.Context, conn *pgx.Conn) (int64, error) {
	var total int64
	for i := 0; i < maxRepeats; i++ {
		var n int64
		cctx, cancel := context.WithTimeout(ctx, retryTimeout)
		err := conn.QueryRow(cctx, "SELECT pgq.maint_retry_events()").Scan(&n)
		cancel()
		if err != nil {
			return total, fmt.Errorf("pgq.maint_retry_events(): %w", err)
		}
		total += n
		if n == 0 {
			break
		}
	}
	return total, nil
}
