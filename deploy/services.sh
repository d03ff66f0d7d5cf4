#!/usr/bin/env bash
# The five services and the local mail catcher as background processes of this instance.
# Usage: deploy/services.sh start|stop|status. Honours SMTP_HOST, SMTP_PORT, GATEWAY_PORT,
# DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and every other setting of the services.
source "$(dirname "$0")/common.sh"

RUN="$STATE_DIR/run"; LOGS="$STATE_DIR/logs"; MAIL="$STATE_DIR/mail"
PY="$ROOT/.venv/bin/python"
export GATEWAY_PORT="${GATEWAY_PORT:-8080}"
SEGMENT_PORT="${SEGMENT_SVC_PORT:-8081}"; FLOW_PORT="${FLOW_ENGINE_PORT:-8082}"
SCHEDULER_PORT="${SCHEDULER_PORT:-8083}"; MAILER_PORT="${MAILER_PORT:-8084}"
MAILCATCHER_PORT="${MAILCATCHER_PORT:-1025}"
export SMTP_HOST="${SMTP_HOST:-127.0.0.1}" SMTP_PORT="${SMTP_PORT:-$MAILCATCHER_PORT}"
export SEGMENT_SVC_URL="${SEGMENT_SVC_URL:-http://127.0.0.1:$SEGMENT_PORT}"
export FLOW_ENGINE_URL="${FLOW_ENGINE_URL:-http://127.0.0.1:$FLOW_PORT}"
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://127.0.0.1:$GATEWAY_PORT}"

launch() {  # name port-variable port command...
  local name=$1 var=$2 port=$3; shift 3
  if [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
    say "$name already running"; return 0
  fi
  env "$var=$port" nohup "$@" >> "$LOGS/$name.log" 2>&1 &
  echo $! > "$RUN/$name.pid"
}

start() {
  mkdir -p "$RUN" "$LOGS"  # not $MAIL: the Maildir handler makes it, with new/ cur/ tmp/
  launch mailcatcher UNUSED "$MAILCATCHER_PORT" "$PY" -m aiosmtpd -n -l "127.0.0.1:$MAILCATCHER_PORT" \
    -c aiosmtpd.handlers.Mailbox "$MAIL"
  launch segment-svc HTTP_PORT "$SEGMENT_PORT" "$PY" -m segment_svc
  launch flow-engine HTTP_PORT "$FLOW_PORT" "$PY" -m flow_engine
  launch scheduler HTTP_PORT "$SCHEDULER_PORT" "$PY" -m scheduler
  launch mailer HTTP_PORT "$MAILER_PORT" "$PY" -m mailer
  launch campaign-api GATEWAY_PORT "$GATEWAY_PORT" "$PY" -m campaign_api
  for port in "$SEGMENT_PORT" "$FLOW_PORT" "$SCHEDULER_PORT" "$MAILER_PORT" "$GATEWAY_PORT"; do
    "$PY" "$ROOT/deploy/wait_healthy.py" "http://127.0.0.1:$port/healthz" 90 \
      || die "a service did not become healthy on port $port: see $LOGS"
  done
  wait_for_port 127.0.0.1 "$MAILCATCHER_PORT" 30 || die "the mail catcher did not start: see $LOGS"
}

stop() {
  for pid_file in "$RUN"/*.pid; do
    [ -f "$pid_file" ] || continue
    local pid; pid=$(cat "$pid_file")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pid_file"; say "stopped $(basename "$pid_file" .pid)"
  done
}

status() {
  for pid_file in "$RUN"/*.pid; do
    [ -f "$pid_file" ] || continue
    kill -0 "$(cat "$pid_file")" 2>/dev/null && say "$(basename "$pid_file" .pid) running" \
      || say "$(basename "$pid_file" .pid) stopped"
  done
}

"${1:-start}"
