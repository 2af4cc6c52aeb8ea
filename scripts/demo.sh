#!/usr/bin/env bash
# `npm run demo`: install what is needed, then run the demo lab (it stays up until
# `npm run lab -- down`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node_modules/.bin/node e2e/demo.ts
