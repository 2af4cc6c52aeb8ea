#!/usr/bin/env bash
# Builds the helm CLI from its Go module (version pinned in go.mod) into a cache outside
# the checkout, keyed by the go.mod/go.sum contents, and links it into
# e2e/install/helm/bin. A warm cache makes this a no-op; a cold one takes a few minutes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

version=$(awk '$1 == "require" && $2 == "helm.sh/helm/v4" {print $3}' go.mod)
[ -n "$version" ] || { echo "build.sh: helm.sh/helm/v4 version not found in go.mod" >&2; exit 1; }
key=$(cat go.mod go.sum | sha256sum | cut -c1-16)
cache_root=${PURELB_CACHE_DIR:-/var/cache/purelb-ts}
out="$cache_root/helm/$version-$key"

if [ -x "$out/helm" ]; then
  echo "helm $version: cached in $out"
else
  echo "helm $version: building into $out (a cold build takes a few minutes)"
  mkdir -p "$out.tmp"
  start=$(date +%s)
  export GOFLAGS="${GOFLAGS:-} -mod=mod"
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.metadata= -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
    -o "$out.tmp/helm" helm.sh/helm/v4/cmd/helm
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "helm $version: built in $(( $(date +%s) - start )) s"
fi
mkdir -p bin
ln -sfn "$out/helm" bin/helm
