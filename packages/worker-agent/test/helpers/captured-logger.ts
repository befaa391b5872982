import { Writable } from 'node:stream';
import { createLogger, type Logger } from '@credfwd/shared';

/** A real credfwd logger at debug level whose lines a test reads back instead of printing them. */
export function capturedLogger(): { logger: Logger; text(): string } {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8');
      done();
    },
  });
  return { logger: createLogger({ name: 'credfwd-agent-test', level: 'debug', destination: sink }), text: () => text };
}
