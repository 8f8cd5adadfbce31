package lifecycle

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// Notifier speaks the systemd notify protocol (sd_notify) on NOTIFY_SOCKET. Without
// that variable (not run by systemd) every call is a no-op, so daemons call it freely.
type Notifier struct {
	log    *zap.Logger
	ready  atomic.Bool
	mu     sync.Mutex
	status string
}

// NewNotifier returns a notifier that logs (at debug) what it sends and any send error.
func NewNotifier(log *zap.Logger) *Notifier {
	return &Notifier{log: log}
}

func (n *Notifier) send(state string) {
	sent, err := daemon.SdNotify(false, state)
	if err != nil {
		n.log.Warn("systemd notify failed", zap.String("state", state), zap.Error(err))
		return
	}
	if sent {
		n.log.Debug("systemd notify", zap.String("state", state))
	}
}

// Ready tells systemd that start-up is complete: call it after the first successful
// database round trip, never before. Later calls do nothing.
func (n *Notifier) Ready() {
	if n.ready.CompareAndSwap(false, true) {
		n.send(daemon.SdNotifyReady)
	}
}

// IsReady reports whether Ready has been called.
func (n *Notifier) IsReady() bool { return n.ready.Load() }

// Status sets the one-line status shown by `systemctl status`. Repeats are not resent.
func (n *Notifier) Status(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	n.mu.Lock()
	same := s == n.status
	n.status = s
	n.mu.Unlock()
	if !same {
		n.send("STATUS=" + s)
	}
}

// Reloading tells systemd a configuration reload has begun.
func (n *Notifier) Reloading() {
	n.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// Reloaded ends a reload. It sends READY=1 only if the daemon had become ready before:
// a daemon still waiting for its database stays "activating".
func (n *Notifier) Reloaded() {
	if n.ready.Load() {
		n.send(daemon.SdNotifyReady)
	}
}

// Stopping tells systemd the daemon is shutting down.
func (n *Notifier) Stopping() {
	n.send(daemon.SdNotifyStopping)
}

// Watchdog sends WATCHDOG=1 to systemd, but only while the daemon's main loop makes
// progress: the loop calls Beat on every pass, and each ping (every half of
// WATCHDOG_USEC) goes out only if there was a beat since the previous one.
type Watchdog struct {
	interval time.Duration // WATCHDOG_USEC; 0 when systemd does not watch us
	beats    atomic.Uint64
	log      *zap.Logger
}

// NewWatchdog reads WATCHDOG_USEC (and WATCHDOG_PID) from the environment.
func NewWatchdog(log *zap.Logger) *Watchdog {
	iv, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("ignoring malformed systemd watchdog settings", zap.Error(err))
		iv = 0
	}
	return &Watchdog{interval: iv, log: log}
}

// Enabled reports whether systemd expects watchdog pings.
func (w *Watchdog) Enabled() bool { return w.interval > 0 }

// Beat records that the main loop made progress.
func (w *Watchdog) Beat() { w.beats.Add(1) }

// BeatEvery is the longest a loop may go between beats: a quarter of the watchdog
// interval, so that every half-interval ping window contains at least one beat. Without
// a watchdog it is one minute, so loops need no special case.
func (w *Watchdog) BeatEvery() time.Duration {
	if w.interval <= 0 {
		return time.Minute
	}
	return w.interval / 4
}

// Run pings until ctx ends. It returns at once when the watchdog is disabled.
func (w *Watchdog) Run(ctx context.Context) {
	if w.interval <= 0 {
		return
	}
	t := time.NewTicker(w.interval / 2)
	defer t.Stop()
	last := w.beats.Load()
	stalled := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := w.beats.Load()
		if now == last {
			if !stalled {
				w.log.Error("main loop made no progress: withholding the systemd watchdog ping",
					zap.Duration("watchdog_interval", w.interval))
				stalled = true
			}
			continue
		}
		if stalled {
			w.log.Info("main loop progressing again: resuming systemd watchdog pings")
			stalled = false
		}
		last = now
		if _, err := daemon.SdNotify(false, daemon.SdNotifyWatchdog); err != nil {
			w.log.Warn("systemd watchdog ping failed", zap.Error(err))
		}
	}
}
