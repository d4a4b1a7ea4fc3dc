#!/usr/bin/env bash
# Measures, with the default timings, how long a pool's tasks take to come
# back when their agent dies (SIGKILL) or goes silent (SIGSTOP, which the
# gateway cannot tell from a network partition): a `longshore worker`
# serving the gateway, real `longshore agent` processes, one engine.
# The tests in crates/longshore-cli/tests/agents.rs prove the same
# behaviour with short timings; this gives the figures of
# docs/reliability.md.
#
# Usage: scripts/agent-chaos.sh sqlite|postgres
#        (postgres needs LONGSHORE_TEST_DATABASE_URL, a server that may
#        create databases)
set -euo pipefail
cd "$(dirname "$0")/.."
engine=${1:?usage: scripts/agent-chaos.sh sqlite|postgres}

cargo build --locked -p longshore-cli
BIN=$PWD/target/debug/longshore
WORK=$(mktemp -d "${TMPDIR:-/tmp}/longshore-test-agent-chaos-XXXXXX")
PIDS=()
PG_DB=
cleanup() {
  for pid in "${PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$PG_DB" ]; then
    psql -w "$LONGSHORE_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"

case $engine in
  sqlite) export LONGSHORE_DATABASE_URL=sqlite://$WORK/longshore.db ;;
  postgres)
    : "${LONGSHORE_TEST_DATABASE_URL:?set it to a PostgreSQL URL that may create databases}"
    PG_DB=longshore_test_agent_chaos_$$
    psql -w "$LONGSHORE_TEST_DATABASE_URL" -qc "CREATE DATABASE \"$PG_DB\""
    export LONGSHORE_DATABASE_URL=${LONGSHORE_TEST_DATABASE_URL%/*}/$PG_DB
    ;;
  *) echo "unknown engine $engine" >&2; exit 2 ;;
esac
export LONGSHORE_LOG=warn

"$BIN" migrate >/dev/null
"$BIN" worker --queues default --grpc-listen 127.0.0.1:0 --http 127.0.0.1:0 >worker.out 2>worker.err &
PIDS+=($!)
for _ in $(seq 300); do grep -q "gateway on" worker.out 2>/dev/null && break; sleep 0.1; done
GATEWAY=$(sed -n "s/.*agents' gateway on \(http:\/\/[^,]*\).*/\1/p" worker.out)
[ -n "$GATEWAY" ] || { cat worker.err >&2; echo "the worker did not start" >&2; exit 1; }
"$BIN" pools add chaos --queues chaos >/dev/null
export LONGSHORE_AGENT_TOKEN
LONGSHORE_AGENT_TOKEN=$("$BIN" agents tokens create --name chaos --pool chaos 2>/dev/null)

in_state() { "$BIN" tasks list --queue chaos --state "$1" --json | grep -c '"id"' || true; }
# Polls every 0.1 s until `n` tasks are in `state`; 60 s at most.
wait_for() {
  local state=$1 n=$2
  for _ in $(seq 600); do [ "$(in_state "$state")" = "$n" ] && return 0; sleep 0.1; done
  echo "$engine: waited 60 s for $n $state tasks" >&2
  exit 1
}
elapsed() { echo "$(date +%s.%N) - $1" | bc; }

echo "== $engine: an agent killed with SIGKILL while it runs 4 tasks"
"$BIN" enqueue sleep --queue chaos --args '{"ms": 60000}' --count 4 >/dev/null
"$BIN" agent --gateway "$GATEWAY" --pool chaos --id victim --concurrency 4 >/dev/null 2>&1 &
victim=$!
wait_for running 4
sleep 1 # past the agent's Started messages
t0=$(date +%s.%N)
kill -9 "$victim"
wait_for running 0
echo "$engine: 4 tasks back in the queue $(elapsed "$t0") s after the kill (polled every 0.1 s)"
"$BIN" tasks list --queue chaos
"$BIN" tasks delete --queue chaos --yes >/dev/null 2>&1

echo "== $engine: an agent stopped with SIGSTOP (silent) while it runs 2 tasks"
"$BIN" enqueue sleep --queue chaos --args '{"ms": 20000}' --count 2 >/dev/null
"$BIN" agent --gateway "$GATEWAY" --pool chaos --id frozen --concurrency 2 >/dev/null 2>&1 &
frozen=$!
PIDS+=($frozen)
wait_for running 2
sleep 2
t0=$(date +%s.%N)
kill -STOP "$frozen"
wait_for running 0
echo "$engine: 2 tasks back in the queue $(elapsed "$t0") s after SIGSTOP (grpc.session_timeout 15 s)"
# Woken, the agent finds its session closed, drops what it ran (its
# leases are gone), connects again and runs the tasks anew.
kill -CONT "$frozen"
wait_for succeeded 2
echo "$engine: after SIGCONT, both succeeded; tasks in the queue: $("$BIN" tasks list --queue chaos --json | grep -c '"id"')"
"$BIN" tasks list --queue chaos
