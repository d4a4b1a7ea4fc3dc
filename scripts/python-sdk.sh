#!/usr/bin/env bash
# The Python agent SDK's tests against a real `longshore serve`, on SQLite
# and on PostgreSQL: builds a virtualenv under target/, installs
# ./sdk/python into it (which compiles the protocol from proto/, so the
# stubs cannot drift from it) and runs its pytest suite once per engine.
#
# Usage: scripts/python-sdk.sh [pytest arguments]   (needs LONGSHORE_TEST_DATABASE_URL)
set -euo pipefail
cd "$(dirname "$0")/.."

: "${LONGSHORE_TEST_DATABASE_URL:?set it to a PostgreSQL URL that may create databases (scripts/test does)}"

VENV=target/tools/python-sdk
if [ ! -x "$VENV/bin/pytest" ]; then
  echo "making a virtualenv for the Python SDK in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "./sdk/python[test]"
fi
# Always this checkout's SDK, built from this checkout's proto.
"$VENV/bin/pip" install --quiet --force-reinstall --no-deps ./sdk/python
rm -rf sdk/python/build

cargo build --locked -p longshore-cli
export LONGSHORE_BIN=$PWD/target/debug/longshore

PG_DB=
cleanup() {
  if [ -n "$PG_DB" ]; then
    psql -w "$LONGSHORE_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" || true
  fi
}
trap cleanup EXIT

echo "== Python SDK on SQLite"
LONGSHORE_SDK_TEST_DATABASE_URL= "$VENV/bin/python" -m pytest -q sdk/python/tests "$@"

echo "== Python SDK on PostgreSQL"
PG_DB=longshore_test_python_$$
psql -w "$LONGSHORE_TEST_DATABASE_URL" -qc "CREATE DATABASE \"$PG_DB\""
LONGSHORE_SDK_TEST_DATABASE_URL="${LONGSHORE_TEST_DATABASE_URL%/*}/$PG_DB" \
  "$VENV/bin/python" -m pytest -q sdk/python/tests "$@"

echo "== bench workload p (A through a Python agent), a small run on SQLite"
out=$("$LONGSHORE_BIN" bench --workloads p --bulk-tasks 300 --python "$VENV/bin/python" 2>&1) || {
  echo "$out" >&2
  exit 1
}
echo "$out" | grep "P python agent" || {
  echo "$out" >&2
  echo "the bench printed no P row" >&2
  exit 1
}
