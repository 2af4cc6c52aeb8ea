#!/usr/bin/env bash
# Installs everything the tests, benchmarks and the demo need, skipping what is
# already there: Debian packages, npm dependencies (with Node 24 from npm), and the
# lab's control plane and the cluster tier's node binaries (built from Go modules, cached
# outside the checkout), and the purelb-ts and pause images (OCI archives, cached too).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "setup: the lab needs root (network namespaces, netlink); run as root" >&2
  exit 1
fi

# Debian packages: the lab's list plus what the project itself needs.
mapfile -t wanted < <(cat e2e/lab/apt-packages.txt e2e/cluster/apt-packages.txt scripts/apt-packages.txt 2>/dev/null | sed 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d' | sort -u)
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm dependencies, reinstalled only when the lock file changed.
lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ ! -x node_modules/.bin/node ] || [ "$(cat node_modules/.purelb-lock-hash 2>/dev/null)" != "$lock_hash" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.purelb-lock-hash
fi
node_modules/.bin/node -e 'if (+process.versions.node.split(".")[0] < 24) { console.error("setup: node_modules/.bin/node is " + process.version + ", need >= 24"); process.exit(1) }'

bash e2e/controlplane/build.sh

# helm, for the chart tests (e2e/install), built from its Go module and cached the same way.
bash e2e/install/helm/build.sh

# MetalLB's controller and speaker and its CRDs, for the takeover tests (e2e/lab/metallb.ts).
bash scripts/metallb.sh >/dev/null

# The cluster tier: kubelet, kube-proxy, kube-controller-manager, kube-scheduler,
# containerd, runc; then the images its pods run.
bash e2e/cluster/build.sh
bash scripts/image.sh
