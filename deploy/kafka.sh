#!/usr/bin/env bash
# Apache Kafka, single node in KRaft mode, assembled from Maven Central (deploy/kafka/pom.xml)
# and run with Java 17. Jars are cached under .local/kafka-libs (a second start downloads
# nothing); data lives under $STATE_DIR/kafka. Usage: deploy/kafka.sh start|stop|status
source "$(dirname "$0")/common.sh"

KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/deploy/kafka/pom.xml")
LIBS="$ROOT/.local/kafka-libs/$KAFKA_VERSION"
HOME_DIR="$STATE_DIR/kafka"
PID_FILE="$HOME_DIR/kafka.pid"

java_ok() { command -v java >/dev/null && java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])'; }

libs() {
  [ -f "$LIBS/.complete" ] && return 0
  java_ok || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  say "fetching Kafka $KAFKA_VERSION from Maven Central"
  rm -rf "$LIBS.tmp" && mkdir -p "$LIBS.tmp"
  mvn -B -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" > "$LIBS.log" 2>&1 \
    || { tail -30 "$LIBS.log" >&2; die "Maven could not fetch Kafka (log: $LIBS.log)"; }
  touch "$LIBS.tmp/.complete" && rm -rf "$LIBS" && mv "$LIBS.tmp" "$LIBS"
}

running() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

configure() {
  mkdir -p "$HOME_DIR/data"
  cat > "$HOME_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$HOME_DIR/data
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=168
PROPS
  cat > "$HOME_DIR/log4j.properties" <<PROPS
log4j.rootLogger=WARN, file
log4j.logger.kafka=INFO
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$HOME_DIR/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS
}

JAVA_ARGS=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
  "-Dlog4j.configuration=file:$HOME_DIR/log4j.properties" -cp "$LIBS/*")

start() {
  if running && ! grep -q "^listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT," "$HOME_DIR/server.properties"; then
    say "running on another port than $KAFKA_PORT: restarting"  # an instance from before a port change
    stop
  fi
  if running; then say "already running on $KAFKA_BOOTSTRAP_SERVERS"; return 0; fi
  port_free "$KAFKA_PORT"
  port_free "$KAFKA_CONTROLLER_PORT"
  libs
  # A test broker that was killed (its pid file left behind) would spend minutes
  # recovering the topics of every earlier run; the test instance keeps nothing worth that.
  if [ "$INSTANCE" = test ] && [ -f "$PID_FILE" ]; then rm -rf "$HOME_DIR/data"; fi
  configure
  if [ ! -f "$HOME_DIR/data/meta.properties" ]; then
    local cluster; cluster=$(java "${JAVA_ARGS[@]}" kafka.tools.StorageTool random-uuid)
    say "formatting storage (cluster $cluster)"
    java "${JAVA_ARGS[@]}" kafka.tools.StorageTool format -t "$cluster" -c "$HOME_DIR/server.properties" >/dev/null
  fi
  say "starting on $KAFKA_BOOTSTRAP_SERVERS"
  nohup java "${JAVA_ARGS[@]}" kafka.Kafka "$HOME_DIR/server.properties" > "$HOME_DIR/stdout.log" 2>&1 &
  echo $! > "$PID_FILE"
  wait_for_port 127.0.0.1 "$KAFKA_PORT" 90 || { tail -20 "$HOME_DIR/stdout.log" >&2; die "Kafka did not open its port"; }
  say "ready: $KAFKA_BOOTSTRAP_SERVERS"
}

stop() {
  if running; then
    local pid; pid=$(cat "$PID_FILE")
    kill "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$PID_FILE"; say "stopped"
  else
    say "not running"
  fi
}

status() { running && say "running on $KAFKA_BOOTSTRAP_SERVERS" || { say "stopped"; return 1; }; }

"${1:-start}"
