package walmgr

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/skytools-go/skytools/pkg/lifecycle"
	"go.uber.org/zap"
)

// Daemon is walmgrd without a command: it watches archiving, takes scheduled base
// backups and applies retention after each.
type Daemon struct {
	h       *lifecycle.Host
	log     *zap.Logger
	mu      sync.Mutex
	cfg     *Config
	conn    *pgx.Conn
	connStr string
	m       *daemonMetrics

	lastFailed       int64
	lastBackupFailed time.Time
}

type daemonMetrics struct {
	up             prometheus.Gauge
	archived       prometheus.Gauge
	failed         prometheus.Gauge
	lastArchiveAge prometheus.Gauge
	ready          prometheus.Gauge
	backups        prometheus.Gauge
	lastBackupAge  prometheus.Gauge
	backupRuns     *prometheus.CounterVec
	backupSeconds  prometheus.Gauge
}

func newDaemonMetrics(reg *prometheus.Registry) *daemonMetrics {
	g := func(name, help string) prometheus.Gauge {
		x := prometheus.NewGauge(prometheus.GaugeOpts{Name: "walmgrd_" + name, Help: help})
		reg.MustRegister(x)
		return x
	}
	m := &daemonMetrics{
		up:             g("server_up", "1 when the last check reached the server"),
		archived:       g("archived_count", "pg_stat_archiver.archived_count"),
		failed:         g("archive_failed_count", "pg_stat_archiver.failed_count"),
		lastArchiveAge: g("last_archived_age_seconds", "seconds since pg_stat_archiver.last_archived_time (-1: never)"),
		ready:          g("archive_ready_files", "WAL files waiting for archive_command (.ready), -1 if not readable"),
		backups:        g("backups_complete", "complete base backups in the repository"),
		lastBackupAge:  g("last_backup_age_seconds", "seconds since the newest complete backup ended (-1: none)"),
		backupSeconds:  g("last_backup_duration_seconds", "how long the last successful base backup took"),
		backupRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "walmgrd_backup_runs_total",
			Help: "base backups the daemon started, by result"}, []string{"result"}),
	}
	reg.MustRegister(m.backupRuns)
	return m
}

// NewDaemon builds the daemon (lifecycle calls it).
func NewDaemon(cfg *Config, h *lifecycle.Host) (lifecycle.Daemon[Config], error) {
	if cfg.ConnStr == "" {
		return nil, &lifecycle.ConfigError{Problems: []lifecycle.Problem{{Key: "connstr", Message: "required by the daemon"}}}
	}
	return &Daemon{h: h, log: h.Log, cfg: cfg, m: newDaemonMetrics(h.Metrics), lastFailed: -1}, nil
}

// Reload implements lifecycle.Daemon.
func (d *Daemon) Reload(_ context.Context, cfg *Config) error {
	if cfg.ConnStr == "" {
		return errors.New("connstr: required by the daemon")
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	return nil
}

func (d *Daemon) config() *Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Run implements lifecycle.Daemon.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.closeConn()
	backoff := time.Second
	for {
		cfg := d.config()
		wait := time.Duration(cfg.CheckInterval)
		if err := d.pass(ctx, cfg); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.m.up.Set(0)
			d.log.Warn("check failed", zap.Error(err))
			d.h.Notify.Status("error: %v", err)
			d.closeConn()
			wait = min(wait, backoff)
			backoff = min(backoff*2, time.Minute)
		} else {
			backoff = time.Second
		}
		d.h.Watchdog.Beat()
		if every := d.h.Watchdog.BeatEvery(); wait > every {
			wait = every
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

func (d *Daemon) closeConn() {
	if d.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = d.conn.Close(ctx)
		cancel()
		d.conn = nil
	}
}

// archiverState is one look at pg_stat_archiver.
type archiverState struct {
	Archived     int64
	LastArchived string
	LastTime     *time.Time
	Failed       int64
	LastFailed   string
	Ready        int64
	InRecovery   bool
}

const archiverSQL = `SELECT archived_count, coalesce(last_archived_wal, ''), last_archived_time,
	failed_count, coalesce(last_failed_wal, ''), pg_is_in_recovery()
FROM pg_stat_archiver`

func (d *Daemon) pass(ctx context.Context, cfg *Config) error {
	timeout := max(time.Duration(cfg.CheckInterval), 10*time.Second)
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if d.conn == nil || d.connStr != cfg.ConnStr {
		d.closeConn()
		conn, err := connect(qctx, cfg, "")
		if err != nil {
			return err
		}
		d.conn, d.connStr = conn, cfg.ConnStr
	}
	var st archiverState
	if err := d.conn.QueryRow(qctx, archiverSQL).Scan(&st.Archived, &st.LastArchived, &st.LastTime, &st.Failed,
		&st.LastFailed, &st.InRecovery); err != nil {
		return fmt.Errorf("query pg_stat_archiver: %w", err)
	}
	st.Ready = -1
	if err := d.conn.QueryRow(qctx, "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'").Scan(&st.Ready); err != nil {
		st.Ready = -1 // needs pg_monitor; not fatal
		if d.conn.IsClosed() {
			return fmt.Errorf("count .ready files: %w", err)
		}
	}
	d.h.Notify.Ready()
	d.h.Watchdog.Beat()
	d.m.up.Set(1)
	d.observeArchiver(cfg, st)

	r, err := OpenRepository(ctx, cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	bs, err := r.backups(ctx)
	if err != nil {
		return err
	}
	newest := d.observeBackups(bs)
	if cfg.BackupSchedule > 0 && !st.InRecovery && d.backupDue(cfg, newest) {
		d.runBackup(ctx, cfg, r)
		if bs, err = r.backups(ctx); err != nil {
			return err
		}
		newest = d.observeBackups(bs)
	}
	d.h.Notify.Status("%s", statusLine(cfg, st, newest, time.Now()))
	return nil
}

func (d *Daemon) observeArchiver(cfg *Config, st archiverState) {
	d.m.archived.Set(float64(st.Archived))
	d.m.failed.Set(float64(st.Failed))
	d.m.ready.Set(float64(st.Ready))
	age := -1.0
	if st.LastTime != nil {
		age = time.Since(*st.LastTime).Seconds()
	}
	d.m.lastArchiveAge.Set(age)
	if d.lastFailed >= 0 && st.Failed > d.lastFailed {
		d.log.Warn("archive_command failed", zap.Int64("failures", st.Failed-d.lastFailed), zap.String("wal", st.LastFailed))
	}
	d.lastFailed = st.Failed
	stale := time.Duration(cfg.ArchiveStaleAfter)
	if stale > 0 && st.Ready > 0 && (st.LastTime == nil || time.Since(*st.LastTime) > stale) {
		d.log.Warn("archiving is stalled: WAL is waiting and nothing was archived recently",
			zap.Int64("ready_files", st.Ready), zap.String("last_archived", st.LastArchived), zap.String("last_failed", st.LastFailed))
	}
}

// observeBackups updates the backup metrics and returns the newest complete backup.
func (d *Daemon) observeBackups(bs []backupState) *Manifest {
	var newest *Manifest
	n := 0
	for _, b := range bs {
		if b.Manifest != nil {
			n++
			newest = b.Manifest
		}
	}
	d.m.backups.Set(float64(n))
	if newest == nil {
		d.m.lastBackupAge.Set(-1)
	} else {
		d.m.lastBackupAge.Set(time.Since(newest.StopTime).Seconds())
	}
	return newest
}

// backupDue: no complete backup, or the newest is older than backup_schedule; after a
// failed attempt, wait one schedule period or five minutes, whichever is shorter.
func (d *Daemon) backupDue(cfg *Config, newest *Manifest) bool {
	period := time.Duration(cfg.BackupSchedule)
	if !d.lastBackupFailed.IsZero() && time.Since(d.lastBackupFailed) < min(period, 5*time.Minute) {
		return false
	}
	return newest == nil || time.Since(newest.StopTime) >= period
}

func (d *Daemon) runBackup(ctx context.Context, cfg *Config, r *Repository) {
	d.h.Notify.Status("taking a scheduled base backup")
	start := time.Now()
	m, err := r.Backup(ctx, cfg, d.log, BackupOptions{Label: "walmgrd scheduled", Progress: d.h.Watchdog.Beat})
	if err != nil {
		d.m.backupRuns.WithLabelValues("error").Inc()
		d.lastBackupFailed = time.Now()
		if ctx.Err() == nil {
			d.log.Error("scheduled base backup failed", zap.Error(err))
		}
		return
	}
	d.lastBackupFailed = time.Time{}
	d.m.backupRuns.WithLabelValues("ok").Inc()
	d.m.backupSeconds.Set(time.Since(start).Seconds())
	res, err := r.Cleanup(ctx, cfg.KeepBackups, false, d.log)
	if err != nil {
		d.log.Error("retention after backup failed", zap.String("backup", m.ID), zap.Error(err))
		return
	}
	d.log.Info("retention applied", zap.Strings("removed_backups", res.Backups), zap.Int("removed_wal", res.WALFiles))
}

// statusLine is the one line systemctl status shows.
func statusLine(cfg *Config, st archiverState, newest *Manifest, now time.Time) string {
	arch := "nothing archived yet"
	if st.LastTime != nil {
		arch = fmt.Sprintf("archived %s %s ago", st.LastArchived, now.Sub(*st.LastTime).Truncate(time.Second))
	}
	s := fmt.Sprintf("%s, %d failed", arch, st.Failed)
	if st.Ready > 0 {
		s += fmt.Sprintf(", %d waiting", st.Ready)
	}
	if newest == nil {
		s += "; no complete backup"
	} else {
		s += fmt.Sprintf("; last backup %s (%s ago)", newest.ID, now.Sub(newest.StopTime).Truncate(time.Second))
	}
	if st.InRecovery {
		s += "; server in recovery"
	} else if cfg.BackupSchedule > 0 && newest != nil {
		next := newest.StopTime.Add(time.Duration(cfg.BackupSchedule)).Sub(now).Truncate(time.Second)
		s += fmt.Sprintf("; next backup in %s", max(next, 0))
	}
	return s
}
