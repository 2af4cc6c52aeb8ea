#!/usr/bin/env bash
# The one test command (`npm test`): set up what is needed, lint, type-check, bring
# the lab up once, run every test file (unit, property and lab) one at a time, and
# take the lab down again — also when something fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"

echo "== lint"
eslint .
echo "== typecheck"
tsc --noEmit -p tsconfig.json

echo "== lab up"
trap 'echo "== lab down"; node e2e/lab/cli.ts down' EXIT
node e2e/lab/cli.ts up

echo "== tests"
node --test --test-concurrency=1 --test-timeout=900000 --test-reporter=spec \
  'src/**/*.test.ts' 'e2e/**/*.test.ts'
