#!/usr/bin/env bash
# `npm run demo [-- --process]`: install what is needed, then run the demo on the cluster
# lab (or, with --process, on the process lab). It stays up until `npm run lab -- down`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node_modules/.bin/node e2e/demo.ts "$@"
