// Package lifecycle is what every skytools daemon shares between main and its own loop:
// strict TOML configuration, the zap logger (journald-native under systemd), the systemd
// notify protocol and watchdog, signal handling, and the optional Prometheus endpoint.
//
// # Configuration
//
// [Load] decodes a TOML file into a config struct whose defaults the caller has already
// filled in. Every key must map to a field: unknown or misplaced keys are errors that name
// the key ("pgqd.toml: ticker_perod: unknown key"). Durations are strings with a unit
// ([Duration]). After decoding, the struct's Validate method (if any) runs; it reports every
// problem at once through [Problems]. All of these come back as one [*ConfigError], which
// commands turn into exit code 2.
//
// # Running a daemon
//
// [Run] owns the process lifecycle around a [Daemon]:
//
//	load config ─▶ New(cfg, host) ─▶ go Run(ctx) ─┬─ SIGHUP: RELOADING=1, load, Reload(cfg) or keep old, READY=1
//	                                              ├─ SIGTERM/SIGINT: STOPPING=1, cancel ctx, wait ≤ stop timeout
//	                                              └─ Run returns: exit with its error
//
// The daemon itself decides when it is ready: it calls [Notifier.Ready] after its first
// successful database round trip, so systemd's "started" means "working". It reports what
// it is doing with [Notifier.Status], and proves its main loop is alive by calling
// [Watchdog.Beat] from the loop's progress path at least every [Watchdog.BeatEvery]. The
// watchdog sends WATCHDOG=1 at half of WATCHDOG_USEC only when the loop has beaten since
// the previous ping, so a loop stuck in a query stops the pings and systemd's WatchdogSec
// restarts the service.
package lifecycle
