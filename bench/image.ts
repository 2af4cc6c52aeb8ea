// The size of what a node pulls (issue #14: the purelb-ts image under 120 MB unpacked).
// scripts/image.sh builds the archives, or finds them built for the current inputs; the
// sizes are measured from the archives themselves: each layer gunzipped (its unpacked
// size, the sum of which is the image's), and the archive as a file (compressed). The
// suite fails, after printing its figures, when the purelb-ts image reaches the bound.

import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT, run as exec } from '../e2e/lab/exec.ts';
import { UNPACKED_LIMIT_BYTES, digestOf, layerKinds, openArchive } from '../e2e/install/oci.ts';
import type { Descriptor, ImageConfig } from '../e2e/install/oci.ts';
import type { Report } from './run.ts';

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'image.sh');
const MIB = 1024 * 1024;

interface Measured {
  archiveBytes: number;
  unpackedBytes: number;
  layers: Array<{ kind: string; unpackedBytes: number }>;
}

async function measure(which: 'purelb-ts' | 'bird', work: string): Promise<Measured> {
  const archive = (await exec(['bash', SCRIPT, '--print-path', which], { timeoutMs: 60_000 })).stdout.trim();
  const oci = await openArchive(archive, path.join(work, which));
  const manifest = JSON.parse(readFileSync(oci.blob(oci.manifestDescriptor), 'utf8')) as { config: Descriptor; layers: Descriptor[] };
  const kinds = layerKinds(JSON.parse(readFileSync(oci.blob(manifest.config), 'utf8')) as ImageConfig);
  const layers: Measured['layers'] = [];
  for (const [i, layer] of manifest.layers.entries()) layers.push({ kind: kinds[i] ?? `layer${i}`, unpackedBytes: (await digestOf(oci.blob(layer), true)).bytes });
  return { archiveBytes: statSync(archive).size, unpackedBytes: layers.reduce((sum, l) => sum + l.unpackedBytes, 0), layers };
}

export async function run(report: Report): Promise<void> {
  await exec(['bash', SCRIPT], { timeoutMs: 45 * 60_000 });
  const work = mkdtempSync(path.join(tmpdir(), 'purelb-bench-image-'));
  try {
    const image = await measure('purelb-ts', work);
    report('unpacked_bytes', image.unpackedBytes, 'bytes');
    report('unpacked_mib', image.unpackedBytes / MIB, 'MiB');
    report('archive_mib', image.archiveBytes / MIB, 'MiB');
    for (const l of image.layers) report(`${l.kind}_layer_unpacked_mib`, l.unpackedBytes / MIB, 'MiB');
    const bird = await measure('bird', work);
    report('bird_unpacked_mib', bird.unpackedBytes / MIB, 'MiB');
    report('bird_archive_mib', bird.archiveBytes / MIB, 'MiB');
    if (image.unpackedBytes >= UNPACKED_LIMIT_BYTES) {
      throw new Error(`the purelb-ts image is ${image.unpackedBytes} bytes unpacked: not under ${UNPACKED_LIMIT_BYTES} (issue #14)`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
