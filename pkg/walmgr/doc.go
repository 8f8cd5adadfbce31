// Package walmgr is walmgrd: WAL archiving (archive_command), verified restore
// (restore_command), base backups, point-in-time restore, standby set-up, retention,
// verification, and a daemon that watches archiving and takes scheduled backups.
//
// # Repository
//
// A repository is a directory (see package repo for the storage interface):
//
//	walmgrd.repository              marker written by setup; without it nothing is read or written
//	system.json                     the one cluster (system identifier, segment size) it belongs to
//	wal/history/00000002.history    timeline history files
//	wal/TTTTTTTTLLLLLLLL/NAME       segments, .partial and .backup files, one directory per timeline+log
//	backups/ID/data/PATH            files of base backup ID (PATH relative to the data directory;
//	                                tablespaces under pg_tblspc/OID/)
//	backups/ID/manifest             written last: a backup without it is incomplete
//	quarantine/NAME-SHA             a different file offered under an already archived name
//	lock                            flock held by backup and cleanup
//
// Every stored file is a blob: the content, zstd-compressed or not, followed by a
// 64-byte trailer holding the original size and SHA-256 (see blob.go).
//
// # The archive protocol (archive_command = walmgrd -c F archive %p %f)
//
// PostgreSQL removes or recycles a segment as soon as archive_command exits 0, and may
// offer the same file again after a crash. Each call walks this state machine:
//
//	parse %f ──not a WAL name──────────────────────────────────▶ FAIL (exit 1)
//	   │
//	segment? read its first page header: timeline and segment number must match the
//	   │     name; the system identifier must match system.json (recorded by the first
//	   │     segment) ──mismatch──────────────────────────────▶ FAIL: never mix clusters
//	   │
//	NAME already in the repository?
//	   ├─ yes: hash %p and compare with the stored trailer
//	   │        ├─ same size and SHA-256: fsync the stored file and its directory ─▶ OK (exit 0)
//	   │        └─ different: store %p as quarantine/NAME-SHA ─▶ FAIL loudly (exit 1);
//	   │           PostgreSQL retries, pg_wal grows, an operator must decide
//	   └─ no:  stream %p through SHA-256 and zstd into a temporary file beside NAME
//	           ├─ read error / short segment / ENOSPC: remove the temporary ─▶ FAIL (exit 1)
//	           └─ fsync file, link to NAME (fails if NAME appeared meanwhile: go to
//	              "already there"), remove the temporary name, fsync directory ─▶ OK
//
// A process killed at any point leaves at most a temporary file that no reader sees
// (the next attempt writes its own; cleanup removes old ones): NAME either does not
// exist or holds the whole, durable file. Success is never reported before that.
//
// # The fetch protocol (restore_command = walmgrd -c F fetch %f %p)
//
// Exit 1 ("not found") only when the repository is present (its marker exists) and has
// no such file. Anything else (corrupt blob, checksum mismatch, I/O error, unmounted
// repository, bad config) exits with 128, which makes PostgreSQL stop instead of ending
// recovery early at the wrong point. The content is decompressed to a temporary file
// beside %p, verified, then renamed to %p. With fetch_prefetch = N a background
// "walmgrd prefetch" decompresses and verifies the next N segments into
// pg_wal/walmgrd-prefetch, from where the next fetch takes them by rename.
//
// # Base backups
//
// On one session: pg_backup_start(label, fast) (pg_start_backup(label, fast, false)
// before PostgreSQL 15); copy the data directory and every tablespace (leaving out WAL,
// temporary and runtime files, unlogged relations' main forks), global/pg_control
// last; pg_backup_stop(false) returns the stop LSN, backup_label and tablespace_map,
// which are stored in the backup as files. The backup is complete only when every
// segment from its start to its stop is in the repository; then the manifest (every
// file with size, SHA-256 and mode) is written. Losing the session aborts the backup
// on the server, and a backup without a manifest is never restored from.
//
// # Restore
//
// Choose the newest complete backup that ended before the target (or the one named),
// refuse a non-empty target directory unless forced (and never one with a running
// server), create directories and tablespace links, write and verify every file with
// pg_control last, then write restore_command and the recovery target into
// postgresql.auto.conf and recovery.signal or standby.signal.
//
// # Retention
//
// Keep the newest keep_backups complete backups and every WAL file from the first
// segment of the oldest kept one on; history files always. See Cleanup.
package walmgr
