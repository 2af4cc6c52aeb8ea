// The program testkit.ts starts inside a test namespace (`ip netns exec NS node
// netns-fixture.ts MODULE`). MODULE's default export receives an `emit` function and
// returns the methods it serves; requests arrive on stdin as JSON lines
// `{id, method, args}` and answers leave on stdout as `{id, result}` or `{id, error}`,
// events as `{event}`. The process exits when stdin closes.

import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

export type FixtureMethods = Record<string, (...args: never[]) => unknown>;
export type FixtureModule = (emit: (event: unknown) => void) => FixtureMethods | Promise<FixtureMethods>;

function write(message: unknown): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

const modulePath = process.argv[2];
if (modulePath === undefined) throw new Error('usage: netns-fixture.ts MODULE');
const loaded = (await import(pathToFileURL(resolve(modulePath)).href)) as { default: FixtureModule };
const methods = await loaded.default((event) => write({ event }));

createInterface({ input: process.stdin })
  .on('line', (line) => {
    const { id, method, args } = JSON.parse(line) as { id: number; method: string; args: unknown[] };
    const run = async (): Promise<unknown> => {
      if (method === 'ping') return 'pong';
      const fn = methods[method];
      if (fn === undefined) throw new Error(`fixture has no method ${method}`);
      return (fn as (...a: unknown[]) => unknown)(...args);
    };
    run().then(
      (result) => write({ id, result: result ?? null }),
      (error: unknown) => write({ id, error: error instanceof Error ? error.message : String(error) }),
    );
  })
  .on('close', () => process.exit(0));
