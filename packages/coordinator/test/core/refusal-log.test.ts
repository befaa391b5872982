import { Writable } from 'node:stream';
import test from 'ava';
import { createLogger } from '@credfwd/shared';
import { RefusalLog } from '../../src/core/refusal-log.ts';

test('RefusalLog logs a flood once per interval per kind, with the count refused in between', (t) => {
  const lines: Array<{ msg: string; refusedSinceLastLine: number }> = [];
  const sink = new Writable({ write: (chunk: Buffer, _encoding, done) => { lines.push(JSON.parse(chunk.toString('utf8'))); done(); } });
  let now = 0;
  const log = new RefusalLog(createLogger({ name: 'test', destination: sink }), 10_000, () => now);
  for (let i = 0; i < 100; i += 1) log.refused('cap reached', {});
  log.refused('rate exceeded', {});
  now += 10_000;
  log.refused('cap reached', {});
  t.deepEqual(lines.map((l) => [l.msg, l.refusedSinceLastLine]), [['cap reached', 0], ['rate exceeded', 0], ['cap reached', 99]]);
});
