import { Writable } from 'node:stream';
import test from 'ava';
import { createLogger } from '../src/logger.ts';

/** A logger whose JSON lines land in `lines()`. */
function captured(level?: string) {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8');
      done();
    },
  });
  const logger = createLogger({ name: 'test', destination, ...(level === undefined ? {} : { level }) });
  return { logger, text: () => text, lines: () => text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>) };
}

test('createLogger writes JSON lines with the logger name to the given stream', (t) => {
  const { logger, lines } = captured();
  logger.info({ clusterId: 'c1' }, 'cluster launched');
  t.like(lines()[0], { name: 'test', clusterId: 'c1', msg: 'cluster launched', level: 30 });
});

test('createLogger redacts a token and credentials wherever they are logged', (t) => {
  const { logger, text, lines } = captured();
  logger.info({
    token: 'join-token-value',
    credentials: { accessKeyId: 'ASIAEXAMPLEEXAMPLE01', secretAccessKey: 'secret-access-value', sessionToken: 'session-token-value' },
    agent: { token: 'nested-token-value', mac: 'mac-value', jwe: 'jwe-value' },
    req: { headers: { authorization: 'deep-authorization-value' } },
    secretAccessKey: 'top-secret-value',
    joinString: 'credfwd://h:1/c?token=join-string-token',
  }, 'agent joined');
  for (const secret of ['join-token-value', 'secret-access-value', 'session-token-value', 'ASIAEXAMPLEEXAMPLE01', 'nested-token-value', 'mac-value', 'jwe-value', 'top-secret-value', 'join-string-token', 'deep-authorization-value']) {
    t.false(text().includes(secret), secret);
  }
  t.like(lines()[0], { token: '[redacted]', credentials: '[redacted]', agent: { token: '[redacted]' }, msg: 'agent joined' });
});

test('createLogger honours the level it is given', (t) => {
  const { logger, lines } = captured('warn');
  logger.info('quiet');
  logger.warn('loud');
  t.deepEqual(lines().map((line) => line.msg), ['loud']);
});
