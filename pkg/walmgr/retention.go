package walmgr

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// abandonedAge is how old an uncommitted temporary file must be before cleanup
// removes it: far longer than any single write takes.
const abandonedAge = time.Hour

// CleanupResult says what retention removed (or would remove).
type CleanupResult struct {
	Backups   []string
	WALFiles  int
	Temporary int
	Kept      int
}

// Cleanup applies retention:
//
//   - the newest keep complete backups are kept; older complete backups go;
//   - incomplete backups older than the newest complete one go (a backup in progress
//     is newer, and cleanup holds the same lock as backup);
//   - WAL goes only when it is older than the start of the oldest kept backup: a
//     segment, .partial or .backup file whose segment number is lower than that
//     backup's first segment, on any timeline (no kept backup can replay it).
//     History files are always kept. Without a complete backup no WAL is deleted.
//   - temporary files abandoned by killed processes more than an hour ago go.
func (r *Repository) Cleanup(ctx context.Context, keep int, dryRun bool, log *zap.Logger) (CleanupResult, error) {
	var res CleanupResult
	if keep < 1 {
		return res, fmt.Errorf("cleanup: keep_backups must be at least 1")
	}
	unlock, err := r.lock("cleanup")
	if err != nil {
		return res, err
	}
	defer unlock()
	bs, err := r.backups(ctx)
	if err != nil {
		return res, err
	}
	var complete []backupState
	for _, b := range bs {
		if b.Manifest != nil {
			complete = append(complete, b)
		}
	}
	kept := complete
	if len(kept) > keep {
		kept = complete[len(complete)-keep:]
	}
	res.Kept = len(kept)
	keepID := map[string]bool{}
	for _, b := range kept {
		keepID[b.ID] = true
	}
	var newest time.Time
	if len(complete) > 0 {
		newest = backupTime(complete[len(complete)-1])
	}
	for _, b := range bs {
		if keepID[b.ID] {
			continue
		}
		if b.Manifest == nil && (newest.IsZero() || !backupTime(b).Before(newest)) {
			continue // incomplete but newer than every complete backup: leave it be
		}
		if b.Err != nil {
			log.Warn("leaving an unreadable backup for a human to look at", zap.String("backup", b.ID), zap.Error(b.Err))
			continue
		}
		res.Backups = append(res.Backups, b.ID)
		if dryRun {
			continue
		}
		if err := r.removeBackup(ctx, b.ID); err != nil {
			return res, err
		}
		log.Info("removed backup", zap.String("backup", b.ID))
	}

	if len(kept) > 0 {
		oldest := kept[0].Manifest
		start, _ := ParseWALName(oldest.StartWAL)
		first := start.SegNo(oldest.WALSegmentSize)
		inv, err := r.walInventory(ctx)
		if err != nil {
			return res, err
		}
		var doomed []walFile
		for _, tl := range inv.timelines() {
			for _, s := range inv.Segments[tl] {
				if s.SegNo(inv.SegSize) < first {
					doomed = append(doomed, s)
				}
			}
		}
		for _, o := range inv.Others {
			if o.SegNo(inv.SegSize) < first {
				doomed = append(doomed, o)
			}
		}
		for _, f := range doomed {
			res.WALFiles++
			if dryRun {
				continue
			}
			if err := r.Store.Remove(ctx, f.Info.Key); err != nil {
				return res, err
			}
		}
		if res.WALFiles > 0 {
			log.Info("removed WAL older than the oldest kept backup", zap.Int("files", res.WALFiles),
				zap.String("oldest_kept_backup", oldest.ID), zap.String("first_kept_wal", oldest.StartWAL))
		}
	}

	tmp, err := r.Store.Abandoned(ctx, abandonedAge)
	if err != nil {
		return res, err
	}
	for _, name := range tmp {
		res.Temporary++
		if !dryRun {
			if err := r.Store.RemoveAbandoned(ctx, name); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// removeBackup deletes a backup, manifest first so that a cleanup interrupted half
// way leaves an incomplete backup, never a "complete" one with files missing.
func (r *Repository) removeBackup(ctx context.Context, id string) error {
	if err := r.Store.Remove(ctx, manifestKey(id)); err != nil {
		return err
	}
	objs, err := r.Store.List(ctx, "backups/"+id)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := r.Store.Remove(ctx, o.Key); err != nil {
			return err
		}
	}
	return nil
}
