#!/usr/bin/env bash
# Writes the upgrade fixtures of one schema version: a database made by the
# given `longshore` binary's migrations, holding tasks in every state (one
# still leased by a worker that was killed), logs over several executions,
# a schedule, a token, caps and a paused queue, dumped as SQL for each
# engine into crates/longshore-cli/tests/fixtures/upgrade/.
#
# tests/upgrades.rs loads every fixture there into a fresh database, runs
# today's `longshore migrate` and checks that nothing was lost and that
# everything still works. Before a change adds a migration, run this with
# the binary built from the commit before it:
#
#   scripts/upgrade-fixture.sh target/debug/longshore 11
#
# Needs LONGSHORE_TEST_DATABASE_URL (a PostgreSQL server where a database
# may be created), psql, pg_dump and sqlite3.
set -euo pipefail

bin=$(realpath "$1")
version=$2
server=${LONGSHORE_TEST_DATABASE_URL:?set LONGSHORE_TEST_DATABASE_URL}
out=$(cd "$(dirname "$0")/.." && pwd)/crates/longshore-cli/tests/fixtures/upgrade
mkdir -p "$out"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# Waits until `tasks stats` reports state $1 at $2.
wait_for() {
    for _ in $(seq 1 300); do
        if [ "$(ls_ tasks stats --json | grep "\"$1\"" | tr -dc 0-9)" = "$2" ]; then
            return
        fi
        sleep 0.1
    done
    echo "timed out waiting for $2 tasks $1" >&2
    exit 1
}

populate() {
    ls_ migrate >/dev/null
    # Runs twice: its first execution fails, the second succeeds.
    ls_ enqueue fail --args '{"times": 1}' --related user:42 --unique-key sync-user-42 >/dev/null
    # Fails for good at its only attempt.
    ls_ enqueue fail --args '{"times": 5}' --max-attempts 1 >/dev/null
    ls_ enqueue sleep --args '{"ms": 10}' >/dev/null
    LONGSHORE_RETRY__BASE=100ms LONGSHORE_RETRY__MAX=200ms ls_ worker --worker-id fixture >/dev/null 2>&1 &
    local worker=$!
    wait_for succeeded 2
    wait_for failed 1
    kill "$worker"
    wait "$worker" || true
    # Leased by a worker that is killed: running, its lease to expire.
    ls_ enqueue sleep --args '{"ms": 600000}' --queue slow >/dev/null
    ls_ worker --worker-id killed --queues slow >/dev/null 2>&1 &
    worker=$!
    wait_for running 1
    kill -9 "$worker"
    wait "$worker" || true
    # Waiting: due now, due in an hour, in a paused queue; one cancelled.
    ls_ enqueue noop --priority -1 >/dev/null
    ls_ enqueue noop --delay 1h >/dev/null
    ls_ enqueue noop --queue held >/dev/null
    ls_ queues pause held >/dev/null
    ls_ tasks cancel "$(ls_ enqueue noop --delay 2h)" >/dev/null
    ls_ schedules add nightly --actor noop --cron '0 0 3 * * *' --tz Europe/Paris >/dev/null
    ls_ tokens create --name fixture-admin --scope admin >/dev/null
    ls_ settings set max_running 50 >/dev/null
    ls_ settings set queues.default.max_running 10 >/dev/null
    # From schema 13: a pool with a cap, an agent token, a task needing labels.
    if "$bin" pools --help >/dev/null 2>&1; then
        ls_ pools add gpu --queues render --labels cuda --max-running 2 >/dev/null
        ls_ agents tokens create --name fixture-agent --pool gpu --expires never >/dev/null 2>&1
        ls_ enqueue noop --queue render --requires cuda >/dev/null
    fi
}

# PostgreSQL.
db="longshore_fixture_$$"
psql -q "$server" -c "CREATE DATABASE $db" >/dev/null
pg_url="${server%/*}/$db"
ls_() { LONGSHORE_DATABASE_URL="$pg_url" "$bin" "$@"; }
(cd "$work" && populate)
pg_dump --no-owner --no-privileges --no-comments --inserts "$pg_url" \
    | grep -v -e '^SET transaction_timeout' -e '^\\restrict' -e '^\\unrestrict' \
        >"$out/v$version.postgres.sql"
psql -q "$server" -c "DROP DATABASE $db WITH (FORCE)" >/dev/null

# SQLite.
file="$work/fixture.db"
ls_() { LONGSHORE_DATABASE_URL="sqlite://$file" "$bin" "$@"; }
(cd "$work" && populate)
sqlite3 "$file" .dump >"$out/v$version.sqlite.sql"

echo "wrote $out/v$version.postgres.sql and $out/v$version.sqlite.sql"
