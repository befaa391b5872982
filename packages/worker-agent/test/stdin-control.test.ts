import { PassThrough } from 'node:stream';
import test from 'ava';
import { StdinControl } from '../src/stdin-control.ts';

function control(): { input: PassThrough; events: string[]; settled: Promise<void> } {
  const input = new PassThrough();
  const events: string[] = [];
  let settle!: () => void;
  const settled = new Promise<void>((resolve) => { settle = resolve; });
  new StdinControl({
    input,
    onStop: () => { events.push('stop'); settle(); },
    onEnd: () => { events.push('end'); settle(); },
  }).start();
  return { input, events, settled };
}

test('StdinControl stops on a `stop` line, even split across chunks', async (t) => {
  const { input, events, settled } = control();
  input.write('sto');
  input.write('p\n');
  await settled;
  input.end();
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(events, ['stop'], 'nothing after the stop, not even the end');
});

test('StdinControl reports the end of stdin without stopping, and ignores other lines', async (t) => {
  const { input, events, settled } = control();
  input.write('hello\n');
  input.write(`${'x'.repeat(100)}stop\n`);
  input.end();
  await settled;
  t.deepEqual(events, ['end']);
});

test('StdinControl treats a broken stdin as its end', async (t) => {
  const { input, events, settled } = control();
  input.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
  await settled;
  t.deepEqual(events, ['end']);
});
