// The project stands alone: a user's clone has no developers' reference folder beside
// it, so no tracked file may name a path into one. The pattern is assembled here so
// that this file does not match itself.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FOLDER = ['sha', 'red'].join('');
// A parent-relative path into it, path.join pieces naming it, or its sub-folders by name.
const OUTSIDE = new RegExp(`\\.\\.[/\\\\]${FOLDER}\\b|['"]${FOLDER}['"]\\s*,|\\b${FOLDER}/(examples|notes|hooks|DESIGN|STYLE)`);

function trackedFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT });
  return out.toString('utf8').split('\0').filter((f) => f !== '');
}

test('no file of the repository names a path outside it into the reference folder', () => {
  const files = trackedFiles();
  assert.ok(files.length > 100, `git ls-files found only ${files.length} files`);
  const hits: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(path.join(ROOT, f), 'utf8');
    } catch {
      continue; // deleted in the work tree
    }
    text.split('\n').forEach((line, i) => {
      if (OUTSIDE.test(line)) hits.push(`${f}:${i + 1}: ${line.trim().slice(0, 160)}`);
    });
  }
  assert.deepEqual(hits, [], `these lines read outside the repository:\n${hits.join('\n')}`);
});

test('the pattern catches the forms a path outside the repository takes', () => {
  for (const bad of [`readFileSync('../${FOLDER}/examples/x.yaml')`, `path.join(ROOT, '..', '${FOLDER}', 'examples')`, `see ${FOLDER}/notes/cluster-lab.md`]) {
    assert.match(bad, OUTSIDE, bad);
  }
  for (const good of ['a shared sharing key', 'purelb.io/allow-shared-ip', "'-shared', '-fPIC'"]) assert.doesNotMatch(good, OUTSIDE, good);
});
