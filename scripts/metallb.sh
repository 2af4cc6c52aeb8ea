#!/usr/bin/env bash
# Builds MetalLB's controller and speaker from their Go module (go.universe.tf/metallb,
# from the Go module proxy) into a cache outside the checkout, with MetalLB's CRDs
# beside them, for the lab's MetalLB tests (e2e/lab/metallb.ts): the takeover from a
# real MetalLB (issue #13). A warm cache makes this a no-op; a cold build takes minutes.
#
#   scripts/metallb.sh                 build if missing, print the folder
#   scripts/metallb.sh --print-path    print the folder if built (exit 1 if not)
#
# Layout: ${PURELB_CACHE_DIR:-/var/cache/purelb-ts}/metallb/<version>/{controller,speaker,crds/*.yaml}
# The Go build and module caches are Go's defaults, as for the lab's other builds.
set -euo pipefail

version=${PURELB_METALLB_VERSION:-v0.15.2}
module=go.universe.tf/metallb
cache_root=${PURELB_CACHE_DIR:-/var/cache/purelb-ts}
out="$cache_root/metallb/$version"

built() { [ -x "$out/controller" ] && [ -x "$out/speaker" ] && [ -s "$out/crds/metallb.io_ipaddresspools.yaml" ] && [ -s "$out/crds/metallb.io_l2advertisements.yaml" ]; }

if [ "${1:-}" = "--print-path" ]; then
  built || { echo "metallb.sh: MetalLB $version is not built ($out); run scripts/metallb.sh" >&2; exit 1; }
  echo "$out"
  exit 0
fi
[ $# -eq 0 ] || { echo "usage: scripts/metallb.sh [--print-path]" >&2; exit 2; }

if built; then
  echo "metallb $version: cached in $out" >&2
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "metallb.sh: go is not installed" >&2; exit 1; }
command -v timeout >/dev/null || { echo "metallb.sh: timeout (coreutils) is not installed" >&2; exit 1; }
echo "metallb $version: building into $out (a cold build takes several minutes)" >&2
start=$(date +%s)
work=$(mktemp -d /tmp/purelb-metallb-build.XXXXXX)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work" "$out.tmp"' EXIT
export GOFLAGS="${GOFLAGS:-} -mod=mod"

# The module's source from the proxy (bounded: a stuck download fails, loudly).
if ! dl=$(timeout 600 go mod download -json "$module@$version"); then
  echo "metallb.sh: go mod download $module@$version failed:" >&2
  echo "$dl" >&2
  exit 1
fi
src=$(printf '%s\n' "$dl" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -n "$src" ] && [ -f "$src/go.mod" ] || { echo "metallb.sh: no module folder in go mod download's answer: $dl" >&2; exit 1; }

# The module cache is read-only: build in a writable copy.
cp -r "$src" "$work/metallb"
chmod -R u+w "$work/metallb"
mkdir -p "$out.tmp/crds"
for cmd in controller speaker; do
  echo "metallb $version: go build ./$cmd" >&2
  if ! (cd "$work/metallb" && CGO_ENABLED=0 timeout 1800 go build -trimpath \
      -ldflags "-s -w -X $module/internal/version.gitCommit=$version -X $module/internal/version.gitBranch=module-proxy" \
      -o "$out.tmp/$cmd" "./$cmd"); then
    echo "metallb.sh: building MetalLB's $cmd ($module@$version) failed (or took over 30 min)" >&2
    exit 1
  fi
done
# The CRDs as the module defines them, without the conversion webhook patch (the lab runs
# MetalLB with --webhook-mode=disabled; v1beta1 and v1beta2 BGPPeers convert with None).
cp "$work/metallb/config/crd/bases/"metallb.io_*.yaml "$out.tmp/crds/"
"$out.tmp/controller" --help >/dev/null 2>&1 || [ $? -eq 2 ] || { echo "metallb.sh: the built controller does not run" >&2; exit 1; }
rm -rf "$out" && mkdir -p "$(dirname "$out")" && mv "$out.tmp" "$out"
built || { echo "metallb.sh: $out incomplete after the build" >&2; exit 1; }
echo "metallb $version: built in $(( $(date +%s) - start )) s ($(du -sh "$out/controller" | cut -f1) controller, $(du -sh "$out/speaker" | cut -f1) speaker)" >&2
echo "$out"
