package ticker

import (
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/skytools-go/skytools/pkg/lifecycle"
)

// Config is pgqd's configuration file.
type Config struct {
	lifecycle.Common
	// Connstr is the base libpq connection string (or URL) without dbname.
	Connstr string `toml:"connstr"`
	// InitialDatabase is where the list of databases is read when Databases is empty.
	InitialDatabase string `toml:"initial_database"`
	// Databases to serve; empty means every database that has the pgq schema.
	Databases []string `toml:"databases"`

	TickerPeriod       lifecycle.Duration `toml:"ticker_period"`
	MaintPeriod        lifecycle.Duration `toml:"maint_period"`
	RetryPeriod        lifecycle.Duration `toml:"retry_period"`
	CheckPeriod        lifecycle.Duration `toml:"check_period"`
	StatsPeriod        lifecycle.Duration `toml:"stats_period"`
	ConnectionLifetime lifecycle.Duration `toml:"connection_lifetime"`
	// FailAfter: exit 1 when a database has been unreachable this long; 0 = never.
	FailAfter lifecycle.Duration `toml:"fail_after"`
}

// Limits on ticker_period: below 10ms ticking costs more than it gains.
const minTickerPeriod = 10 * time.Millisecond

// DefaultConfig returns the defaults, which match the original pgqd's.
func DefaultConfig() Config {
	return Config{
		InitialDatabase:    "postgres",
		TickerPeriod:       lifecycle.Duration(time.Second),
		MaintPeriod:        lifecycle.Duration(120 * time.Second),
		RetryPeriod:        lifecycle.Duration(30 * time.Second),
		CheckPeriod:        lifecycle.Duration(60 * time.Second),
		StatsPeriod:        lifecycle.Duration(30 * time.Second),
		ConnectionLifetime: lifecycle.Duration(time.Hour),
	}
}

// LoadConfig reads a config file over the defaults and validates it.
func LoadConfig(path string) (*Config, error) {
	cfg := DefaultConfig()
	if err := lifecycle.Load(path, &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate reports every problem with its key.
func (c *Config) Validate() error {
	var ps lifecycle.Problems
	c.Common.Validate(&ps)
	if _, err := pgx.ParseConfig(c.Connstr); err != nil {
		ps.Addf("connstr", "%v", err) // pgx redacts passwords in parse errors
	} else if namesDatabase(c.Connstr) {
		ps.Addf("connstr", "must not name a database: pgqd adds dbname for each database it serves")
	}
	if c.InitialDatabase == "" {
		ps.Addf("initial_database", "must not be empty")
	}
	seen := map[string]bool{}
	for _, db := range c.Databases {
		switch {
		case db == "":
			ps.Addf("databases", "contains an empty name")
		case seen[db]:
			ps.Addf("databases", "lists %q twice", db)
		}
		seen[db] = true
	}
	if time.Duration(c.TickerPeriod) < minTickerPeriod {
		ps.Addf("ticker_period", "must be at least %s, got %s", minTickerPeriod, c.TickerPeriod)
	}
	for _, p := range []struct {
		key string
		d   lifecycle.Duration
	}{
		{"maint_period", c.MaintPeriod}, {"retry_period", c.RetryPeriod}, {"check_period", c.CheckPeriod},
		{"stats_period", c.StatsPeriod}, {"connection_lifetime", c.ConnectionLifetime},
	} {
		if time.Duration(p.d) < time.Second {
			ps.Addf(p.key, "must be at least 1s, got %s", p.d)
		}
	}
	if c.FailAfter < 0 {
		ps.Addf("fail_after", "must not be negative, got %s", c.FailAfter)
	}
	return ps.Err()
}

// namesDatabase reports whether a libpq connection string or URL sets the database.
func namesDatabase(connstr string) bool {
	s := strings.TrimSpace(connstr)
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		return err == nil && (strings.Trim(u.Path, "/") != "" || u.Query().Get("dbname") != "")
	}
	for _, f := range strings.Fields(s) {
		if k, _, ok := strings.Cut(f, "="); ok && strings.TrimSpace(k) == "dbname" {
			return true
		}
	}
	return strings.Contains(s, "dbname =") || strings.HasPrefix(s, "dbname ")
}
