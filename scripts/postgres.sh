# Sourced by scripts/test and scripts/run: makes sure a PostgreSQL server is
# reachable and exports LONGSHORE_PG_ADMIN_URL, a URL of a superuser on it.
#
# - LONGSHORE_TEST_DATABASE_URL, if set, is used as it is.
# - Otherwise: a server that answers on 127.0.0.1:5432 as `postgres` without
#   a password (trust auth) is used.
# - Otherwise the packaged Debian/Ubuntu cluster is started if it exists but
#   is down, or installed with apt-get if PostgreSQL is missing; a superuser
#   role named after the current OS user is created and reached through the
#   Unix socket (peer auth). initdb refuses to run as root, so the packaged
#   cluster is always the one used.

pg_log() { printf 'postgres: %s\n' "$*" >&2; }

# -w: never prompt for a password (a script must not hang on a prompt).
pg_try() { PGCONNECT_TIMEOUT=5 psql -w "$1" -Atqc 'SELECT 1' >/dev/null 2>&1; }

pg_as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

pg_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

pg_ensure() {
  if [ -n "${LONGSHORE_TEST_DATABASE_URL:-}" ]; then
    LONGSHORE_PG_ADMIN_URL=$LONGSHORE_TEST_DATABASE_URL
    if ! command -v psql >/dev/null || pg_try "$LONGSHORE_PG_ADMIN_URL"; then
      export LONGSHORE_PG_ADMIN_URL
      return 0
    fi
    pg_log "LONGSHORE_TEST_DATABASE_URL does not answer: $LONGSHORE_PG_ADMIN_URL"
    return 1
  fi

  local tcp="postgres://postgres@127.0.0.1:5432/postgres"
  if command -v psql >/dev/null && pg_try "$tcp"; then
    export LONGSHORE_PG_ADMIN_URL=$tcp
    return 0
  fi

  if ! command -v pg_lsclusters >/dev/null; then
    pg_log "PostgreSQL is not installed; installing it with apt-get"
    pg_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive pg_root apt-get install -y -qq postgresql >/dev/null
  fi

  # Start every packaged cluster that is down (the first one serves us).
  local version cluster port status
  while read -r version cluster port status _; do
    case "$status" in
      online*) ;;
      *)
        pg_log "starting cluster $version/$cluster"
        pg_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start ||
          pg_root pg_ctlcluster "$version" "$cluster" start
        ;;
    esac
  done < <(pg_lsclusters --no-header 2>/dev/null)

  if pg_try "$tcp"; then
    export LONGSHORE_PG_ADMIN_URL=$tcp
    return 0
  fi

  # A stock cluster: peer auth on the socket. Give the current OS user a
  # superuser role of the same name.
  port=$(pg_lsclusters --no-header | awk 'NR==1 {print $3}')
  local me socket
  me=$(id -un)
  socket=/var/run/postgresql
  local i
  for i in $(seq 1 30); do
    pg_as_postgres psql -p "$port" -Atqc 'SELECT 1' >/dev/null 2>&1 && break
    sleep 1
  done
  if ! pg_as_postgres psql -p "$port" -Atqc "SELECT 1 FROM pg_roles WHERE rolname = '$me'" | grep -q 1; then
    pg_log "creating superuser role $me"
    pg_as_postgres psql -p "$port" -qc "CREATE ROLE \"$me\" SUPERUSER LOGIN"
  fi
  LONGSHORE_PG_ADMIN_URL="postgres://$me@localhost:$port/postgres?host=$socket"
  if pg_try "$LONGSHORE_PG_ADMIN_URL"; then
    export LONGSHORE_PG_ADMIN_URL
    return 0
  fi
  pg_log "could not reach PostgreSQL at $LONGSHORE_PG_ADMIN_URL"
  return 1
}
