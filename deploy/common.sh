# Shared by the deploy scripts: where an instance lives and which ports it uses.
# An instance is a folder of state (.local/dev for `make up`, .local/test for `make test`)
# with its own PostgreSQL cluster, Kafka broker and service processes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INSTANCE="${INSTANCE:-dev}"
export STATE_DIR="${STATE_DIR:-$ROOT/.local/$INSTANCE}"
# Below Linux's ephemeral range (32768-60999), where the clients' own outgoing connections
# take their ports: a broker restarted on a port there could find it taken by a client
# reconnecting to itself. The tests' services take theirs from 20000-29999 (tests/support/ports.py).
if [ "$INSTANCE" = "test" ]; then
  PG_PORT="${PG_PORT:-15433}"; KAFKA_PORT="${KAFKA_PORT:-19093}"; KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19193}"
else
  PG_PORT="${PG_PORT:-15432}"; KAFKA_PORT="${KAFKA_PORT:-19092}"; KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19192}"
fi
PG_USER=campaigns
PG_PASSWORD=campaigns
PG_DB=campaigns
export DATABASE_URL="${DATABASE_URL:-postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB}"
export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}"

say() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

apt_install() {
  # Installs Debian packages when missing; needs root (CI and these machines run as root).
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "please install: ${missing[*]} (apt-get needs root)"
  say "installing ${missing[*]}"
  if [ ! -f "$ROOT/.local/.apt-updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    mkdir -p "$ROOT/.local" && touch "$ROOT/.local/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

wait_for_port() {  # host port seconds
  local deadline=$((SECONDS + $3))
  until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

port_free() {  # port: fails, saying what to do, when something else listens there
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    die "port $1 is taken (another instance of this project, or another server): stop it, or choose another port (see deploy/common.sh)"
  fi
}
