// Per-address election, as PureLB does it: every candidate hashes `node#address` and
// the smallest SHA-256 wins. Every agent computes the same answer from the same member
// list without talking to the others, and different addresses land on different nodes,
// so one node is not the bottleneck for all of them.

import { createHash } from 'node:crypto';

export function electionScore(node: string, key: string): string {
  return createHash('sha256').update(`${node}#${key}`).digest('hex');
}

/** The winning node for `key` among `candidates`, or undefined when there is none. */
export function winner(candidates: Iterable<string>, key: string): string | undefined {
  let best: string | undefined;
  let bestScore = '';
  for (const node of candidates) {
    const score = electionScore(node, key);
    if (best === undefined || score < bestScore || (score === bestScore && node < best)) {
      best = node;
      bestScore = score;
    }
  }
  return best;
}

/** Candidates ordered by preference: the winner first, then who takes over if it fails. */
export function ranking(candidates: Iterable<string>, key: string): string[] {
  return [...new Set(candidates)]
    .map((node) => ({ node, score: electionScore(node, key) }))
    .sort((a, b) => (a.score < b.score ? -1 : a.score > b.score ? 1 : a.node < b.node ? -1 : 1))
    .map((c) => c.node);
}
