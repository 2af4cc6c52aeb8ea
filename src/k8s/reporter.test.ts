import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reporter } from './reporter.ts';

test('a report is written once per distinct content, per channel and object', () => {
  const r = new Reporter<'failure' | 'warning'>();
  const written: string[] = [];
  const say = (channel: 'failure' | 'warning', object: string, what: string) => r.say(channel, object, what, () => written.push(`${channel} ${object} ${what}`));
  say('failure', 'a/s', 'pool exhausted');
  say('failure', 'a/s', 'pool exhausted');
  say('warning', 'a/s', 'pool exhausted');
  say('failure', 'a/t', 'pool exhausted');
  say('failure', 'a/s', 'address in use');
  assert.deepEqual(written, ['failure a/s pool exhausted', 'warning a/s pool exhausted', 'failure a/t pool exhausted', 'failure a/s address in use']);
  assert.deepEqual(r.objects('warning'), ['a/s']);
  r.clear('failure', 'a/s');
  say('failure', 'a/s', 'address in use');
  r.forget('a/t');
  say('failure', 'a/t', 'pool exhausted');
  assert.deepEqual(written.slice(4), ['failure a/s address in use', 'failure a/t pool exhausted']);
});
