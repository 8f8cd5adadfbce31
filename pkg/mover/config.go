package mover

import (
	"github.com/skytools-go/skytools/pkg/lifecycle"
	"github.com/skytools-go/skytools/pkg/relay"
)

// Config is queue-mover's configuration file.
type Config struct {
	relay.Config
	// DstQueue is the destination queue; default: the source queue's name.
	DstQueue string `toml:"dst_queue"`
}

// DefaultConfig returns the defaults for the config file at path (the consumer name
// is the file's base name).
func DefaultConfig(path string) Config {
	return Config{Config: relay.Defaults(relay.InstanceName(path))}
}

// LoadConfig reads a config file over the defaults and validates it.
func LoadConfig(path string) (*Config, error) {
	cfg := DefaultConfig(path)
	if err := lifecycle.Load(path, &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate reports every problem with its key.
func (c *Config) Validate() error {
	var ps lifecycle.Problems
	c.Config.Validate(&ps)
	if c.DstQueue == "" {
		c.DstQueue = c.Queue
	}
	return ps.Err()
}
