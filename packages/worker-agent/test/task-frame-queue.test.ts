import test from 'ava';
import type { AgentMessage, Exit, Output } from '@credfwd/shared';
import { OUTPUT_HIGH_WATER_BYTES, TaskFrameQueue, type TaskFrameLink } from '../src/task-frame-queue.ts';

/** A connection that takes frames while `up`, and counts them buffered until the test lets them leave. */
class Link implements TaskFrameLink {
  up = false;
  readonly sent: AgentMessage[] = [];
  #buffered = 0;
  readonly #inFlight: Array<{ size: number; written(): void }> = [];

  send(message: AgentMessage, written: () => void): boolean {
    if (!this.up) return false;
    this.sent.push(message);
    const size = JSON.stringify(message).length;
    this.#buffered += size;
    this.#inFlight.push({ size, written });
    return true;
  }

  bufferedAmount(): number {
    return this.#buffered;
  }

  /** Lets every buffered frame leave, as the socket's write callbacks would. */
  writeAll(): void {
    for (const frame of this.#inFlight.splice(0)) {
      this.#buffered -= frame.size;
      frame.written();
    }
  }
}

const output = (taskId: string, bytes: number): Output => ({ type: 'output', taskId, stream: 'stdout', data: Buffer.alloc(bytes).toString('base64') });
const exit = (taskId: string): Exit => ({ type: 'exit', taskId, code: 0, signal: null });

test('TaskFrameQueue holds frames while there is no connection and flushes them in order (output was dropped)', (t) => {
  const link = new Link();
  const queue = new TaskFrameQueue(link);
  queue.send(output('t1', 10));
  queue.send(exit('t1'));
  t.deepEqual(link.sent, []);
  link.up = true;
  queue.send(output('t2', 10));
  t.deepEqual(link.sent, [], 'a new frame waits behind the held ones');
  queue.flush();
  t.deepEqual(link.sent.map((f) => `${f.type}:${(f as Output | Exit).taskId}`), ['output:t1', 'exit:t1', 'output:t2']);
});

test('TaskFrameQueue has a backlog above the high-water mark, held or buffered, until it drains', async (t) => {
  const link = new Link();
  link.up = true;
  const queue = new TaskFrameQueue(link);
  t.is(queue.backlog(), undefined);
  while (link.bufferedAmount() < OUTPUT_HIGH_WATER_BYTES) queue.send(output('t1', 32 * 1024));
  const drained = queue.backlog();
  t.truthy(drained, 'a backlog once the socket holds the high-water mark');
  t.is(queue.backlog(), drained, 'every task waits for the same drain');
  let resolved = false;
  void drained!.then(() => {
    resolved = true;
  });
  link.writeAll();
  await drained;
  t.true(resolved);
  t.is(queue.backlog(), undefined);
});

test('TaskFrameQueue counts held frames as backlog while disconnected, and drains on reconnect', async (t) => {
  const link = new Link();
  const queue = new TaskFrameQueue(link);
  while (queue.backlog() === undefined) queue.send(output('t1', 32 * 1024));
  const drained = queue.backlog()!;
  link.up = true;
  queue.flush();
  link.writeAll();
  await drained;
  t.is(link.sent.length * 32 * 1024 >= OUTPUT_HIGH_WATER_BYTES * 0.75, true, 'nothing held was dropped');
  t.is(queue.backlog(), undefined);
});
