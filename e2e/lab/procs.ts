// Processes the lab starts are remembered by PID file in `.lab/` and stopped by that
// PID only — after checking the PID still belongs to the program we started, since a
// crashed lab may leave a stale file whose PID the kernel has reused.

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { labDir } from './paths.ts';

export function readPid(name: string): number | undefined {
  const file = path.join(labDir(), `${name}.pid`);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 1 ? pid : undefined;
}

export function isRunning(pid: number | undefined): pid is number {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); treat it as gone.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/**
 * Stops the process recorded as `name` if its command line still mentions one of
 * `expect`: SIGTERM, then SIGKILL after `graceMs`. Removes the PID file either way.
 */
export async function stopPid(name: string, expect: string[], graceMs = 10_000): Promise<void> {
  const pid = readPid(name);
  const file = path.join(labDir(), `${name}.pid`);
  if (isRunning(pid) && expect.some((e) => commandLine(pid).includes(e))) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (isRunning(pid) && Date.now() < deadline) await sleep(50);
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && isRunning(pid); i++) await sleep(20);
  }
  rmSync(file, { force: true });
}
