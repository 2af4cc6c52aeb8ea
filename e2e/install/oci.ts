// The OCI archives scripts/image.sh writes (one tar: oci-layout, index.json and
// blobs/sha256/), read back by the image test and the image bench.

import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { run } from '../lab/exec.ts';

/** Issue #14: the purelb-ts image, the sum of its uncompressed layers, stays under 120 MB. */
export const UNPACKED_LIMIT_BYTES = 120_000_000;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}
export interface ImageConfig {
  architecture: string;
  os: string;
  config: { User?: string; WorkingDir?: string; Env?: string[]; Cmd?: string[]; Entrypoint?: string[]; ExposedPorts?: Record<string, object> };
  rootfs: { type: string; diff_ids: string[] };
  history?: Array<{ created_by?: string }>;
}
export interface OciArchive {
  /** Where the archive was unpacked. */
  dir: string;
  index: { schemaVersion: number; manifests: Descriptor[] };
  /** index.json's one manifest. */
  manifestDescriptor: Descriptor;
  blob(d: Descriptor): string;
}

/** Unpacks the archive into dir and reads its index; nothing is checked here. */
export async function openArchive(archive: string, dir: string): Promise<OciArchive> {
  await run(['mkdir', '-p', dir]);
  await run(['tar', '-xf', archive, '-C', dir], { timeoutMs: 300_000 });
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as OciArchive['index'];
  if (index.manifests.length !== 1) throw new Error(`${archive}: ${index.manifests.length} manifests, not one`);
  return { dir, index, manifestDescriptor: index.manifests[0] as Descriptor, blob: (d) => path.join(dir, 'blobs', ...d.digest.split(':')) };
}

/** The file's sha256 digest and length, of its gunzipped content if asked. */
export function digestOf(file: string, gunzip = false): Promise<{ digest: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    const input = createReadStream(file);
    const stream = gunzip ? input.pipe(createGunzip()) : input;
    input.on('error', reject);
    stream.on('error', reject);
    stream.on('data', (b: Buffer) => {
      hash.update(b);
      bytes += b.length;
    });
    stream.on('end', () => resolve({ digest: `sha256:${hash.digest('hex')}`, bytes }));
  });
}

/** What scripts/image.sh calls each layer (`base`, `node`, `deps`, `app`, …), from the config's history. */
export function layerKinds(config: ImageConfig): string[] {
  return (config.history ?? []).map((h) => /^scripts\/image\.sh: (\S+) layer$/.exec(h.created_by ?? '')?.[1] ?? '?');
}
