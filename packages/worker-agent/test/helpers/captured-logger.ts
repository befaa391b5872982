import { Writable } from 'node:stream';
import { createLogger, type Logger } from '@credfwd/shared';

/** A logger whose lines a test reads back, or waits for. */
export interface CapturedLogger {
  logger: Logger;
  text(): string;
  /**
   * Resolves with the log so far once it matches, now or after later lines.
   * Keeps the process alive meanwhile: the line may be due to an unref'd timer.
   */
  waitFor(pattern: RegExp): Promise<string>;
}

/** A real credfwd logger at debug level whose lines a test reads back instead of printing them. */
export function capturedLogger(): CapturedLogger {
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
    const keepAlive = setInterval(() => {}, 1_000);
    const check = (): void => {
      if (!pattern.test(text)) return;
      waiters.delete(check);
      clearInterval(keepAlive);
      resolve(text);
    };
    waiters.add(check);
    check();
  });
  return { logger: createLogger({ name: 'credfwd-test', level: 'debug', destination: sink }), text: () => text, waitFor };
}
