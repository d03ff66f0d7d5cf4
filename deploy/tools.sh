#!/usr/bin/env bash
# The Helm chart's checkers, installed once into .local/bin (skipped when the right
# version is there): helm and kubeconform, built with `go install` from their Go modules,
# and the Kubernetes JSON schemas that kubeconform validates against, offline: those that
# PyPI's kubernetes-validate ships, laid out under .local/tools/kubernetes-json-schema.
# Usage: deploy/tools.sh (prints nothing when all is there). Needs Go and uv.
source "$(dirname "$0")/common.sh"

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
KUBERNETES_VALIDATE_VERSION=1.37.0  # its wheel holds the schemas of Kubernetes 1.25 to 1.37
export KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.34.0}"  # the cluster the chart is checked for

BIN="$ROOT/.local/bin"
SCHEMAS="$ROOT/.local/tools/kubernetes-json-schema"
mkdir -p "$BIN"

go_install() {  # binary version module-path
  local binary=$1 version=$2 path=$3 stamp="$BIN/.$1.version"
  [ -x "$BIN/$binary" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ] && return 0
  command -v go >/dev/null || die "Go is needed to install $binary (go install $path@$version)"
  say "building $binary $version (go install, once)"
  GOBIN="$BIN" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "$path@$version" >&2
  echo "$version" > "$stamp"
}

go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
go_install kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform

# kubernetes-validate keeps each version's shared definitions in _definitions.json, which
# the others reference as "/api/_definitions.json": made relative, kubeconform's file
# loader finds it beside them. Folders: v1.34.0-local-strict/deployment-apps-v1.json, ...
schema_dir="$SCHEMAS/v$KUBERNETES_VERSION-local-strict"
stamp="$SCHEMAS/.kubernetes-validate.version"
if [ ! -f "$schema_dir/deployment-apps-v1.json" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$KUBERNETES_VALIDATE_VERSION" ]; then
  command -v uv >/dev/null || "$ROOT/deploy/bootstrap.sh"
  say "fetching the Kubernetes $KUBERNETES_VERSION JSON schemas (kubernetes-validate $KUBERNETES_VALIDATE_VERSION from PyPI)"
  wheel="$(mktemp -d)"; trap 'rm -rf "$wheel"' EXIT
  uv pip install --quiet --no-deps --target "$wheel" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2
  shipped="$wheel/kubernetes_validate/kubernetes-json-schema"
  for flavour in local local-strict; do
    [ -d "$shipped/v$KUBERNETES_VERSION-$flavour" ] || die "kubernetes-validate $KUBERNETES_VALIDATE_VERSION has no schemas for Kubernetes $KUBERNETES_VERSION"
    rm -rf "$SCHEMAS/v$KUBERNETES_VERSION-$flavour"; mkdir -p "$SCHEMAS/v$KUBERNETES_VERSION-$flavour"
    for file in "$shipped/v$KUBERNETES_VERSION-$flavour"/*.json; do
      sed 's#"/api/_definitions.json\##"_definitions.json\##g' "$file" > "$SCHEMAS/v$KUBERNETES_VERSION-$flavour/${file##*/}"
    done
  done
  echo "$KUBERNETES_VALIDATE_VERSION" > "$stamp"
fi
