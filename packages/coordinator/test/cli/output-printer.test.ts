import { Writable } from 'node:stream';
import test from 'ava';
import { MAX_LINE_BYTES, createLinePrinter, printOutputs, printResults, type PrinterStreams } from '../../src/cli/output-printer.ts';
import { workerResultFromJson, workerResultToJson } from '../../src/core/result-json.ts';
import { workerResult } from '../../src/core/worker-result.ts';

/** Streams that keep what is written to them, as bytes. */
function capture(): PrinterStreams & { out(): Buffer; err(): Buffer } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (into: Buffer[]) => ({
    write(chunk: string | Uint8Array): boolean {
      into.push(Buffer.from(chunk));
      return true;
    },
  });
  return { stdout: sink(out), stderr: sink(err), out: () => Buffer.concat(out), err: () => Buffer.concat(err) };
}

test('createLinePrinter prints whole lines as they complete, and flush prints the last partial line (printf abc printed nothing)', (t) => {
  const streams = capture();
  const printer = createLinePrinter(streams);
  printer.write('w1', 'stdout', Buffer.from('one\ntw'));
  printer.write('w2', 'stdout', Buffer.from('x'));
  t.is(streams.out().toString(), 'w1 | one\n');
  printer.write('w1', 'stdout', Buffer.from('o\nthree'));
  printer.write('w1', 'stderr', Buffer.from('abc'));
  printer.flush();
  t.is(streams.out().toString(), 'w1 | one\nw1 | two\nw1 | three\nw2 | x\n');
  t.is(streams.err().toString(), 'w1 | abc\n');
});

test('createLinePrinter keeps each line\'s bytes exact, also when they are not UTF-8 or a character is cut between chunks', (t) => {
  const streams = capture();
  const printer = createLinePrinter(streams);
  printer.write('w1', 'stdout', Buffer.from([0xff, 0xe2, 0x82]));
  printer.write('w1', 'stdout', Buffer.from([0xac, 0x0a, 0xfe]));
  printer.flush();
  t.deepEqual(streams.out(), Buffer.concat([Buffer.from('w1 | '), Buffer.from([0xff, 0xe2, 0x82, 0xac, 0x0a]), Buffer.from('w1 | '), Buffer.from([0xfe, 0x0a])]));
});

test('printOutputs prints collected results\' last partial lines too', (t) => {
  const streams = capture();
  printOutputs([workerResult('w1', 0, null, Buffer.from('a\nb'), Buffer.from('c')), workerResult('w2', 0, null, Buffer.from(''), Buffer.from(''))], streams);
  t.is(streams.out().toString(), 'w1 | a\nw1 | b\n');
  t.is(streams.err().toString(), 'w1 | c\n');
});

test('printResults --json gives each stream as text when it is UTF-8, else as base64, and it decodes back to the same bytes', (t) => {
  const streams = capture();
  const result = workerResult('w1', 0, null, Buffer.from([0xff, 0xfe]), Buffer.from('€\n'));
  printResults([result], true, streams);
  const json = JSON.parse(streams.out().toString()) as Record<string, unknown>;
  t.deepEqual(json, { worker: 'w1', exitCode: 0, signal: null, stdoutBase64: '//4=', stderr: '€\n' });
  const decoded = workerResultFromJson(workerResultToJson(result));
  t.deepEqual(decoded.stdoutBytes, result.stdoutBytes);
  t.deepEqual(decoded.stderrBytes, result.stderrBytes);
  t.is(decoded.stderr, '€\n');
});

test('createLinePrinter cuts a line longer than MAX_LINE_BYTES into lines of that size, so output without newlines cannot fill memory', (t) => {
  const streams = capture();
  const printer = createLinePrinter(streams);
  const chunk = Buffer.alloc(MAX_LINE_BYTES / 2, 0x61);
  for (let i = 0; i < 5; i++) printer.write('w1', 'stdout', chunk);
  const whole = Buffer.concat([Buffer.from('w1 | '), Buffer.alloc(MAX_LINE_BYTES, 0x61), Buffer.from('\n')]);
  // Buffer.equals, not deepEqual: ava's diffing of megabyte buffers took seconds of the unit run.
  t.true(streams.out().equals(Buffer.concat([whole, whole])), 'two full pieces printed, half a piece still pending');
  printer.flush();
  t.true(streams.out().subarray(whole.length * 2).equals(Buffer.concat([Buffer.from('w1 | '), chunk, Buffer.from('\n')])), 'the pending half printed as its own line');
});

/** A stdout whose reader has stalled: it buffers writes and finishes none until `release`, then reads on. */
function stalled(): { stream: Writable; written(): Buffer; release(): void } {
  let held: (() => void) | undefined;
  let reading = false;
  const chunks: Buffer[] = [];
  const stream = new Writable({
    highWaterMark: 64,
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      if (reading) callback();
      else held = () => callback();
    },
  });
  const release = (): void => {
    reading = true;
    held?.();
  };
  return { stream, written: () => Buffer.concat(chunks), release };
}

test('createLinePrinter asks to be waited for while its stream is full, with one promise per stream, resolved on drain (a stalled reader made the launcher hold all the output)', async (t) => {
  const out = stalled();
  const err = stalled();
  const printer = createLinePrinter({ stdout: out.stream, stderr: err.stream });
  t.is(printer.write('w1', 'stdout', Buffer.from('1\n')), undefined, 'room in the stream: nothing to wait for');
  const full = printer.write('w1', 'stdout', Buffer.from(`${'x'.repeat(100)}\n`));
  t.true(full instanceof Promise);
  t.is(printer.write('w2', 'stdout', Buffer.from('2\n')), full, 'every write waits for the same drain');
  t.is(printer.write('w2', 'stdout', Buffer.from('no newline yet')), full, 'even one that completes no line');
  t.is(out.stream.listenerCount('drain'), 1, 'no listener per write');
  t.is(printer.write('w1', 'stderr', Buffer.from('e\n')), undefined, 'stderr has its own room');
  let drained = false;
  void full?.then(() => {
    drained = true;
  });
  await Promise.resolve();
  t.false(drained);
  out.release();
  await full;
  t.is(out.stream.listenerCount('drain'), 0);
  t.is(printer.write('w1', 'stdout', Buffer.from('3\n')), undefined, 'drained: room again');
  t.is(out.written().toString(), `w1 | 1\nw1 | ${'x'.repeat(100)}\nw2 | 2\nw1 | 3\n`, 'nothing printed was lost');
});

test('createLinePrinter stops waiting for a stream that closes instead of draining', async (t) => {
  const out = stalled();
  const printer = createLinePrinter({ stdout: out.stream, stderr: stalled().stream });
  const full = printer.write('w1', 'stdout', Buffer.from(`${'x'.repeat(100)}\n`));
  t.true(full instanceof Promise);
  out.stream.destroy();
  await full;
  t.is(out.stream.listenerCount('close'), 0);
});
