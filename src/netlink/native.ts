// The native addon (native/kernel.c): raw Ethernet frames out of an interface, an
// rtnetlink notification socket that reports overruns instead of aborting the process,
// and memory given back to the kernel (src/memory.ts).
// Built by `npm install`, or here on first use when that did not happen. A bundle
// (scripts/bundle.ts) carries it beside itself as kernel.node.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';
import { buildAddon } from '../../native/build.ts';

/** Sends `frames` (each starting with its Ethernet header) out of interface `ifindex`; returns how many left. */
export type FrameSender = (ifindex: number, frames: Buffer[]) => number;

declare const listenerBrand: unique symbol;
type ListenerHandle = { readonly [listenerBrand]: true };

interface Addon {
  sendFrames(ifindex: number, frames: Buffer[]): number;
  openRtnetlinkListener(groups: number[], receiveBufferBytes: number, onDatagram: (datagram: Buffer) => void, onOverrun: () => void): ListenerHandle;
  closeRtnetlinkListener(handle: ListenerHandle): void;
  releasePages(ranges: number[]): void;
}

let addon: Addon | undefined;

/** Loads the addon (building it if needed); call at start-up to fail early. */
export function loadNativeAddon(): Addon {
  const bundled = fileURLToPath(new URL('./kernel.node', import.meta.url));
  addon ??= createRequire(import.meta.url)(existsSync(bundled) ? bundled : buildAddon()) as Addon;
  return addon;
}

/** Adds Node's error code name (`ENETDOWN`, …) to an error from the addon. */
function withCode(error: unknown, context: string): unknown {
  const errno = (error as { errno?: unknown }).errno;
  if (typeof errno === 'number' && error instanceof Error) {
    Object.assign(error, { code: getSystemErrorName(-errno) });
    error.message = `${error.message} (${context})`;
  }
  return error;
}

/** Needs CAP_NET_RAW in the process's network namespace. */
export const sendFrames: FrameSender = (ifindex, frames) => {
  const native = loadNativeAddon();
  try {
    return native.sendFrames(ifindex, frames);
  } catch (error) {
    throw withCode(error, `interface index ${ifindex}`);
  }
};

/**
 * Listens to rtnetlink multicast groups (RTNLGRP_*). Each datagram holds one or more
 * netlink messages; `onOverrun` means some were lost. Keeps the process alive until
 * closed.
 */
export function listenRtnetlink(
  groups: readonly number[],
  receiveBufferBytes: number,
  onDatagram: (datagram: Buffer) => void,
  onOverrun: () => void,
): { close(): void } {
  const native = loadNativeAddon();
  let handle: ListenerHandle;
  try {
    handle = native.openRtnetlinkListener([...groups], receiveBufferBytes, onDatagram, onOverrun);
  } catch (error) {
    throw withCode(error, 'rtnetlink listener');
  }
  let open = true;
  return {
    close: () => {
      if (open) native.closeRtnetlinkListener(handle);
      open = false;
    },
  };
}

/**
 * Drops the resident pages of `ranges` ([start, length, ...]: whole read-only file
 * mappings without private pages, page-aligned) and trims the C heap.
 */
export function releasePages(ranges: number[]): void {
  const native = loadNativeAddon();
  try {
    native.releasePages(ranges);
  } catch (error) {
    throw withCode(error, 'releasing pages');
  }
}
