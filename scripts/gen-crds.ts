// Writes crds/*.yaml from the zod schemas in src/api (the single source of truth).
// Run: node_modules/.bin/node scripts/gen-crds.ts. src/api/crds.test.ts fails when
// the files are stale.

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderCrds } from '../src/api/crd.ts';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'crds');
mkdirSync(dir, { recursive: true });
for (const [name, text] of renderCrds()) {
  writeFileSync(path.join(dir, name), text);
  console.log(`wrote crds/${name}`);
}
