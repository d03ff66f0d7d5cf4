#!/usr/bin/env bash
# The five services and the local mail catcher as background processes of this instance.
# Usage: deploy/services.sh start|stop|status|where. Honours SMTP_HOST, SMTP_PORT,
# GATEWAY_PORT, DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and every other setting of the services.
# REPLICAS=N (default 1) runs N of each service that consumes Kafka (campaign-api,
# segment-svc, scheduler, mailer; flow-engine only answers HTTP): the first keeps its port,
# name, pid file and log; the k-th is NAME-k on its port + (k-1) * REPLICA_PORT_STEP (100).
source "$(dirname "$0")/common.sh"

RUN="$STATE_DIR/run"; LOGS="$STATE_DIR/logs"; MAIL="$STATE_DIR/mail"
PY="$ROOT/.venv/bin/python"
export GATEWAY_PORT="${GATEWAY_PORT:-8080}"
SEGMENT_PORT="${SEGMENT_SVC_PORT:-8081}"; FLOW_PORT="${FLOW_ENGINE_PORT:-8082}"
SCHEDULER_PORT="${SCHEDULER_PORT:-8083}"; MAILER_PORT="${MAILER_PORT:-8084}"
MAILCATCHER_PORT="${MAILCATCHER_PORT:-1025}"
REPLICAS="${REPLICAS:-1}"; REPLICA_PORT_STEP="${REPLICA_PORT_STEP:-100}"
[[ "$REPLICAS" =~ ^[1-9][0-9]*$ ]] || die "REPLICAS must be a whole number of at least 1 (it is '$REPLICAS')"
[[ "$REPLICA_PORT_STEP" =~ ^[1-9][0-9]*$ ]] || die "REPLICA_PORT_STEP must be a positive whole number"
export SMTP_HOST="${SMTP_HOST:-127.0.0.1}" SMTP_PORT="${SMTP_PORT:-$MAILCATCHER_PORT}"
export SEGMENT_SVC_URL="${SEGMENT_SVC_URL:-http://127.0.0.1:$SEGMENT_PORT}"
export FLOW_ENGINE_URL="${FLOW_ENGINE_URL:-http://127.0.0.1:$FLOW_PORT}"
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://127.0.0.1:$GATEWAY_PORT}"
# The secret that signs the links in emails: this instance's own, made once, unless
# TRACKING_SECRET is given (the services refuse the public default outside development).
if [ -z "${TRACKING_SECRET:-}" ]; then
  mkdir -p "$STATE_DIR"
  [ -s "$STATE_DIR/tracking-secret" ] || (umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(32))' \
    > "$STATE_DIR/tracking-secret")
  TRACKING_SECRET="$(cat "$STATE_DIR/tracking-secret")"; export TRACKING_SECRET
fi

# The key of machines (make demo, curl) for this instance, made once, unless API_KEYS is
# given: once the first account exists the API is closed to requests with neither a key nor
# a session (people sign in to the web app).
if [ -z "${API_KEYS:-}" ]; then
  mkdir -p "$STATE_DIR"
  [ -s "$STATE_DIR/api-key" ] || (umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(32))' \
    > "$STATE_DIR/api-key")
  API_KEYS="$(cat "$STATE_DIR/api-key")"; export API_KEYS
fi
export SCHEDULER_URL="${SCHEDULER_URL:-http://127.0.0.1:$SCHEDULER_PORT}"  # their /healthz, for /api/status
export MAILER_URL="${MAILER_URL:-http://127.0.0.1:$MAILER_PORT}"

LAUNCHED=()  # name:port of every process this start runs (or found running)

launch() {  # name port-variable port command...
  local name=$1 var=$2 port=$3; shift 3
  LAUNCHED+=("$name:$port")
  if [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
    say "$name already running"; return 0
  fi
  port_free "$port"
  env "$var=$port" nohup "$@" >> "$LOGS/$name.log" 2>&1 &
  echo $! > "$RUN/$name.pid"
  echo "$port" > "$RUN/$name.port"
}

launch_replicas() {  # name port-variable first-port command...: REPLICAS of them
  local name=$1 var=$2 port=$3; shift 3
  launch "$name" "$var" "$port" "$@"
  for k in $(seq 2 "$REPLICAS"); do
    launch "$name-$k" "$var" $((port + (k - 1) * REPLICA_PORT_STEP)) "$@"
  done
}

start() {
  mkdir -p "$RUN" "$LOGS"  # not $MAIL: the Maildir handler makes it, with new/ cur/ tmp/
  launch mailcatcher UNUSED "$MAILCATCHER_PORT" "$PY" -m aiosmtpd -n -l "127.0.0.1:$MAILCATCHER_PORT" \
    -c aiosmtpd.handlers.Mailbox "$MAIL"
  launch_replicas segment-svc HTTP_PORT "$SEGMENT_PORT" "$PY" -m segment_svc
  launch flow-engine HTTP_PORT "$FLOW_PORT" "$PY" -m flow_engine
  launch_replicas scheduler HTTP_PORT "$SCHEDULER_PORT" "$PY" -m scheduler
  launch_replicas mailer HTTP_PORT "$MAILER_PORT" "$PY" -m mailer
  launch_replicas campaign-api GATEWAY_PORT "$GATEWAY_PORT" "$PY" -m campaign_api
  for launched in "${LAUNCHED[@]}"; do
    local name=${launched%:*} port=${launched##*:}
    [ "$name" = mailcatcher ] && continue
    "$PY" "$ROOT/deploy/wait_healthy.py" "http://127.0.0.1:$port/healthz" 90 \
      || die "$name did not become healthy on port $port: see $LOGS/$name.log"
  done
  wait_for_port 127.0.0.1 "$MAILCATCHER_PORT" 30 || die "the mail catcher did not start: see $LOGS"
}

stop() {  # every process of a pid file, by its pid: SIGTERM to all, SIGKILL to any left after 10 s
  local pid_files=() pid_file
  for pid_file in "$RUN"/*.pid; do [ -f "$pid_file" ] && pid_files+=("$pid_file"); done
  [ ${#pid_files[@]} -eq 0 ] && return 0
  for pid_file in "${pid_files[@]}"; do kill "$(cat "$pid_file")" 2>/dev/null || true; done
  local deadline=$((SECONDS + 10))
  for pid_file in "${pid_files[@]}"; do
    local pid; pid=$(cat "$pid_file")
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pid_file" "${pid_file%.pid}.port"; say "stopped $(basename "$pid_file" .pid)"
  done
}

status() {
  for pid_file in "$RUN"/*.pid; do
    [ -f "$pid_file" ] || continue
    kill -0 "$(cat "$pid_file")" 2>/dev/null && say "$(basename "$pid_file" .pid) running" \
      || say "$(basename "$pid_file" .pid) stopped"
  done
}

where() {  # one line per running process: its name, pid, address and log
  local name pid port address
  for name in $(cd "$RUN" 2>/dev/null && for f in *.pid; do [ -f "$f" ] && echo "${f%.pid}"; done | sort); do
    pid=$(cat "$RUN/$name.pid")
    kill -0 "$pid" 2>/dev/null || continue
    port=$(cat "$RUN/$name.port" 2>/dev/null || echo "?")
    if [ "$name" = mailcatcher ]; then address="smtp://127.0.0.1:$port"; else address="http://127.0.0.1:$port"; fi
    printf '  %-16s pid %-8s %-28s %s\n' "$name" "$pid" "$address" "$LOGS/$name.log"
  done
}

"${1:-start}"
