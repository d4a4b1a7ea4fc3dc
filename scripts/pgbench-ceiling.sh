#!/usr/bin/env bash
# The PostgreSQL server's own ceiling for what a worker asks of it, measured
# with pgbench beside `longshore bench` in the same sitting: the bar of
# docs/benchmarks.md ("Against the database's own ceiling") is a ratio of
# the two, never of figures from different hours.
#
# The pattern: a worker of N slots completes the N tasks it holds and
# claims N more, in one pipelined transaction (one Sync, one commit). On a
# bare table of its own (id, state, owner, due time, arguments) with the
# partial indexes a ready-task lookup and a worker's held tasks need: no
# leases, attempts, caps,
# pauses or counts, so what it measures is what the server can do, not
# what Longshore does. Each transaction moves N tasks: tasks/s = tps × N.
#
# Runs, each on a fresh table of --rows ready tasks, for --seconds:
#   16 a transaction, 1 client and 2 clients, synchronous_commit off (the
#   hot path's default) and on (durable_hot_path: true);
#   100 a transaction, 16 clients, synchronous_commit on: the batched
#   ceiling that several worker processes are measured against.
#
# Usage: scripts/pgbench-ceiling.sh [--seconds S] [--rows N] [DATABASE_URL]
# (default URL: $LONGSHORE_DATABASE_URL, else
# postgres://postgres@127.0.0.1:5432/postgres). Needs pgbench and psql on
# PATH (Debian: postgresql-client) and a role that may CREATE DATABASE.
# Prints one line per run and the same as JSON lines to stdout's end.
# When the server runs on this machine, each run also says how much CPU
# its processes spent a task (from /proc), the figure `longshore bench`
# prints for A beside its own ("CPU a task: bench / PostgreSQL").
set -euo pipefail

seconds=20
rows=1500000
url=${LONGSHORE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --rows) rows=$2; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        -*) echo "unknown flag $1" >&2; exit 2 ;;
        *) url=$1; shift ;;
    esac
done
for tool in pgbench psql; do
    command -v "$tool" > /dev/null || { echo "$tool is not on PATH (apt-get install postgresql-client)" >&2; exit 1; }
done

db=longshore_ceiling_$$
psql "$url" -qAtc "CREATE DATABASE $db" > /dev/null
trap 'psql "$url" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" > /dev/null' EXIT
# The same server, the scratch database: replace the URL's path.
base=${url%%\?*}
query=${url#"$base"}
scratch="${base%/*}/$db$query"

script=$(mktemp)
trap 'rm -f "$script"; psql "$url" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" > /dev/null' EXIT
cat > "$script" <<'SQL'
\startpipeline
UPDATE ceiling_tasks SET state = 2 WHERE owner = :client_id AND state = 1;
UPDATE ceiling_tasks SET state = 1, owner = :client_id
 WHERE id IN (SELECT id FROM ceiling_tasks WHERE state = 0
              ORDER BY due, id LIMIT :batch FOR UPDATE SKIP LOCKED);
\endpipeline
SQL

fresh_table() {
    psql "$scratch" -qX > /dev/null <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS ceiling_tasks;
CREATE TABLE ceiling_tasks (
    id bigserial PRIMARY KEY,
    state smallint NOT NULL DEFAULT 0,
    owner int,
    due timestamptz NOT NULL DEFAULT now(),
    args jsonb NOT NULL DEFAULT '{}'
);
INSERT INTO ceiling_tasks (state) SELECT 0 FROM generate_series(1, $rows);
CREATE INDEX ceiling_tasks_ready ON ceiling_tasks (due, id) WHERE state = 0;
CREATE INDEX ceiling_tasks_held ON ceiling_tasks (owner) WHERE state = 1;
VACUUM ANALYZE ceiling_tasks;
CHECKPOINT;
SQL
}

# The CPU ticks every local `postgres` process has used, with those of its
# ended children (closed backends count into the server's main process):
# utime, stime, cutime and cstime, fields 14 to 17 of /proc/PID/stat.
# Read only once the scratch database has no session left but the one
# asking (a backend that exits while the scan runs would count once in its
# own times and once more, or not at all, in the server's).
postgres_ticks() {
    local total=0 dir comm stat fields
    until [[ $(psql "$scratch" -qAtc \
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()") == 0 ]]; do
        sleep 0.2
    done
    sleep 0.2
    for dir in /proc/[0-9]*; do
        { read -r comm < "$dir/comm"; } 2> /dev/null || continue
        [[ $comm == postgres ]] || continue
        { read -r stat < "$dir/stat"; } 2> /dev/null || continue
        read -ra fields <<< "${stat##*) }"
        total=$((total + fields[11] + fields[12] + fields[13] + fields[14]))
    done
    echo "$total"
}
ticks_per_second=$(getconf CLK_TCK)

# run BATCH CLIENTS SYNCHRONOUS_COMMIT
run() {
    local batch=$1 clients=$2 sync=$3 out tps before after
    fresh_table
    before=$(postgres_ticks)
    out=$(PGOPTIONS="-c synchronous_commit=$sync" pgbench "$scratch" -n -M prepared \
        -f "$script" -D batch="$batch" -c "$clients" -j "$clients" -T "$seconds" 2>&1)
    after=$(postgres_ticks)
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<< "$out" | head -1)
    if [[ -z $tps ]]; then
        echo "pgbench failed:" >&2
        echo "$out" >&2
        exit 1
    fi
    # Server CPU a task, in microseconds, over the transactions pgbench
    # completed; -1 when no local server was seen.
    local cpu=-1 transactions
    transactions=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<< "$out" | head -1)
    if ((after > before)) && [[ -n $transactions ]] && ((transactions > 0)); then
        cpu=$(awk -v d=$((after - before)) -v hz="$ticks_per_second" -v n="$transactions" -v b="$batch" \
            'BEGIN { printf "%.0f", d / hz / (n * b) * 1e6 }')
    fi
    awk -v b="$batch" -v c="$clients" -v s="$sync" -v t="$tps" -v u="$cpu" 'BEGIN {
        printf "%3d a transaction, %2d client(s), synchronous_commit %-3s  %10.0f tasks/s  (%.0f tps)", b, c, s, t * b, t
        if (u >= 0) printf "  server CPU %s µs a task", u
        printf "\n"
    }'
    results+=("$(awk -v b="$batch" -v c="$clients" -v s="$sync" -v t="$tps" -v u="$cpu" 'BEGIN {
        printf "{\"batch\": %d, \"clients\": %d, \"synchronous_commit\": \"%s\", \"tasks_per_sec\": %.0f", b, c, s, t * b
        if (u >= 0) printf ", \"server_cpu_us_per_task\": %s", u
        printf "}"
    }')")
}

results=()
echo "server: $(psql "$scratch" -qAtc 'SHOW server_version'), fsync $(psql "$scratch" -qAtc 'SHOW fsync'); $rows rows, $seconds s a run"
run 16 1 off
run 16 2 off
run 16 1 on
run 16 2 on
run 100 16 on
printf '%s\n' "${results[@]}"
