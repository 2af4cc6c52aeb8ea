// Where the checkout is and where the lab keeps its state (git-ignored `.lab/`).

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LAB_DIR_NAME } from './plan.ts';

export function repoRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** The lab's state folder, created on first use. */
export function labDir(): string {
  const dir = path.join(repoRoot(), LAB_DIR_NAME);
  mkdirSync(dir, { recursive: true });
  return dir;
}
