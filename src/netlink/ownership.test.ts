// The ownership record's rules and file handling, without a kernel; and the in-memory
// kernel that drops the marker, as the agent's unit tests use it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IFA_F_NOPREFIXROUTE } from './messages.ts';
import type { AddressRecord } from './messages.ts';
import { MemoryNetwork } from './memory-network.ts';
import { OwnershipRecord, entryKey, recordPathIn, recordedAs } from './ownership.ts';
import type { RecordedAddress } from './ownership.ts';

const kernel = (over: Partial<AddressRecord> = {}): AddressRecord => ({
  family: 'IPv4',
  ifindex: 3,
  ip: '192.0.2.10',
  prefix: 32,
  scope: 0,
  flags: IFA_F_NOPREFIXROUTE,
  protocol: 0,
  validLifetime: undefined,
  preferredLifetime: undefined,
  created: 4711,
  ...over,
});

const entry = (over: Partial<RecordedAddress> = {}): RecordedAddress => ({
  ifname: 'kube-lb0',
  ifindex: 3,
  ip: '192.0.2.10',
  prefix: 32,
  state: 'held',
  created: 4711,
  noPrefixRoute: true,
  at: '2026-01-01T00:00:00.000Z',
  ...over,
});

test('a held entry owns exactly the address the kernel created for it', () => {
  assert.ok(recordedAs(entry(), kernel()));
  assert.ok(!recordedAs(entry(), kernel({ created: 4712 })), 'deleted and added again: another stamp');
  assert.ok(!recordedAs(entry(), kernel({ prefix: 24 })));
  assert.ok(!recordedAs(entry(), kernel({ ifindex: 4 })));
  assert.ok(!recordedAs(undefined, kernel()));
  assert.ok(!recordedAs(entry({ created: undefined }), kernel()));
});

test('an adding entry owns an address with the flags and the kind of lifetime it asked for', () => {
  const adding = entry({ state: 'adding', created: undefined, lifetimes: { validSec: 30, preferredSec: 30 } });
  assert.ok(recordedAs(adding, kernel({ validLifetime: 29 })));
  assert.ok(!recordedAs(adding, kernel({ validLifetime: undefined })), 'forever: not what was asked');
  assert.ok(!recordedAs(adding, kernel({ validLifetime: 31 })), 'longer than asked');
  assert.ok(!recordedAs(adding, kernel({ validLifetime: 29, flags: 0 })), 'without noprefixroute');
  const forever = entry({ state: 'adding', created: undefined, noPrefixRoute: false });
  assert.ok(recordedAs(forever, kernel({ flags: 0 })));
  assert.ok(!recordedAs(forever, kernel({ flags: 0, validLifetime: 100 })));
});

test('the record is written whole and read back; one file per network namespace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'plbt-unit-record-'));
  try {
    const path = recordPathIn(join(dir, 'sub'));
    assert.match(path, /sub\/addresses-netns-\d+\.json$/);
    const record = new OwnershipRecord(path);
    assert.deepEqual(record.load(), { entries: new Map() }, 'none yet: nothing is ours, nothing is wrong');
    const entries = new Map([[entryKey(entry()), entry()]]);
    record.store(entries);
    assert.deepEqual(record.load(), { entries });
    assert.deepEqual(readFileSync(`${path}`, 'utf8').includes('"kube-lb0"'), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a truncated, invalid or foreign-boot record holds nothing; the unusable one is moved aside and reported', () => {
  const dir = mkdtempSync(join(tmpdir(), 'plbt-unit-record-'));
  try {
    const path = join(dir, 'addresses.json');
    const record = new OwnershipRecord(path);
    record.store(new Map([[entryKey(entry()), entry()]]));
    const whole = readFileSync(path, 'utf8');
    writeFileSync(path, whole.slice(0, whole.length / 2));
    const truncated = record.load();
    assert.equal(truncated.entries.size, 0);
    assert.match(truncated.problem ?? '', /not valid JSON .*truncated/);
    assert.ok(existsSync(`${path}.corrupt`) && !existsSync(path));

    writeFileSync(path, JSON.stringify({ version: 1, bootId: 'x', addresses: [{ ip: 5 }] }));
    assert.match(record.load().problem ?? '', /not valid: addresses\.0\.ifname/);

    writeFileSync(path, whole.replace(/"bootId": "[^"]*"/, '"bootId": "an-earlier-boot"'));
    assert.deepEqual(record.load(), { entries: new Map() });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('MemoryNetwork without the marker: ours by the record, protocol 0; a lost record makes them foreign, untouched', async () => {
  const net = new MemoryNetwork({ marker: false });
  const lb = net.addLink('kube-lb0', 'dummy');
  const spec = { ifindex: lb.index, ip: '192.0.2.10', prefix: 32 };
  assert.equal((await net.ownership()).mode, 'record');
  assert.deepEqual((await net.addAddresses([spec])).map((r) => r.outcome), ['added']);
  const [ours] = await net.listAddresses({ ours: true });
  assert.equal(ours?.protocol, 0);
  net.loseRecord();
  assert.match((await net.ownership()).recordProblem ?? '', /lost/);
  assert.deepEqual((await net.addAddresses([spec])).map((r) => r.outcome), ['foreign']);
  assert.deepEqual((await net.deleteAddresses([spec])).map((r) => r.outcome), ['foreign']);
  assert.equal((await net.listAddresses({ ours: false })).length, 1);
  assert.throws(() => new MemoryNetwork().loseRecord(), /marker: false/);
});
