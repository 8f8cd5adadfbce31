#!/usr/bin/env bash
# Side-by-side comparison of walmgrd with the alternatives, in one run on this machine:
#
#   archive_command per segment: walmgrd archive (zstd 3, none) vs "cp + sync" vs
#                                pgBackRest archive-push (zst 3)
#   re-archive of an already archived segment (process start to finish)
#   base backup MB/s:            walmgrd backup vs pg_basebackup (plain; tar + client zstd 3)
#   restore MB/s:                walmgrd restore vs pg_basebackup (plain) as "make a new data directory"
#
# Usage: pkg/walmgr/testdata/compare.sh            (from the repository root; root or a normal user)
#        SCALE=50 N=32 pkg/walmgr/testdata/compare.sh
# Needs: go, PostgreSQL 13+ server binaries, pgbackrest (Debian package) for its column.
set -euo pipefail

SCALE=${SCALE:-50}   # pgbench scale of the database that is backed up (~15 MB per unit)
N=${N:-32}           # WAL segments archived per contender
PGBIN=${PGBINDIR:-$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
WORK=$(mktemp -d /tmp/walmgrd-bench.XXXXXX)
chmod 755 "$WORK"
RUNAS=()
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$WORK"
	RUNAS=(setpriv --reuid=postgres --regid=postgres --clear-groups --)
fi
pg() { "${RUNAS[@]}" env PGHOST="$WORK/sock" PGPORT=5499 PGUSER=postgres "$@"; }
now() { date +%s%N; }
cleanup() {
	pg "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "building walmgrd"
(cd "$ROOT" && go build -o "$WORK/walmgrd" ./cmd/walmgrd)
chmod 755 "$WORK/walmgrd"

pg mkdir -p "$WORK/sock" "$WORK/repo-cluster" "$WORK/repo-bench" "$WORK/repo-none" "$WORK/cp" "$WORK/pgbr" "$WORK/segs"
pg "$PGBIN/initdb" -D "$WORK/data" -U postgres -A trust --no-sync >/dev/null
cat >"$WORK/cluster.toml" <<TOML
repository = "$WORK/repo-cluster"
pgdata = "$WORK/data"
connstr = "host=$WORK/sock port=5499 user=postgres dbname=postgres"
compression = "zstd"
compression_level = 3
jobs = 2
TOML
# Archive-only configs (no connstr: setup only creates their repositories).
grep -v -e connstr -e pgdata "$WORK/cluster.toml" | sed -e "s#repo-cluster#repo-bench#" >"$WORK/bench.toml"
grep -v -e connstr -e pgdata "$WORK/cluster.toml" | sed -e "s#repo-cluster#repo-none#" -e 's#"zstd"#"none"#' >"$WORK/none.toml"
cat >>"$WORK/data/postgresql.conf" <<CONF
listen_addresses = ''
port = 5499
unix_socket_directories = '$WORK/sock'
wal_level = replica
max_wal_size = 4GB
wal_keep_size = 4GB
archive_mode = on
archive_command = '$WORK/walmgrd -c $WORK/cluster.toml archive %p %f'
CONF
cat >"$WORK/pgbackrest.conf" <<CONF
[global]
repo1-path=$WORK/pgbr
log-path=$WORK
lock-path=$WORK
spool-path=$WORK
log-level-console=warn
log-level-file=off
compress-type=zst
compress-level=3
[bench]
pg1-path=$WORK/data
pg1-socket-path=$WORK/sock
pg1-port=5499
pg1-user=postgres
CONF
chmod 644 "$WORK"/*.toml "$WORK/pgbackrest.conf"
pg "$WORK/walmgrd" -c "$WORK/bench.toml" setup >/dev/null
pg "$WORK/walmgrd" -c "$WORK/none.toml" setup >/dev/null
pg "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
pg "$WORK/walmgrd" -c "$WORK/cluster.toml" setup >/dev/null

echo "loading pgbench scale $SCALE"
pg "$PGBIN/pgbench" -i -q -s "$SCALE" postgres >/dev/null 2>&1
DBSIZE=$(pg "$PGBIN/psql" -qAtc "SELECT sum(pg_database_size(oid)) FROM pg_database" postgres)

# N real, completed segments of this cluster to archive (copied so the server's
# recycling cannot touch them).
CUR=$(pg "$PGBIN/psql" -qAtc "SELECT pg_walfile_name(pg_current_wal_lsn())" postgres)
mapfile -t SEGS < <(ls "$WORK/data/pg_wal" | grep -E '^[0-9A-F]{24}$' | awk -v cur="$CUR" '$0 < cur' | tail -n "$N")
for s in "${SEGS[@]}"; do pg cp "$WORK/data/pg_wal/$s" "$WORK/segs/$s"; done
N=${#SEGS[@]}
SEGMB=$(($(stat -c %s "$WORK/segs/${SEGS[0]}") / 1048576))

have_pgbr=0
if command -v pgbackrest >/dev/null; then
	if pg pgbackrest --config="$WORK/pgbackrest.conf" --stanza=bench stanza-create >/dev/null 2>&1; then have_pgbr=1; fi
fi

# Contenders: LABEL and a command line with {p} and {f} for the segment's path and
# name, one process per segment as PostgreSQL's archiver runs them. They take turns
# segment by segment, so that a noisy neighbour on the machine hits all alike.
declare -A CMD MEDIAN RATE
LABELS=()
contender() { local l=$1; shift; LABELS+=("$l"); CMD[$l]="$*"; }
# The archive_command PostgreSQL's documentation suggests, made durable with sync(1).
printf '#!/bin/sh\ntest ! -f %s/cp/"$2" && cp "$1" %s/cp/"$2" && sync %s/cp/"$2"\n' "$WORK" "$WORK" "$WORK" >"$WORK/cp-sync"
chmod 755 "$WORK/cp-sync"
contender cp-sync "$WORK/cp-sync" {p} {f}
contender walmgrd-zstd "$WORK/walmgrd" -c "$WORK/bench.toml" archive {p} {f}
contender walmgrd-none "$WORK/walmgrd" -c "$WORK/none.toml" archive {p} {f}
if [ $have_pgbr = 1 ]; then
	contender pgbackrest-zst pgbackrest --config="$WORK/pgbackrest.conf" --stanza=bench archive-push {p}
fi
# The same segments offered again: already archived (process start to finish).
contender walmgrd-again "$WORK/walmgrd" -c "$WORK/bench.toml" archive {p} {f}
if [ $have_pgbr = 1 ]; then
	contender pgbackrest-again pgbackrest --config="$WORK/pgbackrest.conf" --stanza=bench archive-push {p}
fi

declare -A TIMES TOTAL
for l in "${LABELS[@]}"; do TIMES[$l]=""; TOTAL[$l]=0; done
echo "archiving $N segments of $SEGMB MiB per contender, contenders taking turns"
for s in "${SEGS[@]}"; do
	for l in "${LABELS[@]}"; do
		read -r -a words <<<"${CMD[$l]}"
		args=()
		for a in "${words[@]}"; do a=${a//\{p\}/$WORK/segs/$s}; args+=("${a//\{f\}/$s}"); done
		t0=$(now)
		pg "${args[@]}" >/dev/null
		t1=$(now)
		TIMES[$l]+="$(((t1 - t0) / 1000)) "
		TOTAL[$l]=$((TOTAL[$l] + t1 - t0))
	done
done
for l in "${LABELS[@]}"; do
	MEDIAN[$l]=$(tr ' ' '\n' <<<"${TIMES[$l]}" | grep . | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}')
	RATE[$l]=$(awk -v n="$N" -v t="${TOTAL[$l]}" 'BEGIN {printf "%.1f", n / (t / 1e9)}')
done
STORED_W=$(du -sk "$WORK/repo-bench/wal" | cut -f1)
STORED_C=$(du -sk "$WORK/cp" | cut -f1)

echo "base backups of $((DBSIZE / 1048576)) MiB"
mbps() { awk -v b="$1" -v ns="$2" 'BEGIN {printf "%.0f", (b / 1048576) / (ns / 1e9)}'; }
t0=$(now); pg "$WORK/walmgrd" -c "$WORK/cluster.toml" -q backup >/dev/null; t1=$(now)
BK_W=$(mbps "$DBSIZE" $((t1 - t0)))
BK_W_STORED=$(du -sk "$WORK/repo-cluster/backups" | cut -f1)
t0=$(now); pg "$PGBIN/pg_basebackup" -D "$WORK/bb-plain" -Fp -X none -c fast; t1=$(now)
BK_P=$(mbps "$DBSIZE" $((t1 - t0)))
BK_P_SIZE=$(du -sk "$WORK/bb-plain" | cut -f1)
t0=$(now); pg "$PGBIN/pg_basebackup" -D "$WORK/bb-zstd" -Ft -X none -c fast -Z client-zstd:3; t1=$(now)
BK_Z=$(mbps "$DBSIZE" $((t1 - t0)))
BK_Z_SIZE=$(du -sk "$WORK/bb-zstd" | cut -f1)

t0=$(now); pg "$WORK/walmgrd" -c "$WORK/cluster.toml" -q restore "$WORK/restored" >/dev/null; t1=$(now)
RS_W=$(mbps "$DBSIZE" $((t1 - t0)))
t0=$(now); pg "$PGBIN/pg_basebackup" -D "$WORK/bb-plain2" -Fp -X none -c fast; t1=$(now)
RS_P=$(mbps "$DBSIZE" $((t1 - t0)))

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "## walmgrd comparison ($(nproc) cores, $(uname -r), PostgreSQL $(pg "$PGBIN/postgres" --version | awk '{print $3}'), $(pgbackrest version 2>/dev/null || echo 'no pgBackRest'))"
echo
echo "archive_command, $N real pgbench segments of $SEGMB MiB, one process per segment:"
echo
echo "| contender | median ms/segment | segments/s | vs cp+sync |"
echo "|---|---|---|---|"
for l in cp-sync walmgrd-zstd walmgrd-none pgbackrest-zst walmgrd-again pgbackrest-again; do
	[ -n "${MEDIAN[$l]:-}" ] || continue
	echo "| $l | ${MEDIAN[$l]} | ${RATE[$l]} | $(ratio "${RATE[$l]}" "${RATE[cp-sync]}")x |"
done
echo
echo "stored WAL: walmgrd zstd ${STORED_W} KiB, cp ${STORED_C} KiB (ratio $(ratio "$STORED_C" "$STORED_W"))"
echo "(*-again: the same segment offered again, already archived: process start to finish)"
echo
echo "base backup and restore of $((DBSIZE / 1048576)) MiB (pgbench scale $SCALE):"
echo
echo "| operation | MB/s | vs pg_basebackup plain | stored |"
echo "|---|---|---|---|"
echo "| walmgrd backup (zstd 3, jobs 2) | $BK_W | $(ratio "$BK_W" "$BK_P")x | $((BK_W_STORED / 1024)) MiB |"
echo "| pg_basebackup -Fp | $BK_P | 1.00x | $((BK_P_SIZE / 1024)) MiB |"
echo "| pg_basebackup -Ft -Z client-zstd:3 | $BK_Z | $(ratio "$BK_Z" "$BK_P")x | $((BK_Z_SIZE / 1024)) MiB |"
echo "| walmgrd restore (verify + write, jobs 2) | $RS_W | $(ratio "$RS_W" "$RS_P")x | |"
echo "| pg_basebackup -Fp (new data directory) | $RS_P | 1.00x | |"
