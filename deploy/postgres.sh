#!/usr/bin/env bash
# PostgreSQL from Debian's packages, as a cluster of the project's own under
# $STATE_DIR/postgres: installed when missing, started when stopped, database and role
# created once. Usage: deploy/postgres.sh start|stop|status
source "$(dirname "$0")/common.sh"

DATA="$STATE_DIR/postgres/data"
SOCKETS="$STATE_DIR/postgres/run"
LOG="$STATE_DIR/postgres/postgres.log"
# Sized for this project's bulk loads (a million sends in seconds): a buffer cache that
# holds the hot tables, and WAL room so that a load does not force checkpoints. Commits
# stay synchronous: durability is not traded for speed.
SETTINGS="-c max_connections=200 -c shared_buffers=1GB -c max_wal_size=4GB -c checkpoint_timeout=15min"

pg_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$bin" ]; then
    apt_install postgresql
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$bin"
}

# PostgreSQL refuses to run as root: as root, run it as the `postgres` user.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local bin; bin=$(pg_bin)
  mkdir -p "$DATA" "$SOCKETS"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    chown -R postgres "$STATE_DIR/postgres"
    # Every folder above the cluster must be traversable by its owner.
    local dir="$STATE_DIR"; while [ "$dir" != / ]; do chmod o+x "$dir" 2>/dev/null || true; dir=$(dirname "$dir"); done
  fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    say "initialising a cluster in $DATA"
    as_owner "$bin/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >/dev/null
  fi
  local running_port; running_port=$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true)
  if as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1 && [ "$running_port" != "$PG_PORT" ]; then
    say "running on port $running_port, not $PG_PORT: restarting"  # an instance from before a port change
    as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
  fi
  if as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    say "already running on port $PG_PORT"
  else
    port_free "$PG_PORT"
    say "starting on 127.0.0.1:$PG_PORT"
    as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start \
      -o "-p $PG_PORT -k $SOCKETS -c listen_addresses=127.0.0.1 $SETTINGS" >/dev/null
  fi
  local psql=("$bin/psql" -h "$SOCKETS" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  if [ "$(as_owner "${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'")" != 1 ]; then
    as_owner "${psql[@]}" -c "CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD'"
  fi
  if [ "$(as_owner "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]; then
    as_owner "${psql[@]}" -c "CREATE DATABASE $PG_DB OWNER $PG_USER"
  fi
  say "ready: $DATABASE_URL"
}

stop() {
  local bin; bin=$(pg_bin)
  if [ -f "$DATA/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_owner "$bin/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null && say "stopped"
  else
    say "not running"
  fi
}

status() {
  local bin; bin=$(pg_bin)
  as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1 && say "running on $PG_PORT" || { say "stopped"; return 1; }
}

"${1:-start}"
