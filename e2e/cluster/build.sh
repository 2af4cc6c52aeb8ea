#!/usr/bin/env bash
# Builds what the cluster lab's nodes run, from Go modules pinned in this repository, into
# the cache outside the checkout (keyed by the go.mod/go.sum contents), and links the
# binaries into e2e/cluster/bin:
#   kubelet, kube-proxy, kube-controller-manager, kube-scheduler  (e2e/controlplane's k8s.io/kubernetes)
#   containerd, containerd-shim-runc-v2, ctr                       (runtime/containerd)
#   runc, with seccomp                                             (runtime/runc; cgo, libseccomp-dev)
# Each binary is built only when the cache lacks it, so a warm cache makes this a no-op.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${PURELB_CACHE_DIR:-/var/cache/purelb-ts}
export GOFLAGS="${GOFLAGS:-} -mod=mod"
mkdir -p "$here/bin"

# build <module dir> <cache name> <version> <binary> <package> [go build args...]
build() {
  local dir=$1 name=$2 version=$3 bin=$4 pkg=$5
  shift 5
  local key out
  key=$(cat "$dir/go.mod" "$dir/go.sum" 2>/dev/null | sha256sum | cut -c1-16)
  out="$cache_root/$name/$version-$key"
  if [ ! -x "$out/$bin" ]; then
    echo "cluster lab: building $bin $version into $out"
    mkdir -p "$out"
    local start
    start=$(date +%s)
    (cd "$dir" && go build -trimpath "$@" -o "$out/$bin.tmp" "$pkg")
    mv "$out/$bin.tmp" "$out/$bin"
    echo "cluster lab: $bin built in $(( $(date +%s) - start )) s"
  fi
  ln -sfn "$out/$bin" "$here/bin/$bin"
}

# Kubernetes node and controller binaries, from the same module (and cache) as the
# control plane, stamped with the version like e2e/controlplane/build.sh does.
k8s_dir="$here/../controlplane"
k8s_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$k8s_dir/go.mod")
[ -n "$k8s_version" ] || { echo "build.sh: k8s.io/kubernetes version not found" >&2; exit 1; }
minor=$(echo "$k8s_version" | cut -d. -f2)
k8s_ld="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
-X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
for b in kubelet kube-proxy kube-controller-manager kube-scheduler; do
  CGO_ENABLED=0 build "$k8s_dir" controlplane "$k8s_version" "$b" "k8s.io/kubernetes/cmd/$b" -ldflags "$k8s_ld"
done

ctd_dir="$here/runtime/containerd"
ctd_version=$(awk '$1 == "require" && $2 == "github.com/containerd/containerd/v2" {print $3}' "$ctd_dir/go.mod")
ctd_ld="-s -w -X github.com/containerd/containerd/v2/version.Version=$ctd_version"
for b in containerd containerd-shim-runc-v2 ctr; do
  CGO_ENABLED=0 build "$ctd_dir" containerd "$ctd_version" "$b" "github.com/containerd/containerd/v2/cmd/$b" \
    -tags "no_btrfs no_devmapper no_zfs no_aufs" -ldflags "$ctd_ld"
done

runc_dir="$here/runtime/runc"
runc_version=$(awk '$1 == "require" && $2 == "github.com/opencontainers/runc" {print $3}' "$runc_dir/go.mod")
CGO_ENABLED=1 build "$runc_dir" runc "$runc_version" runc github.com/opencontainers/runc \
  -tags seccomp -ldflags "-s -w -X main.version=${runc_version#v}"
