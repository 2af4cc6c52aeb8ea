#!/usr/bin/env bash
# The one test command (`npm test`): set up what is needed, lint, type-check, then the two
# lab tiers, each brought up once: the process lab (real API server, real kernel,
# components as processes) for every unit, property and lab test, and the cluster lab
# (kubelets, kube-proxy, controllers; purelb-ts installed by its chart from its image) for
# e2e/cluster. Each lab is taken down again, also when something fails.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"

echo "== lint"
eslint .
echo "== typecheck"
tsc --noEmit -p tsconfig.json

trap 'echo "== lab down"; node e2e/lab/cli.ts down' EXIT

echo "== process lab up"
node e2e/lab/cli.ts up
echo "== process-lab tests"
mapfile -t process_tests < <(find src e2e -name '*.test.ts' -not -path 'e2e/cluster/*' | sort)
node --test --test-concurrency=1 --test-timeout=900000 --test-reporter=spec "${process_tests[@]}"

echo "== cluster lab up"
node e2e/lab/cli.ts up --cluster
echo "== cluster-lab tests"
# In this order: install, behaviour on the installed release, upgrade and uninstall, and
# last the teardown check (it takes the cluster down).
cluster_tests=(e2e/cluster/install.test.ts e2e/cluster/behaviour.test.ts e2e/cluster/lifecycle.test.ts e2e/cluster/teardown.test.ts)
for f in e2e/cluster/*.test.ts; do
  [[ " ${cluster_tests[*]} " == *" $f "* ]] || { echo "scripts/test.sh: $f is not in the cluster test order; add it" >&2; exit 1; }
done
node --test --test-concurrency=1 --test-timeout=900000 --test-reporter=spec "${cluster_tests[@]}"
echo "== npm test took $(( $(date +%s) - start )) s"
