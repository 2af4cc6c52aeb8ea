#!/usr/bin/env bash
# Builds kube-apiserver, etcd and kubectl from their Go modules (pinned in go.mod) into a
# cache outside the checkout, keyed by the go.mod/go.sum contents, and links them into
# e2e/controlplane/bin. A warm cache makes this a no-op; a cold one takes minutes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

k8s_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' go.mod)
[ -n "$k8s_version" ] || { echo "build.sh: k8s.io/kubernetes version not found in go.mod" >&2; exit 1; }
minor=$(echo "$k8s_version" | cut -d. -f2)
key=$(cat go.mod go.sum | sha256sum | cut -c1-16)
cache_root=${PURELB_CACHE_DIR:-/var/cache/purelb-ts}
out="$cache_root/controlplane/$k8s_version-$key"

if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ] && [ -x "$out/kubectl" ]; then
  echo "control plane $k8s_version: cached in $out"
else
  echo "control plane $k8s_version: building into $out (a cold build takes several minutes)"
  mkdir -p "$out.tmp"
  start=$(date +%s)
  ld="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
-X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
  export GOFLAGS="${GOFLAGS:-} -mod=mod"
  go build -trimpath -ldflags "$ld" -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  go build -trimpath -ldflags "$ld" -o "$out.tmp/kubectl" k8s.io/kubernetes/cmd/kubectl
  go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "control plane $k8s_version: built in $(( $(date +%s) - start )) s"
fi
mkdir -p bin
for b in kube-apiserver etcd kubectl; do ln -sfn "$out/$b" "bin/$b"; done
