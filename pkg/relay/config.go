package relay

import (
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/skytools-go/skytools/pkg/lifecycle"
	"github.com/skytools-go/skytools/pkg/pgq"
)

// Config holds the keys every relay daemon has. Embed it (without a toml tag) in the
// tool's config so the keys sit at the top level of the file.
type Config struct {
	lifecycle.Common

	// SrcDB is the libpq connection string (or URL) of the database holding Queue.
	SrcDB string `toml:"src_db"`
	// DstDB is the connection string of the database the batches are applied to.
	DstDB string `toml:"dst_db"`
	// Queue is the source queue.
	Queue string `toml:"queue"`
	// Consumer is the registered consumer name; default: the config file's base name
	// (the systemd instance name).
	Consumer string `toml:"consumer"`

	// MinCount, MinInterval and MinLag shape batches as pgq.next_batch_custom does.
	MinCount    int                `toml:"min_count"`
	MinInterval lifecycle.Duration `toml:"min_interval"`
	MinLag      lifecycle.Duration `toml:"min_lag"`
	// FetchSize is how many events are handed on at a time.
	FetchSize int `toml:"fetch_size"`
	// SortBufferMB is the memory, in MiB, in which a batch is sorted by event id on
	// the consumer's side (pgq.Config.SortBuffer); 0: PostgreSQL sorts every batch.
	SortBufferMB int `toml:"sort_buffer_mb"`
	// LoopDelay is the longest wait for a tick when there is no batch.
	LoopDelay lifecycle.Duration `toml:"loop_delay"`
	// PositionTable holds the consumer's position in the destination database.
	PositionTable string `toml:"position_table"`
}

// Defaults returns the relay keys' defaults; consumer is the instance name.
func Defaults(instance string) Config {
	return Config{
		Consumer:      instance,
		FetchSize:     1000,
		SortBufferMB:  16,
		LoopDelay:     lifecycle.Duration(time.Second),
		PositionTable: "pgq_position",
	}
}

// InstanceName is the systemd instance name a config file stands for: its base name
// without the extension (/etc/skytools/queue-mover/orders.toml -> "orders").
func InstanceName(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// Validate records every problem of the relay keys in ps.
func (c *Config) Validate(ps *lifecycle.Problems) {
	c.Common.Validate(ps)
	for _, k := range []struct{ key, val string }{{"src_db", c.SrcDB}, {"dst_db", c.DstDB}} {
		if strings.TrimSpace(k.val) == "" {
			ps.Addf(k.key, "required: a libpq connection string or URL")
			continue
		}
		if _, err := pgx.ParseConfig(k.val); err != nil {
			ps.Addf(k.key, "%v", err) // pgx redacts passwords in parse errors
		}
	}
	if c.Queue == "" {
		ps.Addf("queue", "required: the source queue")
	}
	if c.Consumer == "" {
		ps.Addf("consumer", "must not be empty")
	} else if strings.Contains(c.Consumer, ".") {
		ps.Addf("consumer", "must not contain a dot (pgq_coop reserves it), got %q", c.Consumer)
	}
	if c.MinCount < 0 {
		ps.Addf("min_count", "must not be negative, got %d", c.MinCount)
	}
	for _, d := range []struct {
		key string
		val lifecycle.Duration
	}{{"min_interval", c.MinInterval}, {"min_lag", c.MinLag}} {
		if d.val < 0 {
			ps.Addf(d.key, "must not be negative, got %s", d.val)
		}
	}
	if c.FetchSize < 1 || c.FetchSize > 1_000_000 {
		ps.Addf("fetch_size", "want 1 to 1000000, got %d", c.FetchSize)
	}
	if c.SortBufferMB < 0 || c.SortBufferMB > 4096 {
		ps.Addf("sort_buffer_mb", "want 0 to 4096, got %d", c.SortBufferMB)
	}
	if time.Duration(c.LoopDelay) < 10*time.Millisecond || time.Duration(c.LoopDelay) > time.Minute {
		ps.Addf("loop_delay", "want 10ms to 1m, got %s", c.LoopDelay)
	}
	if c.PositionTable == "" {
		ps.Addf("position_table", "must not be empty")
	} else if len(strings.Split(c.PositionTable, ".")) > 2 {
		ps.Addf("position_table", "want TABLE or SCHEMA.TABLE, got %q", c.PositionTable)
	}
}

// consumerConfig is the pgq consumer configuration for these keys.
func (c *Config) consumerConfig() pgq.Config {
	sortBuffer := int(min(int64(c.SortBufferMB)<<20, math.MaxInt)) // Validate keeps it at 4096 or below
	if sortBuffer == 0 {
		sortBuffer = -1 // pgq.Config's "never"
	}
	return pgq.Config{
		Queue:         c.Queue,
		Consumer:      c.Consumer,
		MinCount:      c.MinCount,
		MinInterval:   time.Duration(c.MinInterval),
		MinLag:        time.Duration(c.MinLag),
		FetchSize:     c.FetchSize,
		SortBuffer:    sortBuffer,
		LoopDelay:     time.Duration(c.LoopDelay),
		PositionTable: c.PositionTable,
	}
}
