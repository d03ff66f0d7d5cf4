#!/usr/bin/env bash
# Tools built from Go modules, once, under .local (skipped when the right version is there).
#   deploy/tools.sh [chart]  helm and kubeconform in .local/bin (`go install`), and the
#                            Kubernetes JSON schemas kubeconform validates the chart against,
#                            offline: those of PyPI's kubernetes-validate, laid out under
#                            .local/tools/kubernetes-json-schema. `make test` runs this.
#   deploy/tools.sh compose  Docker Compose v2 as a docker CLI plugin, for
#                            `DOCKER_CONFIG=.local/tools/docker docker compose config`
#                            (about 7 minutes to build: not part of `make test`).
# Prints nothing when all is there. Needs Go (and uv, which deploy/bootstrap.sh installs).
source "$(dirname "$0")/common.sh"

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
KUBERNETES_VALIDATE_VERSION=1.37.0  # its wheel holds the schemas of Kubernetes 1.25 to 1.37
export KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.34.0}"  # the cluster the chart is checked for
COMPOSE_VERSION=v2.40.3

BIN="$ROOT/.local/bin"
TOOLS="$ROOT/.local/tools"
SCHEMAS="$TOOLS/kubernetes-json-schema"

need_go() { command -v go >/dev/null || die "Go is needed to build $1"; }

go_install() {  # binary version package@-less path
  local binary=$1 version=$2 path=$3 stamp="$BIN/.$1.version"
  [ -x "$BIN/$binary" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ] && return 0
  need_go "$binary (go install $path@$version)"
  say "building $binary $version (go install, once)"
  mkdir -p "$BIN"
  GOBIN="$BIN" CGO_ENABLED=0 go install "$path@$version" >&2
  echo "$version" > "$stamp"
}

schemas() {
  # kubernetes-validate's schemas, made readable offline (deploy/kubernetes_schemas.py):
  # .local/tools/kubernetes-json-schema/v1.34.0-local-strict/deployment-apps-v1.json, ...
  local stamp="$SCHEMAS/.kubernetes-validate.version"
  [ -f "$SCHEMAS/v$KUBERNETES_VERSION-local-strict/deployment-apps-v1.json" ] \
    && [ "$(cat "$stamp" 2>/dev/null)" = "$KUBERNETES_VALIDATE_VERSION" ] && return 0
  command -v uv >/dev/null || "$ROOT/deploy/bootstrap.sh"
  say "fetching the Kubernetes $KUBERNETES_VERSION JSON schemas (kubernetes-validate $KUBERNETES_VALIDATE_VERSION from PyPI)"
  WHEEL="$(mktemp -d)"
  trap 'rm -rf "$WHEEL"' EXIT
  uv pip install --quiet --no-deps --target "$WHEEL" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2
  local shipped="$WHEEL/kubernetes_validate/kubernetes-json-schema" flavour
  for flavour in local local-strict; do
    [ -d "$shipped/v$KUBERNETES_VERSION-$flavour" ] \
      || die "kubernetes-validate $KUBERNETES_VALIDATE_VERSION has no schemas for Kubernetes $KUBERNETES_VERSION"
    rm -rf "$SCHEMAS/v$KUBERNETES_VERSION-$flavour"
    python3 "$ROOT/deploy/kubernetes_schemas.py" "$shipped/v$KUBERNETES_VERSION-$flavour" "$SCHEMAS/v$KUBERNETES_VERSION-$flavour"
  done
  echo "$KUBERNETES_VALIDATE_VERSION" > "$stamp"
}

chart() {
  go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
  go_install kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform
  schemas
}

compose() {
  # Its go.mod has exclude directives, which `go install module@version` refuses: built
  # from the module's own folder in the module cache instead.
  local plugins="$TOOLS/compose" stamp="$TOOLS/compose/.version"
  if ! [ -x "$plugins/docker-compose" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$COMPOSE_VERSION" ]; then
    need_go "Docker Compose"
    say "building Docker Compose $COMPOSE_VERSION (once; several minutes)"
    local source
    source=$(go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    mkdir -p "$plugins"
    (cd "$source" && CGO_ENABLED=0 go build -trimpath -o "$plugins/docker-compose" ./cmd) >&2
    echo "$COMPOSE_VERSION" > "$stamp"
  fi
  mkdir -p "$TOOLS/docker"
  printf '{"cliPluginsExtraDirs": ["%s"]}\n' "$plugins" > "$TOOLS/docker/config.json"
}

"${1:-chart}"
