import test from 'ava';
import { TaskCollector } from '../../src/core/task-collector.ts';
import type { OutputListener } from '../../src/core/worker-result.ts';

const frame = (data: string) => ({ type: 'output' as const, taskId: 't1', stream: 'stdout' as const, data: Buffer.from(data).toString('base64') });

test('output hands back the listener\'s promise, so the agent is not read until it settles; it keeps the bytes either way', async (t) => {
  let release!: () => void;
  const busy = new Promise<void>((resolve) => {
    release = resolve;
  });
  const collector = new TaskCollector('w1', () => busy);
  t.is(collector.output(frame('a')), busy);
  release();
  t.is(collector.result(0, null).stdout, 'a');
});

test('output asks for nothing when the listener returns nothing, or (from plain JavaScript) something that is not a promise', (t) => {
  t.is(new TaskCollector('w1', () => undefined).output(frame('a')), undefined);
  t.is(new TaskCollector('w1', (() => false) as unknown as OutputListener).output(frame('a')), undefined);
  t.is(new TaskCollector('w1').output(frame('a')), undefined);
});
