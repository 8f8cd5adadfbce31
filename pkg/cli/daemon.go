package cli

import (
	"context"

	"github.com/skytools-go/skytools/pkg/lifecycle"
)

// DaemonSpec is how a tool's daemon mode plugs into RunDaemon.
type DaemonSpec[C any] struct {
	// Load reads and validates a config file.
	Load func(path string) (*C, error)
	// Common returns the keys every daemon has (metrics_listen, log_level).
	Common func(*C) lifecycle.Common
	// New builds the daemon.
	New func(cfg *C, h *lifecycle.Host) (lifecycle.Daemon[C], error)
}

// RunDaemon runs a daemon under the lifecycle (config, signals, systemd notify,
// watchdog, metrics) with the logger and level from the command line.
func RunDaemon[C any](ctx context.Context, env *Env, d DaemonSpec[C]) error {
	if env.ConfigPath == "" {
		return Usagef("no config file: run %s -c FILE", env.Tool)
	}
	return lifecycle.Run(ctx, lifecycle.NewHost(env.Log), lifecycle.Spec[C]{
		ConfigPath:     env.ConfigPath,
		Load:           d.Load,
		Common:         d.Common,
		New:            d.New,
		Level:          env.Level,
		LevelFromFlags: env.LevelFromFlags,
	})
}

// CheckConfig adapts a Load function to Tool.CheckConfig.
func CheckConfig[C any](load func(path string) (*C, error)) func(string) error {
	return func(path string) error {
		_, err := load(path)
		return err
	}
}
