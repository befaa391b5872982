import { Writable } from 'node:stream';
import { createLogger, type Logger } from '@credfwd/shared';

/** A real credfwd logger at debug level whose lines a test can read back, or wait for. */
export function capturedLogger(): { logger: Logger; text(): string; waitFor(pattern: RegExp): Promise<string> } {
  let text = '';
  const waiters = new Set<() => void>();
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8');
      for (const wake of waiters) wake();
      done();
    },
  });
  const waitFor = (pattern: RegExp): Promise<string> => new Promise((resolve) => {
    const check = (): void => {
      if (!pattern.test(text)) return;
      waiters.delete(check);
      resolve(text);
    };
    waiters.add(check);
    check();
  });
  return { logger: createLogger({ name: 'credfwd-test', level: 'debug', destination: sink }), text: () => text, waitFor };
}
