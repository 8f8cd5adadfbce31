package schema

import "fmt"

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
