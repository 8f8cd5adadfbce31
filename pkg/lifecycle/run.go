package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Host is what the lifecycle hands a daemon: its logger, the systemd notifier and
// watchdog, and the metrics registry to register collectors on.
type Host struct {
	Log      *zap.Logger
	Notify   *Notifier
	Watchdog *Watchdog
	Metrics  *prometheus.Registry
}

// NewHost builds a Host from the environment (NOTIFY_SOCKET, WATCHDOG_USEC).
func NewHost(log *zap.Logger) *Host {
	return &Host{
		Log:      log,
		Notify:   NewNotifier(log),
		Watchdog: NewWatchdog(log),
		Metrics:  NewRegistry(),
	}
}

// Daemon is a long-running tool process with configuration C.
type Daemon[C any] interface {
	// Run works until ctx is cancelled, then finishes or safely abandons what it is
	// doing and returns nil. It calls Host.Notify.Ready after its first successful
	// database round trip and Host.Watchdog.Beat from its loop.
	Run(ctx context.Context) error
	// Reload applies a new, already validated configuration while Run goes on. If it
	// returns an error the daemon must still be running with its old configuration.
	Reload(ctx context.Context, cfg *C) error
}

// Spec describes how to run one daemon.
type Spec[C any] struct {
	// ConfigPath is the file given with -c.
	ConfigPath string
	// Load reads and validates the config file (typically defaults + Load).
	Load func(path string) (*C, error)
	// Common returns the keys every daemon has.
	Common func(*C) Common
	// New builds the daemon from its first config.
	New func(cfg *C, h *Host) (Daemon[C], error)
	// Level is the logger's level; set from log_level unless LevelFromFlags.
	Level *zap.AtomicLevel
	// LevelFromFlags is true when -v or -q fixed the level on the command line.
	LevelFromFlags bool
	// StopTimeout bounds the graceful shutdown; default 30s.
	StopTimeout time.Duration
	// Signals, if set, replaces the process's SIGHUP/SIGTERM/SIGINT (for tests).
	Signals <-chan os.Signal
}

// ErrStopTimeout is returned when the daemon did not stop within Spec.StopTimeout.
var ErrStopTimeout = errors.New("daemon did not stop within the stop timeout")

// Run loads the config, starts the daemon and drives it through reloads and shutdown,
// as the package documentation describes. It returns the daemon's error, a
// *ConfigError for an unusable first config, or ErrStopTimeout.
func Run[C any](ctx context.Context, h *Host, spec Spec[C]) error {
	if spec.StopTimeout <= 0 {
		spec.StopTimeout = 30 * time.Second
	}
	cfg, err := spec.Load(spec.ConfigPath)
	if err != nil {
		return err
	}
	r := &runner[C]{spec: spec, h: h}
	r.applyLevel(cfg)

	sigs := spec.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(ch)
		sigs = ch
	}

	if err := r.startMetrics(spec.Common(cfg).MetricsListen); err != nil {
		return err
	}
	defer r.stopMetrics()

	d, err := spec.New(cfg, h)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	wdCtx, stopWD := context.WithCancel(ctx)
	defer stopWD()
	go h.Watchdog.Run(wdCtx)

	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()

	for {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return r.shutdown(cancel, done, sigs, "context cancelled")
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				r.reload(ctx, d)
				continue
			}
			return r.shutdown(cancel, done, sigs, sig.String())
		}
	}
}

type runner[C any] struct {
	spec    Spec[C]
	h       *Host
	metrics *MetricsServer
}

func (r *runner[C]) applyLevel(cfg *C) {
	if r.spec.LevelFromFlags || r.spec.Level == nil {
		return
	}
	lvl, err := ParseLevel(r.spec.Common(cfg).LogLevel)
	if err == nil {
		r.spec.Level.SetLevel(lvl)
	}
}

func (r *runner[C]) reload(ctx context.Context, d Daemon[C]) {
	log := r.h.Log
	r.h.Notify.Reloading()
	defer r.h.Notify.Reloaded()
	log.Info("SIGHUP: reloading configuration", zap.String("file", r.spec.ConfigPath))
	cfg, err := r.spec.Load(r.spec.ConfigPath)
	if err != nil {
		log.Error("new configuration rejected, keeping the old one", zap.Error(err))
		return
	}
	if err := d.Reload(ctx, cfg); err != nil {
		log.Error("could not apply new configuration, keeping the old one", zap.Error(err))
		return
	}
	r.applyLevel(cfg)
	if addr := r.spec.Common(cfg).MetricsListen; r.metricsAddr() != addr {
		r.stopMetrics()
		if err := r.startMetrics(addr); err != nil {
			log.Error("metrics endpoint not restarted", zap.Error(err))
		}
	}
	log.Info("configuration reloaded")
}

func (r *runner[C]) shutdown(cancel context.CancelFunc, done <-chan error, sigs <-chan os.Signal, why string) error {
	r.h.Log.Info("shutting down", zap.String("reason", why), zap.Duration("stop_timeout", r.spec.StopTimeout))
	r.h.Notify.Stopping()
	cancel()
	timer := time.NewTimer(r.spec.StopTimeout)
	defer timer.Stop()
	for {
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			r.h.Log.Info("stopped")
			return nil
		case <-timer.C:
			return fmt.Errorf("%w (%s)", ErrStopTimeout, r.spec.StopTimeout)
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				return fmt.Errorf("second %s during shutdown: stopping at once", sig)
			}
		}
	}
}

func (r *runner[C]) metricsAddr() string {
	if r.metrics == nil {
		return ""
	}
	return r.metrics.addrConfigured
}

func (r *runner[C]) startMetrics(addr string) error {
	if addr == "" {
		return nil
	}
	m, err := StartMetrics(addr, r.h.Metrics, r.h.Log)
	if err != nil {
		return err
	}
	m.addrConfigured = addr
	r.metrics = m
	return nil
}

func (r *runner[C]) stopMetrics() {
	if r.metrics == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.metrics.Close(ctx); err != nil {
		r.h.Log.Warn("metrics server close", zap.Error(err))
	}
	r.metrics = nil
}
