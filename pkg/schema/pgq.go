package schema

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// PgQ returns the schemas `pgqd install` installs, in dependency order: pgq, then
// pgq_coop.
func PgQ() ([]Schema, error) {
	return embeddedAll("pgq", "pgq_coop")
}

func embeddedAll(names ...string) ([]Schema, error) {
	out := make([]Schema, 0, len(names))
	for _, n := range names {
		s, err := Embedded(n)
		if err != nil {
			return nil, fmt.Errorf("this binary has no SQL for schema %s: %w", n, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// InstallPgQ installs or upgrades pgq and pgq_coop in the database, as `pgqd install`
// does.
func InstallPgQ(ctx context.Context, conn *pgx.Conn) ([]Result, error) {
	schemas, err := PgQ()
	if err != nil {
		return nil, err
	}
	return Install(ctx, conn, schemas...)
}
