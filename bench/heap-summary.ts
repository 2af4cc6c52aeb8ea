// Where a process's JavaScript heap goes: the self sizes of a V8 heap snapshot summed
// by the kind and name of each object (constructor, string, code, …), largest first.
//
//   node bench/heap-summary.ts FILE.heapsnapshot [TOP]
//
// A snapshot comes from `node --heapsnapshot-signal=SIGUSR2 …` and `kill -USR2 PID`
// (the agent bench does so for its idle agent with 1,000 VIPs when asked to).

import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] }; node_count: number };
  nodes: number[];
  strings: string[];
}

export interface HeapGroup {
  kind: string;
  name: string;
  count: number;
  bytes: number;
}

export function summarize(snapshot: Snapshot): { total: number; groups: HeapGroup[] } {
  const fields = snapshot.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = snapshot.snapshot.meta.node_types[0];
  const groups = new Map<string, HeapGroup>();
  let total = 0;
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const kind = types[snapshot.nodes[i + typeAt] as number] ?? 'unknown';
    const raw = snapshot.strings[snapshot.nodes[i + nameAt] as number] ?? '';
    // Strings and code are many small objects of one kind: group them by kind only.
    const name = kind === 'object' || kind === 'closure' || kind === 'native' ? raw.slice(0, 60) : '';
    const bytes = snapshot.nodes[i + sizeAt] as number;
    total += bytes;
    const key = `${kind}\u0000${name}`;
    const g = groups.get(key) ?? { kind, name, count: 0, bytes: 0 };
    g.count++;
    g.bytes += bytes;
    groups.set(key, g);
  }
  return { total, groups: [...groups.values()].sort((a, b) => b.bytes - a.bytes) };
}

if (import.meta.main) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error('usage: node bench/heap-summary.ts FILE.heapsnapshot [TOP]');
    process.exit(2);
  }
  const top = Number(process.argv[3] ?? 25);
  const { total, groups } = summarize(JSON.parse(readFileSync(file, 'utf8')) as Snapshot);
  const mib = (b: number) => (b / 2 ** 20).toFixed(2);
  console.log(`heap objects in the snapshot: ${mib(total)} MiB`);
  for (const g of groups.slice(0, top)) console.log(`${mib(g.bytes).padStart(8)} MiB ${String(g.count).padStart(8)}  ${g.kind}${g.name === '' ? '' : ` ${g.name}`}`);
}
